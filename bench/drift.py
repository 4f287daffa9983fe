"""Drift on raw data and from profiles, against Evidently and a plain SciPy loop, in one run.

    .venv/bin/python bench/drift.py                      # 100k and 1M rows per window
    .venv/bin/python bench/drift.py --sizes 100000       # quick
    .venv/bin/python bench/drift.py --skip-evidently     # without the slow peer

Each size: 25 features (20 numerical float64, 5 categorical strings), a reference and a current
window of N rows each, drift injected into 5 numerical and 1 categorical feature. Every contender
runs once on the same data in the same process. Times are wall-clock seconds; ratios are the
peer's time over Driftloop's (cold: reference preparation included). Peak memory of the cold raw
path is measured separately with tracemalloc and divided by the in-memory size of both frames.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import tracemalloc
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from driftloop.monitor.drift import DriftConfig, Reference, compare_frame, infer_specs
from driftloop.monitor.profiles.layout import ProfileLayout
from driftloop.monitor.profiles.window import profile_drift

NUMERICAL, CATEGORICAL = 20, 5
CATEGORIES = np.array([f"cat_{i:02d}" for i in range(12)])


def make_data(n: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference and current frames; features num_00..04 and cat_0 drift."""
    rng = np.random.default_rng(seed)

    def frame(drift: bool) -> pd.DataFrame:
        data: dict[str, Any] = {}
        for i in range(NUMERICAL):
            shift = 0.4 if drift and i < 5 else 0.0
            data[f"num_{i:02d}"] = rng.normal(10 + i + shift, 1 + i / 10, n)
        for i in range(CATEGORICAL):
            weights = np.linspace(1, 2, CATEGORIES.size)
            if drift and i == 0:
                weights = weights[::-1]
            data[f"cat_{i}"] = CATEGORIES[rng.choice(CATEGORIES.size, n, p=weights / weights.sum())]
        return pd.DataFrame(data)

    return frame(False), frame(True)


REPEAT = 1


def timed(func: Callable[[], Any]) -> tuple[float, Any]:
    """Best wall-clock time of ``REPEAT`` runs (the machine is shared; the minimum is the signal)."""
    best, result = float("inf"), None
    for _ in range(REPEAT):
        gc.collect()
        start = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - start)
    return best, result


def driftloop_raw(ref: pd.DataFrame, cur: pd.DataFrame, workers: int = 1) -> Any:
    return compare_frame(Reference.from_frame(ref), cur, DriftConfig(), workers=workers)


def scipy_loop(ref: pd.DataFrame, cur: pd.DataFrame) -> dict[str, float]:
    from scipy import stats

    out = {}
    for spec in infer_specs(ref):
        a, b = ref[spec.name], cur[spec.name]
        if spec.kind.value == "numerical":
            out[spec.name] = float(stats.ks_2samp(a.dropna(), b.dropna(), method="asymp").statistic)
        else:
            table = pd.concat([a.value_counts(), b.value_counts()], axis=1).fillna(0).T
            out[spec.name] = float(stats.chi2_contingency(table.to_numpy()).statistic)
    return out


def evidently(ref: pd.DataFrame, cur: pd.DataFrame, forced: bool) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset

        specs = infer_specs(ref)
        num = [s.name for s in specs if s.kind.value == "numerical"]
        cat = [s.name for s in specs if s.kind.value == "categorical"]
        definition = DataDefinition(numerical_columns=num, categorical_columns=cat)
        preset = (
            DataDriftPreset(per_column_method={**dict.fromkeys(num, "ks"), **dict.fromkeys(cat, "chisquare")})
            if forced
            else DataDriftPreset()
        )
        return Report([preset]).run(
            Dataset.from_pandas(cur, data_definition=definition),
            Dataset.from_pandas(ref, data_definition=definition),
        )


def online(reference: Reference, cur: pd.DataFrame) -> dict[str, Any]:
    """Time drift from profiles for windows of 1 minute, 1 day and 30 days of buckets.

    A window is summed from stored buckets (minute, hour and day rows): a minute is 1 row, a day
    1 row, 30 days at most 30 + 46 + 118 = 194 rows; the same total counts are split over them.
    """
    layout = ProfileLayout([reference.features[s.name] for s in reference.specs])
    total = layout.count_frame(cur)
    result: dict[str, Any] = {}
    for label, rows in (("1 minute", 1), ("1 day", 1), ("30 days", 194)):
        buckets = np.tile(total / rows, (rows, 1))
        times = []
        for _ in range(5):
            start = time.perf_counter()
            window = buckets.sum(axis=0)
            report = profile_drift(layout, window, DriftConfig())
            times.append(time.perf_counter() - start)
        result[label] = min(times)
    result["report"] = report
    return result


def memory_peak(ref: pd.DataFrame, cur: pd.DataFrame) -> int:
    gc.collect()
    tracemalloc.start()
    driftloop_raw(ref, cur)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def run(n: int, skip_evidently: bool, workers: int) -> dict[str, Any]:
    ref, cur = make_data(n)
    data_bytes = int(ref.memory_usage(deep=True).sum() + cur.memory_usage(deep=True).sum())
    numeric_bytes = int(ref.select_dtypes("number").memory_usage().sum() * 2)
    row: dict[str, Any] = {"rows": n, "data_bytes": data_bytes}
    row["driftloop_cold_s"], _ = timed(lambda: driftloop_raw(ref, cur))
    reference = Reference.from_frame(ref)
    warm_s, report = timed(lambda: compare_frame(reference, cur, DriftConfig()))
    row["driftloop_warm_s"] = warm_s
    row["driftloop_threads_s"], _ = timed(lambda: driftloop_raw(ref, cur, workers))
    row["drifted"] = sorted(f.name for f in report.features if f.drifted)
    peak = memory_peak(ref, cur)
    row["peak_bytes"] = peak
    row["peak_over_data"] = peak / data_bytes
    row["peak_over_numeric_data"] = peak / numeric_bytes
    on = online(reference, cur)
    row["online_s"] = {k: v for k, v in on.items() if k != "report"}
    binned = {f.name: f.statistic for f in on["report"].features if f.kind.value == "numerical"}
    row["online_max_ks_gap"] = max(
        abs(binned[f.name] - f.statistic) for f in report.features if f.name in binned
    )
    row["online_drifted"] = sorted(f.name for f in on["report"].features if f.drifted)
    row["scipy_s"], stats = timed(lambda: scipy_loop(ref, cur))
    row["max_ks_diff_vs_scipy"] = max(
        abs(stats[f.name] - f.statistic) for f in report.features if f.kind.value == "numerical"
    )
    if not skip_evidently:
        row["evidently_default_s"], _ = timed(lambda: evidently(ref, cur, forced=False))
        row["evidently_forced_s"], _ = timed(lambda: evidently(ref, cur, forced=True))
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--skip-evidently", action="store_true")
    parser.add_argument("--workers", type=int, default=2, help="threads for the threaded run")
    parser.add_argument("--repeat", type=int, default=1, help="runs per contender (best kept)")
    parser.add_argument("--json", dest="json_path", help="also write the results here")
    args = parser.parse_args(argv)
    global REPEAT
    REPEAT = args.repeat
    results = []
    for n in args.sizes:
        row = run(n, args.skip_evidently, args.workers)
        results.append(row)
        cold = row["driftloop_cold_s"]
        print(f"\n== {n:,} rows per window x 25 features ({row['data_bytes'] / 1e6:.0f} MB of data)")
        print(f"driftloop raw, cold (reference prepared)  {cold:8.3f} s")
        print(f"driftloop raw, warm (reference cached)    {row['driftloop_warm_s']:8.3f} s")
        print(f"driftloop raw, cold, {args.workers} threads            {row['driftloop_threads_s']:8.3f} s")
        for key, label in (
            ("scipy_s", "plain scipy loop (KS + chi2)"),
            ("evidently_default_s", "Evidently DataDriftPreset (defaults)"),
            ("evidently_forced_s", "Evidently DataDriftPreset (KS/chi2)"),
        ):
            if key in row:
                print(f"{label:42s}{row[key]:8.3f} s   {row[key] / cold:7.1f}x slower than driftloop")
        for label, seconds in row["online_s"].items():
            print(f"online from profiles, {label:20s}{seconds * 1000:8.2f} ms")
        print(f"peak memory {row['peak_bytes'] / 1e6:.0f} MB = {row['peak_over_data']:.2f}x the data")
        print(f"KS statistic vs scipy: max |diff| {row['max_ks_diff_vs_scipy']:.1e}; "
              f"profiles vs raw: max |dKS| {row['online_max_ks_gap']:.4f}")
        print(f"drifted (raw):      {row['drifted']}")
        print(f"drifted (profiles): {row['online_drifted']}")
        sys.stdout.flush()
    if args.json_path:
        with open(args.json_path, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
