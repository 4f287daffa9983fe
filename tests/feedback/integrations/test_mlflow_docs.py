"""docs/mlflow.md is real: its ``driftloop`` commands and flags exist, its loop has a dozen steps,
the README links it, and every setting and outcome it names exists."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from driftloop.cli import app
from driftloop.settings import MlflowSettings

ROOT = Path(__file__).resolve().parents[3]
DOC = (ROOT / "docs" / "mlflow.md").read_text()


def command_lines() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", DOC, flags=re.S)
    joined = "\n".join(blocks).replace("\\\n", " ")
    out = []
    for line in joined.splitlines():
        # The command, after any VAR=value assignments before it; without comments and "&".
        found = re.match(r"^(?:[A-Z_]+=\S+\s+)*(driftloop\s.*?)(?:\s+&)?\s*(?:#.*)?$", line)
        if found:
            out.append(found.group(1))
    return out


def test_the_loop_is_about_a_dozen_commands_and_the_readme_links_it() -> None:
    loop = DOC.split("## The loop in twelve commands", 1)[1].split("\n## ", 1)[0]
    steps = re.findall(r"^# (\d+)\. ", loop, flags=re.M)
    assert [int(s) for s in steps] == list(range(1, 13))
    assert "(docs/mlflow.md)" in (ROOT / "README.md").read_text()


@pytest.mark.parametrize("line", command_lines())
def test_every_driftloop_command_in_the_doc_exists_with_its_flags(line: str) -> None:
    words = shlex.split(line)[1:]
    path = [w for w in words[:2] if not w.startswith("-")]
    result = CliRunner().invoke(app, [*path, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    for flag in (w.split("=")[0] for w in words if w.startswith("--")):
        assert flag in result.output, f"{line}: {flag} is not a flag of {' '.join(path)}"


def test_every_setting_the_doc_names_exists() -> None:
    named = set(re.findall(r"DRIFTLOOP_MLFLOW__([A-Z_]+)", DOC))
    assert named
    fields = {name.upper() for name in MlflowSettings.model_fields}
    assert named <= fields, named - fields


def test_every_outcome_is_documented() -> None:
    from driftloop.feedback.integrations.mlflow import OUTCOMES

    for outcome in OUTCOMES:
        assert f"`{outcome}`" in DOC, outcome
