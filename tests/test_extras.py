"""Code that needs an optional extra says which one when it is missing.

Each case runs in a fresh interpreter whose import system refuses the extra's module, the way a
core install (``pip install driftloop``) lacks it.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from driftloop.extras import EXTRAS

ROOT = Path(__file__).resolve().parents[1]

BLOCK = """
import importlib.abc, sys
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == {module!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, Refuse())
"""

CASES = {
    "evidently": (
        "import pandas as pd\n"
        "from driftloop.monitor.drift import infer_specs\n"
        "from driftloop.monitor.evaluation.report import evidently_html\n"
        "frame = pd.DataFrame({'x': [1.0, 2.0, 3.0]})\n"
        "evidently_html(frame, frame, infer_specs(frame))",
        "reports",
    ),
    "joblib": (
        "import pathlib, tempfile\n"
        "from driftloop.serving.bento.build import build_bento\n"
        "folder = pathlib.Path(tempfile.mkdtemp())\n"
        "(folder / 'model.joblib').write_bytes(b'not used')\n"
        "(folder / 'reference.csv').write_text('x,y\\n1,2\\n')\n"
        "build_bento(folder / 'model.joblib', folder / 'reference.csv', name='m', smoke=False)",
        "bento",
    ),
    "sklearn": ("from driftloop.demo.data import iris_frame\niris_frame()", "demo"),
    "grafana_foundation_sdk": (
        "from driftloop.dashboards import generate\ngenerate()",
        "dashboards",
    ),
}


@pytest.mark.parametrize(("module", "extra"), [(m, e) for m, (_, e) in CASES.items()])
def test_a_missing_extra_is_an_error_naming_it(module: str, extra: str) -> None:
    code = BLOCK.format(module=module) + CASES[module][0]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("driftloop.errors.MissingExtraError"), result.stderr[-2000:]
    assert f"pip install 'driftloop[{extra}]'" in last


def test_every_extra_named_in_code_is_declared_in_pyproject() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert set(EXTRAS) <= set(declared)
