"""files-api under real gunicorn (``apps/files-api/gunicorn.conf.py``) on a free loopback port, for tests.

``FilesApiServer`` starts ``python -m gunicorn -c gunicorn.conf.py`` in its own
process group with the session's backends in the environment, waits for
``/healthz``, and stops the whole group (SIGTERM, then SIGKILL after 30 s).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from tools.devstack import free_port

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "apps" / "files-api" / "gunicorn.conf.py"


class FilesApiServer:
    """A running files-api gunicorn.

    Args:
        env: the service's variables (``DATABASE_URL`` ...) plus any gunicorn
            knobs (``WEB_CONCURRENCY``, ``GUNICORN_CMD_ARGS``).
        log_path: where gunicorn's stdout and stderr go.

    Attributes:
        base: ``http://127.0.0.1:<port>``; ``port``; ``ops_base`` / ``ops_port`` (the cluster-only listener); ``proc`` (the master's Popen).
    """

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.ops_port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.ops_base = f"http://127.0.0.1:{self.ops_port}"
        self.log_path = log_path
        full = {**os.environ, "PORT": str(self.port), "OPS_PORT": str(self.ops_port), "HOST": "127.0.0.1", "LOG_LEVEL": "INFO", **env}
        full.pop("PROMETHEUS_MULTIPROC_DIR", None)
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(CONF)], cwd=ROOT, env=full,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_healthy(30)
        except BaseException:
            self.stop()
            raise

    def _wait_healthy(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if requests.get(f"{self.base}/healthz", timeout=5).status_code == 200:
                    return
            except (requests.ConnectionError, requests.Timeout):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn not healthy within {seconds} s:\n{self.log()}")
            time.sleep(0.2)

    def log(self) -> str:
        """Everything gunicorn and the app logged so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM the process group, wait (SIGKILL after 30 s); the master's exit code."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode


def service_env(database_url: str, fake_gcs, uploads_bucket: str, gcp_project: str, **more: str) -> dict[str, str]:
    """The variables files-api needs on the session's backends, plus ``more``."""
    return {"DATABASE_URL": database_url, "GOOGLE_CLOUD_PROJECT": gcp_project, "UPLOADS_BUCKET": uploads_bucket,
            "STORAGE_EMULATOR_HOST": fake_gcs.emulator_host, **more}
