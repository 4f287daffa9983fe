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
REGRESSION = ("mae", "rmse")

NANNYML_RUNNER = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import pandas as pd
import nannyml as nml

task, folder, window = sys.argv[1], sys.argv[2], int(sys.argv[3])
reference = pd.read_parquet(f"{folder}/reference.parquet")
analysis = pd.read_parquet(f"{folder}/analysis.parquet")
features = [c for c in reference.columns if c.startswith("f")]
start = time.perf_counter()
if task == "classification":
    metrics = ["accuracy", "f1", "roc_auc"]
    estimator = nml.CBPE(
        y_pred_proba="score", y_pred="prediction", y_true="label", metrics=metrics,
        problem_type="classification_binary", chunk_size=window,
    )
else:
    metrics = ["mae", "rmse"]
    estimator = nml.DLE(
        feature_column_names=features, y_pred="prediction", y_true="label", metrics=metrics,
        chunk_size=window,
    )
estimator.fit(reference)
result = estimator.estimate(analysis).to_df()
seconds = time.perf_counter() - start
out = {m: result[(m, "value")].tolist() for m in metrics}
print(json.dumps({"seconds": seconds, "estimates": out}))
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


def driftloop_run(task: str, case: dict[str, Any]) -> dict[str, Any]:
    reference, windows = case["reference"], case["windows"]
    start = time.perf_counter()
    estimates: dict[str, list[float]] = {}
    realized: dict[str, list[float]] = {}
    covered: dict[str, list[bool]] = {}
    if task == "classification":
        estimator: Any = ClassificationEstimator.fit(
            reference[["score"]].to_numpy(), reference["label"].to_numpy()
        )
    else:
        features = [c for c in reference.columns if c.startswith("f")]
        estimator = RegressionEstimator.fit(
            reference[features], reference["prediction"].to_numpy(), reference["label"].to_numpy()
        )
    results = []
    for window in windows:
        if task == "classification":
            result = estimator.estimate(
                window[["score"]].to_numpy(), window["prediction"].to_numpy()
            )
        else:
            result = estimator.estimate(window[features], window["prediction"].to_numpy())
        results.append(result)
    seconds = time.perf_counter() - start
    metrics = CLASSIFICATION if task == "classification" else REGRESSION
    for window, result in zip(windows, results, strict=True):
        truth = realized_metrics(task, window)
        for m in metrics:
            estimates.setdefault(m, []).append(result.metrics[m].estimate)
            realized.setdefault(m, []).append(truth[m])
            covered.setdefault(m, []).append(result.metrics[m].covers(truth[m]))
    return {"seconds": seconds, "estimates": estimates, "realized": realized, "covered": covered}


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


def nannyml_run(python: Path, task: str, case: dict[str, Any]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        case["reference"].to_parquet(f"{folder}/reference.parquet")
        pd.concat(case["windows"], ignore_index=True).to_parquet(f"{folder}/analysis.parquet")
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        done = subprocess.run(
            [str(python), "-c", NANNYML_RUNNER, task, folder, str(WINDOW)],
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
    args = parser.parse_args()
    python = ensure_nannyml()
    print(f"load average before: {os.getloadavg()[0]:.1f} (two cores)")
    summary: dict[str, Any] = {}
    for task, make in (("classification", classification_case), ("regression", regression_case)):
        case = make(args.windows, args.seed)
        ours = driftloop_run(task, case)
        theirs = nannyml_run(python, task, case)
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
        speed = theirs["seconds"] / ours["seconds"]
        print(
            f"time: Driftloop {ours['seconds']:.2f} s, NannyML {theirs['seconds']:.2f} s "
            f"-> {speed:.1f}x faster"
        )
        summary[task] = {
            "errors": rows,
            "driftloop_seconds": ours["seconds"],
            "nannyml_seconds": theirs["seconds"],
            "speedup": speed,
        }
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
