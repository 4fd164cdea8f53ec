"""What Postgres durability costs the local platform: the pipeline's commits per file, fsync on vs off.

``make dev`` runs PostgreSQL with ``fsync``, ``synchronous_commit`` and
``full_page_writes`` on (``tools.devstack.PostgresServer(durable=True)``), as
Cloud SQL does, so a row answered 201 survives kill -9 of the server; the
test fixtures run without. This starts one server of each kind in a temp
folder, migrates both, and replays per file what the services commit: the
``files`` row (files-api), its generation (files-api), the result upsert
(extractor) - three commits - from ``--clients`` concurrent connections.
It prints files per second and milliseconds per file for each, and the ratio
(same run, same machine). Nothing is asserted.

    .venv/bin/python -m tools.bench_durability [--files 400] [--clients 4]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

from pipeline_core.migrate import upgrade
from tools.devstack import PostgresServer, free_port


def _one_file(dsn: str, count: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for _ in range(count):
            fid = uuid.uuid4()
            name = f"files/{fid}/bench.gcode"
            conn.execute("INSERT INTO files (id, filename, content_type, size_bytes, bucket, object_name) "
                         "VALUES (%s, 'bench.gcode', 'text/x.gcode', 1, 'b', %s)", (fid, name))
            conn.execute("UPDATE files SET generation = 1 WHERE id = %s", (fid,))
            conn.execute("INSERT INTO extraction_results (bucket, object_name, generation, status, metadata) "
                         "VALUES ('b', %s, 1, 'processed', '{}') ON CONFLICT DO NOTHING", (name,))


def measure(durable: bool, files: int, clients: int, root: Path) -> float:
    """Seconds for ``files`` files' commits from ``clients`` connections on a fresh server."""
    with PostgresServer(data_dir=root / ("durable" if durable else "fast"), port=free_port(), durable=durable) as pg:
        url = pg.create_database("bench")
        upgrade(url, wait_seconds=30)
        dsn = pg.dsn("bench")
        _one_file(dsn, 20)  # warm up
        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            for future in [pool.submit(_one_file, dsn, files // clients) for _ in range(clients)]:
                future.result()
        return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    """Run both measurements and print the figures."""
    parser = argparse.ArgumentParser(prog="python -m tools.bench_durability", description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=400)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-durability-") as tmp:
        root = Path(tmp)
        root.chmod(0o755)
        fast = measure(False, args.files, args.clients, root)
        full = measure(True, args.files, args.clients, root)
    n = args.files // args.clients * args.clients
    for label, seconds in (("fsync off (tests)", fast), ("fsync on (make dev)", full)):
        print(f"{label:<20} {n} files x 3 commits, {args.clients} clients: {seconds:6.2f} s  "
              f"{n / seconds:7.1f} files/s  {seconds / n * 1000:6.2f} ms/file")
    print(f"durable / fast: {full / fast:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
