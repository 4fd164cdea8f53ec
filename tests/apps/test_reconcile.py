"""The reconciler (``extractor-reconcile``) and the backlog gauges against real backends.

A "lost" notification is made the honest way: the file is uploaded (row,
object, generation, as files-api does) while no extractor subscription
exists, so its notification reaches nobody; then its upload is dated back
past the bound.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from sqlalchemy import text

from extractor.backlog import BacklogCollector
from extractor.notification import Finalize, parse_notification
from extractor.reconcile import (
    ReconcilerSettings,
    notification_message,
    object_resource,
    reconcile_pending,
    redrive_dead_letters,
)
from pipeline_core.db import make_session_factory
from pipeline_core.settings import load_settings
from worker_fixtures import (  # noqa: F401 - fixtures
    SAMPLES,
    db_proxy,
    emulator_env,
    pubsub,
    result_rows,
    upload,
    wait_for,
    worker_env,
)

pytestmark = pytest.mark.slow

GOOD_SAMPLE = SAMPLES / "cura" / "Kreistest.gcode"


@pytest.fixture
def clients(emulator_env, gcp_project):
    from google.cloud import pubsub_v1, storage

    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    yield storage.Client(project=gcp_project), publisher, subscriber
    subscriber.close()


def _settings(database_url, gcp_project, uploads_bucket, topic, **more) -> ReconcilerSettings:
    return load_settings(ReconcilerSettings, database_url=database_url, google_cloud_project=gcp_project,
                         uploads_bucket=uploads_bucket, uploads_topic=topic, **more)


def _age(engine, object_name: str, seconds: int, column: str = "updated_at") -> None:
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE files SET {column} = now() - make_interval(secs => :s) WHERE object_name = :o"),
                     {"s": seconds, "o": object_name})


def _file(engine, object_name: str) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT * FROM files WHERE object_name = :o"), {"o": object_name}).one()._mapping)


def test_republished_notification_is_what_the_bucket_sent(worker_env, pubsub, clients, uploads_bucket):
    storage_client, _, _ = clients
    tap = pubsub.new_subscription(prefix="tap")
    name, generation = upload(uploads_bucket, GOOD_SAMPLE)
    [sent] = pubsub.pull(tap, want=1)

    data, attributes = notification_message(object_resource(storage_client, uploads_bucket, name, generation, timeout=10))
    required = ("eventType", "bucketId", "objectId", "objectGeneration", "payloadFormat")
    assert {k: attributes[k] for k in required} == {k: sent.attributes[k] for k in required}
    assert attributes["payloadFormat"] == "JSON_API_V1" and attributes["eventType"] == "OBJECT_FINALIZE"
    ours, theirs = json.loads(data), json.loads(sent.data)
    for key in ("bucket", "name", "generation", "size", "contentType", "md5Hash", "crc32c"):
        assert ours.get(key) == theirs.get(key), key
    parsed = parse_notification(attributes, data)
    assert isinstance(parsed, Finalize) and parsed == parse_notification(dict(sent.attributes), sent.data)
    assert parsed.ref.generation == generation and parsed.size == GOOD_SAMPLE.stat().st_size


def test_pending_file_past_the_bound_is_redriven_and_ends_processed(
    worker_env, pubsub, clients, clean_db, database_url, gcp_project, uploads_bucket, monkeypatch
):
    storage_client, publisher, _ = clients
    name, generation = upload(uploads_bucket, GOOD_SAMPLE)  # no extractor subscribed: its notification is lost
    fresh, _ = upload(uploads_bucket, GOOD_SAMPLE)
    _age(clean_db, name, 120)
    settings = _settings(database_url, gcp_project, uploads_bucket, pubsub.uploads_topic, pending_bound_seconds=60)

    tap = pubsub.new_subscription(prefix="tap")
    report = reconcile_pending(make_session_factory(clean_db), storage_client, publisher, settings)
    assert (report.redriven, report.errors) == (1, 0), report
    assert report.oldest_pending_seconds >= 120
    [redriven] = pubsub.pull(tap, want=1)
    assert redriven.attributes["objectId"] == name and redriven.attributes["objectGeneration"] == str(generation)
    row = _file(clean_db, name)
    assert row["redrive_count"] == 1 and row["last_redriven_at"] is not None
    assert _file(clean_db, fresh)["redrive_count"] == 0  # within the bound: left alone

    again = reconcile_pending(make_session_factory(clean_db), storage_client, publisher, settings)
    assert again.redriven == 0  # the re-drive gets a whole bound before the next one

    # The extractor takes the re-driven notification like the original one.
    from extractor.service import ExtractorService
    from extractor.config import load_extractor_settings

    for key, value in worker_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("UPLOADS_SUBSCRIPTION", pubsub.new_subscription())
    service = ExtractorService(load_extractor_settings())
    service.start()
    try:
        pubsub.publish(dict(redriven.attributes), redriven.data)
        rows = wait_for(lambda: result_rows(clean_db, name), timeout=30, what="the result of the re-driven file")
    finally:
        service.stop()
    assert [r["status"] for r in rows] == ["processed"] and rows[0]["generation"] == generation


def test_after_max_redrives_the_file_fails_with_a_reason(
    worker_env, pubsub, clients, clean_db, database_url, gcp_project, uploads_bucket
):
    storage_client, publisher, _ = clients
    name, generation = upload(uploads_bucket, GOOD_SAMPLE)
    _age(clean_db, name, 600)
    settings = _settings(database_url, gcp_project, uploads_bucket, pubsub.uploads_topic,
                         pending_bound_seconds=60, max_redrives=2)
    sessions = make_session_factory(clean_db)
    for expected in (1, 2):
        assert reconcile_pending(sessions, storage_client, publisher, settings).redriven == 1
        assert _file(clean_db, name)["redrive_count"] == expected
        _age(clean_db, name, 120, column="last_redriven_at")
    report = reconcile_pending(sessions, storage_client, publisher, settings)
    assert (report.redriven, report.failed_after_redrives) == (0, 1)
    [row] = result_rows(clean_db, name)
    assert row["status"] == "failed" and row["generation"] == generation
    assert "2 re-driven notification(s)" in row["error"] and "upload the file again" in row["error"]
    assert reconcile_pending(sessions, storage_client, publisher, settings).failed_after_redrives == 0


def test_pending_file_whose_object_is_gone_fails_at_once(
    worker_env, pubsub, clients, clean_db, database_url, gcp_project, uploads_bucket
):
    storage_client, publisher, _ = clients
    name, _ = upload(uploads_bucket, GOOD_SAMPLE)
    storage_client.bucket(uploads_bucket).blob(name).delete()
    _age(clean_db, name, 600)
    settings = _settings(database_url, gcp_project, uploads_bucket, pubsub.uploads_topic, pending_bound_seconds=60)
    report = reconcile_pending(make_session_factory(clean_db), storage_client, publisher, settings)
    assert (report.redriven, report.failed_object_gone) == (0, 1)
    [row] = result_rows(clean_db, name)
    assert row["status"] == "failed" and "is gone" in row["error"]


def test_dead_letters_go_back_to_the_uploads_topic_without_the_dead_letter_attributes(
    pubsub, clients, database_url, gcp_project, uploads_bucket
):
    _, publisher, subscriber = clients
    dead_topic = pubsub.new_topic("dead")
    dead_sub = pubsub.new_subscription(dead_topic, prefix="dead-inspect")
    tap = pubsub.new_subscription(prefix="tap")
    attributes = {"eventType": "OBJECT_FINALIZE", "bucketId": uploads_bucket, "objectId": "files/x/a.gcode",
                  "objectGeneration": "7", "payloadFormat": "JSON_API_V1"}
    for i in range(3):
        pubsub.publish({**attributes, "objectGeneration": str(i + 1),
                        "CloudPubSubDeadLetterSourceDeliveryCount": "5"}, b"{}", topic=dead_topic)
    settings = _settings(database_url, gcp_project, uploads_bucket, pubsub.uploads_topic,
                         dead_letter_subscription=dead_sub, publish_timeout_seconds=5)
    assert redrive_dead_letters(subscriber, publisher, settings, max_messages=2) == 3
    got = pubsub.pull(tap, want=3)
    assert sorted(m.attributes["objectGeneration"] for m in got) == ["1", "2", "3"]
    assert all(dict(m.attributes).keys() == attributes.keys() for m in got)
    assert pubsub.pull(dead_sub, want=1, timeout=3) == []  # acked: nothing left


def test_backlog_gauges_show_the_gap(worker_env, clean_db, uploads_bucket):
    name, _ = upload(uploads_bucket, GOOD_SAMPLE)
    upload(uploads_bucket, GOOD_SAMPLE)
    _age(clean_db, name, 400)
    with clean_db.begin() as conn:  # an unfinished upload (row, no generation)
        conn.execute(text("INSERT INTO files (id, filename, content_type, size_bytes, bucket, object_name, created_at) "
                          "VALUES (gen_random_uuid(), 'x.gcode', 'text/x.gcode', 1, :b, 'files/u/x.gcode', "
                          "now() - interval '2 minutes')"), {"b": uploads_bucket})
    metrics = {m.name: m for m in BacklogCollector(clean_db).collect()}
    assert metrics["pipeline_backlog_up"].samples[0].value == 1
    by_age = {s.labels["older_than_seconds"]: s.value for s in metrics["pipeline_pending_files"].samples}
    assert by_age["0"] == 2 and by_age["300"] == 1 and by_age["900"] == 0
    assert 400 <= metrics["pipeline_pending_oldest_age_seconds"].samples[0].value < 500
    assert metrics["pipeline_unfinished_uploads"].samples[0].value == 1
    assert metrics["pipeline_unfinished_upload_oldest_age_seconds"].samples[0].value >= 120


def test_backlog_gauges_say_down_when_the_database_is_gone(postgres):
    from pipeline_core.db import make_engine
    from tools.devstack import free_port

    engine = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none")
    metrics = list(BacklogCollector(engine).collect())
    assert [(m.name, m.samples[0].value) for m in metrics] == [("pipeline_backlog_up", 0)]


def test_cli_runs_a_round_and_logs_its_counts(worker_env, clean_db, database_url, gcp_project, uploads_bucket, pubsub):
    name, _ = upload(uploads_bucket, GOOD_SAMPLE)
    _age(clean_db, name, 600)
    env = {**os.environ, **worker_env, "DATABASE_URL": database_url, "UPLOADS_TOPIC": pubsub.uploads_topic,
           "PENDING_BOUND_SECONDS": "60", "MAX_REDRIVES": "3"}
    proc = subprocess.run([sys.executable, "-m", "extractor.reconcile"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    done = [json.loads(line) for line in proc.stdout.splitlines() if '"reconcile done"' in line]
    assert done and done[-1]["redriven"] == 1 and done[-1]["pending_bound_seconds"] == 60
    env.pop("UPLOADS_TOPIC")
    bad = subprocess.run([sys.executable, "-m", "extractor.reconcile"], env=env, capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and "UPLOADS_TOPIC" in bad.stdout
