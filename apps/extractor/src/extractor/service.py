"""Wires the extractor together from ``ExtractorSettings``: database, GCS, Pub/Sub, worker.

One ``ExtractorService`` per process. The Flask app (``extractor.app``)
reports its health; the gunicorn hooks (``extractor.gunicorn_conf``) start it
after the worker process boots and stop it on shutdown.
"""

from __future__ import annotations

import concurrent.futures
import logging
from dataclasses import dataclass
from pathlib import Path

from google.cloud import pubsub_v1, storage
from sqlalchemy import Engine, text

from extractor.config import ExtractorSettings
from extractor.handler import ExtractFn, NotificationHandler
from extractor.worker import PullWorker, WorkerState
from pipeline_core.db import make_engine, make_session_factory

log = logging.getLogger(__name__)

#: Longest a readiness probe's database check may take, in milliseconds (wall clock).
READINESS_DB_TIMEOUT_MS = 2000
#: Runs the probes' database checks, so a hung connect cannot hold the HTTP thread past the bound.
_probe_pool = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="readyz")


@dataclass(frozen=True)
class Probe:
    """A health answer: ``ok`` and a short ``detail`` for the response body."""

    ok: bool
    detail: str


class ExtractorService:
    """The extractor's moving parts for one process.

    Args:
        settings: the validated environment.
        engine: a SQLAlchemy engine (default: ``make_engine(DATABASE_URL)``
            with a pool as large as ``MAX_MESSAGES``).
        storage_client: default ``storage.Client(project=GOOGLE_CLOUD_PROJECT)``.
        subscriber: default ``pubsub_v1.SubscriberClient()``.
        extract: ``(extract, ExtractionError)``; default ``extractor.metadata``'s.
        tmp_dir: where downloads are spooled (default: the system temp dir;
            in the container ``/tmp``, an emptyDir).
    """

    def __init__(
        self,
        settings: ExtractorSettings,
        *,
        engine: Engine | None = None,
        storage_client: storage.Client | None = None,
        subscriber: pubsub_v1.SubscriberClient | None = None,
        extract: tuple[ExtractFn, type[Exception]] | None = None,
        tmp_dir: Path | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings.database_url, pool_size=settings.max_messages)
        self.handler = NotificationHandler(
            bucket=settings.uploads_bucket,
            session_factory=make_session_factory(self.engine),
            storage_client=storage_client or storage.Client(project=settings.google_cloud_project),
            max_download_bytes=settings.max_download_bytes,
            gcs_timeout_seconds=settings.gcs_timeout_seconds,
            extract=extract,
            tmp_dir=tmp_dir,
        )
        self.worker = PullWorker(
            subscription_path=settings.subscription_path,
            handler=self.handler,
            max_messages=settings.max_messages,
            max_bytes=settings.max_outstanding_bytes,
            max_lease_seconds=settings.max_lease_seconds,
            lease_extension_seconds=settings.lease_extension_seconds,
            max_delivery_attempts=settings.max_delivery_attempts,
            subscriber=subscriber,
        )

    def start(self) -> None:
        """Start pulling messages (background threads). Raises ``RuntimeError`` if already started."""
        self.worker.start()

    def stop(self) -> bool:
        """Stop pulling and drain within ``DRAIN_TIMEOUT_SECONDS``; True when nothing had to be nacked."""
        drained = self.worker.stop(self.settings.drain_timeout_seconds)
        self.engine.dispose()
        return drained

    def liveness(self) -> Probe:
        """Alive unless the streaming pull died by itself (then a restart is the fix)."""
        state = self.worker.state
        if state is WorkerState.FAILED:
            return Probe(False, f"streaming pull failed: {self.worker.failure!r}")
        return Probe(True, state.value)

    def _ping_database(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text(f"SET LOCAL statement_timeout = {READINESS_DB_TIMEOUT_MS}"))
            conn.execute(text("SELECT 1"))

    def readiness(self) -> Probe:
        """Ready when pulling and the database answers ``SELECT 1`` within 2 s."""
        state = self.worker.state
        if state is not WorkerState.RUNNING:
            return Probe(False, f"worker {state.value}")
        # A hard wall-clock bound: connecting alone may take CONNECT_TIMEOUT_S (5 s) when the
        # database host does not answer, longer than the kubelet's probe timeout.
        future = _probe_pool.submit(self._ping_database)
        try:
            future.result(timeout=READINESS_DB_TIMEOUT_MS / 1000)
        except concurrent.futures.TimeoutError:
            return Probe(False, f"database unreachable: no answer within {READINESS_DB_TIMEOUT_MS / 1000:g}s")
        except Exception as exc:  # noqa: BLE001 - any failure means not ready; say which
            return Probe(False, f"database unreachable: {type(exc).__name__}")
        return Probe(True, f"pulling {self.settings.uploads_subscription}, {self.worker.in_flight} in flight")
