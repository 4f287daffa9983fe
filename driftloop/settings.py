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
    read = "read"
    admin = "admin"


class IngestSettings(BaseModel):
    """Limits on what one request may carry; over them the monitor answers 413."""

    max_body_bytes: int = Field(16 * 1024 * 1024, gt=0, description="Body size as sent.")
    max_decompressed_bytes: int = Field(
        64 * 1024 * 1024, gt=0, description="Body size after gunzip (guards gzip bombs)."
    )
    max_records: int = Field(10_000, gt=0, description="Records in one batch.")
    max_reference_bytes: int = Field(256 * 1024 * 1024, gt=0, description="Reference upload.")
    max_models: int = Field(
        100,
        ge=0,
        description="Models ingest may register on its own (unknown names in records); beyond "
        "it a batch naming a new model gets 422. POST /v1/models (admin) may register more.",
    )
    max_versions_per_model: int = Field(
        50,
        ge=0,
        description="Versions of one model ingest may register on its own; beyond it 422.",
    )
    max_versions_per_batch: int = Field(
        100, gt=0, description="Distinct (model, version) pairs in one batch; beyond it 422."
    )


class DriftOverride(BaseModel):
    """Drift settings of one model; unset fields keep the defaults."""

    model_config = {"extra": "forbid"}

    alpha: float | None = Field(None, gt=0, lt=1)
    materiality: float | None = Field(None, ge=0)
    drifted_share: float | None = Field(None, gt=0, le=1)
    window_minutes: int | None = Field(None, gt=0, le=366 * 24 * 60)
    min_window_rows: int | None = Field(None, ge=1)
    false_alarms_per_day: float | None = Field(None, gt=0)


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
    min_window_rows: int = Field(
        30, ge=1, description="Fewer values than this in a window: numbers reported, no verdict."
    )
    series_ttl_minutes: int = Field(
        120,
        gt=0,
        description="A version's drift series leave /metrics when its newest result is older "
        "than this (no result is written for a window without records).",
    )
    false_alarms_per_day: float = Field(
        0.25,
        gt=0,
        description="Budget of false dataset-drift alarms per model-day of minute-by-minute "
        "checks on a stationary stream; sets the level of the job's dataset verdict.",
    )
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


class RetentionSettings(BaseModel):
    """The leader's prune of rows older than ``retention_days`` (``driftloop db prune``)."""

    enabled: bool = Field(True, description="Run the prune job on the leader.")
    interval_seconds: float = Field(3600.0, gt=0, description="How often the prune job runs.")
    batch_rows: int = Field(
        5000,
        gt=0,
        le=30_000,  # SQLite binds at most 32,766 parameters in one statement
        description="Rows deleted per committed transaction.",
    )
    pending_label_days: int | None = Field(
        None,
        gt=0,
        description="How long a label no record joins (yet) is kept; default: retention_days.",
    )
    pause_seconds: float | None = Field(
        None,
        ge=0,
        le=60,
        description="Wait between batches so waiting writers get the lock; default: 0.2 on "
        "SQLite (its lock is not fair), 0 on PostgreSQL.",
    )
    partitions_ahead_days: int = Field(
        7,
        ge=1,
        le=366,
        description="Days past today that the leader keeps day partitions ready for "
        "(PostgreSQL; see docs/retention.md#day-partitions-postgresql).",
    )
    snapshot_days: int | None = Field(
        None,
        gt=0,
        description="How long dataset snapshots (files and rows) are kept; a snapshot a "
        "registered version trained on is kept whatever its age. Default: kept forever.",
    )
    archive_url: str = Field(
        "",
        description="Archive records and their labels as Parquet here before they are pruned: "
        "a directory or an fsspec URL (file://, s3://, gs:// with its plugin installed); "
        "empty: no archive (see docs/retention.md#archive).",
    )


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
    allow_private_targets: bool = Field(
        False,
        description="Allow webhook URLs on link-local and cloud metadata addresses "
        "(169.254.0.0/16, fe80::/10, metadata.google.internal); off by default.",
    )


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


class EstimationSettings(BaseModel):
    """Performance estimated before labels arrive (CBPE/DLE, docs/estimation.md)."""

    enabled: bool = True
    window_seconds: float = Field(
        3600.0, gt=0, description="The recent window estimated, per version and variant."
    )
    max_rows: int = Field(
        50_000, ge=100, description="Newest records of a window estimated at most (cost bound)."
    )
    ttl_seconds: float = Field(
        60.0, ge=0, description="How long a model's estimate is reused (0: computed each read)."
    )


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
    max_step_seconds: float | None = Field(
        None, gt=0, description="Longest time on one step before the deadline (None: no limit)."
    )
    max_rollout_seconds: float | None = Field(
        7 * 86400.0, gt=0, description="Longest rollout before the deadline (None: no limit)."
    )
    deadline_action: str = Field(
        "rollback",
        pattern=r"^(rollback|promote)$",
        description="What a deadline does: rollback, or promote when nothing is failing.",
    )
    stratum_seconds: float = Field(
        3600.0, gt=0, description="Canary rows are compared within steps and buckets this long."
    )
    label_horizon_seconds: float = Field(
        0.0, ge=0, description="Rows younger than this wait until their labels are in."
    )
    latency_min_tail_rows: int = Field(
        20, ge=5, description="Rows per arm beyond a latency quantile before it may decide."
    )
    estimated_rollback: bool = Field(
        False,
        description="Roll back before labels arrive when the estimated difference (performance "
        "estimation, docs/estimation.md) lies wholly below -estimated_rollback_margin.",
    )
    estimated_rollback_margin: float = Field(
        0.05, ge=0, description="How much worse the estimate must show the challenger (units)."
    )


class MlflowSettings(BaseModel):
    """The MLflow Model Registry integration: webhooks in, verdicts and lineage back."""

    tracking_uri: str | None = Field(
        None, description="MLflow tracking server base URL (verdicts and lineage are written here)."
    )
    tracking_token: str | None = Field(None, description="Bearer token for MLflow, if any.")
    username: str | None = Field(None, description="Basic-auth user for MLflow, if any.")
    password: str | None = Field(None, description="Basic-auth password for MLflow, if any.")
    webhook_secret: str | None = Field(
        None,
        description="The secret given to MLflow's webhook; without it deliveries are refused.",
    )
    tolerance_seconds: float = Field(
        300.0, gt=0, description="Deliveries whose timestamp is further from now are refused."
    )
    models: dict[str, str] = Field(
        default_factory=dict,
        description='Registered model name -> Driftloop model, as JSON: {"churn-prod": "churn"}. '
        "A name not listed maps to the Driftloop model of the same name.",
    )
    url_template: str | None = Field(
        None,
        description="Where a registered version is served, with {name} (registered model), "
        "{model} (Driftloop model) and {version}; a version tag driftloop.url wins.",
    )
    register_on: list[str] = Field(
        default_factory=lambda: ["model_version.created"],
        description="Events that register a version as the challenger: model_version.created, "
        "model_version_tag.set (with challenger_tag), model_version_alias.created "
        "(with challenger_alias).",
    )
    challenger_tag: str = Field(
        "driftloop.challenger", description="Tag that, set to true, registers the version."
    )
    challenger_alias: str | None = Field(
        None, description="Alias that, set on a version, registers it (e.g. candidate)."
    )
    start_rollout: bool = Field(True, description="Start the rollout when a version registers.")
    champion_alias: str = Field("champion", description="Alias moved to a promoted version.")
    in_rollout_alias: str | None = Field(
        "challenger", description="Alias set while a version is in rollout (None: none)."
    )
    rolled_back_alias: str | None = Field(
        "rolled-back", description="Alias moved to a rolled-back version (None: none)."
    )
    writeback_interval_seconds: float = Field(
        5.0, gt=0, description="How often verdicts are looked for and queued for MLflow."
    )
    keep_deliveries_days: float = Field(
        7.0, gt=0, description="How long received delivery ids are kept (replay refusal)."
    )

    @field_validator("register_on")
    @classmethod
    def _known_events(cls, value: list[str]) -> list[str]:
        known = ("model_version.created", "model_version_tag.set", "model_version_alias.created")
        for event in value:
            if event not in known:
                raise ValueError(f"register_on: unknown event {event!r}; use {', '.join(known)}")
        return value


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
    retention_days: int = Field(
        30,
        gt=0,
        description="How long raw records, their labels, drift profiles and flagged records are "
        "kept (pruned by the leader; see docs/retention.md).",
    )
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
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
    snapshot_allowed_prefixes: list[str] = Field(
        default_factory=list,
        description="URL prefixes a snapshot request's `out` may name besides snapshot_dir, as "
        'JSON: ["s3://ml-datasets/driftloop/"]. Chained URLs (::) and memory:// are refused.',
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host names the open (token-less) API answers besides the loopback names "
        "(localhost, 127.0.0.1, ::1): guards against DNS rebinding. Ignored with tokens.",
    )
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    retrain: RetrainSettings = Field(default_factory=RetrainSettings)
    rollout: RolloutSettings = Field(default_factory=RolloutSettings)
    estimation: EstimationSettings = Field(default_factory=EstimationSettings)
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)

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
    spool_dir: str | None = Field(
        None,
        description="Folder of the crash-safe capture log; None: the default, "
        "$XDG_STATE_HOME/driftloop/spool/<model>-<port> (~/.local/state without XDG).",
    )
    memory_spool: bool = Field(
        False, description="Keep captured records in memory only (lost if the process dies)."
    )
    fsync_seconds: float = Field(
        1.0,
        ge=0,
        description="fsync the capture log this often (power loss); 0: on every request (slow). "
        "A process crash loses nothing either way.",
    )
    spool_max_bytes: int = Field(256 * 1024 * 1024, gt=0, description="Oldest evicted beyond.")
    segment_bytes: int = Field(4 * 1024 * 1024, gt=0, description="Spool segment file size.")
    memory_spool_batches: int = Field(
        1_000, gt=0, description="Unused since the capture log; memory spools hold queue_size."
    )
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
    no_capture: bool = Field(
        False, description="Route only, record nothing (the sidecar needs a monitor otherwise)."
    )
    openapi_paths: list[str] = Field(
        default_factory=lambda: ["/docs.json", "/openapi.json"],
        description="Where the champion's OpenAPI document is looked for (BentoML: /docs.json).",
    )
