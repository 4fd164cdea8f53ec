"""Database engine and session factory for the services (SQLAlchemy 2 + psycopg 3)."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

#: Seconds a new connection may take before psycopg gives up (libpq ``connect_timeout``).
CONNECT_TIMEOUT_S = 5


def make_engine(database_url: str, *, pool_size: int = 5, statement_timeout_ms: int = 30_000) -> Engine:
    """An ``Engine`` for ``database_url`` (``postgresql+psycopg://...``).

    Connections are checked before use (``pool_pre_ping``) so a Cloud SQL proxy
    restart costs one retry, not an error; every statement is bounded by
    ``statement_timeout_ms`` milliseconds (Postgres ``statement_timeout``).
    """
    return create_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={
            "connect_timeout": CONNECT_TIMEOUT_S,
            "options": f"-c statement_timeout={int(statement_timeout_ms)}",
            "application_name": "print-pipeline",
        },
    )


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """A ``sessionmaker`` bound to ``engine``; objects stay readable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)
