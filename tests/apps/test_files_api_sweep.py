"""files-api-sweep removes what a crashed upload left (row without generation, maybe its object), nothing else."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import text

from files_api.storage import UploadsBucket
from files_api.sweep import sweep_orphan_objects, sweep_unfinished
from pipeline_core.db import make_session_factory

pytestmark = pytest.mark.slow


def _orphan(engine, bucket: str, age: str, gcs_client=None) -> str:
    fid = uuid.uuid4()
    name = f"files/{fid}/crashed.gcode"
    with engine.begin() as conn:
        conn.execute(text(f"INSERT INTO files (id, filename, content_type, size_bytes, bucket, object_name, created_at) "
                          f"VALUES (:id, 'crashed.gcode', 'text/x.gcode', 4, :b, :o, now() - interval '{age}')"),
                     {"id": fid, "b": bucket, "o": name})
    if gcs_client is not None:
        gcs_client.bucket(bucket).blob(name).upload_from_string(b"G28\n")
    return name


def _names(engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(text("SELECT object_name FROM files")).scalars())


def test_sweep_removes_old_unfinished_uploads_only(files_api, clean_db, gcs_client, uploads_bucket):
    done = files_api.post("/v1/files", data={"file": (io.BytesIO(b"G28\n"), "done.gcode")},
                          content_type="multipart/form-data").get_json()
    old_with_object = _orphan(clean_db, uploads_bucket, "7 hours", gcs_client)
    old_without_object = _orphan(clean_db, uploads_bucket, "7 hours")
    recent = _orphan(clean_db, uploads_bucket, "1 minute", gcs_client)

    bucket = UploadsBucket(gcs_client, uploads_bucket, chunk_bytes=256 * 1024, timeout=10)
    assert sweep_unfinished(make_session_factory(clean_db), bucket, timedelta(hours=6), batch=1) == 2

    left = _names(clean_db)
    assert recent in left and f"files/{done['id']}/done.gcode" in left
    assert old_with_object not in left and old_without_object not in left
    objects = {b.name for b in gcs_client.list_blobs(uploads_bucket)}
    assert old_with_object not in objects and recent in objects
    assert sweep_unfinished(make_session_factory(clean_db), bucket, timedelta(hours=6)) == 0


def test_sweep_cli(clean_db, database_url, fake_gcs, uploads_bucket, gcp_project):
    _orphan(clean_db, uploads_bucket, "2 hours")
    env = {**os.environ, "DATABASE_URL": database_url, "GOOGLE_CLOUD_PROJECT": gcp_project,
           "UPLOADS_BUCKET": uploads_bucket, "STORAGE_EMULATOR_HOST": fake_gcs.emulator_host}
    proc = subprocess.run([sys.executable, "-m", "files_api.sweep", "--older-than-seconds", "3600"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert '"removed": 1' in proc.stdout and _names(clean_db) == set()
    env.pop("DATABASE_URL")
    env.pop("UPLOADS_BUCKET")
    bad = subprocess.run([sys.executable, "-m", "files_api.sweep"], env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "DATABASE_URL: Field required" in bad.stdout


def test_sweep_removes_objects_no_row_names_and_keeps_the_rest(files_api, clean_db, gcs_client, uploads_bucket):
    done = files_api.post("/v1/files", data={"file": (io.BytesIO(b"G28\n"), "done.gcode")},
                          content_type="multipart/form-data").get_json()
    unfinished = _orphan(clean_db, uploads_bucket, "1 minute", gcs_client)  # a row, no generation yet: not an orphan
    orphan = f"files/{uuid.uuid4()}/left-behind.gcode"
    gcs_client.bucket(uploads_bucket).blob(orphan).upload_from_string(b"G28\n")
    outside = "elsewhere/not-ours.txt"
    gcs_client.bucket(uploads_bucket).blob(outside).upload_from_string(b"x")
    bucket = UploadsBucket(gcs_client, uploads_bucket, chunk_bytes=256 * 1024, timeout=10)
    sessions = make_session_factory(clean_db)

    assert sweep_orphan_objects(sessions, bucket, timedelta(hours=1)) == 0  # too young yet
    # (the session's bucket also holds other tests' objects without rows: orphans too)
    assert sweep_orphan_objects(sessions, bucket, timedelta(0), page_size=1) >= 1
    objects = {b.name for b in gcs_client.list_blobs(uploads_bucket)}
    assert orphan not in objects
    assert {f"files/{done['id']}/done.gcode", unfinished, outside} <= objects
    gcs_client.bucket(uploads_bucket).blob(outside).delete()
