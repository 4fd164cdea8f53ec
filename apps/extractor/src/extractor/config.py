"""The extractor's settings: environment variables only (12-factor).

Names and meanings are the contract in ``docs/seams.md`` ("Infra outputs ->
Helm values -> environment variables"); the worker knobs below are the
extractor's own and all have defaults. ``PUBSUB_EMULATOR_HOST`` and
``STORAGE_EMULATOR_HOST`` are not read here: the Google client libraries
honour them themselves.
"""

from __future__ import annotations

import math

from pydantic import Field

from pipeline_core.settings import CommonSettings, SettingsError, load_settings

__all__ = ["ExtractorSettings", "SettingsError", "load_extractor_settings"]

#: gunicorn stops waiting for a worker this many seconds after SIGTERM
#: (``graceful_timeout``) beyond the extractor's own drain timeout, so the
#: drain always finishes (or gives up and nacks) before gunicorn kills it.
GRACEFUL_TIMEOUT_MARGIN_SECONDS = 5


class ExtractorSettings(CommonSettings):
    """Everything the extractor reads from its environment.

    ``CommonSettings`` (pipeline-core) holds ``DATABASE_URL``,
    ``GOOGLE_CLOUD_PROJECT``, ``UPLOADS_BUCKET``, ``LOG_LEVEL`` and ``PORT``
    (here the health/metrics port, default 8081). Fields map to upper-case
    environment variables of the same name (``max_messages`` <-
    ``MAX_MESSAGES``). Byte counts are bytes, durations seconds.
    """

    port: int = Field(default=8081, ge=1, le=65535, description="health/metrics HTTP port gunicorn binds")
    uploads_subscription: str = Field(
        description="short subscription id in GOOGLE_CLOUD_PROJECT (not projects/../subscriptions/..)",
        # Pub/Sub resource names: 3-255 chars, start with a letter, then [A-Za-z0-9-_.~+%]
        # (https://cloud.google.com/pubsub/docs/pubsub-basics#resource_names).
        pattern=r"^[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}$",
    )
    max_messages: int = Field(
        default=4,
        ge=1,
        le=1000,
        description="FlowControl.max_messages: messages leased at once; also the callback thread count",
    )
    max_outstanding_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=1024,
        description="FlowControl.max_bytes: total size of leased Pub/Sub messages (notifications, not objects)",
    )
    max_download_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=1,
        description="objects larger than this are marked failed, not downloaded; default = files-api MAX_UPLOAD_BYTES",
    )
    drain_timeout_seconds: float = Field(
        default=25.0,
        gt=0,
        le=600,
        description="after SIGTERM, how long in-flight messages may still finish before they are nacked",
    )
    max_lease_seconds: int = Field(
        default=600,
        ge=10,
        description="FlowControl.max_lease_duration: the longest one message is kept leased (auto-extended)",
    )
    lease_extension_seconds: int = Field(
        default=30,
        ge=10,
        le=600,
        description="FlowControl.max_duration_per_lease_extension: the most a lease is extended at once, so a "
        "worker killed without nacking has its messages redelivered within this many seconds",
    )
    gcs_timeout_seconds: float = Field(default=60.0, gt=0, description="per-request timeout of GCS calls")
    max_delivery_attempts: int | None = Field(
        default=None,
        ge=5,
        le=100,
        description="the subscription's dead-letter policy maxDeliveryAttempts (the stack's pubsub.maxDeliveryAttempts): "
        "a nack on that attempt dead-letters the message, counted as extractor_dead_lettered_total",
    )

    @property
    def subscription_path(self) -> str:
        """``projects/<project>/subscriptions/<id>``, the form the Pub/Sub client wants."""
        return f"projects/{self.google_cloud_project}/subscriptions/{self.uploads_subscription}"

    @property
    def graceful_timeout_seconds(self) -> int:
        """gunicorn ``graceful_timeout``: the drain timeout plus a safety margin, whole seconds."""
        return math.ceil(self.drain_timeout_seconds) + GRACEFUL_TIMEOUT_MARGIN_SECONDS


def load_extractor_settings(**overrides: object) -> ExtractorSettings:
    """Read ``ExtractorSettings`` from the environment (``overrides`` win, for tests).

    Raises:
        pipeline_core.settings.SettingsError: a variable is missing or
            invalid; the message lists every problem as ``VARIABLE: reason``.
    """
    return load_settings(ExtractorSettings, **overrides)
