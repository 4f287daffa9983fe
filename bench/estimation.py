"""Performance estimation before labels: Driftloop's CBPE and DLE against NannyML's, in one run.

    .venv/bin/python bench/estimation.py            # builds .venv-bench/nannyml on first use
    .venv/bin/python bench/estimation.py --windows 10

Data: scikit-learn's generators (no downloads). Classification: ``make_classification`` (binary,
12 features), a logistic regression trained on 10k rows, a reference of 10k rows with scores and
labels, and windows of 1,000 rows drawn with covariate shift (rows leaning along one feature by a
random amount: the label given the features is unchanged). Regression: ``make_friedman1`` with a
random forest, the same design. Both tools see the same windows; for each, the mean absolute
error of the estimate against the realized metric over the windows, and the time to fit on the
reference and estimate every window (imports excluded; NannyML runs in its own environment,
``.venv-bench/nannyml``, because it is not a dependency of Driftloop).

Timing: each tool fits on the reference and estimates all windows ``--repeat`` times (3) in one
process; the best run counts, for both. Reported per phase (fit, estimate) and in total, as wall
time and as CPU time of the process (the CPU time is steadier on a busy machine). Both run on one
thread: NannyML with ``OMP_NUM_THREADS=1`` and ``OPENBLAS_NUM_THREADS=1``, Driftloop under
``threadpool_limits(1)``. The ratio lines compare like with like: fit + estimate (what the 10x
target is about) and estimate only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification, make_friedman1
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LogisticRegression

from driftloop.monitor.estimation import ClassificationEstimator, RegressionEstimator

ROOT = Path(__file__).resolve().parent.parent
NANNYML_ENV = ROOT / ".venv-bench" / "nannyml"
NANNYML_VERSION = "0.13.1"
WINDOW = 1000
CLASSIFICATION = ("accuracy", "f1", "roc_auc")
OURS = {"f1": "f1:1"}
"""Driftloop's name for a metric where it differs: scikit-learn's ``f1_score`` and NannyML's
binary F1 are the positive class's, Driftloop's ``f1`` is the macro mean over both classes."""
REGRESSION = ("mae", "rmse")

NANNYML_RUNNER = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import pandas as pd
import nannyml as nml

task, folder, window, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
reference = pd.read_parquet(f"{folder}/reference.parquet")
analysis = pd.read_parquet(f"{folder}/analysis.parquet")
features = [c for c in reference.columns if c.startswith("f")]
metrics = ["accuracy", "f1", "roc_auc"] if task == "classification" else ["mae", "rmse"]
runs = []
for _ in range(repeat):
    wall, cpu = time.perf_counter(), time.process_time()
    if task == "classification":
        estimator = nml.CBPE(
            y_pred_proba="score", y_pred="prediction", y_true="label", metrics=metrics,
            problem_type="classification_binary", chunk_size=window,
        )
    else:
        estimator = nml.DLE(
            feature_column_names=features, y_pred="prediction", y_true="label",
            metrics=metrics, chunk_size=window,
        )
    estimator.fit(reference)
    fit_wall, fit_cpu = time.perf_counter() - wall, time.process_time() - cpu
    wall, cpu = time.perf_counter(), time.process_time()
    result = estimator.estimate(analysis).to_df()
    runs.append({"fit": fit_wall, "estimate": time.perf_counter() - wall,
                 "fit_cpu": fit_cpu, "estimate_cpu": time.process_time() - cpu})
out = {m: result[(m, "value")].tolist() for m in metrics}
print(json.dumps({"runs": runs, "estimates": out}))
"""


def ensure_nannyml() -> Path:
    """NannyML's own environment, created on first use (a few minutes)."""
    python = NANNYML_ENV / "bin" / "python"
    if not python.exists():
        print(f"creating {NANNYML_ENV} with nannyml=={NANNYML_VERSION} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(NANNYML_ENV)], check=True)
        subprocess.run(
            # nannyml 0.13.1 imports statsmodels without declaring it
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                f"nannyml=={NANNYML_VERSION}",
                "statsmodels",
            ],
            check=True,
        )
    return python


def shifted_windows(
    x: np.ndarray, pool: np.ndarray, windows: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Windows leaning along feature 0 by a random amount (covariate shift only)."""
    z = (x[pool, 0] - x[pool, 0].mean()) / x[pool, 0].std()
    out = []
    for _ in range(windows):
        weight = np.exp(rng.uniform(-1.0, 1.0) * z)
        out.append(pool[rng.choice(len(pool), WINDOW, replace=False, p=weight / weight.sum())])
    return out


def classification_case(windows: int, seed: int) -> dict[str, Any]:
    x, y = make_classification(
        40_000, n_features=12, n_informative=6, flip_y=0.05, class_sep=0.8, random_state=seed
    )
    rng = np.random.default_rng(seed)
    rows = rng.permutation(len(y))
    train, reference, pool = rows[:10_000], rows[10_000:20_000], rows[20_000:]
    model = LogisticRegression(max_iter=1000).fit(x[train], y[train])
    picks = shifted_windows(x, pool, windows, rng)

    def frame(index: np.ndarray) -> pd.DataFrame:
        out = pd.DataFrame(x[index], columns=[f"f{i}" for i in range(x.shape[1])])
        out["score"] = model.predict_proba(x[index])[:, 1]
        out["prediction"] = model.predict(x[index])
        out["label"] = y[index]
        return out

    return {"reference": frame(reference), "windows": [frame(p) for p in picks]}


def regression_case(windows: int, seed: int) -> dict[str, Any]:
    x, y = make_friedman1(40_000, noise=1.0, random_state=seed)
    rng = np.random.default_rng(seed)
    rows = rng.permutation(len(y))
    train, reference, pool = rows[:10_000], rows[10_000:20_000], rows[20_000:]
    model = RandomForestRegressor(50, min_samples_leaf=5, random_state=seed, n_jobs=1)
    model.fit(x[train], y[train])
    picks = shifted_windows(x, pool, windows, rng)

    def frame(index: np.ndarray) -> pd.DataFrame:
        out = pd.DataFrame(x[index], columns=[f"f{i}" for i in range(x.shape[1])])
        out["prediction"] = model.predict(x[index])
        out["label"] = y[index]
        return out

    return {"reference": frame(reference), "windows": [frame(p) for p in picks]}


def driftloop_run(task: str, case: dict[str, Any], repeat: int) -> dict[str, Any]:
    from threadpoolctl import threadpool_limits

    reference, windows = case["reference"], case["windows"]
    features = [c for c in reference.columns if c.startswith("f")]
    runs = []
    for _ in range(repeat):
        with threadpool_limits(1):
            wall, cpu = time.perf_counter(), time.process_time()
            if task == "classification":
                estimator: Any = ClassificationEstimator.fit(
                    reference[["score"]].to_numpy(), reference["label"].to_numpy()
                )
            else:
                estimator = RegressionEstimator.fit(
                    reference[features],
                    reference["prediction"].to_numpy(),
                    reference["label"].to_numpy(),
                )
            fit_wall, fit_cpu = time.perf_counter() - wall, time.process_time() - cpu
            wall, cpu = time.perf_counter(), time.process_time()
            results = []
            for window in windows:
                if task == "classification":
                    result = estimator.estimate(
                        window[["score"]].to_numpy(), window["prediction"].to_numpy()
                    )
                else:
                    result = estimator.estimate(window[features], window["prediction"].to_numpy())
                results.append(result)
            runs.append(
                {
                    "fit": fit_wall,
                    "estimate": time.perf_counter() - wall,
                    "fit_cpu": fit_cpu,
                    "estimate_cpu": time.process_time() - cpu,
                }
            )
    metrics = CLASSIFICATION if task == "classification" else REGRESSION
    estimates: dict[str, list[float]] = {}
    realized: dict[str, list[float]] = {}
    covered: dict[str, list[bool]] = {}
    for window, result in zip(windows, results, strict=True):
        truth = realized_metrics(task, window)
        for m in metrics:
            ours = result.metrics[OURS.get(m, m)]
            estimates.setdefault(m, []).append(ours.estimate)
            realized.setdefault(m, []).append(truth[m])
            covered.setdefault(m, []).append(ours.covers(truth[m]))
    return {"runs": runs, "estimates": estimates, "realized": realized, "covered": covered}


def best(runs: list[dict[str, float]]) -> dict[str, float]:
    """The fastest run (by wall time of fit + estimate), with its totals."""
    run = min(runs, key=lambda r: r["fit"] + r["estimate"])
    return {
        **run,
        "total": run["fit"] + run["estimate"],
        "total_cpu": run["fit_cpu"] + run["estimate_cpu"],
    }


def realized_metrics(task: str, window: pd.DataFrame) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    y, p = window["label"].to_numpy(), window["prediction"].to_numpy()
    if task == "classification":
        return {
            "accuracy": accuracy_score(y, p),
            "f1": f1_score(y, p),
            "roc_auc": roc_auc_score(y, window["score"]),
        }
    error = y - p
    return {"mae": float(np.abs(error).mean()), "rmse": float(np.sqrt((error**2).mean()))}


def nannyml_run(python: Path, task: str, case: dict[str, Any], repeat: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        case["reference"].to_parquet(f"{folder}/reference.parquet")
        pd.concat(case["windows"], ignore_index=True).to_parquet(f"{folder}/analysis.parquet")
        threads = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
        env = {**os.environ, **dict.fromkeys(threads, "1")}
        done = subprocess.run(
            [str(python), "-c", NANNYML_RUNNER, task, folder, str(WINDOW), str(repeat)],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--windows", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="runs per tool; the best counts")
    args = parser.parse_args()
    python = ensure_nannyml()
    print(f"load average before: {os.getloadavg()[0]:.1f} (two cores)")
    summary: dict[str, Any] = {}
    for task, make in (("classification", classification_case), ("regression", regression_case)):
        case = make(args.windows, args.seed)
        ours = driftloop_run(task, case, args.repeat)
        theirs = nannyml_run(python, task, case, args.repeat)
        print(f"\n{task}: {args.windows} windows of {WINDOW} rows, reference 10,000 rows")
        print(f"{'metric':<10}{'Driftloop MAE':>15}{'NannyML MAE':>14}{'covered':>9}")
        rows = {}
        for m, truth in ours["realized"].items():
            err_ours = float(np.mean(np.abs(np.array(ours["estimates"][m]) - truth)))
            theirs_values = np.array(theirs["estimates"][m][: len(truth)], dtype=float)
            err_theirs = float(np.mean(np.abs(theirs_values - truth)))
            cover = float(np.mean(ours["covered"][m]))
            rows[m] = {"driftloop": err_ours, "nannyml": err_theirs, "coverage": cover}
            print(f"{m:<10}{err_ours:>15.4f}{err_theirs:>14.4f}{cover:>9.2f}")
        a, b = best(ours["runs"]), best(theirs["runs"])
        print(f"time, best of {args.repeat} (ms)     {'Driftloop':>10}{'NannyML':>10}{'ratio':>8}")
        ratios = {}
        for label, key in (
            ("fit", "fit"),
            ("estimate (all windows)", "estimate"),
            ("fit + estimate", "total"),
            ("fit + estimate, CPU", "total_cpu"),
            ("estimate only, CPU", "estimate_cpu"),
        ):
            ratios[key] = b[key] / a[key]
            print(f"  {label:<26}{1e3 * a[key]:>10.1f}{1e3 * b[key]:>10.1f}{ratios[key]:>7.1f}x")
        print(
            f"RATIO {task}: fit + estimate {ratios['total']:.1f}x faster (wall), "
            f"{ratios['total_cpu']:.1f}x (CPU); estimate only {ratios['estimate']:.1f}x (wall), "
            f"{ratios['estimate_cpu']:.1f}x (CPU); target 10x"
        )
        summary[task] = {"errors": rows, "driftloop": a, "nannyml": b, "ratios": ratios}
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
