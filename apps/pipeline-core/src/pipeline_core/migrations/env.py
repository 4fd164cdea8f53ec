"""Alembic environment of the pipeline schema.

Run through ``pipeline_core.migrate`` (console script ``pipeline-migrate``),
which passes either an open connection (``config.attributes["connection"]``)
or a URL (``config.attributes["url"]``); there is no alembic.ini.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from pipeline_core.models import Base

config = context.config
target_metadata = Base.metadata


def _run_with(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    """Emit SQL to stdout (``pipeline-migrate --sql``)."""
    context.configure(
        url=config.attributes.get("url") or "postgresql+psycopg://",
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate through the given connection, or a fresh one to the given URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_with(connection)
        return
    engine = create_engine(config.attributes["url"], poolclass=pool.NullPool)
    with engine.connect() as conn:
        _run_with(conn)
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
