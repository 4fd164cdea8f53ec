"""How fast is ``GET /v1/files?limit=20`` compared to the work it does? Prints both figures and their ratio.

Starts real backends (``tools.devstack``: PostgreSQL, fake-gcs-server), fills
the database with one row per sample of ``../shared/samples`` (30 files) and
the metadata the extractor finds in each (``extractor.metadata``, as the
pipeline stores it), then runs, one after the other under the **same gunicorn
config** (``apps/files-api/gunicorn.conf.py``: gthread, same workers and
threads) against the same database:

- **files-api**: the real app (``files_api.wsgi:app``) with everything it does
  per request (request id and trace context, IAP hook, JSON access log line,
  Prometheus counters and histogram, problem details on errors,
  flask-smorest's query parsing and response schema);
- **ceiling**: a minimal Flask app (``ceiling_app()`` below) with one handler
  doing the same work: the same SQL statement (``repository.list_statement``,
  what ``list_page`` runs), the same fields encoded to JSON -- no hooks, no
  logging, no metrics, no schema.

Both run at once (an idle server costs nothing); after a short warm-up each
is loaded with wrk (16 connections, 2 threads) in ``--rounds`` alternating
rounds adding up to ``--seconds`` per server, so both see the same machine
load, and the script prints requests/s of both and ``files-api / ceiling``,
plus each server's CPU time per request (gunicorn master and workers, from
/proc) and the ratio of those: on a machine shared with other work, req/s
moves with the neighbours' load; CPU per request much less. It asserts nothing about time: the figures depend on
the machine, the ratio far less.

    .venv/bin/python -m tools.bench_list_api [--seconds 10] [--connections 16]

Needs wrk (Debian: ``apt-get install -y wrk``; the Makefile's ``test`` target
installs it as root).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "apps" / "files-api" / "gunicorn.conf.py"
SAMPLES = ROOT.parent / "shared" / "samples"
BUCKET = "bench-uploads"
PATH = "/v1/files?limit=20"
WRK_HINT = "wrk is not installed: run `apt-get install -y wrk` (Debian package wrk) as root"


class BenchError(RuntimeError):
    """The benchmark could not run (missing tool, server that did not start); the message says which."""


@dataclass(frozen=True)
class WrkResult:
    """One wrk run: requests per second, requests done, and non-2xx/3xx answers + socket errors.

    Socket errors are mostly ``read`` errors: connections gunicorn closes when a worker
    is recycled after ``max_requests`` (gunicorn.conf.py), counted for both servers alike.
    """

    requests_per_s: float
    requests: int
    errors: int


    @staticmethod
    def combine(runs: list[WrkResult]) -> WrkResult:
        """Several runs of equal length as one: mean requests/s, summed counts."""
        return WrkResult(sum(r.requests_per_s for r in runs) / len(runs), sum(r.requests for r in runs),
                         sum(r.errors for r in runs))


def find_wrk() -> str:
    """Path of the ``wrk`` binary. Raises ``BenchError`` saying how to install it."""
    found = shutil.which("wrk")
    if not found:
        raise BenchError(WRK_HINT)
    return found


def run_wrk(url: str, *, seconds: float, connections: int, threads: int = 2) -> WrkResult:
    """Load ``url`` with wrk and parse its summary (``Requests/sec:``, ``N requests in``, errors)."""
    out = subprocess.run([find_wrk(), f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", url],
                         capture_output=True, text=True, check=True).stdout
    rps = re.search(r"Requests/sec:\s*([\d.]+)", out)
    done = re.search(r"(\d+) requests in", out)
    if not rps or not done:
        raise BenchError(f"cannot parse wrk output:\n{out}")
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses:\s*(\d+)", out))
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if sock:
        errors += sum(int(n) for n in sock.groups())
    return WrkResult(float(rps.group(1)), int(done.group(1)), errors)


def server_cpu_seconds(master: int) -> float:
    """CPU seconds (user + system) gunicorn ``master`` and its workers used so far, recycled workers included.

    The master's ``cutime``/``cstime`` hold the workers it reaped (``max_requests``
    recycles them); live workers are read from ``/proc/<pid>/stat`` (proc(5)).
    Per request, this figure hardly moves with other load on the machine, unlike req/s.
    """
    tick = os.sysconf("SC_CLK_TCK")

    def fields(pid: int) -> list[str]:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()

    total = sum(int(v) for v in fields(master)[11:15])  # utime stime cutime cstime
    for child in Path(f"/proc/{master}/task/{master}/children").read_text().split():
        try:
            total += sum(int(v) for v in fields(int(child))[11:13])
        except FileNotFoundError:  # exited between the two reads (its time is in cutime next read)
            pass
    return total / tick


# -- the same-work ceiling ---------------------------------------------------------------------


def ceiling_app() -> Any:
    """The minimal Flask app: one handler running the list API's SQL and JSON-encoding the same fields.

    The statement is the one ``repository.list_page`` runs (``repository.list_statement``,
    first page, no filter), so a change to the query changes both servers' work alike.
    gunicorn loads it as ``tools.bench_list_api:ceiling_app()``; ``DATABASE_URL`` from the env.
    """
    from flask import Flask, Response

    from files_api.repository import encode_cursor, list_statement
    from pipeline_core.db import make_engine

    engine = make_engine(os.environ["DATABASE_URL"])
    stmt = list_statement(False, False)
    app = Flask(__name__)

    @app.get("/v1/files")
    def files() -> Response:
        with engine.connect() as conn:
            rows = conn.execute(stmt, {"limit": 21}).all()
        items = [{"id": str(r.id), "filename": r.filename, "size_bytes": r.size_bytes, "content_type": r.content_type,
                  "status": r.status, "metadata": r.metadata, "error": r.error,
                  "created_at": r.created_at.isoformat(),
                  "updated_at": (max(r.updated_at, r.result_updated_at) if r.result_updated_at else r.updated_at).isoformat()}
                 for r in rows[:20]]
        last = rows[19] if len(rows) > 20 else None
        next_cursor = encode_cursor(last.created_at, last.id) if last is not None else None
        return Response(json.dumps({"items": items, "next_cursor": next_cursor}, ensure_ascii=False),
                        mimetype="application/json")

    return app


# -- data and servers --------------------------------------------------------------------------


def fill_database(database_url: str, samples: Path = SAMPLES) -> int:
    """One stored file row per sample with its extraction result (processed or failed); returns how many."""
    from sqlalchemy.orm import Session

    from extractor.metadata import ExtractionError, extract_metadata
    from pipeline_core.db import make_engine
    from pipeline_core.models import ExtractionResult, File
    from tools.localdev.client import sample_files

    engine = make_engine(database_url)
    paths = sample_files(samples)
    now = datetime.now(timezone.utc)
    with Session(engine) as session:
        for i, path in enumerate(paths):
            fid = uuid.uuid4()
            object_name = f"files/{fid}/{path.name}"
            session.add(File(id=fid, filename=path.name, content_type="application/octet-stream",
                             size_bytes=path.stat().st_size, bucket=BUCKET, object_name=object_name,
                             generation=1, created_at=now - timedelta(seconds=i), updated_at=now))
            session.flush()  # the file row first: extraction_results references it (no ORM relationship orders them)
            try:
                result = {"status": "processed", "metadata_": extract_metadata(path, path.name), "error": None}
            except ExtractionError as exc:
                result = {"status": "failed", "metadata_": None, "error": exc.reason}
            session.add(ExtractionResult(bucket=BUCKET, object_name=object_name, generation=1, **result))
        session.commit()
    engine.dispose()
    return len(paths)


@contextmanager
def gunicorn(app: str | None, env: dict[str, str], log: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Run gunicorn with files-api's config (``app`` overrides its ``wsgi_app``); yield (base URL, master process)."""
    from tools.devstack import free_port

    port = free_port()
    argv = [sys.executable, "-m", "gunicorn", "-c", str(CONF)] + ([app] if app else [])
    env = {**env, "PORT": str(port), "OPS_PORT": str(free_port()), "HOST": "127.0.0.1"}  # both listeners free
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise BenchError(f"gunicorn {app or 'files-api'} exited {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if requests.get(base + PATH, timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise BenchError(f"gunicorn {app or 'files-api'} not answering {PATH} with 200 after 60 s:\n"
                                 f"{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield base, proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _check_same_answer(api: dict[str, Any], ceiling: dict[str, Any]) -> None:
    """Both servers must return the same items (else the ceiling is not the same work)."""
    strip = [{k: v for k, v in item.items() if k in ("id", "filename", "status", "metadata", "error")}
             for item in api["items"]]
    if strip != [{k: item[k] for k in ("id", "filename", "status", "metadata", "error")} for item in ceiling["items"]]:
        raise BenchError("files-api and the ceiling app return different items: not the same work")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print requests/s of files-api and of the ceiling, and the ratio."""
    from pipeline_core.migrate import upgrade
    from tools.devstack import FakeGcsServer, PostgresServer

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="wrk duration per server (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="wrk warm-up per server, not counted (default 2)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5,
                        help="alternate the servers in this many rounds of seconds/rounds each (default 5)")
    parser.add_argument("--samples", type=Path, default=SAMPLES)
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)
    if args.connections < 1 or args.rounds < 1 or args.seconds / args.rounds < 1:
        parser.error("--connections and --rounds must be at least 1, --seconds at least 1 per round")
    find_wrk()

    with tempfile.TemporaryDirectory(prefix="bench-list-") as tmp, PostgresServer() as pg, FakeGcsServer() as gcs:
        url = pg.create_database("bench")
        upgrade(url)
        gcs.create_bucket(BUCKET)
        rows = fill_database(url, args.samples)
        env = {**os.environ, "DATABASE_URL": url, "GOOGLE_CLOUD_PROJECT": "bench", "UPLOADS_BUCKET": BUCKET,
               "STORAGE_EMULATOR_HOST": gcs.emulator_host, "LOG_LEVEL": "INFO"}
        servers = (("files-api", None), ("ceiling", "tools.bench_list_api:ceiling_app()"))
        with contextlib.ExitStack() as stack:
            started = {name: stack.enter_context(gunicorn(app, env, Path(tmp) / f"{name}.log"))
                       for name, app in servers}
            bases = {name: base for name, (base, _) in started.items()}
            masters = {name: proc.pid for name, (_, proc) in started.items()}
            answers = {name: requests.get(base + PATH, timeout=10).json() for name, base in bases.items()}
            if args.warmup > 0:
                for base in bases.values():
                    run_wrk(base + PATH, seconds=args.warmup, connections=args.connections)
            # Alternate short rounds so both see the same machine load (other processes come and go).
            runs: dict[str, list[WrkResult]] = {name: [] for name in bases}
            cpu = {name: 0.0 for name in bases}
            for _ in range(args.rounds):
                for name, base in bases.items():
                    before = server_cpu_seconds(masters[name])
                    runs[name].append(run_wrk(base + PATH, seconds=args.seconds / args.rounds,
                                              connections=args.connections))
                    cpu[name] += server_cpu_seconds(masters[name]) - before
        results = {name: WrkResult.combine(r) for name, r in runs.items()}
        cpu_ms = {name: 1000 * cpu[name] / max(1, results[name].requests) for name in results}
        _check_same_answer(answers["files-api"], answers["ceiling"])

    api, ceiling = results["files-api"], results["ceiling"]
    ratio = api.requests_per_s / ceiling.requests_per_s
    cpu_ratio = cpu_ms["ceiling"] / cpu_ms["files-api"] if cpu_ms["files-api"] > 0 else float("nan")
    workers, threads = os.environ.get("WEB_CONCURRENCY", "2"), os.environ.get("GUNICORN_THREADS", "8")
    if args.json:
        print(json.dumps({"path": PATH, "rows": rows, "connections": args.connections, "seconds": args.seconds,
                          "rounds": args.rounds, "workers": int(workers), "threads": int(threads),
                          "servers": {name: {**vars(r), "cpu_ms_per_request": round(cpu_ms[name], 4)}
                                      for name, r in results.items()},
                          "ratio": round(ratio, 3), "cpu_ratio": round(cpu_ratio, 3)}))
        return 0
    print(f"GET {PATH}: {rows} rows, wrk {args.connections} connections, {args.rounds} alternating rounds, "
          f"{args.seconds:g} s per server, "
          f"gunicorn gthread {workers} workers x {threads} threads")
    print(f"{'server':<10} {'req/s':>9} {'requests':>9} {'errors':>7} {'server CPU ms/request':>22}")
    for name, r in results.items():
        print(f"{name:<10} {r.requests_per_s:>9.1f} {r.requests:>9} {r.errors:>7} {cpu_ms[name]:>22.3f}")
    print(f"ratio files-api / ceiling: {ratio:.2f} (req/s); {cpu_ratio:.2f} (ceiling CPU per request / files-api's)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"bench_list_api: {exc}", file=sys.stderr)
        sys.exit(2)
