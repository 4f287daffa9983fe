"""The README's commands are real: the two first commands come first, and every ``driftloop``
command line it shows names an existing command and flags that command accepts."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from driftloop.cli import app

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def command_lines() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
    joined = "\n".join(blocks).replace("\\\n", " ")
    return [
        line.split("#")[0].strip() for line in joined.splitlines() if line.startswith("driftloop ")
    ]


def test_the_readme_starts_with_the_two_commands() -> None:
    first_block = re.search(r"```bash\n(.*?)```", README, flags=re.S)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands == ["make demo", "make test"]


@pytest.mark.parametrize("line", command_lines())
def test_every_driftloop_command_in_the_readme_exists_with_its_flags(line: str) -> None:
    words = shlex.split(line)[1:]
    path = [w for w in words[:2] if not w.startswith("-")]
    for depth in (2, 1):
        result = CliRunner().invoke(app, [*path[:depth], "--help"], terminal_width=200)
        if result.exit_code == 0 and "Usage" in result.output:
            break
    assert result.exit_code == 0, result.output
    for flag in (w.split("=")[0] for w in words if w.startswith("--")):
        assert flag in result.output, f"{line}: {flag} is not a flag of {' '.join(path)}"
