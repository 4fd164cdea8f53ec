"""The official Cloud Pub/Sub emulator, via ``gcloud beta emulators pubsub start``.

Needs the Google Cloud SDK with the ``pubsub-emulator`` component and Java 17+.
The JVM takes several seconds to start; readiness is its HTTP port answering
``GET /`` with ``Ok``. Clients find it through ``PUBSUB_EMULATOR_HOST``
(https://cloud.google.com/pubsub/docs/emulator), which ``client_env()`` gives.

Use::

    with PubSubEmulator(project="local-project") as ps:
        ps.create_topic("uploads")
        ps.create_subscription("uploads", "extractor", ack_deadline_seconds=60)
"""

from __future__ import annotations

import os
import shutil
import urllib.error
import urllib.request
from typing import Any

from .process import LauncherError, ManagedProcess

DEFAULT_PROJECT = "local-project"


def find_gcloud() -> str:
    """Path of the ``gcloud`` executable. Raises ``LauncherError`` if absent."""
    path = shutil.which("gcloud")
    if not path:
        raise LauncherError("gcloud not found on PATH: install the Google Cloud SDK with the pubsub-emulator component")
    return path


class PubSubEmulator(ManagedProcess):
    """The Pub/Sub emulator on ``host:port`` keeping its state in ``data_dir``.

    Args:
        project: project id the helpers create topics and subscriptions in
            (the emulator itself accepts any project).
        **kwargs: see ``ManagedProcess`` (``data_dir``, ``port``, ``host``, ``ready_timeout``).
    """

    name = "pubsub"

    def __init__(self, *, project: str = DEFAULT_PROJECT, **kwargs: Any) -> None:
        kwargs.setdefault("ready_timeout", 90.0)
        super().__init__(**kwargs)
        self.project = project
        self.gcloud = find_gcloud()

    @property
    def emulator_host(self) -> str:
        """``host:port``, the value of ``PUBSUB_EMULATOR_HOST``."""
        return f"{self.host}:{self.port}"

    def command(self) -> list[str]:
        return [
            self.gcloud, "beta", "emulators", "pubsub", "start",
            f"--host-port={self.emulator_host}", f"--data-dir={self.data_dir}",
            f"--project={self.project}", "--quiet", "--verbosity=warning",
        ]

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("PUBSUB_EMULATOR_HOST", None)
        env["CLOUDSDK_CORE_DISABLE_PROMPTS"] = "1"
        env["CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK"] = "1"
        env["CLOUDSDK_CORE_DISABLE_USAGE_REPORTING"] = "1"
        return env

    def client_env(self) -> dict[str, str]:
        """Variables that point Google client libraries at this emulator."""
        return {"PUBSUB_EMULATOR_HOST": self.emulator_host, "PUBSUB_PROJECT_ID": self.project}

    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.emulator_host}/", timeout=1) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    # -- client side (REST, so no grpc channel is left open in the caller) -------
    def _put(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        import json

        req = urllib.request.Request(
            f"http://{self.emulator_host}/v1/{path}", data=json.dumps(body).encode(), method="PUT",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            if exc.code == 409:  # ALREADY_EXISTS: idempotent create
                return {}
            raise LauncherError(f"PUT {path} on the Pub/Sub emulator failed: {exc.code} {exc.read()[:500]!r}") from exc

    def create_topic(self, topic: str) -> str:
        """Create ``topic`` in ``project`` (no error if it exists); return its full name."""
        name = f"projects/{self.project}/topics/{topic}"
        self._put(name, {})
        return name

    def create_subscription(self, topic: str, subscription: str, **settings: Any) -> str:
        """Create a pull ``subscription`` on ``topic`` (idempotent); return its full name.

        ``settings`` are Subscription fields in the REST API's camelCase or
        snake_case (``ack_deadline_seconds=60``, ``dead_letter_policy={...}``,
        ``retry_policy={...}``).
        """
        name = f"projects/{self.project}/subscriptions/{subscription}"
        body = {_camel(k): v for k, v in settings.items()}
        body["topic"] = f"projects/{self.project}/topics/{topic}"
        self._put(name, body)
        return name


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part.title() for part in rest)
