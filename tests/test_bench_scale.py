"""``bench/scale.py --quick`` runs to the end on a tiny store and reports every figure.

A smoke test of the script only: it checks that both layouts were built (A partitioned by day, B
at 0010), that each operation was measured on both and agreed on the rows, and that the scratch
databases are gone afterwards. It never looks at a timing (the machine is shared).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_scale_bench_quick_run_reports_every_operation_on_both_layouts(pg_admin: Engine) -> None:
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "scale.py"),
            "--quick",
            "--records",
            "4000",
            "--days",
            "7",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout)

    assert report["config"]["records"] == 4000
    assert report["sizes"]["A"]["records"] == report["sizes"]["B"]["records"] == 4000
    assert report["layout"]["A"]["partitioned"] is True
    assert report["layout"]["A"]["partitions"]["records"] >= 8  # 7 days and today, at least
    assert report["layout"]["B"]["revision"] == ["0010"]
    assert report["layout"]["B"]["partitioned"] is False

    summary = report["summary"]
    expected = {
        "ingest_records_per_s",
        "label_join_s",
        "drop_day_s records",
        "drop_day_s drift_profiles",
        "drop_day_s drift_ood_records",
    }
    expected |= {
        f"{kind} {w}"
        for kind in ("window_drift_s", "drift_job_s")
        for w in ("60 min (default)", "1 day", "30 days")
    }
    assert expected <= set(summary)
    for name in expected:
        row = summary[name]
        assert row["A"] > 0, name
        assert row["B"] > 0, name
        assert {"speedup", "target", "A_met", "B_met"} <= set(row), name
    assert isinstance(report["targets_met"], bool)

    # The same rows on both layouts: every label joined, the same day removed.
    assert report["raw"]["join_rows"]["A"] == report["raw"]["join_rows"]["B"] > 0
    assert summary["label_join_s"]["rows"] == report["load"]["labels"] == 400
    for window in ("60 min (default)", "1 day", "30 days"):
        summed = report["raw"]["window"][f"{window} records"]
        assert summed["A"] == summed["B"] > 0, window  # the same profiles read on both layouts
    drop = report["raw"]["drop"]
    assert drop["A"]["records"]["how"].startswith("DETACH + DROP records_p")
    assert drop["B"]["records"]["how"] == "DELETE"
    assert drop["A"]["records"]["rows"] == drop["B"]["records"]["rows"] > 0
    assert report["load_average"]["before"]
    assert report["load_average"]["after"]

    with pg_admin.connect() as connection:
        left = connection.scalars(
            text("SELECT datname FROM pg_database WHERE datname = ANY(:names)"),
            {"names": list(report["databases"].values())},
        ).all()
    assert left == []
