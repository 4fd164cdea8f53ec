"""Database access of files-api: the ``files`` rows and their extraction results.

A file is visible to the API once its upload finished (``generation`` set);
a row whose upload is still running (or whose process died mid-upload) is not
listed. Its status is derived with ``pipeline_core.models.status_expression``.

Listing uses keyset pagination over (``created_at`` DESC, ``id`` DESC): the
cursor is an opaque URL-safe token holding the last row's key, so pages stay
stable while files are added.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Integer, Select, bindparam, delete, select, tuple_, update
from sqlalchemy.orm import Session

from pipeline_core.models import (
    ExtractionResult,
    File,
    FileStatus,
    FileThumbnail,
    files_with_results,
    has_thumbnail_expression,
    result_join_condition,
    status_expression,
)

#: Path of a file's thumbnail (``GET /v1/files/{id}/thumbnail``), the ``thumbnail_url`` member.
THUMBNAIL_PATH = "/v1/files/{id}/thumbnail"


class BadCursor(ValueError):
    """The pagination cursor was not produced by this API."""


@dataclass(frozen=True)
class FileView:
    """A file as the API shows it (the ``File`` schema)."""

    id: uuid.UUID
    filename: str
    size_bytes: int
    content_type: str
    status: str
    metadata: dict[str, Any] | None
    error: str | None
    created_at: datetime
    updated_at: datetime
    bucket: str
    object_name: str
    generation: int | None
    thumbnail_url: str | None = None


@dataclass(frozen=True)
class ThumbnailView:
    """A stored thumbnail: PNG bytes, pixel size, the generation it came from, when stored."""

    png: bytes
    width: int
    height: int
    generation: int
    updated_at: datetime


def _view(row: File, result: ExtractionResult | None, has_thumbnail: bool = False) -> FileView:
    status = result.status if result is not None else FileStatus.PENDING.value
    updated = max(row.updated_at, result.updated_at) if result is not None else row.updated_at
    return FileView(
        id=row.id, filename=row.filename, size_bytes=row.size_bytes, content_type=row.content_type,
        status=status, metadata=result.metadata_ if result is not None else None,
        error=result.error if result is not None else None, created_at=row.created_at, updated_at=updated,
        bucket=row.bucket, object_name=row.object_name, generation=row.generation,
        thumbnail_url=THUMBNAIL_PATH.format(id=row.id) if has_thumbnail else None,
    )


#: The cursor: ``<created_at in microseconds since the Unix epoch>.<file id as 32 hex digits>``.
#: Every string of this form is a valid position ("files older than this key"),
#: so the pattern in the OpenAPI document is the whole rule.
CURSOR_PATTERN = r"^[0-9]{1,16}\.[0-9a-f]{32}$"
_CURSOR = re.compile(CURSOR_PATTERN)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def encode_cursor(created_at: datetime, file_id: uuid.UUID) -> str:
    """Cursor for "rows after (created_at, id)" in the ``CURSOR_PATTERN`` form."""
    micros = (created_at - _EPOCH) // timedelta(microseconds=1)
    return f"{micros}.{file_id.hex}"


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """Inverse of ``encode_cursor``. Raises ``BadCursor`` for anything not matching ``CURSOR_PATTERN``."""
    if _CURSOR.fullmatch(cursor) is None:
        raise BadCursor(f"cursor {cursor[:40]!r} is not of the form <microseconds>.<32 hex digits> "
                        "(pass next_cursor of the previous page)")
    micros, file_hex = cursor.split(".")
    return _EPOCH + timedelta(microseconds=int(micros)), uuid.UUID(hex=file_hex)


def object_name_for(file_id: uuid.UUID, filename: str) -> str:
    """``files/<id>/<sanitised filename>`` (docs/seams.md)."""
    return f"files/{file_id}/{filename}"


def create_pending(session: Session, *, file_id: uuid.UUID, filename: str, content_type: str,
                   size_bytes: int, bucket: str) -> File:
    """Insert the row of an upload about to be stored (``generation`` NULL); commits."""
    row = File(id=file_id, filename=filename, content_type=content_type, size_bytes=size_bytes,
               bucket=bucket, object_name=object_name_for(file_id, filename))
    session.add(row)
    session.commit()
    return row


def mark_stored(session: Session, file_id: uuid.UUID, generation: int) -> None:
    """Record the stored object's generation; commits."""
    session.execute(update(File).where(File.id == file_id).values(generation=generation))
    session.commit()


def forget(session: Session, file_id: uuid.UUID) -> None:
    """Delete the row (used to undo a failed upload); commits."""
    session.execute(delete(File).where(File.id == file_id))
    session.commit()


def get(session: Session, file_id: uuid.UUID) -> FileView | None:
    """The stored file with that id, or None (also while its upload is unfinished)."""
    stmt = files_with_results().add_columns(has_thumbnail_expression()).where(
        File.id == file_id, File.generation.is_not(None))
    found = session.execute(stmt).first()
    return _view(*found) if found else None


def get_thumbnail(session: Session, file_id: uuid.UUID) -> ThumbnailView | None:
    """The thumbnail of a stored file's current generation, or None (no file, unfinished upload, no preview)."""
    stmt = select(FileThumbnail).join(File, File.id == FileThumbnail.file_id).where(
        FileThumbnail.file_id == file_id, File.generation.is_not(None), FileThumbnail.generation == File.generation)
    row = session.scalars(stmt).first()
    if row is None:
        return None
    return ThumbnailView(png=row.png, width=row.width, height=row.height, generation=row.generation,
                         updated_at=row.updated_at)


#: The columns a ``FileView`` is built from, in ``_view_from_row``'s order.
_VIEW_COLUMNS = (File.id, File.filename, File.size_bytes, File.content_type, status_expression(),
                 ExtractionResult.metadata_.label("metadata"), ExtractionResult.error, File.created_at, File.updated_at,
                 ExtractionResult.updated_at.label("result_updated_at"), File.bucket, File.object_name,
                 File.generation, has_thumbnail_expression())


def _view_from_row(row: Any) -> FileView:
    """``FileView`` from one row of ``_VIEW_COLUMNS`` (same rules as ``_view``)."""
    (fid, filename, size_bytes, content_type, status, metadata, error, created_at, updated_at,
     result_updated_at, bucket, object_name, generation, has_thumbnail) = row
    return FileView(
        id=fid, filename=filename, size_bytes=size_bytes, content_type=content_type, status=status,
        metadata=metadata, error=error, created_at=created_at,
        updated_at=max(updated_at, result_updated_at) if result_updated_at is not None else updated_at,
        bucket=bucket, object_name=object_name, generation=generation,
        thumbnail_url=THUMBNAIL_PATH.format(id=fid) if has_thumbnail else None,
    )


@lru_cache(maxsize=4)
def list_statement(by_status: bool, after_cursor: bool) -> Select[Any]:
    """The list query for one combination of filters, built once per process.

    Values travel as bound parameters (``status``, ``after_created``,
    ``after_id``, ``limit``), so the same statement object is reused and
    SQLAlchemy's compiled-statement cache key is computed once (the ORM
    entity loading and per-request statement building cost the list API
    more than the query itself; tools/bench_list_api.py). Rows hold ``_VIEW_COLUMNS``
    (``_view_from_row`` makes the ``FileView``).
    """
    stmt = (select(*_VIEW_COLUMNS).select_from(File).outerjoin(ExtractionResult, result_join_condition())
            .where(File.generation.is_not(None)))
    if by_status:
        stmt = stmt.where(status_expression() == bindparam("status"))
    if after_cursor:
        stmt = stmt.where(tuple_(File.created_at, File.id) < tuple_(bindparam("after_created", type_=File.created_at.type),
                                                                    bindparam("after_id", type_=File.id.type)))
    return stmt.order_by(File.created_at.desc(), File.id.desc()).limit(bindparam("limit", type_=Integer()))


def list_page(session: Session | Connection, *, limit: int, cursor: str | None = None,
              status: str | None = None) -> tuple[list[FileView], str | None]:
    """Up to ``limit`` stored files, newest first, and the cursor of the next page (None at the end).

    ``session`` may be an ORM ``Session`` or a Core ``Connection`` (cheaper for a read).

    Raises:
        BadCursor: ``cursor`` is malformed.
    """
    params: dict[str, Any] = {"limit": limit + 1}
    if status is not None:
        params["status"] = status
    if cursor:
        params["after_created"], params["after_id"] = decode_cursor(cursor)
    rows = session.execute(list_statement(status is not None, bool(cursor)), params).all()
    views = [_view_from_row(r) for r in rows[:limit]]
    next_cursor = encode_cursor(views[-1].created_at, views[-1].id) if len(rows) > limit and views else None
    return views, next_cursor


def delete_with_results(session: Session, file_id: uuid.UUID) -> FileView | None:
    """Delete the file row and every result of its object (not committed: the caller commits
    after the object is gone, or rolls back). Returns what was deleted, or None."""
    view = get(session, file_id)
    if view is None:
        return None
    session.execute(delete(ExtractionResult).where(
        ExtractionResult.bucket == view.bucket, ExtractionResult.object_name == view.object_name))
    session.execute(delete(File).where(File.id == file_id))
    return view


def ping(session: Session) -> None:
    """Readiness probe: one trivial query."""
    session.execute(select(1))
