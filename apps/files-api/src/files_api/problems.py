"""Errors as RFC 9457 problem details (``application/problem+json``).

Every error response of the service is a JSON object with ``type``,
``title``, ``status``, ``detail`` and ``instance`` (RFC 9457 section 3.1),
plus ``request_id`` and, for validation errors, ``errors`` (field -> messages).
``type`` is ``about:blank`` (RFC 9457 section 4.2.1: the title is the HTTP
status phrase) unless a more specific problem type applies.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, json, request
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException

from pipeline_core.log import current_request_id

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("files_api.problems")


class Problem(HTTPException):
    """An HTTP error to answer as problem details.

    Args:
        status: HTTP status code.
        detail: human-readable explanation of this occurrence (names what was wrong and where).
        title: short summary; defaults to the status phrase.
        headers: extra response headers (e.g. ``WWW-Authenticate``).
        **extensions: extension members added to the body.
    """

    def __init__(self, status: int, detail: str, *, title: str | None = None,
                 headers: dict[str, str] | None = None, **extensions: Any) -> None:
        super().__init__(description=detail)
        self.code = status
        self.title = title or HTTPStatus(status).phrase
        self.extra_headers = headers or {}
        self.extensions = extensions


#: Seconds a client should wait before retrying a 503 that means "try again" (``Retry-After``, RFC 9110 10.2.3).
RETRY_AFTER_SECONDS = 5


class Unavailable(Problem):
    """503 with ``Retry-After``: a dependency (database, bucket, IAP keys) or capacity is short right now.

    Every 503 the API answers for a request means "retry later"; only the
    readiness probe's 503 (a state, not a request failure) has no ``Retry-After``.
    """

    def __init__(self, detail: str, *, retry_after: int = RETRY_AFTER_SECONDS) -> None:
        super().__init__(503, detail, headers={"Retry-After": str(retry_after)})


def problem_response(status: int, detail: str | None, *, title: str | None = None,
                     headers: dict[str, str] | None = None, **extensions: Any) -> Response:
    """Build the ``application/problem+json`` response."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    try:
        body["instance"] = request.path
    except RuntimeError:  # outside a request
        pass
    rid = current_request_id()
    if rid:
        body["request_id"] = rid
    body.update(extensions)
    resp = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    for key, value in (headers or {}).items():
        resp.headers[key] = value
    return resp


def _from_http_exception(exc: HTTPException) -> Response:
    if isinstance(exc, Problem):
        return problem_response(exc.code or 500, exc.description, title=exc.title,
                                headers=exc.extra_headers, **exc.extensions)
    extensions: dict[str, Any] = {}
    # flask-smorest / webargs put validation messages in exc.data["messages"]
    data = getattr(exc, "data", None)
    if isinstance(data, dict) and data.get("messages"):
        extensions["errors"] = data["messages"]
    headers = {k: v for k, v in exc.get_headers() if k.lower() not in ("content-type", "content-length")}
    detail = exc.description
    if extensions.get("errors"):
        detail = "invalid request: " + _flatten(extensions["errors"])
    return problem_response(exc.code or 500, detail, headers=headers, **extensions)


def _flatten(messages: Any, prefix: str = "") -> str:
    """``{"query": {"limit": ["Must be ..."]}}`` -> ``query.limit: Must be ...``."""
    if isinstance(messages, dict):
        parts = [_flatten(v, f"{prefix}{k}." if prefix or k else "") for k, v in messages.items()]
        return "; ".join(p for p in parts if p)
    if isinstance(messages, list):
        return f"{prefix.rstrip('.')}: " + " ".join(str(m) for m in messages)
    return f"{prefix.rstrip('.')}: {messages}"


def install(app: Flask) -> None:
    """Make every error of ``app`` (HTTP errors and uncaught exceptions) a problem response.

    Database connection faults (``OperationalError``, ``InterfaceError``, pool
    ``TimeoutError``) become 503 with ``Retry-After``; anything else unexpected 500.
    """

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        return _from_http_exception(exc)

    # The database is down or too slow on a route that does not handle it itself
    # (list, get, delete, the page): a 503 the client may retry, not a 500.
    @app.errorhandler(sa_exc.OperationalError)
    @app.errorhandler(sa_exc.InterfaceError)
    @app.errorhandler(sa_exc.TimeoutError)
    def _database_unavailable(exc: Exception) -> Response:
        log.error("database unavailable", extra={"error": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"[:300]})
        return problem_response(503, "the database is unavailable; retry shortly",
                                headers={"Retry-After": str(RETRY_AFTER_SECONDS)})

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return problem_response(500, "unexpected error; quote the request_id when reporting it")
