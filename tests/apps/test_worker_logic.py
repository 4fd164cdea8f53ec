"""The extractor worker's pure decisions: retry classification, jsonb safety, settings, size bound."""

from __future__ import annotations

import io
import json
import math

import pytest
import requests
from google.api_core import exceptions as api_exceptions
from sqlalchemy import exc as sa_exc

from extractor.config import ExtractorSettings, load_extractor_settings
from extractor.notification import ObjectRef
from extractor.outcomes import Outcome, is_transient
from extractor.results import MAX_ERROR_CHARS, ResultStatus, clean_text, json_safe, upsert_result
from extractor.storage import ObjectTooLarge, download_generation
from pipeline_core.settings import SettingsError

REF = ObjectRef("uploads", "files/1/a.stl", 7)


def _operational_error() -> sa_exc.OperationalError:
    return sa_exc.OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))


@pytest.mark.parametrize(
    "exc",
    [
        _operational_error(),
        sa_exc.InterfaceError("SELECT 1", {}, Exception("connection already closed")),
        sa_exc.TimeoutError("QueuePool limit of size 4 overflow 4 reached"),
        api_exceptions.ServiceUnavailable("503 backend"),
        api_exceptions.InternalServerError("500"),
        api_exceptions.TooManyRequests("429"),
        api_exceptions.Forbidden("403 missing storage.objects.get"),
        requests.exceptions.ConnectionError("reset"),
        requests.exceptions.ReadTimeout("slow"),
        TimeoutError(),
        ConnectionResetError(),
    ],
    ids=lambda e: type(e).__name__,
)
def test_transient_faults_are_recognised(exc):
    assert is_transient(exc)


def test_transient_fault_found_through_the_cause_chain():
    try:
        try:
            raise _operational_error()
        except sa_exc.OperationalError as inner:
            raise RuntimeError("while upserting") from inner
    except RuntimeError as outer:
        assert is_transient(outer)


@pytest.mark.parametrize(
    "exc",
    [ValueError("bug"), KeyError("x"), api_exceptions.BadRequest("400"), sa_exc.IntegrityError("x", {}, Exception())],
    ids=lambda e: type(e).__name__,
)
def test_other_errors_are_not_called_transient(exc):
    assert not is_transient(exc)


def test_only_retry_nacks():
    assert [o for o in Outcome if not o.acks] == [Outcome.RETRY]


def test_json_safe_makes_parser_output_storable():
    np = pytest.importorskip("numpy")
    raw = {
        "format": ResultStatus.PROCESSED,
        "bbox": np.array([[0.0, 1.5], [2.0, 3.0]]),
        "triangles": np.int64(12),
        "nan": float("nan"),
        "inf": -math.inf,
        "header": "solid REAR_CASE\x00\x00",
        1: ("a", {"b"}),
        "ok": True,
        "none": None,
    }
    safe = json_safe(raw)
    assert safe == {
        "format": "processed",
        "bbox": [[0.0, 1.5], [2.0, 3.0]],
        "triangles": 12,
        "nan": None,
        "inf": None,
        "header": "solid REAR_CASE",
        "1": ["a", ["b"]],
        "ok": True,
        "none": None,
    }
    json.dumps(safe, allow_nan=False)  # strict JSON now


def test_json_safe_names_the_path_of_an_unstorable_value():
    with pytest.raises(TypeError, match=r"metadata\.objects\[1\]\.mesh is a object"):
        json_safe({"objects": [{}, {"mesh": object()}]})


def test_clean_text_drops_nul():
    assert clean_text("a\x00b") == "ab"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"status": ResultStatus.PROCESSED}, "needs metadata"),
        ({"status": ResultStatus.PROCESSED, "metadata": {}, "error": "x"}, "needs metadata and no error"),
        ({"status": ResultStatus.FAILED}, "needs a reason"),
        ({"status": ResultStatus.FAILED, "error": "x", "attempts": 0}, "attempts must be >= 1"),
    ],
)
def test_upsert_rejects_inconsistent_results_before_touching_the_database(kwargs, message):
    status = kwargs.pop("status")
    with pytest.raises(ValueError, match=message):
        upsert_result(None, REF, status, **kwargs)  # type: ignore[arg-type]


def test_error_text_bound_is_reasonable():
    assert 200 <= MAX_ERROR_CHARS <= 10_000


ENV = {
    "DATABASE_URL": "postgresql+psycopg://u@127.0.0.1:5432/db",
    "GOOGLE_CLOUD_PROJECT": "proj",
    "UPLOADS_BUCKET": "uploads-dev",
    "UPLOADS_SUBSCRIPTION": "uploads-extractor",
}


def test_settings_defaults_and_derived_values(monkeypatch):
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    settings = load_extractor_settings()
    assert settings.port == 8081
    assert settings.subscription_path == "projects/proj/subscriptions/uploads-extractor"
    assert settings.max_download_bytes == 256 * 1024 * 1024
    assert settings.graceful_timeout_seconds == 30  # 25 s drain + 5 s margin (the chart's numbers too)
    assert settings.graceful_timeout_seconds > settings.drain_timeout_seconds


def test_settings_knobs_from_environment(monkeypatch):
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MAX_MESSAGES", "2")
    monkeypatch.setenv("DRAIN_TIMEOUT_SECONDS", "7.5")
    settings = load_extractor_settings()
    assert settings.max_messages == 2
    assert settings.graceful_timeout_seconds == 13


def test_settings_errors_name_each_variable(monkeypatch):
    for key in (*ENV, "MAX_MESSAGES"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("MAX_MESSAGES", "0")
    with pytest.raises(SettingsError) as excinfo:
        load_extractor_settings()
    message = str(excinfo.value)
    for name in ("DATABASE_URL", "UPLOADS_BUCKET", "UPLOADS_SUBSCRIPTION", "MAX_MESSAGES"):
        assert name in message


def test_subscription_must_be_a_short_id():
    with pytest.raises(Exception, match="UPLOADS_SUBSCRIPTION|uploads_subscription"):
        ExtractorSettings(**{k.lower(): v for k, v in ENV.items()}, uploads_subscription="projects/p/subscriptions/s")


def test_announced_oversize_object_is_refused_without_a_request():
    class NoClient:
        def bucket(self, name):  # pragma: no cover - must not be called
            raise AssertionError("no request expected")

    with pytest.raises(ObjectTooLarge, match="is 2000 bytes, above the extractor's limit of 1000 bytes"):
        download_generation(NoClient(), REF, io.BytesIO(), max_bytes=1000, timeout_seconds=1, expected_size=2000)  # type: ignore[arg-type]
