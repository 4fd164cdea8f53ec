"""Operational endpoints: /healthz (liveness), /readyz (readiness), /metrics."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from flask import Blueprint, Response, current_app, jsonify

from . import metrics, repository
from .problems import problem_response

log = logging.getLogger("files_api.ops")
bp = Blueprint("ops", __name__)
_probe_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="readyz")


@bp.get("/healthz")
def healthz() -> Response:
    """Liveness: the process serves requests. Touches no dependency."""
    return jsonify(status="ok")


def _check_database() -> None:
    state = current_app.extensions["files_api"]
    with state.sessions() as session:
        repository.ping(session)


def _timed(fn: Any, *args: Any, timeout: float) -> str | None:
    """Run ``fn`` with a hard wall-clock bound; None if fine, else the reason."""
    start = time.monotonic()
    future = _probe_pool.submit(fn, *args)
    try:
        future.result(timeout=timeout)
        return None
    except FutureTimeout:
        return f"no answer within {timeout:g}s"
    except Exception as exc:  # the probe reports, never raises
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
    finally:
        log.debug("probe", extra={"probe": getattr(fn, "__name__", "?"), "seconds": time.monotonic() - start})


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Readiness: the database answers, the bucket is reachable and (with ``UPLOADS_TOPIC``) the
    bucket's notifications reach the uploads topic, each within the bound.

    200 ``{"status": "ok", "checks": {"database": "ok", "bucket": "ok"}}``, or a
    503 problem whose ``checks`` member says ``"failing"`` for each failing
    dependency. Why it fails (hosts, ports, driver errors, URLs) goes to the log
    only: the probe is reachable by whoever reaches the service.
    """
    state = current_app.extensions["files_api"]
    timeout = state.settings.readiness_timeout_seconds
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def db() -> None:
        with app.app_context():
            _check_database()

    checks = {
        "database": _timed(db, timeout=timeout),
        "bucket": _timed(state.bucket.check, timeout, timeout=timeout),
    }
    if state.notifications is not None:  # bucket -> uploads topic (files_api.notifications)
        checks["notifications"] = _timed(state.notifications.check, timeout, timeout=timeout)
    failed = {k: v for k, v in checks.items() if v}
    report = {k: ("failing" if v else "ok") for k, v in checks.items()}
    if failed:
        log.warning("not ready", extra={"checks": failed})
        detail = f"not ready: {', '.join(failed)} failing (the reason is in the service's log)"
        return problem_response(503, detail, checks=report), 503
    return jsonify(status="ok", checks=report), 200


@bp.get("/metrics")
def metrics_endpoint() -> Response:
    """Prometheus text exposition."""
    payload, content_type = metrics.render()
    return Response(payload, mimetype=content_type.split(";")[0], headers={"Content-Type": content_type})
