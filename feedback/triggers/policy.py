"""Retraining policies: when a model's retraining fires, and where the webhook goes.

A model without a stored policy gets the default one: on demand only, with the webhook URL and
secrets from the settings (``DRIFTLOOP_WEBHOOK_URL``, ``DRIFTLOOP_WEBHOOK_SECRET``). Automatic
rules (schedule, new labels, degradation, estimated degradation, drift) are switched on per model
through the API.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from driftloop.errors import ConfigurationError
from driftloop.feedback.webhooks.signing import configured_secrets, decode_secret
from driftloop.settings import Settings
from driftloop.store import Model, RetrainConditionState, RetrainPolicyRow

MAX_SECONDS = 10 * 366 * 86400.0
"""Upper bound of every duration in a policy (ten years)."""


class DegradationRule(BaseModel):
    """Fire when the primary metric is confidently on the wrong side of a threshold.

    ``below``: the interval's upper bound is below it (a score such as accuracy). ``above``: the
    interval's lower bound is above it (a loss such as mae). Exactly one of them.
    """

    model_config = ConfigDict(extra="forbid")

    metric: str | None = Field(
        None, min_length=1, max_length=64, description="Default: the model's primary metric."
    )
    below: float | None = Field(None, allow_inf_nan=False)
    above: float | None = Field(None, allow_inf_nan=False)
    variant: str = Field("champion", pattern=r"^(champion|challenger|shadow)$")
    window_seconds: float | None = Field(
        None, gt=0, le=MAX_SECONDS, description="Only labeled rows this recent (default: all)."
    )

    @model_validator(mode="after")
    def _one_threshold(self) -> DegradationRule:
        if (self.below is None) == (self.above is None):
            raise ValueError(
                "degradation needs exactly one of 'below' (scores) or 'above' (losses)"
            )
        return self


LOSSES = frozenset({"mae", "rmse", "mse"})
"""Estimated metrics where higher is worse; any other (accuracy, f1, roc_auc...) is a score."""


class EstimatedDegradationRule(BaseModel):
    """Fire when the *estimated* metric (before labels arrive) is confidently worse than the one
    realized on the reference by more than ``threshold``.

    Interval-aware: for a score (accuracy, f1, roc_auc, ...) the interval's upper bound is below
    ``reference - threshold``; for a loss (mae, rmse) its lower bound is above
    ``reference + threshold``. Needs the model's estimation (docs/estimation.md): a model that
    cannot be estimated never fires it.
    """

    model_config = ConfigDict(extra="forbid")

    metric: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="An estimated metric (default: accuracy for classifiers, mae for regressors).",
    )
    threshold: float = Field(
        ..., ge=0, allow_inf_nan=False, description="How far past the reference value, absolute."
    )
    variant: str = Field("champion", pattern=r"^(champion|challenger|shadow)$")


class DriftRule(BaseModel):
    """Fire on dataset drift and/or when any of the named features drifts."""

    model_config = ConfigDict(extra="forbid")

    dataset: bool = True
    features: list[str] = Field(default_factory=list, max_length=1000)

    @model_validator(mode="after")
    def _something(self) -> DriftRule:
        if not self.dataset and not self.features:
            raise ValueError("drift needs 'dataset': true or a list of 'features'")
        return self


class SnapshotSpec(BaseModel):
    """Which labeled rows a trigger's dataset snapshot holds."""

    model_config = ConfigDict(extra="forbid")

    window_seconds: float | None = Field(
        None, gt=0, le=MAX_SECONDS, description="Rows this recent (all: None)."
    )
    variant: str | None = Field(None, pattern=r"^(champion|challenger|shadow)$")


class RetrainingPolicy(BaseModel):
    """The retraining policy of one model, as set by ``PUT /v1/models/{name}/retraining``."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="False silences the automatic rules.")
    webhook_url: str | None = Field(
        None, max_length=2000, description="Receiver URL (default DRIFTLOOP_WEBHOOK_URL)."
    )
    webhook_secrets: list[str] | None = Field(
        None,
        max_length=10,
        description="Active whsec_ secrets, all used to sign (default: settings).",
    )
    cooldown_seconds: float | None = Field(
        None, ge=0, le=MAX_SECONDS, description="Quiet time after any trigger (default: settings)."
    )
    debounce_seconds: float = Field(
        0.0, ge=0, le=MAX_SECONDS, description="A degradation or drift must hold this long first."
    )
    schedule: str | None = Field(
        None, max_length=200, description="Cron expression, UTC (e.g. '0 3 * * 1')."
    )
    new_labels: int | None = Field(
        None, gt=0, le=2**31 - 1, description="Fire after this many new labels."
    )
    degradation: DegradationRule | None = None
    estimated_degradation: EstimatedDegradationRule | None = None
    drift: DriftRule | None = None
    snapshot: SnapshotSpec = Field(default_factory=SnapshotSpec)

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            url = httpx.URL(value)
        except (httpx.InvalidURL, ValueError) as exc:
            raise ValueError(f"webhook_url {value!r} is not a URL: {exc}") from exc
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"webhook_url {value!r} must be an http:// or https:// URL")
        return value

    @field_validator("webhook_secrets")
    @classmethod
    def _secrets(cls, value: list[str] | None) -> list[str] | None:
        for secret in value or []:
            try:
                decode_secret(secret)
            except ConfigurationError as exc:
                raise ValueError(str(exc)) from exc
        return value

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None and not croniter.is_valid(value):
            raise ValueError(f"schedule {value!r} is not a valid cron expression")
        return value


def load_policy(session: Session, model: Model) -> tuple[RetrainingPolicy, datetime | None]:
    """The model's policy (default when none is stored) and when it was last set."""
    row = session.scalar(select(RetrainPolicyRow).where(RetrainPolicyRow.model_id == model.id))
    if row is None:
        return RetrainingPolicy(), None
    return RetrainingPolicy.model_validate(row.policy), row.updated_at


def save_policy(
    session: Session, model: Model, policy: RetrainingPolicy, now: datetime
) -> RetrainPolicyRow:
    """Store the policy, replacing the previous one; open incidents and schedules restart."""
    row = session.scalar(select(RetrainPolicyRow).where(RetrainPolicyRow.model_id == model.id))
    if row is None:
        row = RetrainPolicyRow(model_id=model.id, policy={}, updated_at=now)
        session.add(row)
    row.policy = policy.model_dump(mode="json")
    row.updated_at = now
    session.execute(delete(RetrainConditionState).where(RetrainConditionState.model_id == model.id))
    session.flush()
    return row


def webhook_url(policy: RetrainingPolicy, settings: Settings) -> str | None:
    """Where this policy's webhooks go."""
    return policy.webhook_url or settings.webhook_url


def webhook_secrets(policy: RetrainingPolicy, settings: Settings) -> list[str]:
    """The secrets this policy's webhooks are signed with."""
    if policy.webhook_secrets:
        return list(policy.webhook_secrets)
    return configured_secrets(settings)


def cooldown_seconds(policy: RetrainingPolicy, settings: Settings) -> float:
    """The policy's cooldown, or the settings' default."""
    if policy.cooldown_seconds is not None:
        return policy.cooldown_seconds
    return settings.retrain.cooldown_seconds


def describe_policy(
    policy: RetrainingPolicy, settings: Settings, updated_at: datetime | None
) -> dict[str, Any]:
    """The policy as the API shows it: effective values filled in, secrets never shown."""
    out = policy.model_dump(mode="json", exclude={"webhook_secrets"})
    secret_list = policy.webhook_secrets or []
    try:
        defaults = configured_secrets(settings)
    except ConfigurationError:
        defaults = []
    out.update(
        {
            "webhook_url": webhook_url(policy, settings),
            "webhook_url_source": "policy" if policy.webhook_url else "settings",
            "webhook_secrets": len(secret_list) or len(defaults),
            "webhook_secrets_source": "policy" if secret_list else "settings",
            "cooldown_seconds": cooldown_seconds(policy, settings),
            "stored": updated_at is not None,
            "updated_at": None if updated_at is None else updated_at.isoformat(),
        }
    )
    return out
