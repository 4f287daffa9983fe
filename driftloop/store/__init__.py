"""The storage schema (SQLAlchemy 2.0) and its migrations (Alembic), shared by every component.

Each component's tables live in a module of this package; all of them are imported here so that
``Base.metadata`` is complete for Alembic and for tests. The migration helpers load Alembic on
first use only.
"""

from typing import TYPE_CHECKING

from driftloop._lazy import lazy_exports
from driftloop.store.base import Base, JSONType, UTCDateTime
from driftloop.store.cloudevents import CloudEventHalf
from driftloop.store.drift import DriftProfile, DriftResult, OodRecord
from driftloop.store.engine import make_engine, make_sessionmaker
from driftloop.store.feedback import LabelRow, PerformanceResultRow, SnapshotRow
from driftloop.store.integrations import MlflowDelivery
from driftloop.store.rollout import Rollout, RolloutDecision, RoutingPolicyRow
from driftloop.store.tables import Model, ModelVersion, RecordRow, ReferenceDataset
from driftloop.store.webhooks import (
    DeliveryAttempt,
    OutboxMessage,
    RetrainConditionState,
    RetrainPolicyRow,
    RetrainTrigger,
    WebhookEndpoint,
)

if TYPE_CHECKING:
    from driftloop.store.migrate import head_revisions, is_current, upgrade

__all__ = [
    "Base",
    "CloudEventHalf",
    "DeliveryAttempt",
    "DriftProfile",
    "DriftResult",
    "JSONType",
    "LabelRow",
    "MlflowDelivery",
    "Model",
    "ModelVersion",
    "OodRecord",
    "OutboxMessage",
    "PerformanceResultRow",
    "RecordRow",
    "ReferenceDataset",
    "RetrainConditionState",
    "RetrainPolicyRow",
    "RetrainTrigger",
    "Rollout",
    "RolloutDecision",
    "RoutingPolicyRow",
    "SnapshotRow",
    "UTCDateTime",
    "WebhookEndpoint",
    "head_revisions",
    "is_current",
    "make_engine",
    "make_sessionmaker",
    "upgrade",
]

__getattr__, __dir__ = lazy_exports(
    __name__, {"driftloop.store.migrate": ("head_revisions", "is_current", "upgrade")}
)
