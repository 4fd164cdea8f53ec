"""Property-based tests of files-api from its own OpenAPI document (schemathesis), against real gunicorn.

The service runs as in production (gunicorn with ``apps/files-api/gunicorn.conf.py``)
on the session's Postgres and fake-gcs-server. ``st run`` then reads
``/openapi.json`` and runs every phase (examples, coverage, fuzzing, stateful:
upload -> get / download / delete through the ``Location`` links it infers)
with every check: no server error, status codes, content types, headers and
bodies as documented, invalid input rejected, valid input accepted, deleted
files gone. Positive uploads carry real print files (``schemathesis_hooks``).

Bounded: a fixed seed and ``MAX_EXAMPLES`` cases per operation, so the run
is reproducible and takes well under 90 s.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gunicorn_server import FilesApiServer, service_env

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
MAX_EXAMPLES = 25
SEED = 20261201


def test_schemathesis_finds_nothing(database_url, fake_gcs, uploads_bucket, gcp_project, clean_db, samples_dir, tmp_path):
    server = FilesApiServer(service_env(database_url, fake_gcs, uploads_bucket, gcp_project, WEB_CONCURRENCY="2",
                                        MAX_UPLOAD_BYTES=str(1024 * 1024), MAX_CONCURRENT_UPLOADS="8"),
                            tmp_path / "gunicorn.log")
    try:
        env = {**os.environ, "SCHEMATHESIS_HOOKS": "schemathesis_hooks", "FILES_API_SAMPLES": str(samples_dir),
               "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
               "NO_COLOR": "1", "COLUMNS": "160"}
        cmd = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(HERE / "schemathesis.toml"), "run", f"{server.base}/openapi.json",
               "--checks", "all", "--phases", "examples,coverage,fuzzing,stateful", "--mode", "all",
               "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED), "--workers", "2",
               "--request-timeout", "20", "--suppress-health-check", "too_slow",
               "--report", "junit", "--report-junit-path", str(tmp_path / "junit.xml")]
        started = time.monotonic()
        run = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        took = time.monotonic() - started
    finally:
        server.stop()
    output = run.stdout + run.stderr
    print(output)
    print(f"schemathesis took {took:.1f} s")
    assert run.returncode == 0, output[-20000:]
    assert "No issues found" in output, output[-5000:]
    # The run really exercised the happy paths: real files stored, read, downloaded and deleted.
    answered = set()
    for line in server.log().split("\n"):  # not splitlines(): paths may hold U+0085 or U+2028
        try:
            http = json.loads(line).get("httpRequest")
        except ValueError:  # not one of the JSON log lines
            continue
        if http:
            path = re.sub(r"/v1/files/[0-9a-f-]{36}", "/v1/files/{id}", http["requestUrl"].split("?")[0])
            answered.add((http["requestMethod"], path, http["status"]))
    for wanted in [("POST", "/v1/files", 201), ("GET", "/v1/files", 200), ("GET", "/v1/files/{id}", 200),
                   ("GET", "/v1/files/{id}/content", 200), ("DELETE", "/v1/files/{id}", 204)]:
        assert wanted in answered, f"the run never got {wanted}: {sorted(answered)}"
