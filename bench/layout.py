"""Layout inference cost: turning a captured request into records with the layout inferred per
route (issue 23), against the peer, a layout registered beforehand (what every request paid
before), measured in the same run on the same requests.

This is work of the shipper's thread, off the request path; the request path only appends the
exchange to the capture log. Each case is timed as the best of ``--rounds`` runs of ``--number``
conversions (``timeit``), after one warm-up conversion that fills the per-route cache.

    .venv/bin/python bench/layout.py [--number 20000] [--rounds 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import timeit
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry

from driftloop.contract import Layout, Prediction
from driftloop.serving.capture import Captured, RecordShape
from driftloop.serving.metrics import ShippingMetrics
from driftloop.serving.records import RecordMaker

ROW = {"alcohol": 13.2, "malic_acid": 1.78, "ash": 2.14, "colour": "red"}
NOW = datetime(2026, 12, 7, tzinfo=UTC)

CASES: dict[str, tuple[Any, Any, Layout]] = {
    "inputs, 2 rows": ({"inputs": [ROW, ROW]}, [{"prediction": 6.7}] * 2, Layout()),
    "DataFrame argument, 2 rows": ({"df": [ROW, ROW]}, [6.7, 6.1], Layout(input_path="df")),
    "typed arguments, 1 row": (ROW, {"prediction": "good"}, Layout(input_path="")),
    "OIP v2 tensor [2, 4]": (
        {"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": [1.0] * 8}]},
        {"outputs": [{"name": "y", "shape": [2], "datatype": "INT64", "data": [0, 1]}]},
        Layout(input_path="inputs", protocol="oip_v2"),
    ),
}


def item(body: Any, response: Any) -> Captured:
    return Captured(
        "m", "v1", "champion", "rid", NOW, json.dumps(body).encode(),
        json.dumps(response).encode(), 200, 1.0, b"", "/predict",
    )  # fmt: skip


def best_us(fn: Any, number: int, rounds: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=rounds)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = []
    for name, (body, response, layout) in CASES.items():
        captured = item(body, response)
        inferred = RecordMaker("m", ShippingMetrics(CollectorRegistry()))
        registered = RecordMaker(
            "m", ShippingMetrics(CollectorRegistry()), RecordShape(layout, Prediction())
        )
        assert inferred.records(captured) == registered.records(captured)  # same records
        t_inferred = best_us(lambda c=captured, m=inferred: m.records(c), args.number, args.rounds)
        t_registered = best_us(
            lambda c=captured, m=registered: m.records(c), args.number, args.rounds
        )
        results.append(
            {
                "case": name,
                "inferred_us": round(t_inferred, 2),
                "registered_us": round(t_registered, 2),
                "ratio": round(t_inferred / t_registered, 3),
            }
        )
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'case':30} {'inferred µs':>12} {'registered µs':>14} {'ratio':>6}")
    for r in results:
        print(
            f"{r['case']:30} {r['inferred_us']:12.2f} {r['registered_us']:14.2f} {r['ratio']:6.3f}"
        )


if __name__ == "__main__":
    main()
