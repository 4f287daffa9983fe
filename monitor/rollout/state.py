"""Typed rollout state: the progress carried between evaluations and the guardrails' findings.

The store keeps ``progress`` as JSON (one column); :class:`Progress` is the one frozen type that
reads and writes it, so no module changes it in place. A guardrail returns a :class:`Guardrail`:
the JSON record shown in the evidence, and the bound the decision reads.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

__all__ = ["Guardrail", "Progress"]


@dataclass(frozen=True)
class Progress:
    """What one evaluation hands to the next: the running bounds of the primary difference and
    the split check's log e-values (of the steps done, the current step, and the best so far)."""

    lower: float | None = None
    upper: float | None = None
    srm_log_e_done: float = 0.0
    srm_log_e_step: float = 0.0
    srm_log_e_max: float = 0.0

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Progress:
        """Read the stored JSON (unknown keys of earlier versions are ignored)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (data or {}).items() if k in known and v is not None})

    def as_json(self) -> dict[str, Any]:
        """The JSON the store keeps."""
        return asdict(self)

    def update(self, **changes: Any) -> Progress:
        """A copy with ``changes``."""
        return replace(self, **changes)

    def step_done(self) -> Progress:
        """Leaving a step: its split evidence joins that of the steps done."""
        return replace(
            self, srm_log_e_done=self.srm_log_e_done + self.srm_log_e_step, srm_log_e_step=0.0
        )


@dataclass(frozen=True)
class Guardrail:
    """One guardrail's finding: ``record`` for the evidence, ``bound`` for :func:`decide` (the
    lower confidence bound of the harm), ``tolerated`` the harm allowed."""

    record: dict[str, Any]
    bound: float
    tolerated: float = 0.0

    @property
    def ok(self) -> bool:
        """Not shown failing."""
        return bool(self.record.get("ok", True))
