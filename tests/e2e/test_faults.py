"""Faults on the running local platform: nothing answered 201 is lost, nothing is doubled or orphaned.

The platform runs as ``make dev`` runs it (supervisor, Procfile, durable
Postgres) with a short reconciliation bound (``LOCALDEV_*`` overrides: re-drive
after 8 s, fail after 2 re-drives, reconcile every 4 s; sweep every 5 s of
uploads unfinished for 10 s), so each fault is over in seconds. During batches
of uploads:

1. kill -9 of the extractor's gunicorn *worker* (the master forks a new one;
   its ``post_fork`` ends the emulator's stale stream);
2. kill -9 of the Pub/Sub emulator (the supervisor restarts it, bootstrap
   creates its topics again; notifications published meanwhile are lost and
   the reconciler re-drives them);
3. kill -9 of the files-api worker while it stores a large upload (the row
   without generation and its object are the sweep's).

Then: every upload answered 201 ends ``processed`` or ``failed`` within the
bound, one result per file and one object per file (nothing doubled, nothing
orphaned once the sweep ran), the supervisor restarted what died, and the
pending-age gauge on the extractor's ``/metrics`` showed the gap while it
lasted.
"""

from __future__ import annotations

import io
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
import requests

from localplatform import LocalPlatform, running_platform

from tools.localdev.faults import descendants

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SAMPLE = Path(__file__).resolve().parents[2].parent / "shared" / "samples" / "cura" / "Kreistest.gcode"
#: The short bound of this run (seconds / counts), via the local platform's overrides.
BOUND = {"LOCALDEV_PENDING_BOUND_SECONDS": "8", "LOCALDEV_MAX_REDRIVES": "2",
         "LOCALDEV_RECONCILE_INTERVAL_SECONDS": "4", "LOCALDEV_SWEEP_INTERVAL_SECONDS": "5",
         "LOCALDEV_UNFINISHED_UPLOAD_AGE_SECONDS": "10"}
BATCH = 30


def _one(pids: list[tuple[int, str]], needle: str) -> int:
    matches = [pid for pid, cmd in pids if needle in cmd]
    assert matches, f"no process with {needle!r} among {pids}"
    return matches[0]


class Uploader:
    """Uploads from threads like a well-behaved client: retries 503 and connection errors; keeps each 201."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.accepted: dict[str, float] = {}  # file id -> when the 201 came
        self.lock = threading.Lock()

    def upload(self, name: str, body: bytes, attempts: int = 60) -> str | None:
        for _ in range(attempts):
            try:
                resp = requests.post(f"{self.base_url}/v1/files", files={"file": (name, io.BytesIO(body))}, timeout=60)
            except requests.RequestException:
                time.sleep(0.5)
                continue
            if resp.status_code == 201:
                with self.lock:
                    self.accepted[resp.json()["id"]] = time.monotonic()
                return resp.json()["id"]
            assert resp.status_code == 503, (resp.status_code, resp.text)
            time.sleep(0.5)
        raise AssertionError(f"{name}: no 201 after {attempts} attempts")

    def batch(self, prefix: str, fault: Callable[[], None], n: int = BATCH) -> None:
        body = SAMPLE.read_bytes()
        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(self.upload, f"{prefix}-{i}.gcode", body) for i in range(n)]
            time.sleep(0.5)
            fault()
            for future in futures:
                future.result()


class GaugeWatch:
    """Polls the extractor's ``pipeline_pending_oldest_age_seconds`` every 0.5 s; keeps the largest value."""

    def __init__(self, metrics_url: str) -> None:
        self.url = metrics_url
        self.max_seen = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            try:
                text = requests.get(self.url, timeout=2).text
            except requests.RequestException:
                continue
            for line in text.splitlines():
                if line.startswith("pipeline_pending_oldest_age_seconds "):
                    self.max_seen = max(self.max_seen, float(line.split()[-1]))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@pytest.fixture(scope="module")
def faulty_platform() -> Iterator[LocalPlatform]:
    if not SAMPLE.is_file():
        pytest.skip(f"sample {SAMPLE} not found (tests read ../shared/samples)")
    with running_platform(skip=(), env=BOUND) as plat:
        yield plat


def _sql(plat: LocalPlatform, query: str, params: tuple = ()) -> list[tuple]:
    dsn = plat.cfg.database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        return conn.execute(query, params).fetchall()


def _objects(plat: LocalPlatform) -> dict[str, int]:
    url = f"{plat.cfg.storage_host}/storage/v1/b/{plat.cfg.stack.names.uploads_bucket}/o"
    objects: dict[str, int] = {}
    params: dict[str, str] = {}
    while True:
        body = requests.get(url, params=params, timeout=10).json()
        objects.update({item["name"]: int(item["generation"]) for item in body.get("items", [])})
        if not body.get("nextPageToken"):
            return objects
        params["pageToken"] = body["nextPageToken"]


def _statuses(plat: LocalPlatform, ids: list[str]) -> dict[str, str]:
    rows = _sql(plat, "SELECT f.id::text, coalesce(r.status, 'pending') FROM files f LEFT JOIN extraction_results r "
                      "ON r.bucket = f.bucket AND r.object_name = f.object_name AND r.generation = f.generation "
                      "WHERE f.id::text = ANY(%s)", (ids,))
    return dict(rows)


def test_kills_lose_nothing_double_nothing_orphan_nothing(faulty_platform: LocalPlatform) -> None:
    plat = faulty_platform
    bound = plat.cfg.final_bound_seconds
    assert bound == 8 * 3 + 4
    procs = plat.processes()
    uploader = Uploader(plat.cfg.files_api_url)
    gauge = GaugeWatch(f"{plat.cfg.extractor_url}/metrics")
    started = time.monotonic()
    try:
        # 1. kill -9 of the extractor's gunicorn worker: the master forks a new one.
        extractor_pid = procs["extractor"]["pid"]
        worker = _one(descendants(extractor_pid), "gunicorn")
        uploader.batch("worker-kill", lambda: os.kill(worker, signal.SIGKILL))
        new_worker = _one(descendants(extractor_pid), "gunicorn")
        assert new_worker != worker

        # 2. kill -9 of the Pub/Sub emulator (its JVM) mid-batch: the supervisor restarts it.
        java = _one(descendants(procs["pubsub"]["pid"]), "java")
        uploader.batch("emulator-kill", lambda: os.kill(java, signal.SIGKILL))

        # 3. kill -9 of the files-api worker storing a large upload: no 201, a row without generation.
        files_api_pid = procs["files-api"]["pid"]
        big = threading.Thread(target=_big_upload, args=(plat.cfg.files_api_url,), daemon=True)
        big.start()
        deadline = time.monotonic() + 60
        while not _sql(plat, "SELECT 1 FROM files WHERE generation IS NULL"):
            assert time.monotonic() < deadline, "the large upload never reached storage"
            time.sleep(0.02)
        for pid, cmd in descendants(files_api_pid):
            if "gunicorn" in cmd:
                os.kill(pid, signal.SIGKILL)
        big.join(timeout=60)

        # Every 201 ends processed or failed within the bound (after its 201; slack for this 2-core machine).
        ids = list(uploader.accepted)
        assert len(ids) == 2 * BATCH
        deadline = max(uploader.accepted.values()) + bound + 30
        while True:
            statuses = _statuses(plat, ids)
            pending = [i for i in ids if statuses.get(i, "missing") not in ("processed", "failed")]
            if not pending:
                break
            assert time.monotonic() < deadline, (
                f"{len(pending)} of {len(ids)} files not final {bound}+30 s after the last 201: "
                f"{[statuses.get(i) for i in pending[:5]]}\n{plat.log_tail(lines=40)}")
            time.sleep(1)
        final_after = time.monotonic() - started
        assert sorted(statuses) == sorted(ids), "a file answered 201 vanished"
        # The promise is "processed or failed within the bound": with this run's 8 s bound on a loaded
        # 2-core machine the reconciler may give up on a file before the restarted emulator's stream
        # delivers it. Such a file must say so; any other failure is a bug.
        failed = _sql(plat, "SELECT f.id::text, r.error FROM files f JOIN extraction_results r ON r.bucket = f.bucket "
                            "AND r.object_name = f.object_name AND r.generation = f.generation "
                            "WHERE r.status = 'failed' AND f.id::text = ANY(%s)", (ids,))
        for file_id, error in failed:
            assert error and error.startswith("no extraction result after") and "re-driven" in error, (file_id, error)
        assert len(failed) <= len(ids) // 4, f"{len(failed)} of {len(ids)} files given up by the reconciler: {failed[:3]}"
        if failed:
            print(f"\n{len(failed)} of {len(ids)} files failed by the reconciler after its re-drives: {failed[0][1]}")

        # The sweep removes what the killed files-api worker left (row without generation, its object).
        deadline = time.monotonic() + 10 + 5 + 30
        while _sql(plat, "SELECT 1 FROM files WHERE generation IS NULL"):
            assert time.monotonic() < deadline, "the sweep did not remove the unfinished upload"
            time.sleep(1)
    finally:
        gauge.stop()

    files = _sql(plat, "SELECT object_name, generation FROM files")
    results = _sql(plat, "SELECT object_name, generation, count(*) OVER (PARTITION BY object_name) FROM extraction_results")
    assert len(files) == len(ids)
    assert sorted((o, g) for o, g, _ in results) == sorted(files), "one result per file, for its generation"
    assert _objects(plat) == dict(files), "one object per file and no other object"
    # What the supervisor did: the emulator restarted (once), the rest kept running.
    procs = plat.processes()
    assert procs["pubsub"]["restarts"] == 1 and procs["pubsub"]["state"] == "running", procs["pubsub"]
    assert all(p["state"] == "running" for p in procs.values()), procs
    # The operator saw the gap: the oldest pending file passed the re-drive bound before it was re-driven.
    assert gauge.max_seen >= 8, f"pending-age gauge peaked at {gauge.max_seen}s"
    print(f"\nall {len(ids)} files final {final_after:.0f}s after the first fault; pending-age gauge peaked at "
          f"{gauge.max_seen:.0f}s; bound {bound}s")


def _big_upload(base_url: str) -> None:
    """A 64 MiB G-code upload whose worker gets killed: the client sees the connection die, never a 201."""
    body = b"G1 X1 Y1\n" * (64 * 1024 * 1024 // 9)
    try:
        resp = requests.post(f"{base_url}/v1/files", files={"file": ("big.gcode", io.BytesIO(body))}, timeout=120)
    except requests.RequestException:
        return
    assert resp.status_code != 201, "the killed upload was answered 201"
