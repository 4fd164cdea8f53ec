"""Structured logging: one JSON object per line, in Cloud Logging's field names.

On GKE the logging agent parses each stdout line as a JSON payload and lifts
the special fields (https://cloud.google.com/logging/docs/structured-logging):
``severity``, ``message``, ``time``, ``logging.googleapis.com/trace``,
``logging.googleapis.com/spanId``, ``logging.googleapis.com/sourceLocation``.
Error Reporting picks up a traceback from ``stack_trace``.

Each line also has ``logger`` and, inside a request or message,
``request_id``. Anything passed as ``extra={...}`` is added as-is (values that
are not JSON become strings).

``LOG_FORMAT=text`` (the local platform on a terminal) switches to one
human-readable line per record instead (``TextFormatter``): time, level,
logger, message, then the ``extra`` fields as ``key=value``. Anything else
(unset, ``json``) keeps JSON, what the cloud needs.

Use::

    configure_logging("INFO")                 # once, at process start
    with request_context(request_id="abc", trace_header=request.headers.get(...)):
        log.info("stored", extra={"file_id": str(fid)})
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import re
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import IO, Any

#: Cloud Logging's LogSeverity names, by Python level
#: (https://cloud.google.com/logging/docs/reference/v2/rest/v2/LogEntry#logseverity).
_SEVERITY = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARNING",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "CRITICAL",
}

#: Attributes every ``LogRecord`` has; anything else on a record came from ``extra``.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_trace: contextvars.ContextVar[tuple[str, str | None] | None] = contextvars.ContextVar("trace", default=None)

# X-Cloud-Trace-Context: TRACE_ID/SPAN_ID;o=OPTIONS (TRACE_ID 32 hex, SPAN_ID decimal)
# https://cloud.google.com/trace/docs/trace-context#legacy-http-header
_CLOUD_TRACE = re.compile(r"^([0-9a-fA-F]{32})(?:/(\d+))?(?:;o=\d)?$")
# traceparent: 00-TRACE_ID(32 hex)-PARENT_ID(16 hex)-FLAGS (W3C Trace Context)
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")
_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")


def current_request_id() -> str | None:
    """The request id of the current context, or None outside a request."""
    return _request_id.get()


def parse_trace(cloud_trace_context: str | None = None, traceparent: str | None = None) -> tuple[str, str | None] | None:
    """``(trace_id, span_id)`` from ``X-Cloud-Trace-Context`` or ``traceparent``; None if neither parses.

    The legacy header's span id is decimal; it is returned as 16 hex digits, the
    form Cloud Logging's ``spanId`` field takes.
    """
    if cloud_trace_context:
        m = _CLOUD_TRACE.match(cloud_trace_context.strip())
        if m:
            span = f"{int(m.group(2)):016x}" if m.group(2) else None
            return m.group(1).lower(), span
    if traceparent:
        m = _TRACEPARENT.match(traceparent.strip())
        if m:
            return m.group(1), m.group(2)
    return None


class ContextTokens:
    """What ``bind_request_context`` set, for ``reset_request_context`` (opaque)."""

    __slots__ = ("request_id", "_rid", "_trace")

    def __init__(self, request_id: str, rid: contextvars.Token[str | None],
                 trace: contextvars.Token[tuple[str, str | None] | None]) -> None:
        self.request_id = request_id
        self._rid = rid
        self._trace = trace


def bind_request_context(
    request_id: str | None = None,
    *,
    cloud_trace_context: str | None = None,
    traceparent: str | None = None,
) -> ContextTokens:
    """Tag every following log line of this context with a request id (and trace, when known).

    ``request_id`` is used when it is a sane token (<= 128 chars of
    ``[A-Za-z0-9._:/+=-]``); otherwise the trace id, else a fresh uuid4 hex.
    The id in force is ``.request_id`` of the result; pass the result to
    ``reset_request_context`` at the end of the request (a web framework's
    before/after hooks, where a ``with`` block cannot span the request).
    """
    trace = parse_trace(cloud_trace_context, traceparent) if (cloud_trace_context or traceparent) else None
    if not (request_id and _REQUEST_ID_OK.match(request_id)):
        request_id = trace[0] if trace else uuid.uuid4().hex
    return ContextTokens(request_id, _request_id.set(request_id), _trace.set(trace))


def reset_request_context(tokens: ContextTokens) -> None:
    """Undo ``bind_request_context`` (restores the ids in force before it)."""
    _trace.reset(tokens._trace)  # noqa: SLF001
    _request_id.reset(tokens._rid)  # noqa: SLF001


@contextlib.contextmanager
def request_context(
    request_id: str | None = None,
    *,
    cloud_trace_context: str | None = None,
    traceparent: str | None = None,
) -> Iterator[str]:
    """``bind_request_context`` for the block; yields the request id in force (same rules)."""
    tokens = bind_request_context(request_id, cloud_trace_context=cloud_trace_context, traceparent=traceparent)
    try:
        yield tokens.request_id
    finally:
        reset_request_context(tokens)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    return str(value)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line with Cloud Logging's fields.

    ``project`` (default ``$GOOGLE_CLOUD_PROJECT``) is needed to write the
    ``logging.googleapis.com/trace`` field as ``projects/<p>/traces/<id>``.
    """

    def __init__(self, project: str | None = None) -> None:
        super().__init__()
        self.project = project if project is not None else os.environ.get("GOOGLE_CLOUD_PROJECT")

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": _SEVERITY.get(record.levelno, "DEFAULT" if record.levelno < logging.DEBUG else "CRITICAL"),
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "logger": record.name,
            "logging.googleapis.com/sourceLocation": {
                "file": record.pathname,
                "line": str(record.lineno),
                "function": record.funcName,
            },
        }
        request_id = _request_id.get()
        if request_id:
            entry["request_id"] = request_id
        trace = _trace.get()
        if trace:
            trace_id, span_id = trace
            entry["logging.googleapis.com/trace"] = (
                f"projects/{self.project}/traces/{trace_id}" if self.project else trace_id
            )
            if span_id:
                entry["logging.googleapis.com/spanId"] = span_id
        if record.exc_info:
            entry["stack_trace"] = self.formatException(record.exc_info)
        elif record.stack_info:
            entry["stack_trace"] = self.formatStack(record.stack_info)
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRS and not key.startswith("_") and key not in entry:
                entry[key] = _jsonable(value)
        return json.dumps(entry, ensure_ascii=False, default=str)


#: ``LOG_FORMAT`` values.
LOG_FORMATS = ("json", "text")


class TextFormatter(logging.Formatter):
    """One human-readable line: ``HH:MM:SS.mmm LEVEL    logger: message key=value ...`` (+ traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created).strftime("%H:%M:%S.%f")[:-3]
        line = f"{stamp} {record.levelname:<7} {record.name}: {record.getMessage()}"
        fields = {k: v for k, v in record.__dict__.items() if k not in _RECORD_ATTRS and not k.startswith("_")}
        request_id = _request_id.get()
        if request_id:
            fields = {"request_id": request_id, **fields}
        if fields:
            line += " " + " ".join(f"{k}={json.dumps(_jsonable(v), ensure_ascii=False)}" for k, v in fields.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        elif record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


def make_formatter(fmt: str | None = None) -> logging.Formatter:
    """The formatter ``LOG_FORMAT`` asks for (``fmt`` overrides it): ``TextFormatter`` for ``text``, else ``JsonFormatter``.

    For ``logging.config.dictConfig`` (gunicorn's ``logconfig_dict``):
    ``{"()": "pipeline_core.log.make_formatter"}``.
    """
    chosen = (fmt if fmt is not None else os.environ.get("LOG_FORMAT", "json")).strip().lower()
    return TextFormatter() if chosen == "text" else JsonFormatter()


def configure_logging(level: str | int = "INFO", stream: IO[str] | None = None) -> logging.Handler:
    """Send all logging to ``stream`` (default stdout) as JSON lines (``LOG_FORMAT=text``: text lines) at ``level``.

    Replaces the root logger's handlers (idempotent: call it again to change
    the level). Returns the handler installed.

    Raises:
        ValueError: ``level`` is not a ``logging`` level name or number.
    """
    if isinstance(level, str):
        numeric = logging.getLevelName(level.upper())
        if not isinstance(numeric, int):
            raise ValueError(f"LOG_LEVEL {level!r} is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        level = numeric
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(make_formatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
    return handler
