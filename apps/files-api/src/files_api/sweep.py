"""``files-api-sweep``: remove uploads a crashed process left half-done.

An upload inserts its row (``generation`` NULL), stores the object, then sets
the generation; a failure in between is undone on the spot. Only a process
that dies mid-upload (OOM kill, node loss) leaves a row without generation --
invisible to the API -- and maybe its object. This command deletes such rows
older than ``--older-than-seconds`` (default 6 h, far beyond any upload) and
their objects. Safe to run repeatedly and concurrently (each row is claimed
with ``FOR UPDATE SKIP LOCKED``). It runs as the chart's ``files-api-sweep``
CronJob (files-api's image, environment and service account: the rights of
the API's own DELETE) and, with ``--every SECONDS``, as a loop in the local
platform; each round logs ``sweep done`` with ``removed`` (infra/monitoring.py
counts ``removed unfinished upload`` lines as a log-based metric).

It also removes *orphan objects*: objects under ``files/`` older than the
same age that no ``files`` row names (a failed upload whose object could not
be deleted during a storage outage; ``_undo`` logs it). files-api writes the
row before the object and deletes the object before committing a row's
deletion, so an object that old without a row is nobody's. This scans the
bucket's listing (``list_blobs``, paged), one ``SELECT`` per page.

Results whose file is gone need no sweep: ``extraction_results`` references
``files`` with ``ON DELETE CASCADE`` (pipeline-core migration
``0003_results_reference_files``), so deleting a row here deletes its results too.

Exit codes: 0 done (prints how many were removed); 1 failure; 2 bad settings.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from datetime import timedelta

from datetime import datetime, timezone

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from pipeline_core.db import make_engine, make_session_factory
from pipeline_core.log import configure_logging
from pipeline_core.models import File
from pipeline_core.settings import SettingsError

from .settings import load
from .storage import UploadsBucket, make_client

log = logging.getLogger("files_api.sweep")
DEFAULT_AGE = timedelta(hours=6)


def sweep_unfinished(sessions: sessionmaker[Session], bucket: UploadsBucket, older_than: timedelta = DEFAULT_AGE,
                     *, batch: int = 100) -> int:
    """Delete unfinished upload rows created more than ``older_than`` ago, and their objects.

    Returns how many rows were removed.

    Raises:
        files_api.storage.StorageUnavailable: deleting an object failed (its row is kept).
    """
    removed = 0
    while True:
        with sessions() as session:
            rows = session.execute(
                select(File.id, File.object_name)
                .where(File.generation.is_(None), File.created_at < func.now() - older_than)
                .order_by(File.created_at).limit(batch).with_for_update(skip_locked=True)
            ).all()
            if not rows:
                return removed
            for file_id, object_name in rows:
                existed = bucket.delete(object_name)
                session.execute(delete(File).where(File.id == file_id))
                log.info("removed unfinished upload", extra={"file_id": str(file_id), "object_name": object_name,
                                                             "object_existed": existed})
            session.commit()
            removed += len(rows)


#: Object names files-api writes (``files/<id>/<name>``, repository.object_name_for).
OBJECT_PREFIX = "files/"


def sweep_orphan_objects(sessions: sessionmaker[Session], bucket: UploadsBucket, older_than: timedelta = DEFAULT_AGE,
                         *, page_size: int = 500) -> int:
    """Delete objects under ``files/`` created more than ``older_than`` ago that no ``files`` row names.

    Returns how many objects were removed.

    Raises:
        files_api.storage.StorageUnavailable: listing or deleting failed.
    """
    from google.api_core import exceptions as gexc

    from .storage import StorageUnavailable

    cutoff = datetime.now(timezone.utc) - older_than
    removed = 0
    try:
        pages = bucket.client.list_blobs(bucket.name, prefix=OBJECT_PREFIX, page_size=page_size,
                                         timeout=bucket.timeout).pages
        for page in pages:
            old = {blob.name: blob.generation for blob in page
                   if blob.time_created is not None and blob.time_created < cutoff}
            if not old:
                continue
            with sessions() as session:
                owned = set(session.scalars(select(File.object_name).where(
                    File.bucket == bucket.name, File.object_name.in_(list(old)))))
            for name, generation in old.items():
                if name in owned:
                    continue
                existed = bucket.delete(name, generation)
                removed += int(existed)
                log.info("removed orphan object", extra={"object_name": name, "generation": generation,
                                                         "object_existed": existed})
    except gexc.GoogleAPIError as exc:
        raise StorageUnavailable(f"listing gs://{bucket.name}/{OBJECT_PREFIX} failed: {exc}") from exc
    return removed


def main(argv: list[str] | None = None) -> int:
    """Console entry point; settings from the environment like the service."""
    parser = argparse.ArgumentParser(prog="files-api-sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("--older-than-seconds", type=float, default=DEFAULT_AGE.total_seconds())
    parser.add_argument("--every", type=float, default=None, metavar="SECONDS",
                        help="sweep again every SECONDS until SIGTERM/SIGINT (the local platform); default: once")
    args = parser.parse_args(argv)
    try:
        settings = load()
    except SettingsError as exc:
        configure_logging("INFO")
        log.error(str(exc))
        return 2
    configure_logging(settings.log_level)
    engine = make_engine(settings.database_url)
    bucket = UploadsBucket(make_client(settings), settings.uploads_bucket,
                           chunk_bytes=settings.upload_chunk_bytes, timeout=settings.storage_timeout_seconds)
    stop = threading.Event()
    if args.every is not None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    sessions = make_session_factory(engine)
    code = 0
    try:
        while True:
            try:
                age = timedelta(seconds=args.older_than_seconds)
                count = sweep_unfinished(sessions, bucket, age)
                objects = sweep_orphan_objects(sessions, bucket, age)
                log.info("sweep done", extra={"removed": count, "orphan_objects_removed": objects,
                                              "older_than_seconds": args.older_than_seconds})
                code = 0
            except Exception:
                log.exception("sweep failed")
                code = 1
            if args.every is None or stop.wait(args.every):
                return code
    finally:
        engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
