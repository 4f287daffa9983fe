"""Start-up cost of the entry points, against importing NumPy, pandas and PyArrow, in one run.

    .venv/bin/python bench/startup.py              # 7 rounds
    .venv/bin/python bench/startup.py --rounds 3   # quick
    mkdir /tmp/before && git archive HEAD | tar -x -C /tmp/before
    .venv/bin/python bench/startup.py --before /tmp/before   # before/after in the same rounds

Each round runs, as separate processes: the peer ``python -c "import numpy, pandas, pyarrow"``,
``driftloop drift REFERENCE CURRENT --json`` on two small Parquet files (1,000 rows, 6 columns,
one shifted), and ``driftloop --help``. CPU is user + system time of the child (``os.wait4``),
wall is the elapsed time; the figures are medians over the rounds. The ratio that matters is the
drift command's CPU over the peer's (target: at most 3x). Finally ``python -X importtime`` gives
the cumulative import time of ``driftloop.monitor.drift``, ``driftloop.cli`` and
``driftloop.monitor``. With ``--before DIR`` (a source tree, e.g. an unpacked ``git archive``), the
drift and help commands also run from that tree in the same rounds, for a before/after under the
same load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

PYTHON = sys.executable
DRIFTLOOP = [PYTHON, "-m", "driftloop"]


def make_files(folder: Path) -> tuple[Path, Path]:
    """Two small Parquet files: five numerical columns and one categorical, ``x0`` shifted."""
    script = f"""
import numpy as np, pandas as pd
rng = np.random.default_rng(0)
for name, shift in (("reference", 0.0), ("current", 0.3)):
    frame = pd.DataFrame({{f"x{{i}}": rng.normal(shift if i == 0 else 0.0, 1, 1000)
                           for i in range(5)}})
    frame["c"] = rng.choice(list("abc"), 1000)
    frame.to_parquet({str(folder)!r} + f"/{{name}}.parquet")
"""
    subprocess.run([PYTHON, "-c", script], check=True)
    return folder / "reference.parquet", folder / "current.parquet"


def shadow_package(tree: Path, folder: Path) -> None:
    """Lay out ``tree``'s package as installed (component folders mapped into ``driftloop``)."""
    package_dir = tomllib.loads((tree / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-dir"
    ]
    top = folder / "driftloop"
    top.mkdir(parents=True)
    for entry in (tree / package_dir["driftloop"]).iterdir():
        (top / entry.name).symlink_to(entry.resolve())
    for package, source in package_dir.items():
        if package != "driftloop":
            (top / package.removeprefix("driftloop.")).symlink_to((tree / source).resolve())


def measure(command: list[str], path: str | None = None) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one run of ``command``; fails when it fails. ``path``:
    a PYTHONPATH that takes precedence over the installed driftloop."""
    env = {**os.environ, "PYTHONPATH": path} if path else None
    start = time.perf_counter()
    proc = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=tempfile.gettempdir(),
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)} exited with {proc.returncode}")
    return usage.ru_utime + usage.ru_stime, wall


def import_ms(module: str) -> float:
    """Cumulative import time of ``module`` in a fresh interpreter, in milliseconds."""
    out = subprocess.run(
        [PYTHON, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=True,
    ).stderr.strip()
    line = next(x for x in reversed(out.splitlines()) if x.endswith(f"| {module}"))
    return int(line.split("|")[1]) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--before", type=Path, help="a source tree to compare with (same rounds)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        reference, current = make_files(Path(tmp))
        drift = [*DRIFTLOOP, "drift", str(reference), str(current), "--json"]
        commands: dict[str, tuple[list[str], str | None]] = {
            "peer: import numpy, pandas, pyarrow": (
                [PYTHON, "-c", "import numpy, pandas, pyarrow"],
                None,
            ),
            "driftloop drift (1,000 rows)": (drift, None),
            "driftloop --help": ([*DRIFTLOOP, "--help"], None),
        }
        if args.before is not None:
            shadow_package(args.before, Path(tmp) / "before")
            before = str(Path(tmp) / "before")
            commands["before: driftloop drift (1,000 rows)"] = (drift, before)
            commands["before: driftloop --help"] = ([*DRIFTLOOP, "--help"], before)
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for _ in range(args.rounds):
            for name, (command, path) in commands.items():  # interleaved: load hits all alike
                runs[name].append(measure(command, path))
    print(f"start-up, median of {args.rounds} rounds (machine shared with other sessions)")
    cpu = {name: statistics.median(c for c, _ in values) for name, values in runs.items()}
    for name, values in runs.items():
        wall = statistics.median(w for _, w in values)
        print(f"  {name:40s} CPU {cpu[name]:6.3f} s   wall {wall:6.3f} s")
    peer = cpu["peer: import numpy, pandas, pyarrow"]
    ratio = cpu["driftloop drift (1,000 rows)"] / peer
    print(f"  drift CPU / peer CPU: {ratio:.2f}x (target <= 3x)")
    if args.before is not None:
        was = cpu["before: driftloop drift (1,000 rows)"] / peer
        print(f"  before: drift CPU / peer CPU: {was:.2f}x")
    for module in ("driftloop.monitor.drift", "driftloop.cli", "driftloop.monitor"):
        print(f"  import {module:30s} {import_ms(module):7.1f} ms cumulative (-X importtime)")


if __name__ == "__main__":
    main()
