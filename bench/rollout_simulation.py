"""Rollout decisions simulated 500 times per scenario, evaluated every minute as the service does.

Driftloop's rule (always-valid confidence sequences, ``driftloop.monitor.rollout``) is run next to
its peer: the same state machine with the fixed-sample 95 % interval re-checked every minute — what
a static threshold in Flagger or Argo Rollouts amounts to. Prints, per scenario and rule, the share
of rollouts promoted and rolled back and the median number of labeled rows (both arms) consumed
before the decision.

    .venv/bin/python bench/rollout_simulation.py [--runs 500] [--seed 0] [--skip-conditions]

Then the production conditions of issue 16 (accuracy drifting over time, a daily cycle,
informative label delay, heavy-tailed latency): the monitor's stratified comparison next to the
earlier design (canary rows pooled across steps), with the median time to decision.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from driftloop.monitor.rollout import Action, Scenario, simulate
from driftloop.monitor.rollout.simulation import simulate_latency, simulate_sticky
from driftloop.settings import RolloutSettings

CHAMPION = 0.85


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-conditions", action="store_true", help="Stationary rows only.")
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
    if not args.skip_conditions:
        conditions(args.runs, args.seed)


def conditions(runs: int, seed: int) -> None:
    """Production conditions: the monitor's stratified comparison next to the earlier pooled one
    (canary rows pooled across steps, alpha halved by shadow), on the same seeded worlds."""
    defaults = RolloutSettings()
    zero = defaults.model_copy(update={"margin": 0.0})
    horizon = {"label_horizon_seconds": 3 * 3600.0}
    worlds = [
        ("A/A stationary, margin 0", zero, Scenario()),
        (
            "A/A, both 0.90 -> 0.80 in 2 h, m 0",
            zero,
            Scenario(champion_accuracy=0.90, challenger_accuracy=0.90, trend_per_hour=-0.05),
        ),
        (
            "1 margin worse, both rising",
            defaults,
            Scenario(champion_accuracy=0.80, challenger_accuracy=0.79, trend_per_hour=0.05),
        ),
        ("A/A, daily +-5 points, m 0", zero, Scenario(cycle_amplitude=0.05)),
        (
            "A/A, errors labeled 3 min, right 60",
            zero.model_copy(update=horizon),
            Scenario(error_label_minutes=3, correct_label_minutes=60),
        ),
        ("+2 points", defaults, Scenario(challenger_accuracy=CHAMPION + 0.02)),
        ("-2 points", defaults, Scenario(challenger_accuracy=CHAMPION - 0.02)),
        (
            "+2 points, labels 3/60 min",
            defaults.model_copy(update=horizon),
            Scenario(
                challenger_accuracy=CHAMPION + 0.02, error_label_minutes=3, correct_label_minutes=60
            ),
        ),
    ]
    print(
        f"\nProduction conditions, {runs} rollouts per row, up to 25 h; the label-delay rows run "
        "the stratified design with label_horizon_seconds = 3 h (the pooled one had no horizon)\n"
    )
    print(
        f"{'world':38} {'design':24} {'promoted':>9} {'rolled back':>12} "
        f"{'median minutes to decision':>27} {'seconds':>8}"
    )
    for name, config, scenario in worlds:
        for label, design in (("stratified (now)", "stratified"), ("pooled (before)", "pooled")):
            run_config = config
            if design == "pooled":
                run_config = config.model_copy(update={"label_horizon_seconds": 0.0})
            start = time.perf_counter()
            out = simulate(run_config, scenario, runs, seed=seed, design=design)
            took = time.perf_counter() - start
            print(
                f"{name:38} {label:24} {out.rate(Action.promote):9.1%} "
                f"{out.rate(Action.rollback):12.1%} {out.median_minutes():27.0f} {took:8.2f}"
            )
    print("\nLatency guardrail, identical heavy-tailed latency on both arms (and 2x slower)")
    print(f"{'mode':8} {'challenger':12} {'rule':26} {'rolled back':>12}")
    for mode in ("shadow", "canary", "ab"):
        for slowdown in (1.0, 2.0):
            for label, rule in (
                ("quantile bound (now)", "quantile"),
                ("exact p99 (before)", "exact_p99"),
            ):
                rate = simulate_latency(
                    defaults, mode, 200, seed=seed, ticks=30, requests_per_tick=100,
                    slowdown=slowdown, rule=rule,
                )  # fmt: skip
                same = "same" if slowdown == 1.0 else f"{slowdown:.0f}x slower"
                print(f"{mode:8} {same:12} {label:26} {rate:12.1%}")
    print("\nSticky A/B, A/A at 50 %, users of lognormal activity (4 h, evaluated every 5 min)")
    print(f"{'users':>7} {'sigma':>6} {'SRM by request':>15} {'SRM by unit':>12} "
          f"{'decided, rows':>14} {'decided, clustered':>19}")  # fmt: skip
    for users, sigma in ((5000, 1.5), (20000, 0.5)):
        sticky = simulate_sticky(defaults, 100, seed=seed, users=users, sigma=sigma)
        print(
            f"{users:7d} {sigma:6.1f} {sticky.srm_by_request:15.1%} {sticky.srm_by_unit:12.1%} "
            f"{sticky.decided_by_row:14.1%} {sticky.decided_by_unit:19.1%}"
        )


if __name__ == "__main__":
    main()
