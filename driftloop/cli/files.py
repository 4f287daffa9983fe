"""Read a data file for a command, whatever its name says: the format comes from its content.

Parquet (``PAR1``), Arrow IPC / Feather (``ARROW1``), JSON (an array of objects, an object of
columns, or one object per line), CSV or TSV text, each optionally gzip-compressed. Every error
names the file and what was found in it, so ``driftloop drift a b`` says which of the two is bad.
"""

from __future__ import annotations

import gzip
import io
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

from driftloop.errors import DatasetError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["detect_format", "read_table"]

PARQUET_MAGIC = b"PAR1"
ARROW_MAGIC = b"ARROW1"
GZIP_MAGIC = b"\x1f\x8b"


def detect_format(data: bytes) -> str:
    """``parquet``, ``arrow``, ``json``, ``jsonl``, ``tsv`` or ``csv``, from the bytes alone."""
    if data[:4] == PARQUET_MAGIC:
        return "parquet"
    if data[:6] == ARROW_MAGIC:
        return "arrow"
    head = data[:65536].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head[:1] == b"[":
        return "json"
    if head[:1] == b"{":
        first, _, rest = head.partition(b"\n")
        return "jsonl" if rest.strip()[:1] == b"{" and first.rstrip().endswith(b"}") else "json"
    first_line = head.split(b"\n", 1)[0]
    if b"\t" in first_line and b"," not in first_line:
        return "tsv"
    return "csv"


def _describe(data: bytes) -> str:
    """What the bytes look like, for an error message."""
    if data[:4] == PARQUET_MAGIC:
        return "it starts like Parquet"
    try:
        data[:4096].decode("utf-8")
    except UnicodeDecodeError:
        return "it is binary and not Parquet, Arrow or gzip"
    return f"it is {detect_format(data).upper()} text"


def _parse(data: bytes, kind: str) -> pd.DataFrame:
    import pandas as pd

    if kind == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(io.BytesIO(data)).to_pandas()
    if kind == "arrow":
        import pyarrow.feather as feather

        return feather.read_table(io.BytesIO(data)).to_pandas()
    if kind in {"json", "jsonl"}:
        frame = pd.read_json(io.BytesIO(data), lines=kind == "jsonl", orient=None)
        return frame if isinstance(frame, pd.DataFrame) else frame.to_frame()
    return pd.read_csv(io.BytesIO(data), sep="\t" if kind == "tsv" else ",")


def read_table(path: Path | str, role: str = "") -> pd.DataFrame:
    """The table in ``path`` as a DataFrame; :class:`DatasetError` naming the file otherwise.

    ``role`` ("reference", "current") is put before the file name in messages.
    """
    import pandas as pd
    import pyarrow as pa

    source = Path(path)
    name = f"{role} file {str(source)!r}" if role else f"{str(source)!r}"
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read {name}: {exc.strerror or exc}") from exc
    if data[:2] == GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise DatasetError(f"cannot read {name}: broken gzip data ({exc})") from exc
    if not data.strip():
        raise DatasetError(f"{name} is empty")
    kind = detect_format(data)
    label = {"jsonl": "JSON lines", "tsv": "TSV"}.get(
        kind, kind.upper() if kind != "parquet" else "Parquet"
    )
    if kind == "csv" and source.suffix.lower() in {".parquet", ".pq", ".arrow", ".feather"}:
        raise DatasetError(
            f"cannot read {name}: its name says {source.suffix} but {_describe(data)} "
            "(a Parquet file starts with PAR1; is it truncated or another format?)"
        )
    try:
        frame = _parse(data, kind)
    except (pa.ArrowException, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DatasetError(f"cannot read {name} as {label}: {exc}") from exc
    if len(frame.columns) == 0:
        raise DatasetError(f"{name} ({label}) has no columns")
    if frame.empty:
        raise DatasetError(
            f"{name} ({label}) has no rows (columns: {[str(c) for c in frame.columns][:20]})"
        )
    frame.columns = [str(c) for c in frame.columns]
    duplicated = frame.columns[frame.columns.duplicated()].tolist()
    if duplicated:
        raise DatasetError(f"{name} repeats columns {duplicated}")
    return frame
