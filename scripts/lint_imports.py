"""Check the import contracts in pyproject.toml ([tool.importlinter]) with import-linter.

``make lint`` runs this. The component folders (monitor/, feedback/, serving/, dashboards/) live
outside driftloop/ and are mapped into the package at install time, so import-linter's module
finder, which walks the package's folder, would not see them. This script builds the package as
installed in a temporary folder of symbolic links and runs ``lint-imports`` against it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    package_dir: dict[str, str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"][
        "setuptools"
    ]["package-dir"]
    with tempfile.TemporaryDirectory(prefix="driftloop-imports-") as tmp:
        top = Path(tmp) / "driftloop"
        top.mkdir()
        for entry in (ROOT / package_dir["driftloop"]).iterdir():
            if entry.name != "__pycache__":
                (top / entry.name).symlink_to(entry)
        for package, folder in package_dir.items():
            if package != "driftloop":
                (top / package.removeprefix("driftloop.")).symlink_to(ROOT / folder)
        env = {**os.environ, "PYTHONPATH": tmp}
        command = [
            str(Path(sys.executable).with_name("lint-imports")),
            "--config",
            str(ROOT / "pyproject.toml"),
            "--no-cache",
        ]
        # Run from the temporary folder: lint-imports puts the working directory on sys.path.
        return subprocess.run(command, cwd=tmp, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
