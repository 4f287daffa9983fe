"""Rollout decisions simulated 500 times per scenario, evaluated every minute as the service does.

Driftloop's rule (always-valid confidence sequences, ``driftloop.monitor.rollout``) is run next to
its peer: the same state machine with the fixed-sample 95 % interval re-checked every minute — what
a static threshold in Flagger or Argo Rollouts amounts to. Prints, per scenario and rule, the share
of rollouts promoted and rolled back and the median number of labeled rows (both arms) consumed
before the decision.

    .venv/bin/python bench/rollout_simulation.py [--runs 500] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from driftloop.monitor.rollout import Action, Scenario, simulate
from driftloop.settings import RolloutSettings

CHAMPION = 0.85


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    defaults = RolloutSettings()
    zero_margin = defaults.model_copy(update={"margin": 0.0})
    scenarios = [
        ("A/A, margin 0", zero_margin, Scenario()),
        ("challenger = margin worse", defaults, Scenario(challenger_accuracy=CHAMPION - 0.01)),
        ("+3 points", defaults, Scenario(challenger_accuracy=CHAMPION + 0.03)),
        ("-3 points", defaults, Scenario(challenger_accuracy=CHAMPION - 0.03)),
        ("split skewed x0.8", defaults, Scenario(split_skew=0.8, max_ticks=600)),
    ]
    print(
        f"{args.runs} rollouts per row; champion accuracy {CHAMPION}; 200 requests/min, half "
        f"labeled; plan shadow -> {defaults.steps}; alpha {defaults.alpha}, margin "
        f"{defaults.margin}; evaluated every minute for up to 25 h\n"
    )
    header = f"{'scenario':28} {'rule':22} {'promoted':>9} {'rolled back':>12} "
    header += f"{'median labeled to decision':>28} {'seconds':>8}"
    print(header)
    for name, config, scenario in scenarios:
        for rule, boundary in (
            ("confidence sequence", "mixture"),
            ("fixed-sample CI (peer)", "fixed"),
        ):
            start = time.perf_counter()
            out = simulate(config, scenario, args.runs, seed=args.seed, boundary=boundary)
            took = time.perf_counter() - start
            decided = out.action != Action.hold
            median = f"{float(np.median(out.labeled[decided])):,.0f}" if decided.any() else "-"
            print(
                f"{name:28} {rule:22} {out.rate(Action.promote):9.1%} "
                f"{out.rate(Action.rollback):12.1%} {median:>28} {took:8.2f}"
            )


if __name__ == "__main__":
    main()
