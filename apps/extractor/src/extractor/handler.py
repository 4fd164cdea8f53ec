"""Turn one GCS notification into one outcome: the extractor's per-message logic.

Independent of Pub/Sub's message class (``worker.PullWorker`` adapts it), so
it can be driven directly. The decisions (docs/seams.md, and
``outcomes.Outcome``):

=====================================  ======================================  =====
situation                              what is written                         reply
=====================================  ======================================  =====
not a well-formed GCS notification     nothing (logged, counted ``invalid``)   ack
other event type / other bucket        nothing (``ignored``)                   ack
result already ``processed``           nothing (``duplicate``)                 ack
generation deleted (404)               nothing (``gone``)                      ack
no ``files`` row owns the object       nothing (``gone``)                      ack
object above ``MAX_DOWNLOAD_BYTES``    ``failed`` + reason                     ack
``ExtractionError`` from the parser    ``failed`` + its reason                 ack
any other exception from the parser    ``failed`` + "internal error" reason    ack
metadata extracted                     ``processed`` + metadata (+ thumbnail)  ack
database / GCS / network fault         nothing (exception propagates)          nack
=====================================  ======================================  =====

A parser that crashes on a file would crash on every redelivery too, so
retrying only delays the same answer; the file is marked ``failed`` (and the
crash logged at ERROR with its traceback) instead of leaving it ``pending``
until the dead-letter topic.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.cloud import storage
from sqlalchemy.orm import Session, sessionmaker

from extractor import metrics
from extractor.notification import Finalize, NotificationError, ObjectRef, original_filename, parse_notification
from extractor.outcomes import Outcome
from extractor.results import (
    ResultStatus,
    existing_status,
    is_file_gone,
    recorded_filename,
    store_thumbnail,
    upsert_result,
)
from extractor.storage import ObjectGone, ObjectTooLarge, download_generation

log = logging.getLogger(__name__)

#: Longest local file name used for a download (file systems allow 255 bytes; UTF-8 takes up to 4 per char).
MAX_SPOOL_NAME_CHARS = 60

#: ``extract(path, filename)`` (extractor.metadata): an ``Extraction`` (``.metadata``
#: dict, ``.thumbnail`` with ``.png``/``.width``/``.height`` or None), or a bare metadata dict.
ExtractFn = Callable[[Path, str], Any]


@dataclass(frozen=True)
class Handled:
    """The outcome of one delivery, with a one-line ``detail`` for the log."""

    outcome: Outcome
    detail: str
    ref: ObjectRef | None = None


def spool_name(filename: str) -> str:
    """A safe local file name for the download of ``filename``: its last path segment, NUL-free,
    at most ``MAX_SPOOL_NAME_CHARS`` characters (keeping the ending), never empty, ``.`` or ``..``.

    The spooled file carries the upload's name so that parsers and their
    messages see the name the user knows, not a temp name.
    """
    base = filename.replace("\\", "/").rsplit("/", 1)[-1].replace("\x00", "")
    if base in ("", ".", ".."):
        return "upload"
    return base[-MAX_SPOOL_NAME_CHARS:]


def load_metadata_extractor() -> tuple[ExtractFn, type[Exception]]:
    """``(extract, ExtractionError)`` from ``extractor.metadata``, imported on first use."""
    from extractor.metadata import ExtractionError, extract

    return extract, ExtractionError


class NotificationHandler:
    """Handles GCS finalize notifications for one uploads bucket.

    Args:
        bucket: the uploads bucket; notifications for other buckets are ignored.
        session_factory: a ``sessionmaker`` for the pipeline database.
        storage_client: a ``google.cloud.storage.Client``.
        max_download_bytes: objects above this many bytes are marked ``failed``.
        gcs_timeout_seconds: per-request timeout (and retry budget) of GCS calls.
        extract: ``extract`` (see ``ExtractFn``) and its ``ExtractionError`` class;
            default: ``extractor.metadata``'s, imported on first use.
        tmp_dir: where downloads are spooled (default: the system temp dir).
    """

    def __init__(
        self,
        *,
        bucket: str,
        session_factory: sessionmaker[Session],
        storage_client: storage.Client,
        max_download_bytes: int,
        gcs_timeout_seconds: float,
        extract: tuple[ExtractFn, type[Exception]] | None = None,
        tmp_dir: Path | None = None,
    ) -> None:
        self.bucket = bucket
        self._sessions = session_factory
        self._storage = storage_client
        self._max_download_bytes = max_download_bytes
        self._gcs_timeout = gcs_timeout_seconds
        self._extract = extract
        self._tmp_dir = tmp_dir

    def _extractor(self) -> tuple[ExtractFn, type[Exception]]:
        if self._extract is None:
            self._extract = load_metadata_extractor()
        return self._extract

    def handle(self, attributes: Mapping[str, str], data: bytes, delivery_attempt: int | None = None) -> Handled:
        """Handle one message; returns an acking outcome or raises for a nack.

        Args:
            attributes: the Pub/Sub message attributes.
            data: the message data (the object resource as JSON).
            delivery_attempt: Pub/Sub's delivery attempt (set when the
                subscription has a dead-letter policy), stored as ``attempts``.

        Raises:
            Exception: a transient fault (database, GCS, network) or a bug
                outside the parser: the caller nacks the message.
        """
        try:
            event = parse_notification(attributes, data)
        except NotificationError as exc:
            return Handled(Outcome.INVALID, f"not a GCS notification: {exc}")
        if not isinstance(event, Finalize):
            return Handled(Outcome.IGNORED, f"{event.event_type} events are not processed", event.ref)
        ref = event.ref
        if ref.bucket != self.bucket:
            return Handled(Outcome.IGNORED, f"bucket {ref.bucket!r} is not the uploads bucket {self.bucket!r}", ref)
        try:
            fallback_name = original_filename(ref.name)
        except NotificationError as exc:
            return Handled(Outcome.INVALID, str(exc), ref)

        attempts = max(1, delivery_attempt or 1)
        with self._sessions() as session:
            if existing_status(session, ref) == ResultStatus.PROCESSED.value:
                return Handled(Outcome.DUPLICATE, "already processed; nothing changed", ref)
            filename = recorded_filename(session, ref)
        if filename is None:
            # Results reference their file (ON DELETE CASCADE): none can be stored for this object.
            return Handled(Outcome.GONE, "no file owns this object (deleted, or not uploaded through files-api)", ref)
        filename = filename or fallback_name

        extract, extraction_error = self._extractor()
        with tempfile.TemporaryDirectory(prefix="extractor-", dir=self._tmp_dir) as spool_dir:
            spool_path = Path(spool_dir) / spool_name(filename)
            try:
                with spool_path.open("xb") as spool:
                    size = download_generation(
                        self._storage,
                        ref,
                        spool,
                        max_bytes=self._max_download_bytes,
                        timeout_seconds=self._gcs_timeout,
                        expected_size=event.size,
                    )
            except ObjectGone as exc:
                return Handled(Outcome.GONE, f"object generation gone before extraction: {exc}", ref)
            except ObjectTooLarge as exc:
                return self._record_failed(ref, f"file too large to extract: {exc}", attempts)
            metrics.DOWNLOAD_BYTES.inc(size)

            started = time.monotonic()
            try:
                extracted = extract(spool_path, filename)
            except extraction_error as exc:
                reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
                return self._record_failed(ref, reason, attempts)
            except (MemoryError, OSError):
                raise  # resource trouble on this pod: another attempt (maybe elsewhere) may succeed
            except Exception as exc:  # noqa: BLE001 - a parser bug must not become a poison message
                log.exception(
                    "metadata extraction crashed on %s (%s); recording it as failed", ref, filename,
                    extra={"object": str(ref), "upload_filename": filename},
                )
                return self._record_failed(
                    ref, f"internal error while reading {filename!r} ({type(exc).__name__}); reported to the operators",
                    attempts,
                )
            parse_seconds = time.monotonic() - started

        metadata = getattr(extracted, "metadata", extracted)
        thumbnail = getattr(extracted, "thumbnail", None)
        if not isinstance(metadata, dict):
            log.error("the extractor returned %s, not metadata, for %s", type(metadata).__name__, ref)
            return self._record_failed(ref, "internal error: the parser returned no metadata", attempts)
        try:
            with self._sessions.begin() as session:
                changed = upsert_result(session, ref, ResultStatus.PROCESSED, metadata=metadata, attempts=attempts)
                if changed and thumbnail is not None:
                    # same transaction: a processed file never lacks the thumbnail its metadata names
                    store_thumbnail(session, ref, thumbnail.png, thumbnail.width, thumbnail.height)
        except TypeError as exc:  # metadata with no JSON form: a parser bug, deterministic
            log.error("metadata of %s cannot be stored: %s", ref, exc)
            return self._record_failed(ref, f"internal error: metadata cannot be stored ({exc})", attempts)
        except Exception as exc:
            if is_file_gone(exc):
                return Handled(Outcome.GONE, "the file was deleted while it was being extracted", ref)
            raise
        return Handled(
            Outcome.PROCESSED,
            f"{size} bytes parsed in {parse_seconds:.3f}s" + ("" if changed else " (stored result kept)"),
            ref,
        )

    def _record_failed(self, ref: ObjectRef, reason: str, attempts: int) -> Handled:
        try:
            with self._sessions.begin() as session:
                changed = upsert_result(session, ref, ResultStatus.FAILED, error=reason, attempts=attempts)
        except Exception as exc:
            if is_file_gone(exc):
                return Handled(Outcome.GONE, "the file was deleted while it was being extracted", ref)
            raise
        return Handled(Outcome.FAILED, reason + ("" if changed else " (stored result kept)"), ref)
