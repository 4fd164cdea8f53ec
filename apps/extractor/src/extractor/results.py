"""Read and upsert ``extraction_results`` (and read ``files``) for one object generation.

The upsert is ``INSERT ... ON CONFLICT (bucket, object_name, generation) DO
UPDATE ... WHERE`` (PostgreSQL, https://www.postgresql.org/docs/16/sql-insert.html#SQL-ON-CONFLICT):

- a new generation gets a row;
- a ``processed`` row is never changed (a duplicate cannot downgrade it);
- a ``failed`` row is replaced only when the new outcome differs (a fixed
  parser may turn it ``processed``), so a redelivered message that reaches the
  same outcome changes nothing, not even ``updated_at``.

The schema is pipeline-core's (``pipeline_core.models``, docs/seams.md).
"""

from __future__ import annotations

import enum
import json
import math
from typing import Any

from sqlalchemy import BigInteger, LargeBinary, func, literal, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from extractor.notification import ObjectRef
from pipeline_core.models import ExtractionResult, File, FileStatus, FileThumbnail

#: The longest ``error`` text stored, in characters (reasons are one line; a
#: runaway message must not bloat the row).
MAX_ERROR_CHARS = 2000


class ResultStatus(str, enum.Enum):
    """The statuses the extractor writes (``pending`` is the absence of a row)."""

    PROCESSED = FileStatus.PROCESSED.value
    FAILED = FileStatus.FAILED.value


def clean_text(text: str) -> str:
    """``text`` without NUL characters, which PostgreSQL ``text``/``jsonb`` cannot hold."""
    return text.replace("\x00", "")


def json_safe(value: Any, *, where: str = "metadata") -> Any:
    """``value`` converted to what PostgreSQL ``jsonb`` accepts.

    Dict keys become strings; tuples/sets become lists; NaN/Infinity (not
    JSON, RFC 8259 section 6) become None; NUL characters are dropped from
    strings; numpy scalars and arrays (anything with ``tolist()``) become
    Python values.

    Raises:
        TypeError: a value of another type; the message gives its path, e.g.
            ``metadata.objects[2].name``.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, enum.Enum):
        return json_safe(value.value, where=where)
    if isinstance(value, dict):
        return {clean_text(str(k)): json_safe(v, where=f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(v, where=f"{where}[{i}]") for i, v in enumerate(value)]
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return json_safe(tolist(), where=where)
    raise TypeError(f"{where} is a {type(value).__name__}, which has no JSON form")


#: SQLSTATE foreign_key_violation (https://www.postgresql.org/docs/16/errcodes-appendix.html).
FOREIGN_KEY_VIOLATION = "23503"


def is_file_gone(exc: BaseException) -> bool:
    """True when ``exc`` is the ``IntegrityError`` of a result whose file row is gone.

    ``extraction_results`` references ``files`` (``bucket``, ``object_name``)
    (pipeline-core migration ``0003_results_reference_files``): a file deleted while its
    object was being extracted makes the upsert fail with SQLSTATE 23503.
    """
    orig = getattr(exc, "orig", None)
    return isinstance(exc, IntegrityError) and getattr(orig, "sqlstate", None) == FOREIGN_KEY_VIOLATION


def existing_status(session: Session, ref: ObjectRef) -> str | None:
    """The stored result status of ``ref`` (``processed``/``failed``), or None when there is none."""
    return session.scalar(
        select(ExtractionResult.status).where(
            ExtractionResult.bucket == ref.bucket,
            ExtractionResult.object_name == ref.name,
            ExtractionResult.generation == ref.generation,
        )
    )


def recorded_filename(session: Session, ref: ObjectRef) -> str | None:
    """The original file name files-api recorded for ``ref``'s object, or None when no ``files`` row exists yet."""
    return session.scalar(select(File.filename).where(File.bucket == ref.bucket, File.object_name == ref.name))


def upsert_result(
    session: Session,
    ref: ObjectRef,
    status: ResultStatus,
    *,
    metadata: dict[str, Any] | None = None,
    error: str | None = None,
    attempts: int = 1,
) -> bool:
    """Insert or update the result of ``ref`` (see the module doc for the rules). Does not commit.

    Args:
        status: ``PROCESSED`` (with ``metadata``) or ``FAILED`` (with ``error``).
        metadata: the extracted metadata; made ``jsonb``-safe with ``json_safe``.
        error: a human-readable reason, NULs removed, cut to ``MAX_ERROR_CHARS``.
        attempts: the delivery attempt that produced it (>= 1).

    Returns:
        True when a row was inserted or changed, False when the stored row was
        kept (already ``processed``, or the same outcome).

    Raises:
        ValueError: ``status`` and ``metadata``/``error`` do not match, or ``attempts`` < 1.
        TypeError: ``metadata`` holds a value with no JSON form (``json_safe``).
        sqlalchemy.exc.IntegrityError: no ``files`` row owns the object any
            more (``is_file_gone``: deleted meanwhile).
        sqlalchemy.exc.SQLAlchemyError: the database failed.
    """
    if attempts < 1:
        raise ValueError(f"attempts must be >= 1, got {attempts}")
    if status is ResultStatus.PROCESSED and (metadata is None or error is not None):
        raise ValueError("a processed result needs metadata and no error")
    if status is ResultStatus.FAILED and not error:
        raise ValueError("a failed result needs a reason")
    clean_metadata = json_safe(metadata) if metadata is not None else None
    if clean_metadata is not None:
        # Fail here, with a clear message, rather than in the driver.
        json.dumps(clean_metadata, allow_nan=False)
    clean_error = clean_text(error)[:MAX_ERROR_CHARS] if error is not None else None

    stmt = insert(ExtractionResult).values(
        bucket=ref.bucket,
        object_name=ref.name,
        generation=ref.generation,
        status=status.value,
        metadata_=clean_metadata,
        error=clean_error,
        attempts=attempts,
    )
    table = ExtractionResult.__table__
    excluded = stmt.excluded
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.bucket, table.c.object_name, table.c.generation],
        set_={
            "status": excluded.status,
            "metadata": excluded.metadata,
            "error": excluded.error,
            "attempts": excluded.attempts,
            "updated_at": func.now(),
        },
        where=(table.c.status != ResultStatus.PROCESSED.value)
        & or_(
            table.c.status.is_distinct_from(excluded.status),
            table.c.metadata.is_distinct_from(excluded.metadata),
            table.c.error.is_distinct_from(excluded.error),
        ),
    ).returning(table.c.status)
    return session.execute(stmt).first() is not None



def store_thumbnail(session: Session, ref: ObjectRef, png: bytes, width: int, height: int) -> bool:
    """Store the preview of ``ref``'s file (``file_thumbnails``); does not commit.

    ``INSERT ... SELECT`` from ``files`` by (``bucket``, ``object_name``): a
    file without a ``files`` row (an object written to the bucket by another
    tool) gets none, and a row deleted meanwhile is not resurrected. An
    existing thumbnail is replaced only by one of the same or a newer
    generation (a late redelivery of an older generation changes nothing).

    Args:
        png: the PNG bytes (``extractor.metadata.thumbnail`` bounds them;
            the table's CHECK constraints enforce the same bounds).
        width, height: its size in pixels.

    Returns:
        True when a row was inserted or replaced.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the database failed.
    """
    table = FileThumbnail.__table__
    source = select(
        File.id, literal(ref.generation, BigInteger), literal(png, LargeBinary), literal(width), literal(height)
    ).where(File.bucket == ref.bucket, File.object_name == ref.name)
    stmt = insert(FileThumbnail).from_select(["file_id", "generation", "png", "width", "height"], source)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.file_id],
        set_={"generation": stmt.excluded.generation, "png": stmt.excluded.png, "width": stmt.excluded.width,
              "height": stmt.excluded.height, "updated_at": func.now()},
        where=table.c.generation <= stmt.excluded.generation,
    ).returning(table.c.file_id)
    return session.execute(stmt).first() is not None
