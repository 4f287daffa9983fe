"""Settings: one pydantic-settings tree, built once at the edge (CLI, app factory) and passed down.

Precedence is flags, then ``DRIFTLOOP_*`` environment variables (nested with ``__``, for example
``DRIFTLOOP_INGEST__MAX_RECORDS=5000``), then the defaults here. Nothing reads the environment at
import time: call :func:`load_settings` or construct :class:`Settings` directly (tests do).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import AliasChoices, BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Scope(StrEnum):
    """What a bearer token may do. ``admin`` implies the others."""

    ingest = "ingest"
    feedback = "feedback"
    admin = "admin"


class IngestSettings(BaseModel):
    """Limits on what one request may carry; over them the monitor answers 413."""

    max_body_bytes: int = Field(16 * 1024 * 1024, gt=0, description="Body size as sent.")
    max_decompressed_bytes: int = Field(
        64 * 1024 * 1024, gt=0, description="Body size after gunzip (guards gzip bombs)."
    )
    max_records: int = Field(10_000, gt=0, description="Records in one batch.")
    max_reference_bytes: int = Field(256 * 1024 * 1024, gt=0, description="Reference upload.")


class DriftOverride(BaseModel):
    """Drift settings of one model; unset fields keep the defaults."""

    model_config = {"extra": "forbid"}

    alpha: float | None = Field(None, gt=0, lt=1)
    materiality: float | None = Field(None, ge=0)
    drifted_share: float | None = Field(None, gt=0, le=1)
    window_minutes: int | None = Field(None, gt=0, le=366 * 24 * 60)


class DriftSettings(BaseModel):
    """Defaults of the drift decision (ARCHITECTURE §5); models and features may override them."""

    alpha: float = Field(0.05, gt=0, lt=1)
    materiality: float = Field(0.1, ge=0)
    drifted_share: float = Field(0.5, gt=0, le=1)
    window_minutes: int = Field(
        60, gt=0, le=366 * 24 * 60, description="Length of the window each evaluation compares."
    )
    ood_margin: float = Field(
        0.5,
        ge=0,
        description="A number is out of distribution beyond the reference range widened by this "
        "share of the range on each side.",
    )
    report_rows: int = Field(5000, gt=0, description="Recent records in a drift report.")
    models: dict[str, DriftOverride] = Field(
        default_factory=dict,
        description="Per-model overrides, as JSON: "
        '{"fraud": {"alpha": 0.01, "window_minutes": 1440}}.',
    )

    def for_model(self, name: str) -> DriftSettings:
        """These settings with the overrides of model ``name`` applied."""
        override = self.models.get(name)
        if override is None:
            return self
        return self.model_copy(update=override.model_dump(exclude_none=True))


class JobSettings(BaseModel):
    """The leader's periodic jobs."""

    enabled: bool = True
    interval_seconds: float = Field(60.0, gt=0, description="How often each model is evaluated.")


class WebhookSettings(BaseModel):
    """Delivery of retraining webhooks from the outbox (ARCHITECTURE §4)."""

    timeout_seconds: float = Field(30.0, gt=0, description="Whole-attempt timeout of one POST.")
    connect_timeout_seconds: float = Field(5.0, gt=0, description="TCP connect timeout.")
    retry_schedule_seconds: list[float] = Field(
        default_factory=lambda: [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0],
        min_length=1,
        description="Delay before each retry; the message fails after the last one.",
    )
    jitter: float = Field(0.1, ge=0, lt=1, description="Each delay varies by up to this share.")
    disable_after_seconds: float = Field(
        5 * 86400.0, gt=0, description="An endpoint failing this long without a success is off."
    )
    deliver_interval_seconds: float = Field(1.0, gt=0, description="How often the outbox is read.")
    batch_size: int = Field(20, gt=0, description="Messages sent per run of the delivery job.")


class RetrainSettings(BaseModel):
    """Defaults of retraining policies and of the job that evaluates them."""

    evaluate_interval_seconds: float = Field(30.0, gt=0, description="How often policies run.")
    cooldown_seconds: float = Field(
        3600.0, ge=0, description="Quiet time of a model's automatic triggers after one fires."
    )
    callback_base_url: str | None = Field(
        None, description="The monitor's URL as the training system reaches it (callback_url)."
    )


class FeedbackSettings(BaseModel):
    """Labels, live performance and dataset snapshots (``driftloop.feedback``)."""

    max_upload_bytes: int = Field(
        256 * 1024 * 1024, gt=0, description="Bulk label upload (Parquet/CSV), as sent."
    )
    max_labels: int = Field(2_000_000, gt=0, description="Labels in one request.")
    windows_seconds: list[int] = Field(
        default_factory=lambda: [3600, 86400, 604800],
        min_length=1,
        description="Windows (ending now) over which live performance is computed.",
    )
    confidence: float = Field(0.95, gt=0, lt=1, description="Level of every interval.")
    bootstrap_resamples: int = Field(1000, ge=100, description="Resamples of bootstrap CIs.")
    min_segment_rows: int = Field(30, ge=1, description="Smaller segments are not compared.")
    max_segments: int = Field(20, ge=2, description="Segments per feature (the rest: other).")


class RolloutSettings(BaseModel):
    """Defaults of champion-vs-challenger rollouts (``driftloop.monitor.rollout``); a rollout
    stores the values it started with, and ``POST /v1/models/{name}/rollout`` may override them."""

    alpha: float = Field(0.05, gt=0, lt=0.5, description="Error budget of one rollout.")
    margin: float = Field(
        0.01, ge=0, description="Non-inferiority margin in metric units (0.01 = 1 accuracy point)."
    )
    shadow: bool = Field(True, description="Start with a shadow phase (paired comparison).")
    steps: list[float] = Field(
        default_factory=lambda: [0.05, 0.25, 0.5, 1.0],
        min_length=1,
        description="Challenger share of each canary step, increasing, the last one 1.0.",
    )
    split: str = Field("canary", pattern=r"^(canary|ab)$", description="canary or sticky ab.")
    sticky_key: str | None = Field(
        None, pattern=r"^(header|json):.+$", description="A/B key: header:X-User-ID, json:id."
    )
    min_step_samples: int = Field(200, ge=1, description="Labeled challenger rows per step.")
    min_step_seconds: float = Field(300.0, ge=0, description="Shortest time on one step.")
    min_compare_samples: int = Field(100, ge=2, description="Rows per arm before any verdict.")
    tuning_samples: int = Field(2000, ge=10, description="Rows per arm the CS is tightest at.")
    regression_loss: str = Field("squared", pattern=r"^(squared|absolute)$")
    max_error_rate_increase: float = Field(
        0.01, ge=0, le=1, description="Tolerated rise of the 5xx share over the champion's."
    )
    max_latency_increase: float = Field(
        0.25, ge=0, description="Tolerated relative rise of p99 latency over the champion's."
    )
    srm_alpha: float = Field(0.001, gt=0, lt=0.5, description="Level of the split check.")
    srm_concentration: float = Field(100.0, gt=0, description="Prior strength of the SRM test.")
    srm_grace_seconds: float = Field(
        60.0, ge=0, description="Records this soon after a weight change are not split-checked."
    )
    evaluate_interval_seconds: float = Field(60.0, gt=0, description="How often rollouts run.")


class Settings(BaseSettings):
    """Every knob of the monitor and the CLI."""

    model_config = SettingsConfigDict(
        env_prefix="DRIFTLOOP_", env_nested_delimiter="__", extra="ignore"
    )

    database_url: str = Field(
        "sqlite:///driftloop.db",
        description="SQLAlchemy URL: sqlite:///path.db or postgresql+psycopg://user@host/db.",
    )
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    tokens: dict[str, list[Scope]] = Field(
        default_factory=dict,
        description='Bearer tokens and their scopes, as JSON: {"s3cret": ["ingest"]}. '
        "Empty means open API, allowed only on loopback.",
    )
    retention_days: int = Field(30, gt=0, description="How long raw records are kept.")
    webhook_url: str | None = Field(None, description="Default retraining webhook receiver.")
    webhook_secret: str | None = Field(None, description="Default webhook secret (whsec_...).")
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    drift: DriftSettings = Field(default_factory=DriftSettings)
    jobs: JobSettings = Field(default_factory=JobSettings)
    feedback: FeedbackSettings = Field(default_factory=FeedbackSettings)
    snapshot_dir: str = Field(
        "./driftloop-snapshots",
        description="Default destination of dataset snapshots: a directory or an fsspec URL.",
    )
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    retrain: RetrainSettings = Field(default_factory=RetrainSettings)
    rollout: RolloutSettings = Field(default_factory=RolloutSettings)

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgres")):
            raise ValueError(f"database_url must be sqlite or postgresql, got {value!r}")
        if value.startswith(("postgresql://", "postgres://")):
            # psycopg 3 is the driver we ship; plain postgresql:// would pick psycopg2.
            value = "postgresql+psycopg://" + value.split("://", 1)[1]
        return value

    @property
    def is_sqlite(self) -> bool:
        """True when the store is an embedded SQLite file."""
        return self.database_url.startswith("sqlite")

    @property
    def auth_enabled(self) -> bool:
        """True when bearer tokens are configured."""
        return bool(self.tokens)


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment, with ``overrides`` (CLI flags) taking precedence."""
    clean = {key: value for key, value in overrides.items() if value is not None}
    return Settings(**clean)


class CaptureSettings(BaseModel):
    """Capture and shipping of records (sidecar and ``DriftloopMiddleware``)."""

    queue_size: int = Field(10_000, gt=0, description="Responses waiting to be captured.")
    max_body_bytes: int = Field(
        1024 * 1024, gt=0, description="Larger request or response bodies are not captured."
    )
    batch_records: int = Field(500, gt=0, le=10_000, description="Records per batch sent.")
    batch_age_seconds: float = Field(1.0, gt=0, description="Oldest record waits this long.")
    spool_dir: str | None = Field(None, description="Disk spool; None keeps a memory buffer.")
    spool_max_bytes: int = Field(256 * 1024 * 1024, gt=0, description="Oldest evicted beyond.")
    segment_bytes: int = Field(4 * 1024 * 1024, gt=0, description="Spool segment file size.")
    memory_spool_batches: int = Field(1_000, gt=0, description="Buffer without a spool dir.")
    backoff_base_seconds: float = Field(0.5, gt=0, description="First retry delay.")
    backoff_max_seconds: float = Field(30.0, gt=0, description="Longest retry delay.")
    timeout_seconds: float = Field(10.0, gt=0, description="Timeout of one POST to the monitor.")


class SidecarSettings(BaseSettings):
    """Every knob of ``driftloop sidecar`` (env ``DRIFTLOOP_SIDECAR_*``; the token is
    ``DRIFTLOOP_MONITOR_TOKEN``)."""

    model_config = SettingsConfigDict(
        env_prefix="DRIFTLOOP_SIDECAR_", env_nested_delimiter="__", extra="ignore"
    )

    model: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
    champion_url: str
    champion_version: str = "champion"
    challenger_url: str | None = None
    challenger_version: str = "challenger"
    mode: str = Field("single", pattern=r"^(single|canary|ab|shadow)$")
    weight: float = Field(0.1, ge=0, le=1, description="Challenger share (canary, A/B).")
    sticky_key: str | None = Field(
        None, pattern=r"^(header|json):.+$", description="header:X-User-ID or json:customer_id"
    )
    monitor_url: str | None = None
    monitor_token: str | None = Field(
        None, validation_alias=AliasChoices("DRIFTLOOP_MONITOR_TOKEN", "monitor_token")
    )
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    admin_port: int = Field(8001, ge=0, le=65535)
    poll_seconds: float = Field(5.0, gt=0, description="Routing policy and schema poll period.")
    connect_timeout_seconds: float = Field(2.0, gt=0)
    upstream_timeout_seconds: float = Field(60.0, gt=0, description="Upstream read timeout.")
    max_connections: int = Field(512, gt=0, description="Connections per upstream.")
    shadow_concurrency: int = Field(32, gt=0, description="Shadow copies in flight at most.")
    capture: CaptureSettings = Field(default_factory=CaptureSettings)
