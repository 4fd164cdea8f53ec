"""The one-shot setup of a local run, as the ``bootstrap`` Procfile process.

Once the backends answer, it creates on them what the Pulumi program creates
for the stack, with the same names and settings (``infra.settings``), then
lets the dependent processes start (``stages``):

1. Postgres: the stack's database (``names.database_name``), Alembic
   migrations to head (``pipeline_core.migrate.upgrade``, the command the
   chart's migration hook runs);
2. Pub/Sub emulator: the uploads topic, the dead-letter topic, the extractor
   subscription (ack deadline, retention, retry backoff, dead-letter policy
   with max delivery attempts, from ``StackSettings.pubsub``) and the
   dead-letter inspection subscription (ack deadline, retention as ``infra.pubsub``) ->
   stage ``pubsub`` (fake-gcs-server may start: its notification topic exists);
3. fake-gcs-server: the uploads bucket -> stage ``services``;
4. files-api and extractor ``/readyz`` -> stage ``ready``; prints the URLs.

Every step is idempotent (existing resources are kept, so data survives a
restart). The process then stays up and watches the emulator
(``Bootstrap.watch``): the emulator keeps topics and subscriptions in memory
only, so when it comes back after a crash or restart (the supervisor restarts
it) they are created again within ``WATCH_PERIOD_SECONDS``. A failed step
exits with status 1, which ends the run (the supervisor's ``fatal`` rule).
"""

from __future__ import annotations

import logging
import signal
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from infra.pubsub import DEAD_LETTER_ACK_DEADLINE_SECONDS, DEAD_LETTER_RETENTION

from . import stages
from .config import LocalConfig

log = logging.getLogger("localdev.bootstrap")

#: How often the emulator is checked for its topics after setup, seconds.
WATCH_PERIOD_SECONDS = 1.0


class BootstrapError(RuntimeError):
    """A setup step failed or a backend never answered; the message names the step and the backend."""


def _wait(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise BootstrapError(f"{what} did not answer within {timeout:g}s; see its log lines above")
        time.sleep(0.3)


def subscription_body(cfg: LocalConfig) -> dict[str, Any]:
    """The extractor subscription as a Pub/Sub REST ``Subscription`` (minus ``topic``), from ``StackSettings.pubsub``.

    Fields as in https://cloud.google.com/pubsub/docs/reference/rest/v1/projects.subscriptions
    and as ``infra.pubsub.PubSub`` sets them: ``ackDeadlineSeconds``,
    ``messageRetentionDuration``, ``retryPolicy`` (``minimumBackoff``,
    ``maximumBackoff``), ``deadLetterPolicy`` (``deadLetterTopic``,
    ``maxDeliveryAttempts``). Expiration "never" is the emulator's default.
    """
    ps = cfg.stack.pubsub
    return {
        "ack_deadline_seconds": ps.ack_deadline_seconds,
        "message_retention_duration": ps.message_retention_duration,
        "retry_policy": {"minimumBackoff": ps.minimum_backoff, "maximumBackoff": ps.maximum_backoff},
        "dead_letter_policy": {
            "deadLetterTopic": f"projects/{cfg.project}/topics/{cfg.stack.names.dead_letter_topic}",
            "maxDeliveryAttempts": ps.max_delivery_attempts,
        },
    }


def dead_letter_subscription_body() -> dict[str, Any]:
    """The dead-letter inspection subscription's fields, the constants ``infra.pubsub.PubSub`` uses."""
    return {"ack_deadline_seconds": DEAD_LETTER_ACK_DEADLINE_SECONDS, "message_retention_duration": DEAD_LETTER_RETENTION}


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


class Bootstrap:
    """The setup steps of one run (``run()`` does them all, in order).

    Args:
        cfg: the resolved ``LocalConfig``.
        run_id: this run's ``LOCALDEV_RUN_ID`` (stage markers carry it).
        timeout: seconds each backend or service may take to answer.
    """

    def __init__(self, cfg: LocalConfig, run_id: str, *, timeout: float = 180.0) -> None:
        from tools.devstack import FakeGcsServer, PostgresServer, PubSubEmulator

        self.cfg = cfg
        self.run_id = run_id
        self.timeout = timeout
        ports = cfg.ports
        # Client-side handles on the backends the Procfile runs (not started from here).
        self.postgres = PostgresServer(port=ports["PG_PORT"], data_dir=cfg.backend_dir("postgres"))
        self.pubsub = PubSubEmulator(project=cfg.project, port=ports["PUBSUB_PORT"], data_dir=cfg.backend_dir("pubsub"))
        self.gcs = FakeGcsServer(port=ports["GCS_PORT"], data_dir=cfg.backend_dir("gcs"), backend="filesystem",
                                 pubsub=self.pubsub, topic=cfg.stack.names.uploads_topic)

    def database(self) -> str:
        """Create the stack's database if missing and migrate it to head; return its URL."""
        from pipeline_core.migrate import upgrade

        _wait(f"PostgreSQL on port {self.cfg.ports['PG_PORT']}", self.postgres.is_ready, self.timeout)
        url = self.postgres.create_database(self.cfg.stack.names.database_name)
        upgrade(url, wait_seconds=30)
        log.info("database %s migrated to head", self.cfg.stack.names.database_name)
        return url

    def topics(self) -> None:
        """Create the topics and subscriptions (idempotent) as the stack has them."""
        names = self.cfg.stack.names
        _wait(f"the Pub/Sub emulator on port {self.cfg.ports['PUBSUB_PORT']}", self.pubsub.is_ready, self.timeout)
        self.pubsub.create_topic(names.uploads_topic)
        self.pubsub.create_topic(names.dead_letter_topic)
        self.pubsub.create_subscription(names.uploads_topic, names.extractor_subscription, **subscription_body(self.cfg))
        self.pubsub.create_subscription(names.dead_letter_topic, names.dead_letter_subscription,
                                        **dead_letter_subscription_body())
        log.info("topics %s, %s and subscriptions %s, %s ready", names.uploads_topic, names.dead_letter_topic,
                 names.extractor_subscription, names.dead_letter_subscription)

    def bucket(self) -> None:
        """Create the uploads bucket (idempotent) once fake-gcs-server answers."""
        _wait(f"fake-gcs-server on port {self.cfg.ports['GCS_PORT']}", self.gcs.is_ready, self.timeout)
        self.gcs.create_bucket(self.cfg.stack.names.uploads_bucket)
        log.info("bucket %s ready", self.cfg.stack.names.uploads_bucket)

    def services(self) -> None:
        """Wait until files-api and the extractor answer ``/readyz`` with 200."""
        _wait(f"files-api on {self.cfg.files_api_ops_url}/readyz",
              lambda: _http_ok(f"{self.cfg.files_api_ops_url}/readyz"), self.timeout)
        _wait(f"the extractor on {self.cfg.extractor_url}/readyz",
              lambda: _http_ok(f"{self.cfg.extractor_url}/readyz"), self.timeout)

    def topics_present(self) -> bool | None:
        """True when the emulator has the extractor subscription, False when it answers without it,
        None when it does not answer (down or restarting)."""
        if not self.pubsub.is_ready():
            return None
        path = f"projects/{self.cfg.project}/subscriptions/{self.cfg.stack.names.extractor_subscription}"
        try:
            with urllib.request.urlopen(f"http://{self.cfg.pubsub_host}/v1/{path}", timeout=2) as resp:
                return resp.status == 200
        except urllib.error.HTTPError as exc:
            return False if exc.code == 404 else None
        except (urllib.error.URLError, OSError):
            return None

    def watch(self, stop: Callable[[], bool], period: float = WATCH_PERIOD_SECONDS) -> None:
        """Until ``stop()``: recreate the topics and subscriptions whenever the emulator answers without them."""
        while not stop():
            if self.topics_present() is False:
                log.warning("the Pub/Sub emulator came back without its topics (restarted): creating them again")
                try:
                    self.topics()
                except Exception as exc:  # noqa: BLE001 - try again next period
                    log.warning("recreating the topics failed, retrying: %s", exc)
            time.sleep(period)

    def run(self) -> None:
        """All steps in order, marking the stages. Raises ``BootstrapError`` / the backend's error."""
        run_dir = self.cfg.run_dir
        self.database()
        self.topics()
        stages.mark(run_dir, "pubsub", self.run_id)
        self.bucket()
        stages.mark(run_dir, "services", self.run_id)
        self.services()
        stages.mark(run_dir, "ready", self.run_id)


def banner(cfg: LocalConfig) -> str:
    """The lines printed once everything is ready: URLs, backends, data folder, how to stop."""
    names = cfg.stack.names
    rows = [
        ("web page", f"{cfg.files_api_url}/"),
        ("API docs", f"{cfg.files_api_url}/docs   (OpenAPI: {cfg.files_api_url}/openapi.json)"),
        ("files-api ops", f"{cfg.files_api_ops_url}/readyz   (metrics: {cfg.files_api_ops_url}/metrics)"),
        ("extractor", f"{cfg.extractor_url}/readyz   (metrics: {cfg.extractor_url}/metrics)"),
        ("Postgres", cfg.database_url),
        ("Pub/Sub", f"PUBSUB_EMULATOR_HOST={cfg.pubsub_host}  topic {names.uploads_topic} -> "
                    f"subscription {names.extractor_subscription}, dead letters -> {names.dead_letter_topic}"),
        ("GCS", f"STORAGE_EMULATOR_HOST={cfg.storage_host}  bucket {names.uploads_bucket}"),
        ("data", f"{cfg.data_dir}  (kept across restarts; make dev-reset wipes it)"),
    ]
    width = max(len(label) for label, _ in rows)
    lines = [f"print-platform is running locally with the {cfg.stack.stack!r} stack's names (project {cfg.project}):"]
    lines += [f"  {label:<{width}}  {value}" for label, value in rows]
    lines.append(f"  every file ends processed or failed within {cfg.final_bound_seconds}s (reconciler); "
                 f"Postgres durability: {cfg.pg_durability}")
    lines.append("  Try it: make demo    Status: make dev-status    Stop: Ctrl-C or make dev-stop")
    return "\n".join(lines)


def main(cfg: LocalConfig, run_id: str) -> int:
    """The ``bootstrap`` process: run the steps, print the banner, then idle until SIGTERM/SIGINT.

    Returns 0 after a signal, 1 when a step failed (the supervisor then stops the run).
    """
    from pipeline_core.log import configure_logging

    configure_logging(cfg.log_level or "INFO")
    # Alembic announces each of its plugins at INFO; its migration lines stay.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)

    def _stop(_signum: int, _frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    started = time.monotonic()
    boot = Bootstrap(cfg, run_id)
    try:
        boot.run()
    except SystemExit:
        return 0
    except Exception as exc:  # noqa: BLE001 - any failure ends the run with its reason
        log.error("bootstrap failed: %s", exc, exc_info=not isinstance(exc, BootstrapError))
        return 1
    log.info("local platform ready in %.1fs", time.monotonic() - started,
             extra={"localdev": cfg.describe()})
    sys.stdout.write("\n" + banner(cfg) + "\n\n")
    sys.stdout.flush()
    try:
        boot.watch(lambda: False)
    except SystemExit:
        return 0
    return 0
