"""Download one exact object generation from GCS to a local file, streaming, bounded.

``bucket.blob(name, generation=g)`` pins the generation, so a newer upload
under the same name never answers for an older notification; a deleted
generation answers 404 (``ObjectGone``). The body is streamed into the file
in the client's 8 KiB pieces (google-resumable-media ``Download`` with
``stream=``), its CRC32C/MD5 checked against the response headers, and
aborted as soon as it exceeds ``max_bytes`` (``ObjectTooLarge``): memory use
does not grow with the object size.
"""

from __future__ import annotations

from typing import BinaryIO

from google.api_core import exceptions as api_exceptions
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY

from extractor.notification import ObjectRef


class ObjectGone(Exception):
    """The object generation does not exist any more (deleted or overwritten and purged): HTTP 404."""


class ObjectTooLarge(Exception):
    """The object is larger than the configured download bound; ``size`` is a lower bound in bytes."""

    def __init__(self, ref: ObjectRef, size: int, max_bytes: int) -> None:
        super().__init__(
            f"{ref} is {'at least ' if size == max_bytes + 1 else ''}{size} bytes, "
            f"above the extractor's limit of {max_bytes} bytes"
        )
        self.size = size
        self.max_bytes = max_bytes


class _BoundedWriter:
    """A write-only file wrapper that refuses to grow past ``max_bytes`` (raises ``ObjectTooLarge``)."""

    def __init__(self, target: BinaryIO, ref: ObjectRef, max_bytes: int) -> None:
        self._target = target
        self._ref = ref
        self._max_bytes = max_bytes
        self.written = 0

    def write(self, chunk: bytes) -> int:
        if self.written + len(chunk) > self._max_bytes:
            raise ObjectTooLarge(self._ref, self._max_bytes + 1, self._max_bytes)
        self.written += len(chunk)
        return self._target.write(chunk)

    # google-resumable-media seeks/tells only for resumed downloads; delegate.
    def tell(self) -> int:
        return self._target.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        position = self._target.seek(offset, whence)
        self.written = position
        return position

    def flush(self) -> None:
        self._target.flush()


def download_generation(
    client: storage.Client,
    ref: ObjectRef,
    target: BinaryIO,
    *,
    max_bytes: int,
    timeout_seconds: float,
    expected_size: int | None = None,
) -> int:
    """Stream generation ``ref.generation`` of ``gs://ref.bucket/ref.name`` into ``target``.

    Args:
        client: a ``google.cloud.storage.Client`` (honours ``STORAGE_EMULATOR_HOST``).
        ref: bucket, object name and generation to fetch.
        target: a binary file opened for writing, positioned at 0.
        max_bytes: the largest object accepted, in bytes.
        timeout_seconds: per-request timeout, and the total time budget of
            the client's own retries of 429/5xx/connection errors.
        expected_size: the size the notification announced, if any; an object
            announced larger than ``max_bytes`` is refused without a request.

    Returns:
        The number of bytes written.

    Raises:
        ObjectGone: HTTP 404 for that generation.
        ObjectTooLarge: announced or actual size above ``max_bytes``.
        google.api_core.exceptions.GoogleAPICallError: other HTTP errors
            (429/5xx are transient for the worker), after the client's retries.
        google.resumable_media.DataCorruption: the checksum did not match.
        requests.exceptions.RequestException: network failures.
    """
    if expected_size is not None and expected_size > max_bytes:
        raise ObjectTooLarge(ref, expected_size, max_bytes)
    blob = client.bucket(ref.bucket).blob(ref.name, generation=ref.generation)
    writer = _BoundedWriter(target, ref, max_bytes)
    try:
        blob.download_to_file(
            writer,
            raw_download=True,
            checksum="auto",
            timeout=timeout_seconds,
            retry=DEFAULT_RETRY.with_timeout(timeout_seconds),
        )
    except api_exceptions.NotFound as exc:
        raise ObjectGone(f"{ref} not found: {exc.message}") from exc
    target.flush()
    return writer.written
