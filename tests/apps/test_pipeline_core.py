"""pipeline_core's logging and settings (no server needed)."""

from __future__ import annotations

import io
import json
import logging

import pytest

from pipeline_core.log import (
    JsonFormatter,
    bind_request_context,
    configure_logging,
    current_request_id,
    parse_trace,
    request_context,
    reset_request_context,
)
from pipeline_core.settings import CommonSettings, SettingsError, load_settings


@pytest.fixture
def json_log():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(project="proj-1"))
    logger = logging.getLogger("test.jsonlog")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)


def test_one_json_object_per_line_with_cloud_logging_fields(json_log):
    logger, lines = json_log
    logger.info("multi\nline %s", "message", extra={"file_id": "abc", "odd": object.__name__})
    logger.warning("second")
    first, second = lines()
    assert first["severity"] == "INFO" and first["message"] == "multi\nline message"
    assert first["logger"] == "test.jsonlog" and first["file_id"] == "abc"
    assert first["time"].endswith("Z") and "T" in first["time"]
    assert first["logging.googleapis.com/sourceLocation"]["function"] == "test_one_json_object_per_line_with_cloud_logging_fields"
    assert second["severity"] == "WARNING"
    assert "request_id" not in first


def test_request_context_adds_request_id_and_trace(json_log):
    logger, lines = json_log
    with request_context("req-1", cloud_trace_context="105445aa7843bc8bf206b12000100000/123;o=1") as rid:
        assert rid == "req-1"
        logger.error("inside")
    logger.error("outside")
    inside, outside = lines()
    assert inside["request_id"] == "req-1"
    assert inside["logging.googleapis.com/trace"] == "projects/proj-1/traces/105445aa7843bc8bf206b12000100000"
    assert inside["logging.googleapis.com/spanId"] == f"{123:016x}"
    assert "request_id" not in outside and "logging.googleapis.com/trace" not in outside


def test_bind_and_reset_request_context_nest_and_restore(json_log):
    logger, lines = json_log
    outer = bind_request_context("outer-1")
    inner = bind_request_context("bad id with spaces", traceparent="00-" + "ab" * 16 + "-" + "cd" * 8 + "-01")
    assert inner.request_id == "ab" * 16, "an unusable id falls back to the trace id"
    logger.info("inner")
    reset_request_context(inner)
    assert current_request_id() == "outer-1"
    logger.info("outer")
    reset_request_context(outer)
    assert current_request_id() is None
    fresh = bind_request_context(None)
    assert len(fresh.request_id) == 32 and current_request_id() == fresh.request_id
    reset_request_context(fresh)
    first, second = lines()
    assert first["request_id"] == "ab" * 16 and first["logging.googleapis.com/spanId"] == "cd" * 8
    assert second["request_id"] == "outer-1" and "logging.googleapis.com/trace" not in second


def test_exceptions_go_to_stack_trace(json_log):
    logger, lines = json_log
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed")
    (entry,) = lines()
    assert entry["severity"] == "ERROR" and entry["message"] == "failed"
    assert "ValueError: boom" in entry["stack_trace"] and "Traceback" in entry["stack_trace"]


def test_parse_trace_headers():
    assert parse_trace("105445aa7843bc8bf206b12000100000") == ("105445aa7843bc8bf206b12000100000", None)
    assert parse_trace(None, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01") == (
        "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
    assert parse_trace("garbage", "also garbage") is None


def test_configure_logging_rejects_unknown_level():
    with pytest.raises(ValueError, match="LOG_LEVEL 'LOUD'"):
        configure_logging("LOUD")


def test_configure_logging_writes_json_to_the_stream():
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure_logging("debug", stream=stream)
        logging.getLogger("x").debug("hello")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    assert json.loads(stream.getvalue().splitlines()[-1])["message"] == "hello"


def test_settings_errors_name_each_variable(monkeypatch):
    for var in ["DATABASE_URL", "GOOGLE_CLOUD_PROJECT", "UPLOADS_BUCKET", "LOG_LEVEL", "PORT"]:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DATABASE_URL", "mysql://x/y")
    monkeypatch.setenv("PORT", "99999")
    with pytest.raises(SettingsError) as err:
        load_settings(CommonSettings)
    msg = str(err.value)
    assert "DATABASE_URL: Value error, must be a postgresql+psycopg://" in msg
    assert "GOOGLE_CLOUD_PROJECT: Field required" in msg and "UPLOADS_BUCKET: Field required" in msg
    assert "PORT:" in msg


def test_settings_from_env(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h:5432/d")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "p")
    monkeypatch.setenv("UPLOADS_BUCKET", "bucket-1")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    s = load_settings(CommonSettings)
    assert s.database_url == "postgresql+psycopg://u@h:5432/d" and s.log_level == "DEBUG" and s.port == 8080


def test_files_api_settings_validate_chunk_and_defaults(monkeypatch):
    from files_api.settings import FilesApiSettings

    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://u@h/d")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "p")
    monkeypatch.setenv("UPLOADS_BUCKET", "bucket-1")
    monkeypatch.delenv("MAX_UPLOAD_BYTES", raising=False)
    monkeypatch.setenv("IAP_AUDIENCE", "  ")
    s = load_settings(FilesApiSettings)
    assert s.max_upload_bytes == 268435456 and s.iap_audience is None and s.port == 8080
    monkeypatch.setenv("UPLOAD_CHUNK_BYTES", str(300 * 1024))
    with pytest.raises(SettingsError, match="UPLOAD_CHUNK_BYTES: Value error, must be a multiple of 262144"):
        load_settings(FilesApiSettings)


def test_uploads_capped_spool_and_names():
    from files_api.problems import Problem
    from files_api.uploads import CappedSpool, UploadTooLarge, sanitise_filename

    spool = CappedSpool(limit=10, memory_bytes=4)
    spool.write(b"abc")
    assert spool.in_memory
    spool.write(b"defgh")
    assert not spool.in_memory and spool.size == 8  # spilled to disk past 4 bytes
    with pytest.raises(UploadTooLarge):
        spool.write(b"ijk")
    spool.close()

    assert sanitise_filename("C:\\a\\b\\part.gcode") == "part.gcode"
    assert sanitise_filename("../../ x.y.stl. ") == "x.y.stl"
    assert sanitise_filename("e\u0301.3mf") == "\u00e9.3mf"  # NFC
    at_limit = "é" * 96 + "x.gcode"  # 192 + 8 = 200 bytes
    assert sanitise_filename(at_limit) == at_limit
    for bad in ["", "   ", "..", "a/", "x\x00y.stl", "é" * 97 + "x.gcode"]:
        with pytest.raises(Problem):
            sanitise_filename(bad)


def test_log_format_text_is_one_readable_line_per_record(monkeypatch):
    """LOG_FORMAT=text (the local platform on a terminal): time, level, logger, message, extras; tracebacks follow."""
    monkeypatch.setenv("LOG_FORMAT", "text")
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    log = logging.getLogger("demo.text")
    try:
        with request_context(request_id="req-1"):
            log.info("stored %s", "a.gcode", extra={"file_id": "f1", "size_bytes": 3})
        log.debug("not shown at INFO")
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed")
    finally:
        monkeypatch.delenv("LOG_FORMAT")
        configure_logging("INFO")
    lines = stream.getvalue().splitlines()
    assert lines[0].split(" ", 1)[1] == 'INFO    demo.text: stored a.gcode request_id="req-1" file_id="f1" size_bytes=3'
    assert not any(line.startswith("{") for line in lines) and "not shown" not in stream.getvalue()
    assert "ERROR   demo.text: failed" in lines[1] and lines[-1] == "ValueError: boom"


def test_log_format_defaults_to_json(monkeypatch):
    from pipeline_core.log import make_formatter

    monkeypatch.delenv("LOG_FORMAT", raising=False)
    assert isinstance(make_formatter(), JsonFormatter)
    monkeypatch.setenv("LOG_FORMAT", "JSON")
    assert isinstance(make_formatter(), JsonFormatter)
