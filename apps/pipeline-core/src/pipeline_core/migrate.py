"""``pipeline-migrate``: bring the database schema to a revision (default ``head``).

The Helm chart runs it as a pre-install/pre-upgrade hook Job and the local
platform runs it at start. It waits for the database (bounded by
``--wait-seconds``), then runs Alembic under a Postgres advisory lock so two
concurrent runs (a hook retried while another still runs) apply each migration
once.

Usage::

    pipeline-migrate                      # upgrade head, DATABASE_URL from the env
    pipeline-migrate --database-url URL --wait-seconds 120
    pipeline-migrate current | downgrade -1 | upgrade head --sql

Exit codes: 0 done; 1 the migration failed; 2 bad arguments / settings;
3 the database was not reachable within the wait.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from importlib.resources import files

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, pool, text
from sqlalchemy.exc import OperationalError

from pipeline_core.log import configure_logging

log = logging.getLogger("pipeline_core.migrate")

#: Arbitrary constant key for ``pg_advisory_xact_lock`` ("print-pipeline-migrate").
ADVISORY_LOCK_KEY = 0x7072696E74


class DatabaseUnreachable(RuntimeError):
    """The database did not accept a connection within the wait."""


def alembic_config(url: str | None = None) -> Config:
    """Alembic ``Config`` for the packaged migrations (no alembic.ini needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(files("pipeline_core") / "migrations"))
    cfg.attributes["url"] = url
    return cfg


def wait_for_database(engine: Engine, wait_seconds: float, *, interval: float = 1.0) -> None:
    """Block until ``engine`` connects and answers ``SELECT 1``.

    Raises:
        DatabaseUnreachable: not reachable within ``wait_seconds``; the message
            holds the last driver error.
    """
    deadline = time.monotonic() + wait_seconds
    attempt = 0
    while True:
        attempt += 1
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return
        except OperationalError as exc:
            last = str(exc.orig or exc).strip().splitlines()[0]
            if time.monotonic() + interval > deadline:
                raise DatabaseUnreachable(
                    f"database not reachable after {attempt} attempts in {wait_seconds:g}s: {last}"
                ) from exc
            log.info("waiting for the database", extra={"attempt": attempt, "error": last})
            time.sleep(interval)
            interval = min(interval * 1.5, 5.0)


def upgrade(database_url: str, revision: str = "head", *, wait_seconds: float = 60.0) -> None:
    """Wait for the database, then ``alembic upgrade <revision>`` under the advisory lock.

    Raises:
        DatabaseUnreachable: see ``wait_for_database``.
        alembic.util.exc.CommandError: unknown revision.
    """
    run(database_url, "upgrade", revision, wait_seconds=wait_seconds)


def run(database_url: str, action: str, revision: str | None = None, *, wait_seconds: float = 60.0) -> None:
    """Run Alembic ``action`` (``upgrade``/``downgrade``/``current``) against ``database_url``."""
    engine = create_engine(database_url, poolclass=pool.NullPool, connect_args={"connect_timeout": 5})
    try:
        wait_for_database(engine, wait_seconds)
        cfg = alembic_config(database_url)
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
            cfg.attributes["connection"] = conn
            if action == "upgrade":
                command.upgrade(cfg, revision or "head")
            elif action == "downgrade":
                command.downgrade(cfg, revision or "-1")
            elif action == "current":
                command.current(cfg, verbose=True)
            else:
                raise ValueError(f"unknown action {action!r}; expected upgrade, downgrade or current")
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    """Console entry point; see the module docstring for usage and exit codes."""
    parser = argparse.ArgumentParser(prog="pipeline-migrate", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", nargs="?", default="upgrade", choices=["upgrade", "downgrade", "current"])
    parser.add_argument("revision", nargs="?", default=None, help="target revision (upgrade: head, downgrade: -1)")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"),
                        help="SQLAlchemy URL (default: $DATABASE_URL)")
    parser.add_argument("--wait-seconds", type=float, default=float(os.environ.get("MIGRATE_WAIT_SECONDS", 60)),
                        help="how long to wait for the database (default 60, or $MIGRATE_WAIT_SECONDS)")
    parser.add_argument("--sql", action="store_true", help="print the SQL of an upgrade instead of running it")
    args = parser.parse_args(argv)
    configure_logging(os.environ.get("LOG_LEVEL", "INFO"))
    if args.sql:
        command.upgrade(alembic_config(args.database_url or "postgresql+psycopg://"), args.revision or "head", sql=True)
        return 0
    if not args.database_url:
        log.error("no database: set DATABASE_URL or pass --database-url")
        return 2
    try:
        run(args.database_url, args.action, args.revision, wait_seconds=args.wait_seconds)
    except DatabaseUnreachable as exc:
        log.error(str(exc))
        return 3
    except Exception:
        log.exception("migration failed")
        return 1
    log.info("migration done", extra={"action": args.action, "revision": args.revision or "default"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
