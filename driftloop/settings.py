"""Settings: one pydantic-settings tree, built once at the edge (CLI, app factory) and passed down.

Precedence is flags, then ``DRIFTLOOP_*`` environment variables (nested with ``__``, for example
``DRIFTLOOP_INGEST__MAX_RECORDS=5000``), then the defaults here. Nothing reads the environment at
import time: call :func:`load_settings` or construct :class:`Settings` directly (tests do).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, field_validator
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


class DriftSettings(BaseModel):
    """Defaults of the drift decision (ARCHITECTURE §5); models and features may override them."""

    alpha: float = Field(0.05, gt=0, lt=1)
    materiality: float = Field(0.1, ge=0)
    drifted_share: float = Field(0.5, gt=0, le=1)


class JobSettings(BaseModel):
    """The leader's periodic jobs."""

    enabled: bool = True
    interval_seconds: float = Field(60.0, gt=0, description="How often each model is evaluated.")


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
