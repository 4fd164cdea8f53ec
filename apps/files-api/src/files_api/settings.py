"""files-api settings, from environment variables (names in docs/seams.md)."""

from __future__ import annotations

from pydantic import Field, ValidationInfo, field_validator

from pipeline_core.settings import CommonSettings, load_settings

from .auth import AUDIENCE_PATTERN

#: GCS resumable uploads take chunks in multiples of 256 KiB
#: (https://cloud.google.com/storage/docs/performing-resumable-uploads#chunked-upload).
GCS_CHUNK_QUANTUM = 256 * 1024

#: The public port (``PORT``): what the load balancer sends clients to (API, page, docs, ``/healthz``).
DEFAULT_PORT = 8080
#: The cluster-only ops port (``OPS_PORT``): ``/healthz``, ``/readyz`` with its dependency
#: details, ``/metrics``. Not 8081, the extractor's port, so both run side by side on one
#: host (``make dev``); the chart sets the same number (environments/common/files-api.yaml).
DEFAULT_OPS_PORT = 8082

#: Google's published IAP signing keys, PEM by key id
#: (https://cloud.google.com/iap/docs/signed-headers-howto#verifying_the_jwt_payload).
IAP_PUBLIC_KEYS_URL = "https://www.gstatic.com/iap/verify/public_key"


class FilesApiSettings(CommonSettings):
    """Everything files-api reads from its environment.

    Attributes (env var in capitals):
        port: ``PORT``, the public listener (default 8080): ``/v1``, ``/``, ``/docs``,
            ``/openapi.json``, ``/healthz``. ``/readyz`` and ``/metrics`` answer 404 there.
        ops_port: ``OPS_PORT``, the cluster-only listener (default 8082): ``/healthz``,
            ``/readyz``, ``/metrics`` and nothing else (``files_api.listeners``); must
            differ from ``PORT``.
        max_upload_bytes: ``MAX_UPLOAD_BYTES``, the largest accepted file in
            bytes (default 268435456 = 256 MiB); larger uploads get 413.
        iap_audience: ``IAP_AUDIENCE``, ``/projects/NUM/global/backendServices/ID``
            or ``/projects/NUM/global/backendServices/*`` (any global backend
            service of project NUM: what the stack sets, docs/edge.md "IAP");
            when set every ``/v1`` request needs a valid IAP JWT. Unset: open (local use).
        iap_public_keys_url: ``IAP_PUBLIC_KEYS_URL``, where IAP's signing keys are.
        upload_chunk_bytes: ``UPLOAD_CHUNK_BYTES``, resumable-upload chunk size
            (multiple of 256 KiB, default 8 MiB): the memory one upload holds.
        spool_memory_bytes: ``SPOOL_MEMORY_BYTES``, how much of an incoming file
            stays in memory before it spills to a temp file (default 1 MiB).
        max_concurrent_uploads: ``MAX_CONCURRENT_UPLOADS``, uploads one worker
            process receives at once (default 2); more get 503 + ``Retry-After``.
            Bounds /tmp use: workers x this x ``MAX_UPLOAD_BYTES``.
        storage_timeout_seconds: ``STORAGE_TIMEOUT_SECONDS``, per-request GCS timeout.
        readiness_timeout_seconds: ``READINESS_TIMEOUT_SECONDS``, bound of each /readyz probe.
        upload_idle_timeout_seconds: ``UPLOAD_IDLE_TIMEOUT_SECONDS``, longest wait for the
            next bytes of an upload's body (default 60 s, like nginx's ``client_body_timeout``,
            https://nginx.org/en/docs/http/ngx_http_core_module.html#client_body_timeout);
            then 408 and the upload slot is free again.
        uploads_topic: ``UPLOADS_TOPIC``, the topic the bucket notifies; when set,
            /readyz also checks that notification path (``files_api.notifications``).
    """

    port: int = Field(default=DEFAULT_PORT, ge=1, le=65535)
    ops_port: int = Field(default=DEFAULT_OPS_PORT, ge=1, le=65535)
    max_upload_bytes: int = Field(default=256 * 1024 * 1024, ge=1)
    iap_audience: str | None = None
    iap_public_keys_url: str = IAP_PUBLIC_KEYS_URL
    upload_chunk_bytes: int = Field(default=8 * 1024 * 1024, ge=GCS_CHUNK_QUANTUM)
    spool_memory_bytes: int = Field(default=1024 * 1024, ge=0)
    max_concurrent_uploads: int = Field(default=2, ge=1, le=64)
    storage_timeout_seconds: float = Field(default=60.0, gt=0)
    readiness_timeout_seconds: float = Field(default=2.0, gt=0, le=30)
    upload_idle_timeout_seconds: float = Field(default=60.0, gt=0, le=600)
    uploads_topic: str | None = None

    @field_validator("upload_chunk_bytes")
    @classmethod
    def _chunk_quantum(cls, value: int) -> int:
        if value % GCS_CHUNK_QUANTUM:
            raise ValueError(f"must be a multiple of {GCS_CHUNK_QUANTUM} (256 KiB), got {value}")
        return value

    @field_validator("ops_port")
    @classmethod
    def _own_port(cls, value: int, info: ValidationInfo) -> int:
        if value == info.data.get("port"):
            raise ValueError(f"must differ from PORT ({value}): the ops endpoints need a listener of their own")
        return value

    @field_validator("iap_audience", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("iap_audience")
    @classmethod
    def _audience_form(cls, value: str | None) -> str | None:
        # A typo here would reject every request (or, worse, a lax form accept too much).
        if value is not None and not AUDIENCE_PATTERN.match(value):
            raise ValueError(f"must be /projects/<number>/global/backendServices/<id or *>, got {value!r}")
        return value


def load(**overrides: object) -> FilesApiSettings:
    """``FilesApiSettings`` from the environment; raises ``pipeline_core.settings.SettingsError``."""
    return load_settings(FilesApiSettings, **overrides)
