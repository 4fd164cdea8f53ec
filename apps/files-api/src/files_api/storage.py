"""The uploads bucket: client construction, bounded-memory upload, streaming download, delete.

All calls go through google-cloud-storage. Locally ``STORAGE_EMULATOR_HOST``
points it at fake-gcs-server with anonymous credentials; in GKE it uses the
pod's Workload Identity. The service account needs object create/get/list/delete
on the bucket (``roles/storage.objectUser`` on the bucket is enough; ``list``
is what ``/readyz`` probes).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import IO

from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY

from .settings import FilesApiSettings

log = logging.getLogger("files_api.storage")

#: Bytes per read when streaming an object back to a client.
DOWNLOAD_CHUNK_BYTES = 1024 * 1024


class StorageUnavailable(RuntimeError):
    """GCS failed or timed out; the message names the operation and object."""


def make_client(settings: FilesApiSettings) -> storage.Client:
    """A ``storage.Client`` for ``settings`` (the emulator when ``storage_emulator_host`` is set)."""
    if settings.storage_emulator_host:
        return storage.Client(
            project=settings.google_cloud_project,
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": settings.storage_emulator_host},
        )
    return storage.Client(project=settings.google_cloud_project)


class UploadsBucket:
    """Operations files-api needs on the uploads bucket.

    Args:
        client: a ``storage.Client``.
        bucket: bucket name.
        chunk_bytes: resumable-upload chunk size (multiple of 256 KiB); the
            memory an upload holds at once.
        timeout: seconds per HTTP request to GCS, and the overall bound of an
            operation's retries (google-api-core's default retry would keep trying
            for 120 s).
    """

    def __init__(self, client: storage.Client, bucket: str, *, chunk_bytes: int, timeout: float) -> None:
        self.client = client
        self.name = bucket
        self.bucket = client.bucket(bucket)
        self.chunk_bytes = chunk_bytes
        self.timeout = timeout
        self.retry = DEFAULT_RETRY.with_timeout(timeout)

    def upload(self, object_name: str, fileobj: IO[bytes], size: int, content_type: str) -> int:
        """Store ``size`` bytes from ``fileobj`` as a *new* object; return its generation.

        The upload is resumable in ``chunk_bytes`` pieces when the file is
        larger than one chunk, is checksummed (CRC32C, verified by GCS), and
        uses ``ifGenerationMatch=0`` so it never overwrites an existing object.

        Raises:
            StorageUnavailable: the object exists already, or GCS failed.
        """
        blob = self.bucket.blob(object_name, chunk_size=self.chunk_bytes)
        try:
            fileobj.seek(0)
            blob.upload_from_file(
                fileobj, size=size, content_type=content_type, if_generation_match=0,
                checksum="crc32c", timeout=self.timeout, retry=self.retry,
            )
        except gexc.PreconditionFailed as exc:
            raise StorageUnavailable(f"object gs://{self.name}/{object_name} exists already") from exc
        except (gexc.GoogleAPIError, OSError, ValueError) as exc:
            raise StorageUnavailable(f"uploading gs://{self.name}/{object_name} failed: {exc}") from exc
        if blob.generation is None:
            raise StorageUnavailable(f"GCS returned no generation for gs://{self.name}/{object_name}")
        return int(blob.generation)

    def iter_content(self, object_name: str, generation: int) -> Iterator[bytes]:
        """Yield the bytes of that object generation in ``DOWNLOAD_CHUNK_BYTES`` pieces.

        Raises:
            FileNotFoundError: that generation does not exist (deleted meanwhile).
            StorageUnavailable: GCS failed before the first byte.
        """
        blob = self.bucket.blob(object_name, generation=generation)
        try:
            reader = blob.open("rb", chunk_size=DOWNLOAD_CHUNK_BYTES, timeout=self.timeout, retry=self.retry)
            first = reader.read(DOWNLOAD_CHUNK_BYTES)
        except gexc.NotFound as exc:
            raise FileNotFoundError(f"gs://{self.name}/{object_name}#{generation}") from exc
        except (gexc.GoogleAPIError, OSError) as exc:
            raise StorageUnavailable(f"reading gs://{self.name}/{object_name} failed: {exc}") from exc

        def chunks() -> Iterator[bytes]:
            try:
                chunk = first
                while chunk:
                    yield chunk
                    chunk = reader.read(DOWNLOAD_CHUNK_BYTES)
            finally:
                reader.close()

        return chunks()

    def delete(self, object_name: str, generation: int | None = None) -> bool:
        """Delete the object (that generation when given). False if it was already gone.

        Raises:
            StorageUnavailable: GCS failed.
        """
        blob = self.bucket.blob(object_name, generation=generation)
        try:
            blob.delete(timeout=self.timeout, retry=self.retry)
            return True
        except gexc.NotFound:
            return False
        except gexc.GoogleAPIError as exc:
            raise StorageUnavailable(f"deleting gs://{self.name}/{object_name} failed: {exc}") from exc

    def check(self, timeout: float) -> None:
        """Readiness probe: list at most one object within ``timeout`` seconds.

        Raises:
            StorageUnavailable: the bucket is missing or unreachable.
        """
        try:
            list(self.client.list_blobs(self.name, max_results=1, timeout=timeout, retry=None))
        except (gexc.GoogleAPIError, OSError) as exc:
            raise StorageUnavailable(f"bucket {self.name!r} not reachable: {exc}") from exc
