"""Helpers and fixtures for the extractor worker tests (real backends from tests/conftest.py).

- ``TcpProxy``: a loopback TCP relay in front of the test Postgres that a
  test can take down (new connections are closed at once, open ones cut) or
  slow down, to produce real database outages and slow transactions
  without touching the shared server.
- ``emulator_env``: ``PUBSUB_EMULATOR_HOST``/``STORAGE_EMULATOR_HOST`` for
  the Google clients made in the test.
- ``pubsub``: topic/subscription helpers on the emulator (``PubSubHelper``).
- ``worker_env``: the extractor's environment for one test (its own
  subscription, the database behind a ``TcpProxy``).
- ``wait_for``: poll a condition with a timeout and a helpful failure.

Import the fixtures into a test module with
``from worker_fixtures import emulator_env, ...`` (tests/apps is on sys.path
under pytest's default import mode).
"""

from __future__ import annotations

import select
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Engine, text

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "samples"

T = TypeVar("T")


def wait_for(condition: Callable[[], T], *, timeout: float, what: str, interval: float = 0.2) -> T:
    """Call ``condition`` until it returns something truthy (returned); fail the test after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what} (last value: {last!r})")


def messages_total(outcome: str) -> float:
    """Current value of ``extractor_messages_total{outcome=...}`` in this process."""
    return REGISTRY.get_sample_value("extractor_messages_total", {"outcome": outcome}) or 0.0


class TcpProxy:
    """Relays ``127.0.0.1:<port>`` to ``target``; ``down()``/``up()`` and ``delay`` simulate outages and latency.

    While down, connections are accepted and closed at once (libpq reports
    "server closed the connection unexpectedly") and open ones are cut.
    ``delay`` seconds are slept before relaying each chunk from the server.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._up = threading.Event()
        self._up.set()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self.delay = 0.0
        self.refused = 0
        self._reply: bytes | None = None
        self._thread = threading.Thread(target=self._accept_loop, name="tcp-proxy", daemon=True)
        self._thread.start()

    @property
    def http_url(self) -> str:
        """``http://127.0.0.1:<port>``: the proxy as an HTTP endpoint (for STORAGE_EMULATOR_HOST)."""
        return f"http://127.0.0.1:{self.port}"

    def url_for(self, database_url: str, real_port: int) -> str:
        """``database_url`` rewritten to go through this proxy."""
        needle = f":{real_port}/"
        assert needle in database_url, database_url
        return database_url.replace(needle, f":{self.port}/")

    def down(self, reply: bytes | None = None) -> None:
        """Refuse new connections and cut the open ones.

        With ``reply``, each new connection gets those bytes (e.g. an HTTP
        503 response) after its first request chunk, instead of a bare close.
        """
        self._reply = reply
        self._up.clear()
        with self._lock:
            for sock in list(self._sockets):
                _close(sock)
            self._sockets.clear()

    def up(self) -> None:
        """Relay again."""
        self._up.set()

    def close(self) -> None:
        """Stop listening and cut everything."""
        self._closed.set()
        self.down()
        _close(self._listener)

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._up.is_set():
                self.refused += 1
                if self._reply is not None:
                    threading.Thread(target=self._answer, args=(client, self._reply), daemon=True).start()
                else:
                    _close(client)
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._sockets.update((client, server))
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    @staticmethod
    def _answer(client: socket.socket, reply: bytes) -> None:
        try:
            client.settimeout(5)
            client.recv(65536)
            client.sendall(reply)
        except OSError:
            pass
        finally:
            _close(client)

    def _pump(self, client: socket.socket, server: socket.socket) -> None:
        pair = {client: server, server: client}
        try:
            while True:
                readable, _, _ = select.select(list(pair), [], [], 1.0)
                if not self._up.is_set() or self._closed.is_set():
                    return
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is server and self.delay:
                        time.sleep(self.delay)
                    pair[sock].sendall(data)
        except (OSError, ValueError):  # ValueError: down() closed a socket while select() held it (fd -1)
            return
        finally:
            with self._lock:
                self._sockets.discard(client)
                self._sockets.discard(server)
            _close(client)
            _close(server)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


@pytest.fixture
def emulator_env(monkeypatch, pubsub_emulator, fake_gcs, uploads_bucket) -> dict[str, str]:
    """Point Google clients created in this test at the emulators; returns those variables."""
    env = {**pubsub_emulator.client_env(), **fake_gcs.client_env()}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@dataclass
class PubSubHelper:
    """Topic/subscription helpers on the emulator, with the Google client (emulator env set).

    ``uploads_topic`` is the topic fake-gcs-server notifies.
    """

    emulator: Any
    uploads_topic: str

    def __post_init__(self) -> None:
        from google.cloud import pubsub_v1

        self.project = self.emulator.project
        self.publisher = pubsub_v1.PublisherClient()
        self.subscriber = pubsub_v1.SubscriberClient()

    def topic_path(self, topic: str) -> str:
        return f"projects/{self.project}/topics/{topic}"

    def subscription_path(self, subscription: str) -> str:
        return f"projects/{self.project}/subscriptions/{subscription}"

    def new_topic(self, prefix: str) -> str:
        topic = f"{prefix}-{uuid.uuid4().hex[:8]}"
        self.emulator.create_topic(topic)
        return topic

    def new_subscription(self, topic: str | None = None, prefix: str = "extractor", **settings: Any) -> str:
        """A fresh subscription on ``topic`` (default the uploads topic); it sees messages published from now on."""
        topic = topic or self.uploads_topic
        subscription = f"{prefix}-{uuid.uuid4().hex[:8]}"
        self.emulator.create_subscription(topic, subscription, **settings)
        return subscription

    def publish(self, attributes: dict[str, str], data: bytes, topic: str | None = None) -> str:
        """Publish one message (default: on the uploads topic); returns its message id."""
        topic_path = self.topic_path(topic or self.uploads_topic)
        return self.publisher.publish(topic_path, data, **attributes).result(timeout=10)

    def pull(self, subscription: str, *, want: int = 1, timeout: float = 15.0, ack: bool = True) -> list:
        """Synchronously pull until ``want`` messages arrived (or ``timeout``); returns ``PubsubMessage`` list."""
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < want and time.monotonic() < deadline:
            response = self.subscriber.pull(
                request={"subscription": self.subscription_path(subscription), "max_messages": 10},
                timeout=5,
            )
            if ack and response.received_messages:
                self.subscriber.acknowledge(
                    request={
                        "subscription": self.subscription_path(subscription),
                        "ack_ids": [m.ack_id for m in response.received_messages],
                    }
                )
            got += [m.message for m in response.received_messages]
            if len(got) < want:
                time.sleep(0.2)
        return got

    def close(self) -> None:
        self.subscriber.close()


@pytest.fixture
def pubsub(emulator_env, pubsub_emulator, fake_gcs) -> Iterator[PubSubHelper]:
    """A ``PubSubHelper`` on the session emulator."""
    helper = PubSubHelper(pubsub_emulator, uploads_topic=fake_gcs.topic)
    yield helper
    helper.close()


@pytest.fixture
def db_proxy(postgres) -> Iterator[TcpProxy]:
    """A ``TcpProxy`` in front of the test Postgres."""
    proxy = TcpProxy(postgres.host, postgres.port)
    yield proxy
    proxy.close()


@pytest.fixture
def worker_env(emulator_env, database_url, clean_db, db_proxy, postgres, pubsub, uploads_bucket) -> dict[str, str]:
    """The extractor's environment for one test: a fresh subscription, the database through ``db_proxy``."""
    global _FILES_DSN
    _FILES_DSN = database_url.replace("postgresql+psycopg://", "postgresql://")
    subscription = pubsub.new_subscription(ack_deadline_seconds=10)
    return {
        **emulator_env,
        "DATABASE_URL": db_proxy.url_for(database_url, postgres.port),
        "GOOGLE_CLOUD_PROJECT": pubsub.project,
        "UPLOADS_BUCKET": uploads_bucket,
        "UPLOADS_SUBSCRIPTION": subscription,
        "LOG_LEVEL": "INFO",
        "DRAIN_TIMEOUT_SECONDS": "10",
        "LEASE_EXTENSION_SECONDS": "10",
    }


#: What a GCS front end answers when a backend is unavailable (the JSON API error format).
HTTP_503 = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
    b"Content-Length: 72\r\n\r\n"
    b'{"error": {"code": 503, "message": "Backend Error", "errors": []}}      '
)


#: libpq URI of the test database, set by ``worker_env`` for ``upload``.
_FILES_DSN = ""


def upload(bucket: str, sample: Path, *, object_name: str | None = None, register: bool = True) -> tuple[str, int]:
    """Upload ``sample`` to ``bucket`` (emulator env set) as files/<uuid>/<name>; returns (object name, generation).

    As files-api does (row first, then the object, then the generation), a
    ``files`` row is written (straight to the test database, not through
    ``db_proxy``) unless ``register`` is False (a result can only be stored
    for an object a file owns).
    """
    import psycopg
    from google.cloud import storage

    client = storage.Client(project="unused")
    name = object_name or f"files/{uuid.uuid4()}/{sample.name}"
    dsn = _FILES_DSN
    assert dsn or not register, "upload(register=True) needs the worker_env fixture (it knows the database)"
    if register:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("INSERT INTO files (id, filename, content_type, size_bytes, bucket, object_name) "
                         "VALUES (gen_random_uuid(), %s, 'application/octet-stream', %s, %s, %s) "
                         "ON CONFLICT (bucket, object_name) DO NOTHING",
                         (sample.name, sample.stat().st_size, bucket, name))
    blob = client.bucket(bucket).blob(name)
    blob.upload_from_filename(str(sample))
    if register:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("UPDATE files SET generation = %s WHERE bucket = %s AND object_name = %s",
                         (int(blob.generation), bucket, name))
    return name, int(blob.generation)


def result_rows(engine: Engine, object_name: str | None = None) -> list[dict[str, Any]]:
    """``extraction_results`` rows (all, or of one object) as dicts, oldest object first."""
    query = "SELECT bucket, object_name, generation, status, metadata, error, attempts, updated_at FROM extraction_results"
    params: dict[str, Any] = {}
    if object_name is not None:
        query += " WHERE object_name = :name"
        params["name"] = object_name
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text(query + " ORDER BY object_name"), params)]
