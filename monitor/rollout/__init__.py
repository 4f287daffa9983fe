"""Champion vs challenger: always-valid comparison, progressive delivery, promotion, rollback.

:func:`start_rollout` starts a rollout of a new challenger; the periodic job
(:func:`evaluate_rollouts`) walks it through shadow and canary steps to promotion or rollback;
:func:`install` plugs the endpoints (routing policy, gate, rollout), the collector and the job
into the monitor. The statistics are pure functions over NumPy arrays
(:mod:`~driftloop.monitor.rollout.sequences`, :mod:`~driftloop.monitor.rollout.srm`) and the
decision rule (:func:`decide`) is shared with the simulation (:func:`simulate`).
"""

from typing import TYPE_CHECKING

from driftloop._lazy import lazy_exports

if TYPE_CHECKING:
    from driftloop.monitor.rollout.component import evaluate_rollouts, install
    from driftloop.monitor.rollout.decide import Action, Evidence, Reason, Step, decide, plan
    from driftloop.monitor.rollout.routing import policy_json, read_policy, write_policy
    from driftloop.monitor.rollout.sequences import (
        Interval,
        Moments,
        mixture_halfwidth,
        paired_sequence,
        single_sequence,
        unpaired_sequence,
    )
    from driftloop.monitor.rollout.service import (
        RolloutConflictError,
        current_rollout,
        evaluate,
        manual,
        start_rollout,
    )
    from driftloop.monitor.rollout.simulation import Outcome, Scenario, simulate
    from driftloop.monitor.rollout.srm import srm_log_bayes_factor, srm_p_value

__all__ = [
    "Action",
    "Evidence",
    "Interval",
    "Moments",
    "Outcome",
    "Reason",
    "RolloutConflictError",
    "Scenario",
    "Step",
    "current_rollout",
    "decide",
    "evaluate",
    "evaluate_rollouts",
    "install",
    "manual",
    "mixture_halfwidth",
    "paired_sequence",
    "plan",
    "policy_json",
    "read_policy",
    "simulate",
    "single_sequence",
    "srm_log_bayes_factor",
    "srm_p_value",
    "start_rollout",
    "unpaired_sequence",
    "write_policy",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "driftloop.monitor.rollout.component": ("evaluate_rollouts", "install"),
        "driftloop.monitor.rollout.decide": (
            "Action",
            "Evidence",
            "Reason",
            "Step",
            "decide",
            "plan",
        ),
        "driftloop.monitor.rollout.routing": ("policy_json", "read_policy", "write_policy"),
        "driftloop.monitor.rollout.sequences": (
            "Interval",
            "Moments",
            "mixture_halfwidth",
            "paired_sequence",
            "single_sequence",
            "unpaired_sequence",
        ),
        "driftloop.monitor.rollout.service": (
            "RolloutConflictError",
            "current_rollout",
            "evaluate",
            "manual",
            "start_rollout",
        ),
        "driftloop.monitor.rollout.simulation": ("Outcome", "Scenario", "simulate"),
        "driftloop.monitor.rollout.srm": ("srm_log_bayes_factor", "srm_p_value"),
    },
)
