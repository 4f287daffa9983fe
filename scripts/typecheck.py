"""Run mypy over the ``driftloop`` import package as installed.

mypy cannot follow setuptools' ``package-dir`` mapping (``driftloop.monitor`` lives in
``monitor/``), so this builds a tree of symbolic links shaped like the import package, from the
mapping in pyproject.toml, and checks that tree. Error paths name the links, which mirror the
source folders one to one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TREE = ROOT / ".venv" / "mypy-tree"


def build_tree() -> Path:
    """Create ``TREE/driftloop`` mirroring the installed import package."""
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-dir"
    ]
    shutil.rmtree(TREE, ignore_errors=True)
    package = TREE / "driftloop"
    package.mkdir(parents=True)
    for entry in (ROOT / mapping["driftloop"]).iterdir():
        if entry.name != "__pycache__":
            os.symlink(entry, package / entry.name)
    for name, folder in mapping.items():
        if name != "driftloop":
            os.symlink(ROOT / folder, package / name.split(".", 1)[1])
    return TREE


def main() -> int:
    tree = build_tree()
    env = {**os.environ, "MYPYPATH": str(tree)}
    command = [
        sys.executable,
        "-m",
        "mypy",
        "--config-file",
        str(ROOT / "pyproject.toml"),
        "-p",
        "driftloop",
        *sys.argv[1:],
    ]
    return subprocess.call(command, env=env, cwd=tree)


if __name__ == "__main__":
    sys.exit(main())
