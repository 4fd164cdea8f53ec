"""gunicorn configuration of the extractor (the image and local runs use this same file).

Run: ``gunicorn -c python:extractor.gunicorn_conf`` (no other arguments).

One gunicorn worker process serves the health/metrics app and runs the
Pub/Sub streaming pull in background threads:

- ``post_worker_init`` starts the pull once the worker has booted;
- on SIGTERM (Kubernetes stop) the master forwards SIGTERM to the worker,
  whose HTTP loop ends; ``worker_exit`` then stops pulling and drains
  in-flight messages for up to ``DRAIN_TIMEOUT_SECONDS`` (default 25 s),
  nacking what is left; ``worker_int`` does the same on SIGINT/SIGQUIT;
- ``graceful_timeout`` = drain timeout + 5 s (default 30 s; the chart passes
  the same number as ``GUNICORN_CMD_ARGS=--graceful-timeout``), so gunicorn
  never kills a worker that is still draining (``on_starting`` refuses a
  configuration where it would); the pod's ``terminationGracePeriodSeconds``
  (the chart: 45 s) exceeds both.

``workers = 1`` on purpose: concurrency is bounded by Pub/Sub
``FlowControl`` (``MAX_MESSAGES`` leased messages, each on its own
thread), not by process count; a second process would double the leases
and database connections behind the operator's back, and Prometheus
metrics would need multiprocess mode. Scale with replicas instead.

The environment is validated here, in the master, so a bad variable stops
the container at once with a message naming it.
"""

from __future__ import annotations

import logging
import os
import sys

from extractor.config import load_extractor_settings
from pipeline_core.log import configure_logging

_settings = load_extractor_settings()
configure_logging(_settings.log_level)

wsgi_app = "extractor.app:create_app()"
bind = [f"0.0.0.0:{_settings.port}"]
workers = 1
worker_class = "gthread"
threads = 2
timeout = 30
graceful_timeout = _settings.graceful_timeout_seconds
keepalive = 5
loglevel = _settings.log_level.lower()
# The heartbeat file on tmpfs (gunicorn docs, "Blocking OS calls" / worker_tmp_dir).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# gunicorn's own log lines as JSON too (gunicorn applies this with logging.config.dictConfig,
# replacing its defaults key by key, so every key is given). Access lines are dropped: the
# only clients are probes and Prometheus.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "pipeline_core.log.make_formatter"}},  # JSON unless LOG_FORMAT=text
    "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}},
    "root": {"level": _settings.log_level, "handlers": ["stdout"]},
    "loggers": {
        "gunicorn.error": {"level": _settings.log_level, "handlers": [], "propagate": True},
        "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
    },
}


def _service(worker):
    """The worker's ``ExtractorService``, or None when the app never loaded (boot failure)."""
    from extractor.app import service_of

    wsgi = getattr(worker, "wsgi", None)
    return service_of(wsgi) if wsgi is not None else None


def on_starting(server) -> None:
    """Refuse to start when gunicorn would kill the worker before its drain ends.

    ``graceful_timeout`` may come from here or from ``GUNICORN_CMD_ARGS``
    (the chart sets ``--graceful-timeout``), which gunicorn applies after this
    file, so the check runs once the final configuration is known.

    Raises:
        RuntimeError: ``graceful_timeout`` <= ``DRAIN_TIMEOUT_SECONDS``; names both.
    """
    if server.cfg.graceful_timeout <= _settings.drain_timeout_seconds:
        raise RuntimeError(
            f"gunicorn graceful_timeout ({server.cfg.graceful_timeout} s) must exceed DRAIN_TIMEOUT_SECONDS "
            f"({_settings.drain_timeout_seconds} s), or in-flight messages are killed mid-drain"
        )
    if server.cfg.workers != 1:
        raise RuntimeError(f"the extractor runs exactly 1 gunicorn worker (got {server.cfg.workers}); scale with replicas")


def post_worker_init(worker) -> None:
    """Start the streaming pull in the freshly booted worker process."""
    _service(worker).start()


def _drain(worker) -> None:
    service = _service(worker)
    if service is None:
        return
    drained = service.stop()
    if not drained:
        # Callbacks still running would keep the interpreter alive (executor
        # threads are joined at exit); their messages are nacked already.
        logging.getLogger("extractor.gunicorn").warning("exiting with unfinished messages (nacked)")
        logging.shutdown()
        sys.stdout.flush()
        os._exit(0)


def worker_int(worker) -> None:
    """SIGINT/SIGQUIT in the worker: stop pulling and drain."""
    _drain(worker)


def worker_exit(server, worker) -> None:
    """The worker is exiting (SIGTERM, or after ``worker_int``): stop pulling and drain (idempotent)."""
    _drain(worker)
