"""The extractor worker against real backends: Postgres, the Pub/Sub emulator, fake-gcs-server.

Uploads go to fake-gcs-server, which publishes the OBJECT_FINALIZE
notification to the emulator topic; the worker (in this process, or under
gunicorn for the SIGTERM test) pulls it from a per-test subscription and
writes ``extraction_results``. Database outages are real: the worker talks
to Postgres through a ``TcpProxy`` the test takes down.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from extractor.app import create_app
from extractor.config import load_extractor_settings
from extractor.service import ExtractorService
from extractor.worker import WorkerState
from worker_fixtures import (  # noqa: F401 - fixtures
    HTTP_503,
    SAMPLES,
    TcpProxy,
    db_proxy,
    emulator_env,
    messages_total,
    pubsub,
    result_rows,
    upload,
    wait_for,
    worker_env,
)

pytestmark = pytest.mark.slow

GOOD_SAMPLE = SAMPLES / "cura" / "Kreistest.gcode"
GCODE_SAMPLE = SAMPLES / "prusaslicer" / "full_m73_layers_0.2mm_PLA_MK3SMMU2S_11m.gcode"
BROKEN = SAMPLES / "broken"


@pytest.fixture
def start_service(worker_env, monkeypatch):
    """``start(**overrides) -> ExtractorService``: a started service on this test's subscription; stopped at teardown."""
    services: list[ExtractorService] = []
    for key, value in worker_env.items():
        monkeypatch.setenv(key, value)

    def start(extract=None, **overrides) -> ExtractorService:
        service = ExtractorService(load_extractor_settings(**overrides), extract=extract)
        service.start()
        services.append(service)
        return service

    yield start
    for service in services:
        service.stop()


def _one_row(engine, name, status=None, timeout=30.0):
    def ready():
        rows = result_rows(engine, name)
        return rows if rows and (status is None or rows[0]["status"] == status) else None

    rows = wait_for(ready, timeout=timeout, what=f"a result row for {name}")
    assert len(rows) == 1
    return rows[0]


def test_uploaded_file_is_processed_with_metadata(start_service, clean_db, uploads_bucket):
    before = messages_total("processed")
    start_service()
    name, generation = upload(uploads_bucket, GOOD_SAMPLE)

    row = _one_row(clean_db, name)
    assert row["status"] == "processed", row
    assert row["generation"] == generation and row["bucket"] == uploads_bucket
    assert row["error"] is None and row["attempts"] >= 1
    assert row["metadata"]["format"] == "gcode"
    assert messages_total("processed") == before + 1


def test_one_file_per_format_is_processed(start_service, clean_db, uploads_bucket):
    samples = {
        "gcode": SAMPLES / "bambustudio" / "bambu_lab.gcode",
        "bgcode": SAMPLES / "prusaslicer" / "prusa_slicer.bgcode",
        "stl": SAMPLES / "stl" / "binary" / "origin_inside.STL",
        "3mf": SAMPLES / "3mf" / "box.3mf",
    }
    start_service()
    names = {upload(uploads_bucket, path)[0]: fmt for fmt, path in samples.items()}
    for name, fmt in names.items():
        row = _one_row(clean_db, name)
        assert row["status"] == "processed", (fmt, row["error"])
        assert row["metadata"]["format"] == fmt


def test_thumbnail_is_stored_with_the_result_for_a_recorded_file(start_service, clean_db, uploads_bucket):
    """A file with a ``files`` row gets its preview in ``file_thumbnails``, with the result's generation.

    (An object no file owns gets neither a result nor a thumbnail: it is acked as gone, test_worker's
    delete-race tests.)"""
    sample = SAMPLES.parent / "more-samples" / "ufp" / "cura_griffin2.ufp"
    file_id = uuid.uuid4()
    name = f"files/{file_id}/{sample.name}"
    with clean_db.begin() as conn:
        conn.execute(text("INSERT INTO files (id, filename, content_type, size_bytes, bucket, object_name) "
                          "VALUES (:id, :fn, 'application/x-ufp', :size, :b, :o)"),
                     {"id": file_id, "fn": sample.name, "size": sample.stat().st_size, "b": uploads_bucket, "o": name})
    start_service()
    _, generation = upload(uploads_bucket, sample, object_name=name)
    row = _one_row(clean_db, name, status="processed")
    assert row["metadata"]["format"] == "ufp" and row["metadata"]["thumbnail"]["width"] == 300
    with clean_db.connect() as conn:
        stored = conn.execute(text("SELECT file_id, generation, width, height, png FROM file_thumbnails")).all()
    assert len(stored) == 1
    assert stored[0].file_id == file_id and stored[0].generation == generation
    assert (stored[0].width, stored[0].height) == (300, 300) and bytes(stored[0].png).startswith(b"\x89PNG")


def test_unparseable_file_fails_with_a_reason_and_is_acked(start_service, clean_db, uploads_bucket):
    start_service()
    name, _ = upload(uploads_bucket, BROKEN / "benchy_git_lfs_pointer.gcode")
    row = _one_row(clean_db, name)
    assert row["status"] == "failed"
    assert row["metadata"] is None
    assert len(row["error"]) > 10, row["error"]
    time.sleep(2)  # acked: no redelivery changes it
    assert result_rows(clean_db, name) == [row]


def test_duplicate_and_redelivered_notifications_change_nothing(start_service, clean_db, uploads_bucket, pubsub):
    tap = pubsub.new_subscription(prefix="tap")
    service = start_service()
    name, _ = upload(uploads_bucket, GCODE_SAMPLE)
    row = _one_row(clean_db, name, status="processed")
    [notification] = pubsub.pull(tap, want=1)

    duplicates_before = messages_total("duplicate")
    for _ in range(2):  # the same notification again, twice
        pubsub.publish(dict(notification.attributes), notification.data)
    wait_for(lambda: messages_total("duplicate") >= duplicates_before + 2, timeout=20, what="two duplicates handled")
    assert result_rows(clean_db, name) == [row]  # same status, metadata, attempts, updated_at
    assert service.worker.state is WorkerState.RUNNING


def test_failed_result_is_not_rewritten_by_a_redelivery(start_service, clean_db, uploads_bucket, pubsub):
    tap = pubsub.new_subscription(prefix="tap")
    start_service()
    name, _ = upload(uploads_bucket, BROKEN / "fdn_all_empty.gcode")
    row = _one_row(clean_db, name, status="failed")
    [notification] = pubsub.pull(tap, want=1)
    failed_before = messages_total("failed")
    pubsub.publish(dict(notification.attributes), notification.data)
    wait_for(lambda: messages_total("failed") > failed_before, timeout=20, what="the redelivery handled")
    assert result_rows(clean_db, name) == [row]  # same outcome: not even updated_at moved


def test_database_outage_is_retried_and_nothing_is_lost(
    start_service, clean_db, uploads_bucket, db_proxy, pubsub, monkeypatch
):
    # A dead-letter policy makes Pub/Sub count delivery attempts (stored as `attempts`).
    dead_topic = pubsub.new_topic("dead-letter")
    subscription = pubsub.new_subscription(
        ack_deadline_seconds=10,
        dead_letter_policy={"deadLetterTopic": pubsub.topic_path(dead_topic), "maxDeliveryAttempts": 100},
    )
    monkeypatch.setenv("UPLOADS_SUBSCRIPTION", subscription)
    retries_before = messages_total("retry")
    db_proxy.down()
    service = start_service()
    name, generation = upload(uploads_bucket, GOOD_SAMPLE)

    wait_for(lambda: messages_total("retry") >= retries_before + 2, timeout=30, what="nacks during the outage")
    assert db_proxy.refused >= 2
    assert result_rows(clean_db, name) == []
    assert not service.readiness().ok and "database" in service.readiness().detail
    assert service.liveness().ok  # an outage is not a reason to restart the pod

    db_proxy.up()
    row = _one_row(clean_db, name, status="processed", timeout=60)
    assert row["generation"] == generation
    assert row["attempts"] >= 3, row  # two failed deliveries at least, then this one
    wait_for(lambda: service.readiness().ok, timeout=10, what="readiness after the outage")


def test_gcs_server_errors_are_retried_and_nothing_is_lost(start_service, clean_db, uploads_bucket, fake_gcs, monkeypatch):
    gcs_proxy = TcpProxy(fake_gcs.host, fake_gcs.port)
    try:
        gcs_proxy.down(reply=HTTP_503)
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_proxy.http_url)  # the worker's client only
        retries_before = messages_total("retry")
        start_service(gcs_timeout_seconds=1.0)
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", fake_gcs.emulator_host)
        name, _ = upload(uploads_bucket, GOOD_SAMPLE)

        wait_for(lambda: messages_total("retry") >= retries_before + 2, timeout=30, what="nacks while GCS answers 503")
        assert gcs_proxy.refused >= 2
        assert result_rows(clean_db, name) == []
        gcs_proxy.up()
        row = _one_row(clean_db, name, status="processed", timeout=30)
        assert row["metadata"]["format"] == "gcode"
    finally:
        gcs_proxy.close()


def test_stream_that_cannot_start_fails_liveness(start_service, monkeypatch):
    monkeypatch.setenv("UPLOADS_SUBSCRIPTION", "no-such-subscription")
    service = start_service()
    client = create_app(service).test_client()
    response = wait_for(
        lambda: (r := client.get("/healthz")).status_code == 503 and r, timeout=30, what="/healthz 503"
    )
    assert "streaming pull failed" in response.get_json()["detail"]
    assert client.get("/readyz").status_code == 503


def test_dead_letter_after_max_delivery_attempts(start_service, clean_db, uploads_bucket, db_proxy, pubsub, monkeypatch):
    dead_topic = pubsub.new_topic("dead-letter")
    dead_sub = pubsub.new_subscription(topic=dead_topic, prefix="dead-letter")
    subscription = pubsub.new_subscription(
        ack_deadline_seconds=10,
        dead_letter_policy={"deadLetterTopic": pubsub.topic_path(dead_topic), "maxDeliveryAttempts": 5},
    )
    monkeypatch.setenv("UPLOADS_SUBSCRIPTION", subscription)
    from prometheus_client import REGISTRY

    dead_lettered_before = REGISTRY.get_sample_value("extractor_dead_lettered_total") or 0
    db_proxy.down()  # a fault that outlives every attempt
    start_service(max_delivery_attempts=5)
    name, generation = upload(uploads_bucket, GOOD_SAMPLE)

    [dead] = pubsub.pull(dead_sub, want=1, timeout=60)
    assert dead.attributes["objectId"] == name
    assert int(dead.attributes["objectGeneration"]) == generation
    assert result_rows(clean_db, name) == []  # nothing written; the message is parked, not lost
    # the operator is told: the nack of the last attempt is counted (and logged at ERROR)
    assert REGISTRY.get_sample_value("extractor_dead_lettered_total") == dead_lettered_before + 1


def test_notification_for_a_deleted_object_is_acked_as_gone(start_service, clean_db, uploads_bucket, pubsub):
    from google.cloud import storage

    tap = pubsub.new_subscription(prefix="tap")
    gone_before = messages_total("gone")
    name, generation = upload(uploads_bucket, GOOD_SAMPLE)
    [notification] = pubsub.pull(tap, want=1)
    storage.Client(project="unused").bucket(uploads_bucket).blob(name).delete()

    start_service()  # subscribed after the upload: sees only the replay below
    pubsub.publish(dict(notification.attributes), notification.data)
    wait_for(lambda: messages_total("gone") > gone_before, timeout=20, what="the gone outcome")
    assert result_rows(clean_db, name) == []


def test_malformed_and_foreign_messages_are_acked_not_retried(start_service, clean_db, pubsub):
    invalid_before, ignored_before, retry_before = (messages_total(o) for o in ("invalid", "ignored", "retry"))
    start_service()
    pubsub.publish({"eventType": "OBJECT_FINALIZE", "payloadFormat": "NONE"}, b"")
    pubsub.publish({"hello": "world"}, b"not a notification")
    pubsub.publish(
        {"eventType": "OBJECT_DELETE", "bucketId": "b", "objectId": "files/x/a.stl", "objectGeneration": "3",
         "payloadFormat": "JSON_API_V1"},
        b"{}",
    )
    pubsub.publish(
        {"eventType": "OBJECT_FINALIZE", "bucketId": "someone-elses-bucket", "objectId": "files/x/a.stl",
         "objectGeneration": "3", "payloadFormat": "JSON_API_V1"},
        b"{}",
    )
    wait_for(lambda: messages_total("invalid") >= invalid_before + 2, timeout=20, what="two invalid messages")
    wait_for(lambda: messages_total("ignored") >= ignored_before + 2, timeout=20, what="two ignored messages")
    time.sleep(1.5)
    assert messages_total("retry") == retry_before
    assert result_rows(clean_db) == []


def test_object_above_the_download_bound_fails_without_download(start_service, clean_db, uploads_bucket):
    start_service(max_download_bytes=1000)
    name, _ = upload(uploads_bucket, GCODE_SAMPLE)  # 100717 bytes
    row = _one_row(clean_db, name, status="failed")
    assert "above the extractor's limit of 1000 bytes" in row["error"]


def test_download_stops_at_the_bound_when_the_size_was_not_announced(
    start_service, clean_db, uploads_bucket, pubsub
):
    import json

    tap = pubsub.new_subscription(prefix="tap")
    name, _ = upload(uploads_bucket, GCODE_SAMPLE)  # 100717 bytes
    [notification] = pubsub.pull(tap, want=1)
    resource = json.loads(notification.data)
    del resource["size"]
    # The worker's own subscription (worker_env) already holds the original notification, size and
    # all; it listens on a fresh topic instead, which carries only the size-less replay.
    replay_topic = pubsub.new_topic("replay")
    subscription = pubsub.new_subscription(replay_topic, ack_deadline_seconds=10)
    start_service(max_download_bytes=1000, uploads_subscription=subscription)
    pubsub.publish(dict(notification.attributes), json.dumps(resource).encode(), topic=replay_topic)
    row = _one_row(clean_db, name, status="failed")
    assert "is at least 1001 bytes, above the extractor's limit of 1000 bytes" in row["error"]


def test_every_broken_sample_ends_processed_or_failed(start_service, clean_db, uploads_bucket):
    service = start_service()
    names = {upload(uploads_bucket, sample)[0]: sample.name for sample in sorted(BROKEN.iterdir())}
    assert len(names) >= 10

    def all_rows():
        rows = result_rows(clean_db)
        return rows if len(rows) == len(names) else None

    rows = wait_for(all_rows, timeout=90, what=f"results for all {len(names)} broken samples")
    for row in rows:
        sample = names[row["object_name"]]
        assert row["status"] in ("processed", "failed"), sample
        if row["status"] == "failed":
            assert row["error"] and row["error"].strip(), f"{sample}: failed without a reason"
            assert "internal error" not in row["error"], f"{sample}: the parser crashed: {row['error']}"
        else:
            assert row["metadata"], f"{sample}: processed without metadata"
    assert service.worker.state is WorkerState.RUNNING
    assert service.liveness().ok


class _ParserBug(Exception):
    """Stands in for ExtractionError: what a correct parser raises for bad content."""


def _crashing_parser(path: Path, filename: str) -> dict:
    raise ZeroDivisionError("a bug in a parser")


def _unstorable_parser(path: Path, filename: str) -> dict:
    return {"format": "gcode", "mesh": object()}


def _disk_trouble_parser(path: Path, filename: str) -> dict:
    raise OSError(28, "No space left on device")


@pytest.mark.parametrize(
    ("parser", "reason"),
    [
        (_crashing_parser, "internal error while reading 'Kreistest.gcode' (ZeroDivisionError)"),
        (_unstorable_parser, "internal error: metadata cannot be stored (metadata.mesh is a object"),
    ],
    ids=["crash", "unstorable-metadata"],
)
def test_parser_bugs_end_failed_not_in_a_retry_loop(start_service, clean_db, uploads_bucket, parser, reason):
    retry_before = messages_total("retry")
    service = start_service(extract=(parser, _ParserBug))
    name, _ = upload(uploads_bucket, GOOD_SAMPLE)
    row = _one_row(clean_db, name, status="failed")
    assert row["error"].startswith(reason), row["error"]
    assert messages_total("retry") == retry_before
    assert service.worker.state is WorkerState.RUNNING


def test_local_disk_trouble_is_retried(start_service, clean_db, uploads_bucket):
    retry_before = messages_total("retry")
    start_service(extract=(_disk_trouble_parser, _ParserBug))
    name, _ = upload(uploads_bucket, GOOD_SAMPLE)
    wait_for(lambda: messages_total("retry") >= retry_before + 2, timeout=20, what="OSError nacked and redelivered")
    assert result_rows(clean_db, name) == []


def test_flow_control_bounds_the_messages_handled_at_once(start_service, clean_db, uploads_bucket):
    """MAX_MESSAGES=2: with 6 uploads waiting, never more than 2 are being extracted at once; all 6 end processed."""
    import threading

    from extractor.metadata import ExtractionError, extract_metadata

    lock = threading.Lock()
    running, peak = [0], [0]

    def slow_extract(path, filename):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            time.sleep(0.5)
            return extract_metadata(path, filename)
        finally:
            with lock:
                running[0] -= 1

    start_service(extract=(slow_extract, ExtractionError), max_messages=2)
    names = [upload(uploads_bucket, GOOD_SAMPLE)[0] for _ in range(6)]
    wait_for(lambda: len(result_rows(clean_db)) == 6, timeout=60, what="6 results")
    assert {row["object_name"] for row in result_rows(clean_db)} == set(names)
    assert all(row["status"] == "processed" for row in result_rows(clean_db))
    assert peak[0] == 2, f"peak concurrency {peak[0]}, FlowControl max_messages is 2"


def test_health_endpoints(start_service):
    service = start_service()
    client = create_app(service).test_client()
    assert client.get("/healthz").status_code == 200
    ready = wait_for(lambda: client.get("/readyz").status_code == 200, timeout=10, what="/readyz 200")
    assert ready
    body = client.get("/metrics").get_data(as_text=True)
    for series in ("extractor_messages_total", "extractor_processing_seconds_bucket", "extractor_messages_in_flight"):
        assert series in body
    service.stop()
    assert client.get("/readyz").status_code == 503
    assert client.get("/readyz").get_json()["detail"] == "worker stopped"


def test_readiness_reports_the_database_within_its_bound(start_service, db_proxy, worker_env):
    import socket
    import time as _time

    client = create_app(start_service()).test_client()
    wait_for(lambda: client.get("/readyz").status_code == 200, timeout=10, what="/readyz 200")
    db_proxy.down()
    try:
        resp = client.get("/readyz")
        assert resp.status_code == 503 and resp.get_json()["detail"].startswith("database unreachable")
        assert client.get("/healthz").status_code == 200  # liveness does not depend on the database
    finally:
        db_proxy.up()
    wait_for(lambda: client.get("/readyz").status_code == 200, timeout=10, what="/readyz 200 again")

    # A database host that accepts TCP but never answers: libpq would wait CONNECT_TIMEOUT_S (5 s).
    with socket.create_server(("127.0.0.1", 0)) as silent:
        url = worker_env["DATABASE_URL"].replace(f":{db_proxy.port}/", f":{silent.getsockname()[1]}/")
        client = create_app(start_service(database_url=url)).test_client()
        started = _time.monotonic()
        resp = client.get("/readyz")
        elapsed = _time.monotonic() - started
    assert resp.status_code == 503 and "no answer within 2s" in resp.get_json()["detail"]
    assert elapsed < 3.5, f"/readyz took {elapsed:.1f}s"


# -- under gunicorn, with the image's config --------------------------------------------------


def _free_port() -> int:
    from tools.devstack import free_port

    return free_port()


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def _metric(body: str, name: str) -> float:
    for line in body.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _gunicorn(env: dict[str, str], log_path: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "python:extractor.gunicorn_conf"],
        env={**os.environ, **env},
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


@pytest.mark.parametrize("drain_timeout", [15.0, 1.0], ids=["drains", "nacks-after-timeout"])
def test_sigterm_under_gunicorn_drains_and_loses_nothing(
    worker_env, clean_db, uploads_bucket, db_proxy, database_url, start_service, tmp_path, drain_timeout
):
    port = _free_port()
    env = {**worker_env, "PORT": str(port), "DRAIN_TIMEOUT_SECONDS": str(drain_timeout), "MAX_MESSAGES": "2"}
    process = _gunicorn(env, tmp_path / "gunicorn.log")
    try:
        wait_for(lambda: _get(f"http://127.0.0.1:{port}/readyz")[0] == 200, timeout=30, what="gunicorn /readyz")
        db_proxy.delay = 0.5  # every database round trip of gunicorn's worker now takes 0.5 s: the message stays in flight
        name, _ = upload(uploads_bucket, GOOD_SAMPLE)
        wait_for(
            lambda: _metric(_get(f"http://127.0.0.1:{port}/metrics")[1], "extractor_messages_in_flight") >= 1,
            timeout=20, what="the message in flight", interval=0.05,
        )
        if drain_timeout < 5:
            # A second replica, as in the cluster, on the same subscription (direct database, no delay).
            start_service(database_url=database_url)
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=drain_timeout + 15)
        took = time.monotonic() - signalled
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    log = (tmp_path / "gunicorn.log").read_text()
    assert code == 0, log
    assert took < drain_timeout + 6, f"shutdown took {took:.1f}s\n{log}"

    if drain_timeout > 5:
        # Drained: the in-flight message finished and was acked before exit.
        assert "stopped (drained)" in log, log
        row = _one_row(clean_db, name, status="processed", timeout=5)
    else:
        # Drain timed out: the message was nacked (ModifyAckDeadline 0) and its lease is no longer
        # extended, so the other replica gets it. On Pub/Sub that is at once; the emulator may park a
        # message nacked after its stream closed for up to ~60 s (measured: 0-60 s), hence the wait.
        assert "drain timeout: nacked 1 unfinished message(s)" in log, log
        row = _one_row(clean_db, name, status="processed", timeout=75)
    assert row["status"] == "processed"


def test_object_no_file_owns_is_acked_as_gone_without_a_result(start_service, clean_db, uploads_bucket):
    gone_before = messages_total("gone")
    start_service()
    name, _ = upload(uploads_bucket, GOOD_SAMPLE, register=False)
    wait_for(lambda: messages_total("gone") > gone_before, timeout=20, what="the gone outcome")
    assert result_rows(clean_db, name) == []


def test_file_deleted_while_extracting_leaves_no_result(start_service, clean_db, uploads_bucket):
    """The delete-while-extracting race: the result references its file, so it cannot outlive it."""
    from extractor.metadata import ExtractionError, extract_metadata

    gone_before = messages_total("gone")

    def delete_then_extract(path: Path, filename: str) -> dict:
        with clean_db.begin() as conn:
            conn.execute(text("DELETE FROM files"))
        return extract_metadata(path, filename)

    start_service(extract=(delete_then_extract, ExtractionError))
    name, _ = upload(uploads_bucket, GOOD_SAMPLE)
    wait_for(lambda: messages_total("gone") > gone_before, timeout=20, what="the gone outcome")
    assert result_rows(clean_db, name) == []
