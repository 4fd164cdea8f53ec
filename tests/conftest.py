"""Session fixtures: real local backends on loopback with free ports.

- ``postgres``: a ``tools.devstack.PostgresServer`` (a throwaway cluster).
- ``database_url``: a fresh database on it with the Alembic migrations
  applied (``pipeline_core.migrate.upgrade``), as a ``DATABASE_URL``.
- ``pubsub_emulator``: the official Pub/Sub emulator, with topic
  ``UPLOADS_TOPIC`` in project ``TEST_PROJECT``.
- ``fake_gcs``: fake-gcs-server publishing ``OBJECT_FINALIZE`` to that topic.
- ``uploads_bucket``: bucket ``TEST_BUCKET`` on ``fake_gcs``.
- ``gcs_client``: a google-cloud-storage client on ``fake_gcs``.
- ``gcp_project``: the project id of all of them (``TEST_PROJECT``).
- ``db_engine`` / ``clean_db``: an Engine on ``database_url``; ``clean_db``
  empties the pipeline tables before a test.

Each backend starts once per session, only if a test asks for it, and is
stopped (its whole process group) at session end, also after failures, and
also when pytest gets SIGTERM (``timeout``, a cancelled CI job): that unwinds
like Ctrl-C, so the fixtures' teardown runs instead of leaving orphans.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator

import pytest

from tools.devstack import FakeGcsServer, PostgresServer, PubSubEmulator

TEST_PROJECT = "test-project"
UPLOADS_TOPIC = "uploads"
TEST_BUCKET = "uploads-test"
TEST_DATABASE = "pipeline_test"


def _unwind_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}: stopping, tearing the local backends down")


def pytest_configure(config: pytest.Config) -> None:
    """SIGTERM ends pytest through its KeyboardInterrupt path, which still runs fixture teardown.

    The backends run in their own sessions (process groups), so a pytest
    killed by the default SIGTERM action would leave them running.
    """
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _unwind_on_sigterm)


@pytest.fixture(scope="session")
def gcp_project() -> str:
    """The project id the local backends use (``TEST_PROJECT``)."""
    return TEST_PROJECT


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A running PostgreSQL server (superuser ``postgres``, trust auth, loopback)."""
    with PostgresServer() as server:
        yield server


@pytest.fixture(scope="session")
def database_url(postgres: PostgresServer) -> str:
    """``postgresql+psycopg://...`` of a fresh database with all migrations applied."""
    from pipeline_core.migrate import upgrade

    url = postgres.create_database(TEST_DATABASE, drop_existing=True)
    upgrade(url, wait_seconds=10)
    return url


@pytest.fixture(scope="session")
def db_engine(database_url: str):
    """A SQLAlchemy Engine on ``database_url`` (disposed at session end)."""
    from pipeline_core.db import make_engine

    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def clean_db(db_engine):
    """``db_engine``, with ``files`` and ``extraction_results`` emptied first."""
    from sqlalchemy import text

    with db_engine.begin() as conn:
        conn.execute(text("TRUNCATE files, extraction_results, file_thumbnails"))
    return db_engine


@pytest.fixture(scope="session")
def pubsub_emulator() -> Iterator[PubSubEmulator]:
    """The Pub/Sub emulator, with topic ``UPLOADS_TOPIC`` in ``TEST_PROJECT``."""
    with PubSubEmulator(project=TEST_PROJECT) as emulator:
        emulator.create_topic(UPLOADS_TOPIC)
        yield emulator


@pytest.fixture(scope="session")
def fake_gcs(pubsub_emulator: PubSubEmulator) -> Iterator[FakeGcsServer]:
    """fake-gcs-server (memory backend) notifying ``UPLOADS_TOPIC`` of OBJECT_FINALIZE."""
    with FakeGcsServer(pubsub=pubsub_emulator, topic=UPLOADS_TOPIC) as server:
        yield server


@pytest.fixture(scope="session")
def uploads_bucket(fake_gcs: FakeGcsServer) -> str:
    """Name of an existing bucket on ``fake_gcs``."""
    fake_gcs.create_bucket(TEST_BUCKET)
    return TEST_BUCKET


@pytest.fixture(scope="session")
def gcs_client(fake_gcs: FakeGcsServer):
    """A ``google.cloud.storage.Client`` talking to ``fake_gcs`` (anonymous credentials)."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(project=TEST_PROJECT, credentials=AnonymousCredentials(),
                          client_options={"api_endpoint": fake_gcs.emulator_host})
