"""files-api settings, from environment variables (names in docs/seams.md)."""

from __future__ import annotations

from pydantic import Field, field_validator

from pipeline_core.settings import CommonSettings, load_settings

#: GCS resumable uploads take chunks in multiples of 256 KiB
#: (https://cloud.google.com/storage/docs/performing-resumable-uploads#chunked-upload).
GCS_CHUNK_QUANTUM = 256 * 1024

#: Google's published IAP signing keys, PEM by key id
#: (https://cloud.google.com/iap/docs/signed-headers-howto#verifying_the_jwt_payload).
IAP_PUBLIC_KEYS_URL = "https://www.gstatic.com/iap/verify/public_key"


class FilesApiSettings(CommonSettings):
    """Everything files-api reads from its environment.

    Attributes (env var in capitals):
        max_upload_bytes: ``MAX_UPLOAD_BYTES``, the largest accepted file in
            bytes (default 268435456 = 256 MiB); larger uploads get 413.
        iap_audience: ``IAP_AUDIENCE``, e.g. ``/projects/NUM/global/backendServices/ID``;
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
        uploads_topic: ``UPLOADS_TOPIC``, the topic the bucket notifies; when set,
            /readyz also checks that notification path (``files_api.notifications``).
    """

    port: int = Field(default=8080, ge=1, le=65535)
    max_upload_bytes: int = Field(default=256 * 1024 * 1024, ge=1)
    iap_audience: str | None = None
    iap_public_keys_url: str = IAP_PUBLIC_KEYS_URL
    upload_chunk_bytes: int = Field(default=8 * 1024 * 1024, ge=GCS_CHUNK_QUANTUM)
    spool_memory_bytes: int = Field(default=1024 * 1024, ge=0)
    max_concurrent_uploads: int = Field(default=2, ge=1, le=64)
    storage_timeout_seconds: float = Field(default=60.0, gt=0)
    readiness_timeout_seconds: float = Field(default=2.0, gt=0, le=30)
    uploads_topic: str | None = None

    @field_validator("upload_chunk_bytes")
    @classmethod
    def _chunk_quantum(cls, value: int) -> int:
        if value % GCS_CHUNK_QUANTUM:
            raise ValueError(f"must be a multiple of {GCS_CHUNK_QUANTUM} (256 KiB), got {value}")
        return value

    @field_validator("iap_audience", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value


def load(**overrides: object) -> FilesApiSettings:
    """``FilesApiSettings`` from the environment; raises ``pipeline_core.settings.SettingsError``."""
    return load_settings(FilesApiSettings, **overrides)
