"""The archive's file format: the Parquet layout, the manifest and the digests.

Layout (Hive-style, so DuckDB, Spark, Trino and ``pyarrow.dataset`` read each table as one
partitioned table)::

    <url>/records/model=<name>/date=YYYY-MM-DD/part-0.parquet
    <url>/records/model=<name>/date=YYYY-MM-DD/_manifest.json
    <url>/labels/model=<name>/date=YYYY-MM-DD/part-0.parquet

A day is a UTC day of the records' prediction time (``ts``); the labels of a day are the labels
that join its records (the model's own and pending ones), kept in the same ``model``/``date``
partition so that a day's records and labels read and join together. ``model`` and ``date`` are
partition columns only (not inside the files). Documents (``inputs``, ``outputs``, ``label``)
are stored as the JSON text the database holds; timestamps as ``timestamp[us, UTC]``.

The manifest is the commit: a partition is archived when its manifest exists and every part it
lists has the listed SHA-256 and row digest (how the parts and the manifest are written:
:mod:`driftloop.store.archive`).

Two hashes per part: ``sha256`` of the file's bytes (any change to the file) and ``rows_sha256``,
a digest of the decoded rows in file order that does not depend on how the file is encoded
(compression, row groups, writer version): each value is rendered exactly (integers and
timestamps as decimal integers, floats by their IEEE-754 bits, strings length-prefixed) and the
rows are hashed in order.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from driftloop.errors import DriftloopError

__all__ = [
    "DOCUMENTS",
    "FORMAT",
    "KEYS",
    "MANIFEST",
    "SCHEMAS",
    "ArchiveError",
    "ArchiveIntegrityError",
    "Manifest",
    "Part",
    "partition_path",
    "row_digest",
    "verify_parts",
]

MANIFEST = "_manifest.json"
"""The manifest's file name in each partition (a leading ``_``: readers skip it)."""
FORMAT = "driftloop-archive/1"

_UTC_US = pa.timestamp("us", tz="UTC")
SCHEMAS = {
    "records": pa.schema(
        [
            ("id", pa.int64()),
            ("model_id", pa.int64()),
            ("version", pa.string()),
            ("variant", pa.string()),
            ("request_id", pa.string()),
            ("ts", _UTC_US),
            ("inputs", pa.string()),
            ("outputs", pa.string()),
            ("latency_ms", pa.float64()),
            ("status", pa.int64()),
            ("received_at", _UTC_US),
        ]
    ),
    "labels": pa.schema(
        [
            ("id", pa.int64()),
            ("model_id", pa.int64()),
            ("request_id", pa.string()),
            ("label", pa.string()),
            ("label_ts", _UTC_US),
            ("received_at", _UTC_US),
            ("updated_at", _UTC_US),
            ("corrections", pa.int64()),
        ]
    ),
}
"""Columns of each archived table (JSON documents as their text)."""
DOCUMENTS = ("inputs", "outputs", "label")
"""Columns holding JSON text."""
KEYS = {
    "records": ("request_id", "variant", "ts"),
    "labels": ("model_id", "request_id", "updated_at"),
}
"""What makes a row already archived: a record per request, variant and time (a replay of a
pruned record is not archived twice), a label per model, request and version of the label."""


class ArchiveError(DriftloopError, OSError):
    """The archive cannot be written or read (destination, permissions, a damaged partition)."""


class ArchiveIntegrityError(ArchiveError):
    """A partition's files do not match its manifest (a part missing, changed or re-encoded)."""


@dataclass(frozen=True)
class Part:
    """One Parquet file of a partition."""

    path: str
    """File name inside the partition folder."""
    rows: int
    bytes: int
    sha256: str
    """SHA-256 of the file's bytes."""
    rows_sha256: str
    """Digest of the decoded rows (:func:`row_digest`), independent of the file encoding."""
    created_at: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "path": self.path,
            "rows": self.rows,
            "bytes": self.bytes,
            "sha256": self.sha256,
            "rows_sha256": self.rows_sha256,
            "created_at": self.created_at,
        }


@dataclass
class Manifest:
    """What one archived partition (a table, a model, a day) holds."""

    table: str
    model: str
    date: date
    parts: list[Part] = field(default_factory=list)
    created_at: str = ""
    updated_at: str = ""
    driftloop_version: str = ""
    uri: str = ""
    """Where the partition folder is (credentials redacted); not stored in the file."""

    @property
    def rows(self) -> int:
        """Rows in all parts."""
        return sum(part.rows for part in self.parts)

    @property
    def bytes(self) -> int:
        """Bytes of all parts."""
        return sum(part.bytes for part in self.parts)

    @property
    def rows_sha256(self) -> str:
        """Digest of the partition's rows: of the parts' row digests, in part order."""
        return hashlib.sha256("\n".join(p.rows_sha256 for p in self.parts).encode()).hexdigest()

    def as_dict(self) -> dict[str, Any]:
        """The manifest file's content."""
        since = datetime.combine(self.date, time(), UTC)
        return {
            "format": FORMAT,
            "table": self.table,
            "model": self.model,
            "date": self.date.isoformat(),
            "time_range": {
                "column": "ts",
                "since": since.isoformat(),
                "until": (since + timedelta(days=1)).isoformat(),
            },
            "rows": self.rows,
            "bytes": self.bytes,
            "rows_sha256": self.rows_sha256,
            "parts": [part.as_dict() for part in self.parts],
            "schema": [{"name": f.name, "type": str(f.type)} for f in SCHEMAS[self.table]],
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "driftloop_version": self.driftloop_version,
        }

    @classmethod
    def from_dict(cls, body: dict[str, Any], uri: str = "") -> Manifest:
        """A manifest read back from its file."""
        if body.get("format") != FORMAT:
            raise ArchiveIntegrityError(f"{uri}: not a {FORMAT} manifest: {body.get('format')!r}")
        return cls(
            table=body["table"],
            model=body["model"],
            date=date.fromisoformat(body["date"]),
            parts=[Part(**part) for part in body["parts"]],
            created_at=body["created_at"],
            updated_at=body["updated_at"],
            driftloop_version=body["driftloop_version"],
            uri=uri,
        )


def partition_path(table: str, model: str, day: date) -> str:
    """The partition folder of ``table``, ``model`` and ``day`` relative to the archive's root
    (the model name percent-encoded, as Hive partitioning expects)."""
    return f"{table}/model={quote(model, safe='')}/date={day.isoformat()}"


def _canonical(column: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Each value of ``column`` as exact, self-delimiting text; ``-`` for null."""
    kind = column.type
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        text = pc.cast(column.cast(pa.int64()), pa.string())
    elif pa.types.is_floating(kind):
        bits = pc.cast(pc.fill_null(column.cast(pa.float64()), 0.0), pa.float64())
        chunks = bits.chunks if isinstance(bits, pa.ChunkedArray) else [bits]
        as_ints = pa.chunked_array(
            [chunk.view(pa.int64()) for chunk in chunks if len(chunk)], type=pa.int64()
        )
        text = pc.cast(as_ints, pa.string())
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        length = pc.cast(pc.utf8_length(column), pa.string())
        text = pc.binary_join_element_wise(length, column, ":")
    else:
        text = pc.cast(column, pa.string())
    if isinstance(column, pa.ChunkedArray) and not isinstance(text, pa.ChunkedArray):
        text = pa.chunked_array([text], type=pa.string())
    return pc.if_else(pc.is_null(column), "-", text)


def row_digest(table: pa.Table, digest: Any = None) -> Any:
    """Feed ``table``'s rows, in order, to ``digest`` (a new SHA-256 when None) and return it.

    Depends on the column names, types and values only: the same rows read from a file written
    with other options give the same digest."""
    digest = digest if digest is not None else hashlib.sha256()
    if table.num_rows == 0:
        return digest
    columns = [_canonical(table.column(i)) for i in range(table.num_columns)]
    rows = pc.binary_join_element_wise(*columns, ";")
    for chunk in rows.chunks if isinstance(rows, pa.ChunkedArray) else [rows]:
        if len(chunk):  # each row's text and a newline: one update per chunk
            digest.update(("\n".join(chunk.to_pylist()) + "\n").encode())
    return digest


def _digest_start(schema: pa.Schema) -> Any:
    digest = hashlib.sha256()
    digest.update(json.dumps([[f.name, str(f.type)] for f in schema]).encode())
    digest.update(b"\n")
    return digest


class _HashingFile:
    """A write-only file that hashes and counts what goes through it (for ``ParquetWriter``)."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.closed = False

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.sha256.update(view)
        self.size += view.nbytes
        self._handle.write(view)
        return view.nbytes

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self._handle.flush()

    def close(self) -> None:
        self.closed = True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readable(self) -> bool:
        return False


def verify_parts(fs: Any, folder: str, manifest: Manifest) -> pa.Table:
    """Read every part ``manifest`` lists from ``folder`` on the fsspec file system ``fs`` and
    check its bytes, rows and row digest; return the partition's rows. Raises
    :class:`ArchiveIntegrityError` when anything differs."""
    schema = SCHEMAS[manifest.table]
    tables = []
    for part in manifest.parts:
        path = f"{folder}/{part.path}"
        try:
            with fs.open(path, "rb") as handle:
                content = handle.read()
        except FileNotFoundError as exc:
            raise ArchiveIntegrityError(f"{manifest.uri}: {part.path} is missing") from exc
        if hashlib.sha256(content).hexdigest() != part.sha256:
            raise ArchiveIntegrityError(
                f"{manifest.uri}: {part.path} does not match its manifest (SHA-256 differs)"
            )
        table = pq.read_table(pa.BufferReader(content), schema=schema)
        digest = row_digest(table, _digest_start(schema)).hexdigest()
        if table.num_rows != part.rows or digest != part.rows_sha256:
            raise ArchiveIntegrityError(
                f"{manifest.uri}: {part.path} holds other rows than its manifest lists"
            )
        tables.append(table)
    return pa.concat_tables(tables) if tables else schema.empty_table()
