"""files-api as it runs in production: gunicorn with apps/files-api/gunicorn.conf.py, talking to the real backends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tools.devstack import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "apps" / "files-api" / "gunicorn.conf.py"


@pytest.fixture
def gunicorn_server(database_url, fake_gcs, uploads_bucket, gcp_project, clean_db, tmp_path):
    port, ops_port = free_port(), free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "GOOGLE_CLOUD_PROJECT": gcp_project,
           "UPLOADS_BUCKET": uploads_bucket, "STORAGE_EMULATOR_HOST": fake_gcs.emulator_host,
           "PORT": str(port), "OPS_PORT": str(ops_port), "HOST": "127.0.0.1", "WEB_CONCURRENCY": "2", "LOG_LEVEL": "INFO",
           "MAX_UPLOAD_BYTES": str(2 * 1024 * 1024)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(CONF)], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log_path.read_text()
            try:
                if requests.get(f"{base}/healthz", timeout=5).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        yield base, f"http://127.0.0.1:{ops_port}", proc, log_path
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def test_gunicorn_serves_uploads_logs_json_and_stops_cleanly(gunicorn_server, samples_dir):
    base, ops, proc, log_path = gunicorn_server
    sample = samples_dir / "orcaslicer" / "orca_slicer.gcode"  # 1.77 MB, the largest sample
    with open(sample, "rb") as fh:
        resp = requests.post(f"{base}/v1/files", files={"file": (sample.name, fh)},
                             headers={"X-Request-Id": "gunicorn-test-1"}, timeout=60)
    assert resp.status_code == 201, resp.text
    assert resp.headers["Location"].startswith("/v1/files/")
    got = requests.get(f"{base}{resp.headers['Location']}/content", timeout=60)
    assert got.content == sample.read_bytes()

    too_big = requests.post(f"{base}/v1/files", files={"file": ("big.gcode", b"G" * (2 * 1024 * 1024 + 1))}, timeout=60)
    assert too_big.status_code == 413 and too_big.headers["Content-Type"] == "application/problem+json"
    assert requests.get(f"{ops}/readyz", timeout=10).status_code == 200
    # The public listener shows neither the readiness details nor the metrics (files_api.listeners);
    # the ops listener serves nothing of the API.
    for path in ("/readyz", "/metrics"):
        assert requests.get(f"{base}{path}", timeout=10).status_code == 404
    assert requests.get(f"{ops}/v1/files", timeout=10).status_code == 404
    assert requests.get(f"{base}/healthz", timeout=10).json() == requests.get(f"{ops}/healthz", timeout=10).json()

    # Errors gunicorn answers itself (a header above limit_request_field_size) are problem+json too.
    refused = requests.get(f"{base}/v1/files", headers={"X-Big": "x" * 9000}, timeout=10)
    assert refused.status_code in (400, 431) and refused.headers["Content-Type"] == "application/problem+json"
    assert refused.json()["status"] == refused.status_code and refused.json()["type"] == "about:blank"

    # Both workers' counters are summed (multiprocess mode): ask a few times, any worker answers the total.
    for _ in range(4):
        requests.get(f"{base}/v1/files", timeout=10)
    metrics = requests.get(f"{ops}/metrics", timeout=10).text
    line = next(l for l in metrics.splitlines()
                if l.startswith('files_api_http_requests_total{endpoint="/v1/files",method="GET",status="200"}'))
    assert float(line.rsplit(" ", 1)[1]) == 4.0

    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    lines = [json.loads(l) for l in log_path.read_text().splitlines() if l.strip()]
    assert all({"severity", "message", "time", "logger"} <= set(entry) for entry in lines), lines
    upload_line = next(e for e in lines if e.get("request_id") == "gunicorn-test-1" and e["message"] == "file uploaded")
    assert upload_line["size_bytes"] == sample.stat().st_size
    access = next(e for e in lines if e.get("request_id") == "gunicorn-test-1" and "httpRequest" in e)
    assert access["httpRequest"]["status"] == 201 and access["httpRequest"]["requestMethod"] == "POST"
    assert any(e["logger"].startswith("gunicorn") for e in lines)
