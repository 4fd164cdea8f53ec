"""gunicorn settings of files-api (https://docs.gunicorn.org/en/stable/settings.html).

Run: ``gunicorn -c apps/files-api/gunicorn.conf.py files_api.wsgi:app``
(the container's CMD does the same with /app/gunicorn.conf.py).

Workers are ``gthread``: uploads and downloads are I/O-bound streams, so a few
processes with threads each serve many slow clients. Every knob can be
overridden with the usual ``GUNICORN_CMD_ARGS`` or the variables below.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile

import gunicorn.util

# HOST=127.0.0.1 for local runs; in the pod it listens on all interfaces.
bind = f"{os.environ.get('HOST', '0.0.0.0')}:{int(os.environ.get('PORT', '8080'))}"
wsgi_app = "files_api.wsgi:app"
worker_class = "gthread"
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


def child_exit(server, worker) -> None:  # noqa: ANN001
    """Drop a dead worker's live gauges (prometheus_client multiprocess mode)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:  # noqa: ANN001
    path = getattr(server, "_metrics_dir", None)
    if path:
        shutil.rmtree(path, ignore_errors=True)
