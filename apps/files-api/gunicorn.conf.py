"""gunicorn settings of files-api (https://docs.gunicorn.org/en/stable/settings.html).

Run: ``gunicorn -c apps/files-api/gunicorn.conf.py files_api.wsgi:app``
(the container's CMD does the same with /app/gunicorn.conf.py).

Workers are ``gthread`` (``files_api.gunicorn_worker.DrainingThreadWorker``): uploads and downloads are I/O-bound streams, so a few
processes with threads each serve many slow clients. Every knob can be
overridden with the usual ``GUNICORN_CMD_ARGS`` or the variables below.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile

import gunicorn.util

from files_api.settings import DEFAULT_OPS_PORT, DEFAULT_PORT

# Two listeners (files_api.listeners): PORT, the public one behind the load balancer, and
# OPS_PORT, which only the cluster reaches (probes, /readyz details, /metrics). HOST=127.0.0.1
# for local runs; in the pod it listens on all interfaces.
_host = os.environ.get("HOST", "0.0.0.0")
_port = int(os.environ.get("PORT", DEFAULT_PORT))
_ops_port = int(os.environ.get("OPS_PORT", DEFAULT_OPS_PORT))
if _ops_port == _port:
    raise RuntimeError(f"OPS_PORT ({_ops_port}) must differ from PORT ({_port}): "
                       "/readyz and /metrics need a listener the load balancer never reaches")
bind = [f"{_host}:{_port}", f"{_host}:{_ops_port}"]
wsgi_app = "files_api.wsgi:app"
# gthread, stopped by draining kept-alive connections instead of dropping them (max_requests
# recycling and SIGTERM lost in-flight requests): see files_api.gunicorn_worker.
worker_class = "files_api.gunicorn_worker.DrainingThreadWorker"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
# Long enough for a 256 MiB upload over a slow link; a stuck worker is still recycled.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "300"))
graceful_timeout = 30
# Above the Google Cloud load balancer's 600 s backend keep-alive, so the LB never reuses a
# connection we just closed (https://cloud.google.com/load-balancing/docs/https#timeouts_and_retries).
keepalive = 620
max_requests = 2000
max_requests_jitter = 200
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "*")  # behind the LB / Gateway only
accesslog = None  # the app logs each request as JSON (with request id and latency)
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "pipeline_core.log.make_formatter"}},  # JSON unless LOG_FORMAT=text
    "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}},
    "root": {"handlers": ["stdout"], "level": loglevel.upper()},
    "loggers": {
        "gunicorn.error": {"handlers": ["stdout"], "level": loglevel.upper(), "propagate": False},
        "gunicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
    },
}


def _problem_error(sock, status_int: int, reason: str, mesg: str) -> None:  # noqa: ANN001
    """gunicorn's own error answers (malformed request line, headers above ``limit_request_*``, ...)
    as RFC 9457 problem details too, instead of its HTML page: they never reach the Flask app."""
    body = json.dumps({"type": "about:blank", "title": reason, "status": status_int,
                       "detail": mesg or reason}).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
            f"Content-Type: application/problem+json\r\nContent-Length: {len(body)}\r\n\r\n")
    gunicorn.util.write_nonblock(sock, head.encode("latin1") + body)


# gunicorn.workers.base.Worker.handle_error calls util.write_error at error time.
gunicorn.util.write_error = _problem_error


def on_starting(server) -> None:  # noqa: ANN001  (gunicorn hook)
    """Give prometheus_client a fresh per-run directory so all workers' metrics are summed."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        path = tempfile.mkdtemp(prefix="files-api-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
        server._metrics_dir = path  # noqa: SLF001
    # Imported here, once, in the master and after the directory is set (prometheus_client picks
    # its multiprocess value class at import): importing it lazily in child_exit raced with itself
    # when several recycled workers exited at once (SIGCHLD re-entered a half-done import).
    from prometheus_client import multiprocess

    server._prometheus_multiprocess = multiprocess  # noqa: SLF001


def child_exit(server, worker) -> None:  # noqa: ANN001
    """Drop a dead worker's live gauges (prometheus_client multiprocess mode)."""
    multiprocess = getattr(server, "_prometheus_multiprocess", None)
    if multiprocess is not None:
        multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:  # noqa: ANN001
    path = getattr(server, "_metrics_dir", None)
    if path:
        shutil.rmtree(path, ignore_errors=True)
