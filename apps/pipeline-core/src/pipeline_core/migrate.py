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
    pipeline-migrate --grant-to extractor-sa@PROJECT.iam   # after upgrading

``--grant-to`` (or ``MIGRATE_GRANT_TO``, comma-separated) gives other services'
database users read/write access to the pipeline tables: on Cloud SQL each
service has its own IAM user, and tables belong to the user that ran the
migration. The migrating user itself needs CREATE on schema ``public``.

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


#: What ``grant_to`` gives each role: use of the schema and row access to every table in it
#: (now and, via default privileges, tables later migrations create).
TABLE_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"


def grant_statements(roles: list[str]) -> list[str]:
    """The SQL ``--grant-to`` runs for ``roles`` (identifiers quoted, so IAM names with ``@`` work)."""
    from sqlalchemy.dialects import postgresql

    quote = postgresql.dialect().identifier_preparer.quote_identifier
    out = []
    for role in roles:
        q = quote(role)
        out += [
            f"GRANT USAGE ON SCHEMA public TO {q}",
            f"GRANT {TABLE_PRIVILEGES} ON ALL TABLES IN SCHEMA public TO {q}",
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT {TABLE_PRIVILEGES} ON TABLES TO {q}",
        ]
    return out


def run(database_url: str, action: str, revision: str | None = None, *, wait_seconds: float = 60.0,
        grant_to: list[str] | None = None) -> None:
    """Run Alembic ``action`` (``upgrade``/``downgrade``/``current``) against ``database_url``,
    then grant ``grant_to`` roles access to the tables (upgrade only), in the same transaction.

    Raises:
        DatabaseUnreachable: see ``wait_for_database``.
        sqlalchemy.exc.ProgrammingError: e.g. a ``grant_to`` role does not exist.
    """
    engine = create_engine(database_url, poolclass=pool.NullPool, connect_args={"connect_timeout": 5})
    try:
        wait_for_database(engine, wait_seconds)
        cfg = alembic_config(database_url)
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
            cfg.attributes["connection"] = conn
            if action == "upgrade":
                command.upgrade(cfg, revision or "head")
                for stmt in grant_statements(grant_to or []):
                    conn.execute(text(stmt))
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
    parser.add_argument("--grant-to", action="append", default=None, metavar="ROLE",
                        help="after upgrading, grant ROLE row access to the tables (repeatable; "
                             "default: $MIGRATE_GRANT_TO, comma-separated)")
    args = parser.parse_args(argv)
    # With --sql, stdout is the SQL script: logs go to stderr.
    configure_logging(os.environ.get("LOG_LEVEL", "INFO"), stream=sys.stderr if args.sql else None)
    if args.sql:
        command.upgrade(alembic_config(args.database_url or "postgresql+psycopg://"), args.revision or "head", sql=True)
        return 0
    if not args.database_url:
        log.error("no database: set DATABASE_URL or pass --database-url")
        return 2
    grant_to = args.grant_to
    if grant_to is None:
        grant_to = [r.strip() for r in os.environ.get("MIGRATE_GRANT_TO", "").split(",") if r.strip()]
    try:
        run(args.database_url, args.action, args.revision, wait_seconds=args.wait_seconds, grant_to=grant_to)
    except DatabaseUnreachable as exc:
        log.error(str(exc))
        return 3
    except Exception:
        log.exception("migration failed")
        return 1
    log.info("migration done", extra={"action": args.action, "revision": args.revision or "default",
                                      "granted_to": grant_to})
    return 0


if __name__ == "__main__":
    sys.exit(main())
