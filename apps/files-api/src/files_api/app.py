"""The files-api Flask application factory.

``create_app()`` reads ``FilesApiSettings`` from the environment (or takes
one), connects the database engine and the uploads bucket, and registers:

- ``/v1/files`` (``api``), ``/`` (``web``), ``/healthz`` ``/readyz`` ``/metrics`` (``ops``),
  each on its listener: ``/readyz`` and ``/metrics`` only on ``OPS_PORT``, which only the
  cluster reaches; the ops port serves nothing else (``listeners``),
- ``/openapi.json`` and interactive docs at ``/docs`` (flask-smorest; Swagger UI
  assets served locally from the ``swagger-ui-bundle`` wheel),
- problem+json errors (``problems``), IAP verification (``auth``) for ``/v1``
  and ``/`` when ``IAP_AUDIENCE`` is set,
- per-request id + trace on every log line, an access log line and request metrics.

Logging itself is configured by the process entry point (``wsgi``), not here.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import swagger_ui_bundle
from flask import Flask, Response, g, request, send_from_directory
from flask_smorest import Api
from google.cloud import storage
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from pipeline_core.db import make_engine, make_session_factory
from pipeline_core.log import bind_request_context, reset_request_context

from . import api, listeners, metrics, ops, problems, web
from .auth import IAP_HEADER, IapVerifier
from .notifications import NotificationPath
from .schemas import ProblemSchema, TooLargeProblemSchema
from .settings import FilesApiSettings, load
from .storage import UploadsBucket, make_client
from .uploads import MULTIPART_OVERHEAD_BYTES, UploadRequest

log = logging.getLogger("files_api")

#: Paths that need IAP when it is on (everything that shows or changes files).
PROTECTED_PREFIXES = ("/v1/", "/ui/")
PROTECTED_EXACT = ("/", "/v1/files")


@dataclass
class AppState:
    """What the views need, in ``app.extensions["files_api"]``."""

    settings: FilesApiSettings
    engine: Engine
    sessions: sessionmaker[Session]
    bucket: UploadsBucket
    verifier: IapVerifier | None
    #: Free upload slots of this process (``MAX_CONCURRENT_UPLOADS``).
    upload_slots: threading.BoundedSemaphore = field(default_factory=lambda: threading.BoundedSemaphore(2))
    #: The bucket -> topic check of /readyz (``UPLOADS_TOPIC`` set), else None.
    notifications: NotificationPath | None = None


def create_app(settings: FilesApiSettings | None = None, *, storage_client: storage.Client | None = None,
               iap_request: Any = None) -> Flask:
    """Build the WSGI app.

    Args:
        settings: defaults to ``settings.load()`` (environment variables).
        storage_client: defaults to ``storage.make_client(settings)``.
        iap_request: google-auth transport for fetching IAP keys (tests).

    Raises:
        pipeline_core.settings.SettingsError: the environment is incomplete.
    """
    settings = settings or load()
    logging.getLogger("files_api").setLevel(settings.log_level)
    app = Flask(__name__, static_folder=None)  # the page's assets are the web blueprint's (with its CSP)
    app.request_class = UploadRequest
    app.config.update(
        MAX_UPLOAD_BYTES=settings.max_upload_bytes,
        SPOOL_MEMORY_BYTES=settings.spool_memory_bytes,
        UPLOAD_IDLE_TIMEOUT_SECONDS=settings.upload_idle_timeout_seconds,
        MAX_CONTENT_LENGTH=settings.max_upload_bytes + MULTIPART_OVERHEAD_BYTES,
        API_TITLE="files-api",
        API_VERSION="1.0.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL="/docs/assets/",
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]  (keep the schema's field order)
    engine = make_engine(settings.database_url)
    bucket = UploadsBucket(storage_client or make_client(settings), settings.uploads_bucket,
                           chunk_bytes=settings.upload_chunk_bytes, timeout=settings.storage_timeout_seconds)
    verifier = None
    if settings.iap_audience:
        verifier = IapVerifier(settings.iap_audience, settings.iap_public_keys_url, iap_request)
    else:
        log.warning("IAP_AUDIENCE is not set: /v1 is open to anyone who reaches the service (local use only)")
    notifications = None
    if settings.uploads_topic:
        notifications = NotificationPath(bucket.client, settings.uploads_bucket, settings.google_cloud_project,
                                         settings.uploads_topic, settings.pubsub_emulator_host)
    app.extensions["files_api"] = AppState(settings, engine, make_session_factory(engine), bucket, verifier,
                                           threading.BoundedSemaphore(settings.max_concurrent_uploads), notifications)

    smorest = _Api(app, spec_kwargs={"info": {"description": "Upload print files (G-code, STL, 3MF) and read the metadata the extractor finds in them. Errors are RFC 9457 problem details."}})
    smorest.spec.components.schema("ProblemSchema", schema=ProblemSchema)
    smorest.spec.components.schema("TooLargeProblem", schema=TooLargeProblemSchema)
    if settings.iap_audience:
        smorest.spec.components.security_scheme(
            "iap", {"type": "apiKey", "in": "header", "name": IAP_HEADER,
                    "description": "JWT added by Identity-Aware Proxy"})
        smorest.spec.options["security"] = [{"iap": []}]
    smorest.register_blueprint(api.blp)
    for unused in ("Error", "PaginationMetadata"):  # flask-smorest's JSON error / header pagination: not ours
        smorest.spec.components.schemas.pop(unused, None)
    app.register_blueprint(web.bp)
    app.register_blueprint(ops.bp)
    problems.install(app)  # after flask-smorest's own handler, so ours wins

    @app.get("/docs/assets/<path:name>")
    def swagger_assets(name: str) -> Response:
        return send_from_directory(swagger_ui_bundle.swagger_ui_path, name, max_age=86400)

    listeners.install(app, settings.ops_port)
    _install_hooks(app)
    return app


class _Api(Api):
    """flask-smorest ``Api`` without its JSON ``default`` error response: ours are problem+json (documented per route)."""

    DEFAULT_ERROR_RESPONSE_NAME = None


def _needs_auth(path: str) -> bool:
    return path in PROTECTED_EXACT or path.startswith(PROTECTED_PREFIXES)


def _install_hooks(app: Flask) -> None:
    """Request id + trace on every log line, IAP check, access log line and request metrics.

    Kept lean (``tools/bench_list_api.py`` measures the list API against a bare
    handler): one context-variable bind per request, metric children cached by
    label values (``metrics.observe_request``), the access line built once.
    """
    verifier = app.extensions["files_api"].verifier

    # Each proxy lookup (request, g) walks a context variable: resolve them once per hook.
    @app.before_request
    def _begin() -> None:
        req, ctx = request._get_current_object(), g._get_current_object()  # type: ignore[attr-defined]
        ctx.started = time.perf_counter()
        headers = req.headers
        tokens = bind_request_context(headers.get("X-Request-Id"),
                                      cloud_trace_context=headers.get("X-Cloud-Trace-Context"),
                                      traceparent=headers.get("traceparent"))
        ctx.request_id = tokens.request_id
        ctx.log_ctx = tokens
        if verifier is not None and _needs_auth(req.path):
            ctx.principal = verifier.verify(headers.get(IAP_HEADER))

    @app.after_request
    def _finish(response: Response) -> Response:
        req, ctx = request._get_current_object(), g._get_current_object()  # type: ignore[attr-defined]
        rid = ctx.get("request_id")
        headers = response.headers
        if rid:
            headers["X-Request-Id"] = rid
        # Never let a browser sniff stored bytes (say, a .gcode that looks like HTML) into a page.
        headers.setdefault("X-Content-Type-Options", "nosniff")
        started = ctx.get("started")
        elapsed = time.perf_counter() - started if started else 0.0
        rule = req.url_rule
        endpoint = rule.rule if rule is not None else "unmatched"
        status = response.status_code
        metrics.observe_request(req.method, endpoint, status, elapsed)
        if status >= 400 or endpoint not in _QUIET_ENDPOINTS:
            _access_log(req, response, status, elapsed, ctx.get("principal"))
        return response

    @app.teardown_request
    def _end(exc: BaseException | None) -> None:
        tokens = g.pop("log_ctx", None)
        if tokens is not None:
            reset_request_context(tokens)


#: Probes and scrapes: logged only when they fail (they come every few seconds).
_QUIET_ENDPOINTS = frozenset(("/healthz", "/readyz", "/metrics"))


def _access_log(req: Any, response: Response, status: int, elapsed: float, principal: Any) -> None:
    """One access line per request with Cloud Logging's ``httpRequest`` field
    (https://cloud.google.com/logging/docs/reference/v2/rest/v2/LogEntry#HttpRequest)."""
    if not log.isEnabledFor(logging.INFO):
        return
    query = req.query_string
    length = response.content_length
    log.info(
        f"{req.method} {req.path} {status}",
        extra={"httpRequest": {
            "requestMethod": req.method,
            "requestUrl": f"{req.path}?{query.decode(errors='replace')}" if query else req.path,
            "status": status, "latency": f"{elapsed:.6f}s",
            "userAgent": req.headers.get("User-Agent", ""), "remoteIp": req.remote_addr,
            "responseSize": str(length) if length is not None else None,
        }, "user": principal.email if principal else None},
    )
