"""The database schema of the print-file pipeline (SQLAlchemy 2 declarative).

The tables are the contract of ``docs/seams.md`` ("Database schema"); the
Alembic migrations in ``pipeline_core/migrations`` create them, and
``tests/apps/test_migrations.py`` checks that the migrations and these models
agree.

- ``files``: one row per upload, written by files-api.
- ``extraction_results``: one row per object *generation*, upserted by the
  extractor, keyed (``bucket``, ``object_name``, ``generation``) so a
  redelivered or duplicated notification changes nothing and a notification
  that overtakes the ``files`` row's ``generation`` update loses nothing.
- ``file_thumbnails``: the preview image the extractor found in a file, as a
  bounded PNG, one per file (deleted with it: ``ON DELETE CASCADE``).

A file's status is its result's status, or ``pending`` while there is none
(``status_expression``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ColumnElement,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Text,
    and_,
    exists,
    func,
    select,
    Select,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: Constraint names are deterministic so migrations can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class FileStatus(str, Enum):
    """A file's processing status as the API reports it."""

    PENDING = "pending"
    PROCESSED = "processed"
    FAILED = "failed"


#: The statuses an extraction result may hold (``pending`` is the absence of one).
RESULT_STATUSES = (FileStatus.PROCESSED.value, FileStatus.FAILED.value)


class Base(DeclarativeBase):
    """Declarative base holding the pipeline's ``MetaData``."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class File(Base):
    """An uploaded print file (table ``files``).

    ``generation`` is the GCS object generation, NULL until the upload to the
    bucket finished; ``size_bytes`` is the stored object's size in bytes.
    ``redrive_count`` is how many times the reconciler republished the file's
    notification (``extractor-reconcile``), ``last_redriven_at`` when it last
    did (NULL: never).
    """

    __tablename__ = "files"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    filename: Mapped[str] = mapped_column(Text, nullable=False)
    content_type: Mapped[str] = mapped_column(Text, nullable=False)
    size_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    bucket: Mapped[str] = mapped_column(Text, nullable=False)
    object_name: Mapped[str] = mapped_column(Text, nullable=False)
    generation: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now(), onupdate=func.now()
    )
    redrive_count: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    last_redriven_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (
        CheckConstraint("size_bytes >= 0", name="size_bytes_non_negative"),
        CheckConstraint("redrive_count >= 0", name="redrive_count_non_negative"),
        Index("uq_files_bucket_object_name", "bucket", "object_name", unique=True),
        # Keyset pagination walks (created_at DESC, id DESC).
        Index("ix_files_created_at_id", "created_at", "id"),
    )


class ExtractionResult(Base):
    """The extractor's outcome for one object generation (table ``extraction_results``).

    ``metadata_`` (column ``metadata``) is the extracted metadata as JSON for
    ``processed``; ``error`` a human-readable reason for ``failed``;
    ``attempts`` how many deliveries were spent on it.

    (``bucket``, ``object_name``) references the file (``files``, ON DELETE
    CASCADE): deleting a file deletes its results, and a result for an object
    no file owns cannot be stored (``IntegrityError``).
    """

    __tablename__ = "extraction_results"

    bucket: Mapped[str] = mapped_column(Text, primary_key=True)
    object_name: Mapped[str] = mapped_column(Text, primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    status: Mapped[str] = mapped_column(Text, nullable=False)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONB, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now(), onupdate=func.now()
    )

    __table_args__ = (
        CheckConstraint("status IN ('processed', 'failed')", name="status_known"),
        CheckConstraint("attempts >= 1", name="attempts_positive"),
        ForeignKeyConstraint(["bucket", "object_name"], ["files.bucket", "files.object_name"], ondelete="CASCADE"),
    )


#: Bounds of a stored thumbnail (the extractor's ``metadata.thumbnail`` makes
#: them hold; the table enforces them so no writer can store more).
THUMBNAIL_MAX_SIDE_PX = 512
THUMBNAIL_MAX_BYTES = 256 * 1024


class FileThumbnail(Base):
    """The embedded preview of a file, re-encoded as PNG (table ``file_thumbnails``).

    ``png`` is at most ``THUMBNAIL_MAX_BYTES`` bytes and ``width``/``height``
    at most ``THUMBNAIL_MAX_SIDE_PX`` pixels; ``generation`` is the object
    generation it was extracted from (served only while it is the file's).
    The row goes with its file (``ON DELETE CASCADE``).
    """

    __tablename__ = "file_thumbnails"

    file_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("files.id", ondelete="CASCADE"), primary_key=True
    )
    generation: Mapped[int] = mapped_column(BigInteger, nullable=False)
    png: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    width: Mapped[int] = mapped_column(Integer, nullable=False)
    height: Mapped[int] = mapped_column(Integer, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now(), onupdate=func.now()
    )

    __table_args__ = (
        CheckConstraint(f"width BETWEEN 1 AND {THUMBNAIL_MAX_SIDE_PX}", name="width_bounded"),
        CheckConstraint(f"height BETWEEN 1 AND {THUMBNAIL_MAX_SIDE_PX}", name="height_bounded"),
        CheckConstraint(f"octet_length(png) BETWEEN 8 AND {THUMBNAIL_MAX_BYTES}", name="png_bounded"),
    )


def has_thumbnail_expression() -> ColumnElement[bool]:
    """SQL: the file (in a query over ``File``) has a thumbnail of its current generation."""
    return exists().where(
        FileThumbnail.file_id == File.id, FileThumbnail.generation == File.generation
    ).label("has_thumbnail")


def result_join_condition() -> ColumnElement[bool]:
    """The ON clause joining ``files`` to the result of its current generation."""
    return and_(
        ExtractionResult.bucket == File.bucket,
        ExtractionResult.object_name == File.object_name,
        ExtractionResult.generation == File.generation,
    )


def status_expression() -> ColumnElement[str]:
    """SQL for a file's status: its result's status, or ``'pending'`` without one.

    Use in a query that outer-joins ``ExtractionResult`` on
    ``result_join_condition()`` (see ``files_with_results``).
    """
    return func.coalesce(ExtractionResult.status, FileStatus.PENDING.value).label("status")


def files_with_results() -> Select[tuple[File, ExtractionResult | None]]:
    """``SELECT files, extraction_results`` with the result outer-joined (may be None)."""
    return select(File, ExtractionResult).outerjoin(ExtractionResult, result_join_condition())
