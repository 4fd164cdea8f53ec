"""Show that a files-api upload holds bounded memory: peak RSS of the server vs file size.

Starts real backends (``tools.devstack``: PostgreSQL, fake-gcs-server) and
files-api under gunicorn with its production config (one worker), then
streams uploads of growing size (default 10, 50, 200 MB) from a generator --
the client never holds the file either -- and prints, per size, the worker's
resident memory before the upload and its high-water mark (``VmHWM`` in
/proc/<pid>/status, Linux) after it. Memory that stays flat while the file
grows 20x is the point; nothing here asserts timings.

    .venv/bin/python -m tools.bench_upload [--sizes-mb 10 50 200]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import requests

from pipeline_core.migrate import upgrade
from tools.devstack import FakeGcsServer, PostgresServer, free_port

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "apps" / "files-api" / "gunicorn.conf.py"
CHUNK = 1024 * 1024


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _worker_pid(master: int) -> int:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    if len(children) != 1:
        raise RuntimeError(f"expected one gunicorn worker, found {children}")
    return int(children[0])


class _Body:
    """A file-like request body of known length, produced piece by piece (requests streams it)."""

    def __init__(self, pieces: Iterator[bytes], length: int) -> None:
        self._pieces, self._buf, self.len = pieces, b"", length

    def __len__(self) -> int:
        return self.len

    def read(self, n: int = -1) -> bytes:
        while (n < 0 or len(self._buf) < n) and (piece := next(self._pieces, None)) is not None:
            self._buf += piece
        if n < 0:
            out, self._buf = self._buf, b""
        else:
            out, self._buf = self._buf[:n], self._buf[n:]
        return out


def _multipart(size: int, filename: str, boundary: str) -> _Body:
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    line = b"G1 X100.123 Y100.456 E0.01234 ; benchmark filler\n"
    block = (line * (CHUNK // len(line) + 1))[:CHUNK]

    def body() -> Iterator[bytes]:
        yield head
        left = size
        while left > 0:
            yield block[: min(left, CHUNK)]
            left -= CHUNK
        yield tail

    return _Body(body(), len(head) + size + len(tail))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print a table of file size vs worker memory."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes-mb", type=int, nargs="+", default=[10, 50, 200])
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-gcs-") as gcs_dir, PostgresServer() as pg, \
            FakeGcsServer(backend="filesystem", data_dir=gcs_dir) as gcs:
        url = pg.create_database("bench")
        upgrade(url)
        gcs.create_bucket("bench-uploads")
        port = free_port()
        env = {**os.environ, "DATABASE_URL": url, "GOOGLE_CLOUD_PROJECT": "bench", "UPLOADS_BUCKET": "bench-uploads",
               "STORAGE_EMULATOR_HOST": gcs.emulator_host, "PORT": str(port), "HOST": "127.0.0.1",
               "WEB_CONCURRENCY": "1", "LOG_LEVEL": "WARNING"}
        server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(CONF)], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(150):
                try:
                    if requests.get(f"{base}/healthz", timeout=5).ok:
                        break
                except requests.RequestException:
                    time.sleep(0.2)
            else:
                raise RuntimeError("files-api did not start")
            worker = _worker_pid(server.pid)
            requests.get(f"{base}/v1/files", timeout=10)  # warm up imports and the DB pool
            baseline = _status_kib(worker, "VmRSS")
            print(f"worker pid {worker}, RSS after warm-up {baseline / 1024:.1f} MB")
            print(f"{'file MB':>8} {'RSS before MB':>14} {'peak RSS MB':>12} {'peak - warm-up':>15} {'upload s':>9}")
            for mb in args.sizes_mb:
                before = _status_kib(worker, "VmRSS")
                body = _multipart(mb * 1024 * 1024, f"bench-{uuid.uuid4().hex[:6]}.gcode", "benchboundary")
                start = time.monotonic()
                resp = requests.post(f"{base}/v1/files", data=body, timeout=600, headers={
                    "Content-Type": "multipart/form-data; boundary=benchboundary"})
                elapsed = time.monotonic() - start
                if resp.status_code != 201:
                    raise RuntimeError(f"upload of {mb} MB failed: {resp.status_code} {resp.text[:300]}")
                peak = _status_kib(worker, "VmHWM")
                print(f"{mb:>8} {before / 1024:>14.1f} {peak / 1024:>12.1f} {(peak - baseline) / 1024:>15.1f} {elapsed:>9.1f}")
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
