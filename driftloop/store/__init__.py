"""The storage schema (SQLAlchemy 2.0) and its migrations (Alembic), shared by every component.

Each component's tables live in a module of this package; all of them are imported here so that
``Base.metadata`` is complete for Alembic and for tests.
"""

from driftloop.store.base import Base, JSONType, UTCDateTime
from driftloop.store.engine import make_engine, make_sessionmaker
from driftloop.store.migrate import head_revisions, is_current, upgrade
from driftloop.store.tables import Model, ModelVersion, RecordRow, ReferenceDataset

__all__ = [
    "Base",
    "JSONType",
    "Model",
    "ModelVersion",
    "RecordRow",
    "ReferenceDataset",
    "UTCDateTime",
    "head_revisions",
    "is_current",
    "make_engine",
    "make_sessionmaker",
    "upgrade",
]
