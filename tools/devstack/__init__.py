"""Launchers for the real local backends: PostgreSQL, the Pub/Sub emulator, fake-gcs-server.

Each launcher is a ``ManagedProcess``:

- ``command()`` -- the foreground argv (what a Procfile line runs),
- ``env()`` -- its environment; ``client_env()`` -- what clients need
  (``PUBSUB_EMULATOR_HOST``, ``STORAGE_EMULATOR_HOST``),
- ``prepare()`` -- create/initialise ``data_dir`` (idempotent),
- ``is_ready()`` / ``wait_ready()`` -- the ready check,
- ``start()`` / ``stop()`` or ``with Launcher(...) as x:`` -- lifecycle; the
  process runs in its own process group, which ``stop()`` kills entirely,
- ``port`` -- a free loopback port unless given; ``data_dir`` -- a temp dir
  (removed on stop) unless given.

``python -m tools.devstack {postgres,pubsub,fake-gcs} --port P --data-dir D``
prepares and then *execs* the backend in the foreground, for honcho/foreman.
"""

from .gcs import FakeGcsServer, find_fake_gcs_binary
from .postgres import PostgresServer, find_pg_bindir
from .process import LOOPBACK, LauncherError, ManagedProcess, free_port, port_open
from .pubsub import DEFAULT_PROJECT, PubSubEmulator

__all__ = [
    "DEFAULT_PROJECT",
    "LOOPBACK",
    "FakeGcsServer",
    "LauncherError",
    "ManagedProcess",
    "PostgresServer",
    "PubSubEmulator",
    "find_fake_gcs_binary",
    "find_pg_bindir",
    "free_port",
    "port_open",
]
