"""``python -m tools.localdev faults FAULT``: a batch of uploads with kill -9 in the middle, on the running platform.

For measuring what the platform does about a crash (docs/local.md, "Faults"):
uploads ``--uploads`` copies of a small sample from 4 client threads that
retry 503 and connection errors like a well-behaved client, kills one process
with SIGKILL half a second in, then polls until every file answered 201 is
``processed`` or ``failed`` (or ``--wait`` seconds passed), and prints the
timeline, the largest ``pipeline_pending_oldest_age_seconds`` the extractor
reported meanwhile, and the re-drives the reconciler made.

FAULT is one of ``FAULTS``: the extractor's gunicorn worker, the Pub/Sub
emulator's JVM, the Postgres postmaster, or the files-api workers while one of
them stores a 64 MiB upload. The processes are found from the supervisor's
``processes.json``; only this platform's processes are signalled.

Exit status: 0 when every accepted file ended final, 1 otherwise, 2 usage / no platform.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from .client import DEFAULT_SAMPLES
from .config import LocalConfig

#: FAULT -> (Procfile process, what to find among its descendants).
FAULTS = {
    "extractor-worker": ("extractor", "gunicorn"),
    "emulator": ("pubsub", "java"),
    "postgres": ("postgres", None),
    "files-api-worker": ("files-api", "gunicorn"),
}
SAMPLE = DEFAULT_SAMPLES / "cura" / "Kreistest.gcode"


def descendants(pid: int) -> list[tuple[int, str]]:
    """``(pid, command line)`` of every live descendant of ``pid`` (Linux /proc)."""
    parents: dict[int, int] = {}
    cmdlines: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
        cmdlines[int(entry)] = cmd
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        for child, parent in parents.items():
            if parent == current:
                found.append((child, cmdlines[child]))
                todo.append(child)
    return found


def targets(cfg: LocalConfig, fault: str) -> list[int]:
    """The pids ``fault`` kills. Raises ``LookupError`` when the process is not running."""
    name, needle = FAULTS[fault]
    procs = json.loads((cfg.run_dir / "processes.json").read_text())
    pid = procs.get(name, {}).get("pid")
    if not pid:
        raise LookupError(f"{name} is not running (make dev-status)")
    if needle is None:
        return [pid]
    found = [p for p, cmd in descendants(pid) if needle in cmd]
    if not found:
        raise LookupError(f"no {needle!r} process under {name} (pid {pid})")
    return found if fault == "files-api-worker" else found[:1]


def _wait_for_unfinished_row(cfg: LocalConfig, timeout: float) -> None:
    """Until a ``files`` row without generation exists (an upload being stored), polling every 20 ms."""
    import psycopg

    dsn = cfg.database_url.replace("postgresql+psycopg://", "postgresql://")
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as conn:
        while not conn.execute("SELECT 1 FROM files WHERE generation IS NULL AND filename = 'fault-big.gcode'").fetchone():
            if time.monotonic() > deadline:
                raise LookupError(f"no upload reached storage within {timeout:g}s")
            time.sleep(0.02)


def _pending_watch(metrics_url: str, stop: threading.Event, seen: list[float]) -> None:
    while not stop.wait(1.0):
        try:
            for line in requests.get(metrics_url, timeout=2).text.splitlines():
                if line.startswith("pipeline_pending_oldest_age_seconds "):
                    seen.append(float(line.split()[-1]))
        except requests.RequestException:
            continue


def run(cfg: LocalConfig, fault: str, uploads: int, wait: float) -> int:
    """The batch, the kill, the wait; prints the figures. Returns the exit status."""
    base = cfg.files_api_url
    body = SAMPLE.read_bytes()
    accepted: list[str] = []
    lock = threading.Lock()

    def upload(i: int) -> None:
        for _ in range(120):
            try:
                resp = requests.post(f"{base}/v1/files", files={"file": (f"fault-{i}.gcode", io.BytesIO(body))},
                                     timeout=60)
            except requests.RequestException:
                time.sleep(0.5)
                continue
            if resp.status_code == 201:
                with lock:
                    accepted.append(resp.json()["id"])
                return
            time.sleep(0.5)

    def big_upload() -> None:
        big = b"G1 X1\n" * 11_000_000  # 66 MB
        for _ in range(240):  # retried while every upload slot is busy (503); ends with the kill
            try:
                resp = requests.post(f"{base}/v1/files", files={"file": ("fault-big.gcode", io.BytesIO(big))},
                                     timeout=120)
            except requests.RequestException:
                return
            if resp.status_code != 503:
                return
            time.sleep(0.25)

    seen: list[float] = []
    stop = threading.Event()
    threading.Thread(target=_pending_watch, args=(f"{cfg.extractor_url}/metrics", stop, seen), daemon=True).start()
    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(upload, i) for i in range(uploads)]
        if fault == "files-api-worker":
            threading.Thread(target=big_upload, daemon=True).start()
            _wait_for_unfinished_row(cfg, timeout=60)  # the big body is received; the worker stores it now
        else:
            time.sleep(0.5)
        pids = targets(cfg, fault)
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        print(f"t+{time.monotonic() - started:.1f}s kill -9 {fault} (pid {', '.join(map(str, pids))})", flush=True)
        for future in futures:
            future.result()
    batch = time.monotonic() - started
    print(f"t+{batch:.1f}s {len(accepted)} of {uploads} uploads answered 201", flush=True)
    deadline = time.monotonic() + wait
    counts: dict[str, int] = {}
    while True:
        counts = {}
        for file_id in accepted:
            resp = requests.get(f"{base}/v1/files/{file_id}", timeout=10)
            status = resp.json()["status"] if resp.status_code == 200 else f"HTTP {resp.status_code}"
            counts[status] = counts.get(status, 0) + 1
        print(f"t+{time.monotonic() - started:.0f}s {counts}", flush=True)
        if set(counts) <= {"processed", "failed"} or time.monotonic() > deadline:
            break
        time.sleep(5)
    stop.set()
    final = set(counts) <= {"processed", "failed"} and sum(counts.values()) == len(accepted)
    peak = max(seen) if seen else None
    print(f"{'all final' if final else 'NOT all final'} {time.monotonic() - started:.0f}s after the batch started; "
          f"pending-age gauge peaked at {peak if peak is None else round(peak)}s; bound {cfg.final_bound_seconds}s")
    if fault == "files-api-worker":
        import psycopg

        dsn = cfg.database_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn) as conn:
            left = conn.execute("SELECT count(*) FROM files WHERE generation IS NULL").fetchone()[0]
        print(f"{left} unfinished upload row(s) left for the sweep (rows older than "
              f"{(cfg.reconcile or {}).get('UNFINISHED_UPLOAD_AGE_SECONDS')}s, every "
              f"{(cfg.reconcile or {}).get('SWEEP_INTERVAL_SECONDS')}s)")
    return 0 if final else 1


def main(cfg: LocalConfig, argv: list[str]) -> int:
    """Parse ``argv`` (FAULT [--uploads N] [--wait S]) and run."""
    parser = argparse.ArgumentParser(prog="python -m tools.localdev faults", description=__doc__.split("\n\n")[0])
    parser.add_argument("fault", choices=sorted(FAULTS))
    parser.add_argument("--uploads", type=int, default=100)
    parser.add_argument("--wait", type=float, default=None, help="seconds to wait for final statuses (default: the bound + 60)")
    args = parser.parse_args(argv)
    if not (cfg.run_dir / "processes.json").exists():
        print(f"no local platform runs on {cfg.data_dir} (start it with make dev)", file=sys.stderr)
        return 2
    try:
        return run(cfg, args.fault, args.uploads, args.wait if args.wait is not None else cfg.final_bound_seconds + 60)
    except LookupError as exc:
        print(f"localdev faults: {exc}", file=sys.stderr)
        return 2
