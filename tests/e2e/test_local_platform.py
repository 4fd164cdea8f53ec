"""End to end on the local platform (``make dev``'s runner and Procfile, free ports, own data folder).

Every real sample in ``../shared/samples`` and ``../shared/more-samples`` goes
through ``POST /v1/files``;
while the extractor works on them it is stopped (SIGTERM, as honcho or
Kubernetes stop it), the last few are uploaded while it is down, and it is
started again. Then:

- every upload ends ``processed`` or ``failed``; each ``failed`` has a reason
  (the documented phrase for the corpus' known-bad files);
- every fact MANIFEST.tsv states matches the API's metadata, by the corpus
  test's own cell rules (``tests/apps/manifest.py``), and an empty cell means
  the field is absent;
- every sample that embeds a preview has a ``thumbnail_url`` serving a
  bounded PNG; the others have none (404 problem);
- nothing lost, nothing doubled: one ``files`` row per accepted upload, one
  object per row (same name and generation) and no other object, one
  extraction result per object, nothing on the dead-letter subscription;
- the emulator holds the dev stack's topic/subscription names and settings
  (from ``infra.settings``);
- Ctrl-C stops every process of the run; a second start on the same data
  folder still has every file and result.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import psycopg
import pytest
import requests

from tools.localdev.client import FilesApi, Upload, sample_files

from localplatform import LocalPlatform, load_manifest_module

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

#: Seconds the extractor may take to reach a final status for every file. Notifications the
#: Pub/Sub emulator handed to the stopped extractor's dead stream come back only after the
#: dev ack deadline (60 s) plus the retry backoff (tools/localdev/emulator_streams.py).
PROCESSING_TIMEOUT = 180.0
#: How many samples are uploaded while the extractor is down (the rest before it stops).
UPLOADED_WHILE_DOWN = 4


@dataclass
class PipelineRun:
    """What the scenario observed: the uploads, each file's final resource, the extractor's stop status."""

    uploads: list[Upload]
    final: dict[str, dict[str, Any]]
    extractor_exit: int | None
    seconds: float


@pytest.fixture(scope="module")
def pipeline_run(platform: LocalPlatform, manifest: ModuleType) -> PipelineRun:
    """Upload every sample; SIGTERM the extractor while it works on them, upload the last few while
    it is down, start it again; wait until every file is processed or failed."""
    api = FilesApi(platform.cfg.files_api_url, ops_url=platform.cfg.files_api_ops_url)
    assert api.ready(), "files-api /readyz is not 200 although bootstrap said ready"
    shared = manifest.SAMPLES.parent  # Upload.path is then "<tree>/<path>", the manifest's row key
    paths = [p for root in manifest.TREES.values() for p in sample_files(root)]
    assert len(paths) >= 40, f"only {len(paths)} samples under {list(manifest.TREES.values())}"
    cut = len(paths) - UPLOADED_WHILE_DOWN
    started = time.monotonic()
    uploads = api.upload_all(paths[:cut], shared)
    extractor_exit = platform.stop_extractor()  # mid-run: notifications in flight and not yet pulled
    uploads += api.upload_all(paths[cut:], shared)  # published while no extractor runs
    platform.start_extractor()
    file_ids = [u.file["id"] for u in uploads if u.file is not None]
    try:
        final = api.wait_final(file_ids, PROCESSING_TIMEOUT)
    except TimeoutError as exc:
        pytest.fail(f"{exc}\ndead-lettered: {_dead_letters(platform)}\n--- extractor log ---\n"
                    f"{platform.log_tail(platform.extractor_log_path)}")
    return PipelineRun(uploads, final, extractor_exit, time.monotonic() - started)


def _dead_letters(platform: LocalPlatform) -> list[dict[str, str]]:
    """Attributes of the messages on the dead-letter subscription (pulled, not acked)."""
    names = platform.cfg.stack.names
    url = (f"http://{platform.cfg.pubsub_host}/v1/projects/{platform.cfg.project}/subscriptions/"
           f"{names.dead_letter_subscription}:pull")
    resp = requests.post(url, json={"maxMessages": 100, "returnImmediately": True}, timeout=10)
    resp.raise_for_status()
    return [m["message"].get("attributes", {}) for m in resp.json().get("receivedMessages", [])]


def _by_path(run: PipelineRun) -> dict[str, Upload]:
    return {u.path: u for u in run.uploads}


def test_extractor_stopped_cleanly_on_sigterm(pipeline_run: PipelineRun) -> None:
    assert pipeline_run.extractor_exit == 0, "gunicorn should drain and exit 0 on SIGTERM"


def test_only_empty_files_are_rejected_by_the_api(pipeline_run: PipelineRun, manifest: ModuleType) -> None:
    """files-api refuses a zero-byte upload (400); every other sample is accepted (201)."""
    for up in pipeline_run.uploads:
        size = (manifest.SAMPLES.parent / up.path).stat().st_size
        if size == 0:
            assert up.rejected is not None and up.rejected.status == 400, up
            assert "empty" in up.rejected.detail
        else:
            assert up.file is not None, f"{up.path} was rejected: {up.rejected}"
            assert up.file["size_bytes"] == size


def test_every_upload_ends_processed_or_failed_with_a_reason(pipeline_run: PipelineRun, manifest: ModuleType) -> None:
    for path, up in _by_path(pipeline_run).items():
        if up.file is None:
            continue
        view = pipeline_run.final[up.file["id"]]
        assert view["status"] in ("processed", "failed")
        if view["status"] == "failed":
            assert view["error"] and len(view["error"].strip()) > 10, f"{path}: failed without a reason"
            assert view["metadata"] is None
        expected_failure = manifest.EXPECTED_FAILURES.get(path)
        if expected_failure is not None:
            assert view["status"] == "failed", f"{path} must fail ({expected_failure}): {view}"
            assert expected_failure in view["error"], view["error"]
        else:
            assert view["status"] == "processed", f"{path}: {view['error']}"


def _fact_cases() -> list:
    """``(path, field)`` for every compared fact of every row (the corpus test's selection)."""


    module = load_manifest_module()
    if not module.MANIFEST.is_file():
        return []
    cases = []
    for row in module.read_all():
        if row.path in module.EXPECTED_FAILURES:
            continue
        for name in module.GCODE_FIELDS + module.MESH_FIELDS:
            if name in row.expected or name in row.errors:
                cases.append(pytest.param(row.path, name, id=f"{row.path}::{name}"))
    return cases


@pytest.fixture(scope="module")
def manifest_rows(manifest: ModuleType) -> dict[str, Any]:
    """MANIFEST.tsv rows by path, with expected values by the corpus test's rules."""
    return {row.path: row for row in manifest.read_all()}


@pytest.mark.parametrize(("path", "name"), _fact_cases())
def test_stated_fact_matches_api_metadata(pipeline_run: PipelineRun, manifest: ModuleType,
                                          manifest_rows: dict[str, Any], path: str, name: str) -> None:
    row = manifest_rows[path]
    assert name not in row.errors, f"manifest cell for {name} maps to no rule: {row.errors.get(name)}"
    up = _by_path(pipeline_run)[path]
    assert up.file is not None, f"{path} was rejected: {up.rejected}"
    view = pipeline_run.final[up.file["id"]]
    assert view["status"] == "processed", view["error"]
    metadata = view["metadata"]
    expected = row.expected[name]
    if expected is manifest.ABSENT:
        assert name not in metadata, f"{path}: {name}={metadata.get(name)!r} but the file does not state it"
    else:
        assert name in metadata, f"{path}: {name} missing, manifest says {expected!r}"
        assert manifest.same_value(metadata[name], expected), f"{path}: {name}={metadata[name]!r}, manifest {expected!r}"


def test_manifest_covers_every_uploaded_file(pipeline_run: PipelineRun, manifest_rows: dict[str, Any]) -> None:
    assert set(_by_path(pipeline_run)) == set(manifest_rows)


def _objects(platform: LocalPlatform) -> dict[str, int]:
    """``{object name: generation}`` of every object in the uploads bucket (fake-gcs JSON API, all pages)."""
    bucket = platform.cfg.stack.names.uploads_bucket
    url = f"{platform.cfg.storage_host}/storage/v1/b/{bucket}/o"
    objects: dict[str, int] = {}
    params: dict[str, str] = {}
    while True:
        resp = requests.get(url, params=params, timeout=10)
        resp.raise_for_status()
        body = resp.json()
        for item in body.get("items", []):
            assert item["name"] not in objects, f"object {item['name']} listed twice"
            objects[item["name"]] = int(item["generation"])
        if not body.get("nextPageToken"):
            return objects
        params["pageToken"] = body["nextPageToken"]


def _rows(platform: LocalPlatform, sql: str) -> list[tuple]:
    dsn = platform.cfg.database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql).fetchall()


def test_thumbnails_are_served_for_the_samples_that_embed_one(pipeline_run: PipelineRun, platform: LocalPlatform,
                                                               manifest: ModuleType) -> None:
    """G-code, bgcode (PNG and QOI), 3MF plate images and UFP thumbnails: each a PNG within the bound."""
    import io

    from PIL import Image

    base = platform.cfg.files_api_url
    for path, up in _by_path(pipeline_run).items():
        if up.file is None or pipeline_run.final[up.file["id"]]["status"] != "processed":
            continue
        view = pipeline_run.final[up.file["id"]]
        if path not in manifest.THUMBNAILS:
            assert view["thumbnail_url"] is None, path
            resp = requests.get(f"{base}/v1/files/{up.file['id']}/thumbnail", timeout=10)
            assert resp.status_code == 404 and resp.headers["Content-Type"] == "application/problem+json", path
            continue
        assert view["thumbnail_url"] == f"/v1/files/{up.file['id']}/thumbnail", path
        assert view["metadata"]["thumbnail"]["source"] == manifest.THUMBNAILS[path]
        resp = requests.get(base + view["thumbnail_url"], timeout=10)
        assert resp.status_code == 200 and resp.headers["Content-Type"] == "image/png", path
        assert len(resp.content) <= 256 * 1024
        image = Image.open(io.BytesIO(resp.content))
        assert image.format == "PNG" and max(image.size) <= 512, (path, image.size)
        assert list(image.size) == [view["metadata"]["thumbnail"]["width"], view["metadata"]["thumbnail"]["height"]]


def test_nothing_lost_nothing_doubled(pipeline_run: PipelineRun, platform: LocalPlatform) -> None:
    accepted = {u.file["id"]: u for u in pipeline_run.uploads if u.file is not None}
    files = _rows(platform, "SELECT id::text, bucket, object_name, generation FROM files")
    assert sorted(r[0] for r in files) == sorted(accepted), "exactly one files row per accepted upload"
    bucket = platform.cfg.stack.names.uploads_bucket
    objects = _objects(platform)
    for file_id, row_bucket, object_name, generation in files:
        assert row_bucket == bucket
        assert generation is not None, f"file {file_id} never finished its upload"
        assert objects.get(object_name) == generation, f"file {file_id}: object {object_name}#{generation} missing"
    assert set(objects) == {r[2] for r in files}, "objects without a files row"
    results = _rows(platform, "SELECT bucket, object_name, generation, status FROM extraction_results")
    keys = [(b, o, g) for b, o, g, _s in results]
    assert len(keys) == len(set(keys))
    assert sorted(keys) == sorted((r[1], r[2], r[3]) for r in files), "one extraction result per stored object"
    assert _dead_letters(platform) == [], "notifications were dead-lettered"


def test_emulator_has_the_dev_stack_names_and_settings(platform: LocalPlatform) -> None:
    """Subscription and topics as infra.settings derives them for the dev stack (not copies)."""
    from infra.pubsub import DEAD_LETTER_ACK_DEADLINE_SECONDS, DEAD_LETTER_RETENTION
    from infra.settings import load_stack_settings

    stack = load_stack_settings("dev")
    names, ps = stack.names, stack.pubsub
    base = f"http://{platform.cfg.pubsub_host}/v1/projects/{stack.project}"
    sub = requests.get(f"{base}/subscriptions/{names.extractor_subscription}", timeout=10).json()
    assert sub["topic"] == f"projects/{stack.project}/topics/{names.uploads_topic}"
    assert sub["ackDeadlineSeconds"] == ps.ack_deadline_seconds
    assert sub["messageRetentionDuration"] == ps.message_retention_duration
    assert sub["deadLetterPolicy"] == {
        "deadLetterTopic": f"projects/{stack.project}/topics/{names.dead_letter_topic}",
        "maxDeliveryAttempts": ps.max_delivery_attempts,
    }
    assert sub["retryPolicy"] == {"minimumBackoff": ps.minimum_backoff, "maximumBackoff": ps.maximum_backoff}
    dead = requests.get(f"{base}/subscriptions/{names.dead_letter_subscription}", timeout=10).json()
    assert dead["topic"] == f"projects/{stack.project}/topics/{names.dead_letter_topic}"
    assert dead["messageRetentionDuration"] == DEAD_LETTER_RETENTION
    assert dead["ackDeadlineSeconds"] == DEAD_LETTER_ACK_DEADLINE_SECONDS
    resp = requests.get(f"{platform.cfg.storage_host}/storage/v1/b/{names.uploads_bucket}", timeout=10)
    assert resp.status_code == 200


def test_web_page_and_api_docs_are_served(pipeline_run: PipelineRun, platform: LocalPlatform) -> None:
    page = requests.get(f"{platform.cfg.files_api_url}/", timeout=10)
    assert page.status_code == 200
    some = next(u for u in pipeline_run.uploads if u.file is not None)
    assert some.file["filename"] in page.text
    assert requests.get(f"{platform.cfg.files_api_url}/docs", timeout=10).status_code == 200
    assert requests.get(f"{platform.cfg.files_api_url}/openapi.json", timeout=10).json()["paths"]


def _listeners(ports: set[int]) -> dict[int, set[str]]:
    """``{port: {local address, ...}}`` of the listening TCP sockets on ``ports`` (Linux ``/proc/net/tcp*``)."""
    import ipaddress

    found: dict[int, set[str]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address_hex, port_hex = fields[1].split(":")
            if fields[3] != "0A" or int(port_hex, 16) not in ports:  # 0A: LISTEN
                continue
            # The kernel prints each 32-bit word of the address in host (little-endian) byte order.
            raw = b"".join(bytes.fromhex(address_hex[i:i + 8])[::-1] for i in range(0, len(address_hex), 8))
            address = ipaddress.ip_address(raw)
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
                address = address.ipv4_mapped
            found.setdefault(int(port_hex, 16), set()).add(str(address))
    return found


@pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="reads Linux /proc/net/tcp")
def test_every_server_listens_on_loopback_only(platform: LocalPlatform) -> None:
    import ipaddress

    ports = set(platform.cfg.ports.values())
    listeners = _listeners(ports)
    assert set(listeners) == ports, f"nothing listens on {sorted(ports - set(listeners))}"
    for port, addresses in listeners.items():
        assert all(ipaddress.ip_address(a).is_loopback for a in addresses), \
            f"port {port} listens on {sorted(addresses)}, not on loopback only"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_ctrl_c_stops_everything_and_data_survives_a_restart(pipeline_run: PipelineRun, platform: LocalPlatform) -> None:
    """Runs last in the module: stops the shared platform, then starts it again on the same folder."""
    pids = platform.started_pids()
    assert len(pids) == 7, "the supervisor started postgres, pubsub, bootstrap, gcs, files-api, reconciler, sweep"
    started = time.monotonic()
    assert platform.stop() == 0, platform.log_tail()
    stop_seconds = time.monotonic() - started
    assert not [pid for pid in pids if _alive(pid)], "processes outlived the run"
    from tools.localdev.ports import port_is_free

    assert all(port_is_free(port) for port in platform.cfg.ports.values()), "a port is still held after the stop"
    assert not (platform.cfg.run_dir / "stack.json").exists()

    platform.start()
    api = FilesApi(platform.cfg.files_api_url, ops_url=platform.cfg.files_api_ops_url)
    after = {v["id"]: v for v in api.list_all()}
    assert after.keys() == pipeline_run.final.keys(), "files lost over a restart"
    for file_id, before in pipeline_run.final.items():
        assert after[file_id]["status"] == before["status"]
        assert after[file_id]["metadata"] == before["metadata"]
    print(f"scenario {pipeline_run.seconds:.1f}s, Ctrl-C stop {stop_seconds:.1f}s")


def test_make_demo_prints_the_table_and_the_web_page_lists_the_same(platform: LocalPlatform, manifest: ModuleType,
                                                                    tmp_path) -> None:
    """``make demo`` (``python -m tools.localdev demo``) against the running platform: after the restart
    above, so its extra uploads do not disturb the counts of the scenario."""
    import shutil
    import subprocess
    import sys

    picked = ["cura/cura_slicer.gcode", "3mf/box.3mf", "broken/benchy_git_lfs_pointer.gcode"]
    for rel in picked:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(manifest.SAMPLES / rel, tmp_path / rel)
    proc = subprocess.run([sys.executable, "-m", "tools.localdev", "demo", "--samples", str(tmp_path)],
                          cwd=platform.cfg.root, env=platform.env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {line.split()[0]: line for line in proc.stdout.splitlines() if line.split() and line.split()[0] in picked}
    assert set(rows) == set(picked), proc.stdout
    assert " processed " in rows["cura/cura_slicer.gcode"] and " processed " in rows["3mf/box.3mf"]
    assert " failed " in rows["broken/benchy_git_lfs_pointer.gcode"]
    assert manifest.EXPECTED_FAILURES["samples/broken/benchy_git_lfs_pointer.gcode"] in rows["broken/benchy_git_lfs_pointer.gcode"]
    assert "3 files in" in proc.stdout and f"{platform.cfg.files_api_url}/" in proc.stdout
    page = requests.get(f"{platform.cfg.files_api_url}/", timeout=10).text
    for rel in picked:
        assert rel.rsplit("/", 1)[1] in page
