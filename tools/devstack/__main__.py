"""Run one backend in the foreground: ``python -m tools.devstack <backend> [options]``.

For process managers (honcho ``Procfile`` lines): prepares the data dir, then
replaces this process with the backend (``exec``), so signals from the manager
reach the backend directly. Examples::

    python -m tools.devstack postgres --port 5432 --data-dir .local/postgres
    python -m tools.devstack pubsub --port 8085 --data-dir .local/pubsub --project local-project
    python -m tools.devstack fake-gcs --port 4443 --data-dir .local/gcs \
        --pubsub-host 127.0.0.1:8085 --project local-project --topic uploads

``--print-command`` prints the argv (one shell-quoted line) instead of running it.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from .gcs import FakeGcsServer
from .postgres import PostgresServer
from .process import LOOPBACK, LauncherError, ManagedProcess
from .pubsub import DEFAULT_PROJECT, PubSubEmulator


def _build(args: argparse.Namespace) -> ManagedProcess:
    common = {"port": args.port, "data_dir": args.data_dir, "host": args.host}
    if args.backend == "postgres":
        return PostgresServer(durable=args.durability == "full", **common)
    if args.backend == "pubsub":
        return PubSubEmulator(project=args.project, **common)
    pubsub = None
    if args.pubsub_host:
        host, _, port = args.pubsub_host.rpartition(":")
        pubsub = PubSubEmulator(project=args.project, host=host, port=int(port), data_dir=args.data_dir)
    if (pubsub is None) != (args.topic is None):
        raise SystemExit("fake-gcs: give --pubsub-host and --topic together (or neither)")
    return FakeGcsServer(backend=args.backend_kind, pubsub=pubsub, topic=args.topic, **common)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, prepare the backend, and exec it (does not return on success)."""
    parser = argparse.ArgumentParser(prog="python -m tools.devstack", description=__doc__.split("\n\n")[0])
    parser.add_argument("backend", choices=["postgres", "pubsub", "fake-gcs"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--host", default=LOOPBACK)
    parser.add_argument("--project", default=DEFAULT_PROJECT, help="Pub/Sub project id (pubsub, fake-gcs)")
    parser.add_argument("--pubsub-host", help="fake-gcs: HOST:PORT of the Pub/Sub emulator to notify")
    parser.add_argument("--topic", help="fake-gcs: topic id for OBJECT_FINALIZE notifications (must exist)")
    parser.add_argument("--backend-kind", default="filesystem", choices=["filesystem", "memory"],
                        help="fake-gcs storage backend (default filesystem under --data-dir)")
    parser.add_argument("--durability", default="full", choices=["full", "fast"],
                        help="postgres: full = fsync and synchronous_commit on (default); fast = off (tests)")
    parser.add_argument("--print-command", action="store_true")
    args = parser.parse_args(argv)
    try:
        launcher = _build(args)
        cmd = launcher.command()
        if args.print_command:
            print(shlex.join(cmd))
            return 0
        launcher.prepare()
    except LauncherError as exc:
        print(f"devstack {args.backend}: {exc}", file=sys.stderr)
        return 1
    sys.stdout.flush()
    extra = launcher.popen_kwargs()
    if "group" in extra:  # postgres as root: drop privileges before exec
        os.chdir(str(extra["cwd"]))
        os.setgroups([])
        os.setgid(int(extra["group"]))  # type: ignore[arg-type]
        os.setuid(int(extra["user"]))  # type: ignore[arg-type]
    os.execvpe(cmd[0], cmd, launcher.env())
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main())
