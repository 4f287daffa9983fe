"""The rollout state machine's decision rule, as a pure function of the evidence.

A rollout walks a plan of steps: an optional shadow step (the challenger answers a copy of every
request; compared *paired*), then canary or A/B steps with increasing challenger share (compared
*unpaired*). At every evaluation the rule, in this order:

1. rolls back when a guardrail fails (5xx share or p99 latency shown worse than tolerated), when the
   split does not follow the policy (sequential SRM test), or when the primary metric's confidence
   sequence lies wholly below ``-margin`` (the challenger is shown worse than the margin);
2. once the step has its minimum labeled samples and duration, advances to the next step, or, on
   the last step, promotes when the sequence lies wholly above ``-margin`` (non-inferiority shown);
   the step that sends *all* traffic to the challenger is entered only once non-inferiority is
   shown too, so users meet an unproven model only at a partial share;
   before advancing, and only when ``estimated_rollback`` is on, rolls back when the *estimated*
   difference (performance estimation from the models' scores, before labels arrive) lies wholly
   below ``-estimated_rollback_margin``; an estimate never advances or promotes;
3. past a deadline (``max_step_seconds`` on one step, ``max_rollout_seconds`` in all), takes
   ``deadline_action`` (default: roll back, reason ``deadline``), so an inconclusive challenger
   does not keep its share of traffic forever;
4. otherwise holds.

The bounds come from one stratified sequence over the whole rollout
(:mod:`~driftloop.monitor.rollout.strata`: the shadow step's paired differences and every canary
step's and time bucket's unpaired difference, combined), valid at ``alpha`` uniformly over time;
the decision reads its running intersection over time, which never widens.

The difference is oriented so that positive means "the challenger is better" (accuracy difference,
or champion loss minus challenger loss). The chance that a rollout ends in a wrong verdict on the
primary metric stays under ``alpha`` however often it is evaluated.

:func:`decide` works on NumPy arrays (one entry per simulated rollout) so the simulation in
:mod:`driftloop.monitor.rollout.simulation` runs exactly the rule the service runs.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np

from driftloop.errors import ValidationError
from driftloop.settings import RolloutSettings

__all__ = ["Action", "Evidence", "Reason", "Step", "check_config", "decide", "phase_alpha", "plan"]


class Action(IntEnum):
    """What one evaluation decides."""

    hold = 0
    advance = 1
    promote = 2
    rollback = 3


class Reason(IntEnum):
    """Why; the names are stored with every decision."""

    waiting = 0
    step_complete = 1
    non_inferior = 2
    inferior = 3
    error_rate = 4
    latency = 5
    sample_ratio_mismatch = 6
    deadline = 7
    estimated_inferior = 8


@dataclass(frozen=True)
class Step:
    """One step of the plan: the routing mode and the challenger's share of answers."""

    mode: str  # shadow | canary | ab
    weight: float

    @property
    def paired(self) -> bool:
        """Shadow steps compare both models on the same requests."""
        return self.mode == "shadow"


def check_config(config: RolloutSettings) -> None:
    """Refuse plans the state machine cannot walk, naming the bad value."""
    steps = config.steps
    if any(not 0.0 < w <= 1.0 for w in steps):
        raise ValidationError(f"rollout steps must be within (0, 1], got {steps!r}")
    if any(b <= a for a, b in itertools.pairwise(steps)):
        raise ValidationError(f"rollout steps must increase, got {steps!r}")
    if steps[-1] != 1.0:
        raise ValidationError(f"the last rollout step must be 1.0 (all traffic), got {steps!r}")
    if config.split == "ab" and config.sticky_key is None:
        raise ValidationError("an ab rollout needs sticky_key (header:NAME or json:FIELD)")


def plan(config: RolloutSettings) -> list[Step]:
    """The steps a rollout walks, in order."""
    steps = [Step("shadow", 0.0)] if config.shadow else []
    return steps + [Step(config.split, float(w)) for w in config.steps]


def phase_alpha(config: RolloutSettings, *, split: bool = False) -> float:
    """The error budget of the primary comparison: all of ``alpha`` for the one stratified
    sequence over the whole rollout; ``split=True`` is the earlier design's budget, halved between
    separate shadow and canary sequences (kept for the simulation's comparison)."""
    return config.alpha / (2.0 if config.shadow and split else 1.0)


@dataclass(frozen=True)
class Evidence:
    """What one evaluation sees; every field may be an array over simulated rollouts.

    ``lower``/``upper`` bound the primary difference (positive: challenger better);
    ``n_champion``/``n_challenger`` are labeled rows in the phase; ``step_samples`` the labeled
    challenger rows since the step began; ``error_lower`` the lower bound of the 5xx share
    increase; ``latency_lower`` the lower bound of the challenger's share of requests slower than
    the tolerated quantile, ``latency_tolerated`` the share allowed beyond it (0.01 for p99);
    ``srm_log_e`` the split test's running log e-value; ``rollout_seconds`` the rollout's age;
    ``estimated_upper`` the upper bound of the estimated difference (no labels; ``inf`` when
    there is none or its arms have fewer than ``min_compare_samples`` rows).
    """

    lower: Any
    upper: Any
    n_champion: Any
    n_challenger: Any
    step_samples: Any
    step_seconds: Any
    error_lower: Any = -np.inf
    latency_lower: Any = -np.inf
    srm_log_e: Any = 0.0
    latency_tolerated: Any = 0.01
    rollout_seconds: Any = 0.0
    estimated_upper: Any = np.inf


def _late(config: RolloutSettings, e: Evidence) -> Any:
    """Past ``max_step_seconds`` on this step or ``max_rollout_seconds`` in all."""
    late: Any = np.asarray(False)
    if config.max_step_seconds is not None:
        late = late | (np.asarray(e.step_seconds) >= config.max_step_seconds)
    if config.max_rollout_seconds is not None:
        late = late | (np.asarray(e.rollout_seconds) >= config.max_rollout_seconds)
    return late


def decide(
    config: RolloutSettings, step: Any, last_step: int, evidence: Evidence
) -> tuple[Any, Any]:
    """Actions and reasons (``Action``/``Reason`` codes, arrays) for rollouts at ``step``."""
    e = evidence
    step = np.asarray(step)
    shape = np.broadcast(step, np.asarray(e.lower), np.asarray(e.step_samples)).shape
    action = np.full(shape, Action.hold, dtype=np.int8)
    reason = np.full(shape, Reason.waiting, dtype=np.int8)

    enough = (np.asarray(e.n_champion) >= config.min_compare_samples) & (
        np.asarray(e.n_challenger) >= config.min_compare_samples
    )
    step_done = (np.asarray(e.step_samples) >= config.min_step_samples) & (
        np.asarray(e.step_seconds) >= config.min_step_seconds
    )
    last = step >= last_step
    non_inferior = enough & (np.asarray(e.lower) > -config.margin)
    rules = [
        (np.asarray(e.error_lower) > config.max_error_rate_increase, Action.rollback, "error"),
        (np.asarray(e.latency_lower) > np.asarray(e.latency_tolerated), Action.rollback, "latency"),
        (np.asarray(e.srm_log_e) >= np.log(1.0 / config.srm_alpha), Action.rollback, "srm"),
        (enough & (np.asarray(e.upper) < -config.margin), Action.rollback, "inferior"),
        (step_done & last & non_inferior, Action.promote, "non_inferior"),
        # Labels decide first; off by default, a large estimated degradation may end it early.
        (
            np.asarray(config.estimated_rollback)
            & (np.asarray(e.estimated_upper) < -config.estimated_rollback_margin),
            Action.rollback,
            "estimated",
        ),
        # All traffic goes to the challenger only once it is shown not to be worse.
        (step_done & ~last & ((step + 1 < last_step) | non_inferior), Action.advance, "step"),
        (_late(config, e), Action[config.deadline_action], "deadline"),
    ]
    reasons = {
        "error": Reason.error_rate,
        "latency": Reason.latency,
        "srm": Reason.sample_ratio_mismatch,
        "inferior": Reason.inferior,
        "non_inferior": Reason.non_inferior,
        "step": Reason.step_complete,
        "deadline": Reason.deadline,
        "estimated": Reason.estimated_inferior,
    }
    undecided = np.ones(shape, dtype=bool)
    for condition, act, why in rules:
        hit = undecided & np.broadcast_to(condition, shape)
        action[hit] = act
        reason[hit] = reasons[why]
        undecided &= ~hit
    return action, reason
