"""``extractor-reconcile``: every file answered 201 ends ``processed`` or ``failed`` within a bound.

Pub/Sub delivers at least once *while the message exists*; a notification can
still be lost: past its retention, dead-lettered and never re-driven, eaten by
a stale emulator stream, dropped with a deleted notification config. The
reconciler closes that gap from the database side:

- ``pending`` (default): a stored file (``generation`` set) without a result
  for that generation whose upload finished - or whose last re-drive was -
  more than ``PENDING_BOUND_SECONDS`` ago is *re-driven*: its notification
  is published again to the uploads topic, exactly as Cloud Storage
  publishes it (``notification_message``: attributes ``eventType``,
  ``bucketId``, ``objectId``, ``objectGeneration``, ``payloadFormat``,
  ``eventTime``; data = the object resource of that generation from the JSON
  API). The extractor's upsert key (bucket, object, generation) makes a
  duplicate harmless. After ``MAX_REDRIVES`` re-drives without a result the
  file is marked ``failed`` with a reason saying so; if its object generation
  is gone it is marked ``failed`` at once.
- ``dead-letters``: pull every message from the dead-letter subscription
  (``DEAD_LETTER_SUBSCRIPTION``), publish it again to the uploads topic
  (without the attributes Pub/Sub adds when dead-lettering), then ack it.
  Run on request, after the cause is fixed (``make redrive`` locally; in the
  cloud ``kubectl create job --from=cronjob/extractor-redrive ...``, docs/extractor.md).

Why in the extractor package: the notification format is the extractor's
input contract (``extractor.notification`` parses it), and the package has the
Pub/Sub and Storage clients; the reconciler still runs under its own Google
service account (infra/iam.py ``reconciler``: publisher on the uploads topic,
subscriber on the dead-letter subscription, object viewer on the bucket, its
Cloud SQL IAM user), as a CronJob of the extractor release.

Rows are claimed with ``FOR UPDATE SKIP LOCKED``, so concurrent runs never
re-drive a file twice in one round. A file's ``redrive_count`` is raised only
after the publish was confirmed; a crash in between costs one duplicate
notification, never a lost one.

Exit codes: 0 done; 1 failure (logged); 2 bad settings.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from prometheus_client import Counter
from pydantic import Field
from sqlalchemy import exists, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from extractor.notification import JSON_API_V1, OBJECT_FINALIZE
from pipeline_core.models import ExtractionResult, File, FileStatus
from pipeline_core.settings import CommonSettings, SettingsError, load_settings

log = logging.getLogger("extractor.reconcile")

#: Attributes Pub/Sub adds to a message it forwards to a dead-letter topic
#: (https://cloud.google.com/pubsub/docs/handling-failures#track-delivery-attempts):
#: dropped when re-driving, so the message is again what Cloud Storage sent.
DEAD_LETTER_ATTRIBUTE_PREFIX = "CloudPubSubDeadLetter"

REDRIVES = Counter("reconciler_redrives", "Notifications of pending files published again, by reason.", ["reason"])
FAILED = Counter("reconciler_failed", "Pending files marked failed by the reconciler, by reason.", ["reason"])
DEAD_LETTERS = Counter("reconciler_dead_letters_redriven", "Dead-lettered messages published again to the uploads topic.")


class ReconcilerSettings(CommonSettings):
    """What the reconciler reads from its environment (besides ``CommonSettings``).

    Attributes (env var in capitals):
        uploads_topic: ``UPLOADS_TOPIC``, short topic id the bucket notifies (re-drives go there).
        dead_letter_subscription: ``DEAD_LETTER_SUBSCRIPTION``, short id of the
            dead-letter subscription (only ``dead-letters`` needs it).
        pending_bound_seconds: ``PENDING_BOUND_SECONDS``, how long a stored file
            may stay ``pending`` before it is re-driven (and between re-drives);
            the stack's ``reconcile.pendingBoundSeconds``.
        max_redrives: ``MAX_REDRIVES``, re-drives before the file is marked ``failed``.
        batch_size: ``RECONCILE_BATCH_SIZE``, rows claimed per transaction.
        gcs_timeout_seconds / publish_timeout_seconds: per-call bounds, seconds.
    """

    uploads_topic: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}$")
    dead_letter_subscription: str | None = Field(default=None, pattern=r"^[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}$")
    pending_bound_seconds: float = Field(default=300.0, gt=0)
    max_redrives: int = Field(default=3, ge=0, le=100)
    batch_size: int = Field(default=50, ge=1, le=1000, validation_alias="RECONCILE_BATCH_SIZE")
    gcs_timeout_seconds: float = Field(default=30.0, gt=0)
    publish_timeout_seconds: float = Field(default=30.0, gt=0)

    @property
    def topic_path(self) -> str:
        """``projects/<project>/topics/<uploads topic>``."""
        return f"projects/{self.google_cloud_project}/topics/{self.uploads_topic}"

    @property
    def dead_letter_subscription_path(self) -> str:
        """``projects/<project>/subscriptions/<dead-letter subscription>``. Raises ``SettingsError`` when unset."""
        if not self.dead_letter_subscription:
            raise SettingsError("DEAD_LETTER_SUBSCRIPTION: required to re-drive dead letters")
        return f"projects/{self.google_cloud_project}/subscriptions/{self.dead_letter_subscription}"


def notification_message(resource: Mapping[str, Any]) -> tuple[bytes, dict[str, str]]:
    """``(data, attributes)`` of the ``OBJECT_FINALIZE`` notification Cloud Storage sends for ``resource``.

    Format: https://cloud.google.com/storage/docs/pubsub-notifications
    (payload format ``JSON_API_V1``: the data is the object resource as JSON,
    https://cloud.google.com/storage/docs/json_api/v1/objects#resource).
    ``eventTime`` is the generation's creation time (RFC 3339), as for a
    finalize. ``notificationConfig`` is left out: no notification config sent it.

    Raises:
        KeyError: ``resource`` lacks ``bucket``, ``name`` or ``generation``.
    """
    attributes = {
        "eventType": OBJECT_FINALIZE,
        "payloadFormat": JSON_API_V1,
        "bucketId": str(resource["bucket"]),
        "objectId": str(resource["name"]),
        "objectGeneration": str(resource["generation"]),
    }
    event_time = resource.get("timeCreated") or resource.get("updated")
    if event_time:
        attributes["eventTime"] = str(event_time)
    return json.dumps(dict(resource), separators=(",", ":")).encode(), attributes


def object_resource(storage_client: Any, bucket: str, name: str, generation: int, *, timeout: float) -> dict[str, Any] | None:
    """The JSON API object resource of ``gs://bucket/name#generation``, or None when that generation is gone.

    Raises:
        google.api_core.exceptions.GoogleAPIError: any other failure (transient: the file waits for the next run).
    """
    blob = storage_client.bucket(bucket).get_blob(name, generation=generation, timeout=timeout)
    if blob is None:
        return None
    # Blob._properties is the resource exactly as the JSON API returned it.
    return dict(blob._properties)  # noqa: SLF001


@dataclass
class Report:
    """What one ``reconcile_pending`` round did (counts of files)."""

    redriven: int = 0
    failed_after_redrives: int = 0
    failed_object_gone: int = 0
    errors: int = 0
    oldest_pending_seconds: float | None = None
    details: list[str] = field(default_factory=list)

    def as_log(self) -> dict[str, Any]:
        """The counts as log fields (the log-based metrics of infra/monitoring.py read them)."""
        return {"redriven": self.redriven, "failed_after_redrives": self.failed_after_redrives,
                "failed_object_gone": self.failed_object_gone, "errors": self.errors,
                "oldest_pending_seconds": self.oldest_pending_seconds}


def pending_condition():
    """SQL: the file is stored and has no result for its current generation (status ``pending``)."""
    return File.generation.is_not(None) & ~exists().where(
        ExtractionResult.bucket == File.bucket,
        ExtractionResult.object_name == File.object_name,
        ExtractionResult.generation == File.generation,
    )


def oldest_pending_seconds(session: Session) -> float | None:
    """Seconds since the oldest pending file's upload finished (``files.updated_at``), or None when none is pending."""
    oldest = session.scalar(select(func.min(File.updated_at)).where(pending_condition()))
    if oldest is None:
        return None
    now = session.scalar(select(func.now()))
    return max(0.0, (now - oldest).total_seconds())


def _mark_failed(session: Session, row: File, reason: str) -> bool:
    """Insert a ``failed`` result for the row's generation unless one exists (the extractor's wins); True if written."""
    stmt = insert(ExtractionResult).values(
        bucket=row.bucket, object_name=row.object_name, generation=row.generation,
        status=FileStatus.FAILED.value, error=reason, attempts=max(1, row.redrive_count),
    ).on_conflict_do_nothing(index_elements=["bucket", "object_name", "generation"]).returning(ExtractionResult.status)
    return session.execute(stmt).first() is not None


def reconcile_pending(
    sessions: sessionmaker[Session],
    storage_client: Any,
    publisher: Any,
    settings: ReconcilerSettings,
) -> Report:
    """One round: re-drive (or fail) every file pending longer than the bound. See the module doc.

    Returns:
        A ``Report``; per-file GCS / publish faults are counted in ``errors``
        and the file waits for the next round (nothing is marked).

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the database failed.
    """
    report = Report()
    bound = settings.pending_bound_seconds
    skip: set[Any] = set()
    while True:
        with sessions() as session:
            due = func.coalesce(File.last_redriven_at, File.updated_at) < func.now() - timedelta(seconds=bound)
            query = (select(File).where(pending_condition(), due).order_by(File.updated_at)
                     .limit(settings.batch_size).with_for_update(of=File, skip_locked=True))
            if skip:
                query = query.where(File.id.not_in(skip))
            rows = session.scalars(query).all()
            if not rows:
                session.rollback()
                break
            for row in rows:
                _reconcile_one(session, row, storage_client, publisher, settings, report, skip)
            session.commit()
    with sessions() as session:
        report.oldest_pending_seconds = oldest_pending_seconds(session)
    return report


def _reconcile_one(session: Session, row: File, storage_client: Any, publisher: Any, settings: ReconcilerSettings,
                   report: Report, skip: set[Any]) -> None:
    fields = {"file_id": str(row.id), "object_name": row.object_name, "generation": row.generation,
              "redrive_count": row.redrive_count}
    bound = settings.pending_bound_seconds
    if row.redrive_count >= settings.max_redrives:
        reason = (f"no extraction result after {row.redrive_count} re-driven notification(s), "
                  f"{bound:g}s apart (the notification path lost it); upload the file again, "
                  "and tell the operators if it happens again")
        if _mark_failed(session, row, reason):
            FAILED.labels(reason="redrives_exhausted").inc()
            report.failed_after_redrives += 1
            log.warning("marked failed: re-drives exhausted", extra=fields)
        return
    try:
        resource = object_resource(storage_client, row.bucket, row.object_name, row.generation,
                                   timeout=settings.gcs_timeout_seconds)
    except Exception as exc:  # noqa: BLE001 - transient: the next round tries again
        report.errors += 1
        skip.add(row.id)
        log.warning("reading the object failed; the file waits for the next round: %s", exc, extra=fields)
        return
    if resource is None:
        reason = (f"the stored object (generation {row.generation}) is gone, so it cannot be extracted; "
                  "upload the file again")
        if _mark_failed(session, row, reason):
            FAILED.labels(reason="object_gone").inc()
            report.failed_object_gone += 1
            log.warning("marked failed: object generation gone", extra=fields)
        return
    data, attributes = notification_message(resource)
    try:
        message_id = publisher.publish(settings.topic_path, data, **attributes).result(
            timeout=settings.publish_timeout_seconds)
    except Exception as exc:  # noqa: BLE001 - transient: the next round tries again
        report.errors += 1
        skip.add(row.id)
        log.warning("publishing the notification failed; the file waits for the next round: %s", exc, extra=fields)
        return
    # updated_at stays: it is when the upload finished (the pending age is measured from it).
    session.execute(update(File).where(File.id == row.id).values(
        redrive_count=File.redrive_count + 1, last_redriven_at=func.now(), updated_at=File.updated_at))
    REDRIVES.labels(reason="pending_past_bound").inc()
    report.redriven += 1
    log.info("re-drove the notification of a pending file", extra={**fields, "pubsub_message_id": message_id})


def redrive_dead_letters(subscriber: Any, publisher: Any, settings: ReconcilerSettings, *,
                         max_messages: int = 100, limit: int | None = None) -> int:
    """Move every message of the dead-letter subscription back to the uploads topic; return how many.

    Each message is published (data and attributes, minus the
    ``CloudPubSubDeadLetter*`` ones) and acked only once the publish is
    confirmed: a crash re-drives it twice (harmless), never zero times.
    Stops when a pull returns nothing, or after ``limit`` messages.

    Raises:
        google.api_core.exceptions.GoogleAPIError: a pull, publish or ack failed
            (what was acked before stays re-driven).
    """
    from google.api_core import exceptions as api_exceptions

    subscription = settings.dead_letter_subscription_path
    moved = 0
    while limit is None or moved < limit:
        try:
            response = subscriber.pull(request={"subscription": subscription, "max_messages": max_messages},
                                       timeout=settings.publish_timeout_seconds)
        except api_exceptions.DeadlineExceeded:
            break  # nothing arrived in time: the subscription is empty
        received = response.received_messages
        if not received:
            break
        ack_ids = []
        for item in received:
            message = item.message
            attributes = {k: v for k, v in message.attributes.items() if not k.startswith(DEAD_LETTER_ATTRIBUTE_PREFIX)}
            new_id = publisher.publish(settings.topic_path, message.data, **attributes).result(
                timeout=settings.publish_timeout_seconds)
            ack_ids.append(item.ack_id)
            log.info("re-drove a dead-lettered message", extra={
                "dead_letter_message_id": message.message_id, "pubsub_message_id": new_id,
                "object_name": attributes.get("objectId"), "generation": attributes.get("objectGeneration")})
        subscriber.acknowledge(request={"subscription": subscription, "ack_ids": ack_ids},
                               timeout=settings.publish_timeout_seconds)
        DEAD_LETTERS.inc(len(ack_ids))
        moved += len(ack_ids)
    return moved


def _clients(settings: ReconcilerSettings) -> tuple[Any, Any, Any]:
    from google.cloud import pubsub_v1, storage

    return (storage.Client(project=settings.google_cloud_project), pubsub_v1.PublisherClient(),
            pubsub_v1.SubscriberClient())


def main(argv: list[str] | None = None) -> int:
    """Console entry point (``extractor-reconcile [pending|dead-letters] [--every SECONDS]``)."""
    from pipeline_core.db import make_engine, make_session_factory
    from pipeline_core.log import configure_logging

    parser = argparse.ArgumentParser(prog="extractor-reconcile", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", nargs="?", default="pending", choices=["pending", "dead-letters"])
    parser.add_argument("--every", type=float, default=None, metavar="SECONDS",
                        help="run again every SECONDS until SIGTERM/SIGINT (the local platform); default: once (CronJob)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(ReconcilerSettings)
        if args.action == "dead-letters":
            settings.dead_letter_subscription_path  # noqa: B018 - validate before connecting
    except SettingsError as exc:
        configure_logging("INFO")
        log.error(str(exc))
        return 2
    configure_logging(settings.log_level)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    engine = make_engine(settings.database_url, pool_size=2)
    storage_client, publisher, subscriber = _clients(settings)
    sessions = make_session_factory(engine)
    code = 0
    try:
        while True:
            started = time.monotonic()
            try:
                if args.action == "pending":
                    report = reconcile_pending(sessions, storage_client, publisher, settings)
                    log.info("reconcile done", extra={**report.as_log(), "seconds": round(time.monotonic() - started, 3),
                                                      "pending_bound_seconds": settings.pending_bound_seconds})
                    code = 1 if report.errors else 0
                else:
                    moved = redrive_dead_letters(subscriber, publisher, settings)
                    log.info("dead-letter re-drive done", extra={"redriven": moved})
                    code = 0
            except Exception:
                log.exception("reconcile round failed")
                code = 1
            if args.every is None or stop.wait(args.every):
                return code
    finally:
        engine.dispose()
        subscriber.close()


if __name__ == "__main__":
    sys.exit(main())
