"""Settings shared by the services, read from environment variables (12-factor).

The variable names are the contract in ``docs/seams.md`` ("Infra outputs -> Helm
values -> environment variables"); each service subclasses ``CommonSettings``
with its own keys. ``load_settings`` turns pydantic's validation error into a
``SettingsError`` whose message names every bad variable.
"""

from __future__ import annotations

from typing import Literal, TypeVar

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class SettingsError(ValueError):
    """The environment does not hold valid settings; the message names each variable."""


class CommonSettings(BaseSettings):
    """Variables both services read.

    Attributes:
        database_url: ``DATABASE_URL``, a SQLAlchemy URL
            ``postgresql+psycopg://USER[:PASS]@HOST:PORT/DB``.
        google_cloud_project: ``GOOGLE_CLOUD_PROJECT``, the project id.
        uploads_bucket: ``UPLOADS_BUCKET``, the bucket holding uploaded files.
        log_level: ``LOG_LEVEL``, a ``logging`` level name (case-insensitive).
        port: ``PORT``, the TCP port gunicorn binds.
        storage_emulator_host: ``STORAGE_EMULATOR_HOST``, local only: the GCS
            emulator's base URL (``http://127.0.0.1:4443``); None in the cloud.
        pubsub_emulator_host: ``PUBSUB_EMULATOR_HOST``, local only:
            ``HOST:PORT`` of the Pub/Sub emulator; None in the cloud.
    """

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    database_url: str = Field(min_length=1)
    google_cloud_project: str = Field(min_length=1)
    uploads_bucket: str = Field(min_length=3, max_length=222)
    log_level: LogLevel = "INFO"
    port: int = Field(default=8080, ge=1, le=65535)
    storage_emulator_host: str | None = None
    pubsub_emulator_host: str | None = None

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str) -> str:
        if not value.startswith(("postgresql://", "postgresql+psycopg://")):
            raise ValueError("must be a postgresql+psycopg:// SQLAlchemy URL")
        if value.startswith("postgresql://"):
            # psycopg 3 is the only driver installed; say so explicitly.
            value = "postgresql+psycopg://" + value.removeprefix("postgresql://")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


S = TypeVar("S", bound=BaseSettings)


def load_settings(cls: type[S], **overrides: object) -> S:
    """Build ``cls`` from the environment (``overrides`` win over it).

    Raises:
        SettingsError: one line per invalid or missing variable, e.g.
            ``DATABASE_URL: Field required``.
    """
    try:
        return cls(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = ".".join(str(part) for part in err["loc"]).upper() or "?"
            lines.append(f"{name}: {err['msg']}")
        raise SettingsError("invalid settings from the environment: " + "; ".join(lines)) from None
