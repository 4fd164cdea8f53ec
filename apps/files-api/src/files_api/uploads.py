"""Receiving a multipart upload with bounded memory.

Werkzeug's multipart parser reads the request body in small pieces and writes
each file part to the stream our ``UploadRequest._get_file_stream`` returns: a
``CappedSpool``, which keeps up to ``spool_memory_bytes`` in memory, spills the
rest to an anonymous temp file, and stops the request with 413 the moment the
file passes ``MAX_UPLOAD_BYTES``. A file whose name is not an accepted print
file is refused with 415 before any of its bytes are stored.

Upload names are sanitised (``sanitise_filename``) before they become part of
an object name ``files/<id>/<name>``.
"""

from __future__ import annotations

import os
import re
import tempfile
import unicodedata
from typing import Any

from flask import Request, current_app

from pipeline_core.formats import UnsupportedFormat, match_extension

from .problems import Problem

#: Longest stored file name, in UTF-8 bytes (GCS object names may be 1024 bytes).
MAX_FILENAME_BYTES = 255
#: Slack for the multipart framing (boundaries, part headers) on top of the file size.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]")


def sanitise_filename(raw: str | None) -> str:
    """A safe display/object name from a client-supplied file name.

    Keeps the last path component (``C:\\x\\part.gcode`` -> ``part.gcode``),
    NFC-normalises, drops control characters, trims dots and spaces, and
    shortens to ``MAX_FILENAME_BYTES`` keeping the extension.

    Raises:
        Problem: 400 when nothing usable remains.
    """
    name = unicodedata.normalize("NFC", raw or "")
    name = re.split(r"[/\\]", name)[-1]
    name = _UNSAFE.sub("", name).strip().strip(".").strip()
    if not name:
        raise Problem(400, f"the file part has no usable file name (got {raw!r})")
    if len(name.encode()) > MAX_FILENAME_BYTES:
        try:
            ending = match_extension(name)
        except UnsupportedFormat:
            ending = ""
        stem = name[: len(name) - len(ending)]
        budget = MAX_FILENAME_BYTES - len(ending.encode())
        stem = stem.encode()[:budget].decode(errors="ignore")
        name = stem + name[len(name) - len(ending):]
    return name


class UploadTooLarge(Problem):
    """413: the file is larger than ``MAX_UPLOAD_BYTES``."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the file is larger than the limit of {limit} bytes (MAX_UPLOAD_BYTES)",
                         max_upload_bytes=limit)


class CappedSpool:
    """A writable/readable file that refuses to grow past ``limit`` bytes.

    Holds ``memory_bytes`` in memory, then spills to an unnamed temp file
    (deleted on close). ``size`` is the number of bytes written.

    Raises (from ``write``):
        UploadTooLarge: the write would pass ``limit``.
    """

    def __init__(self, limit: int, memory_bytes: int) -> None:
        self.limit = limit
        self.size = 0
        self._file = tempfile.SpooledTemporaryFile(max_size=memory_bytes)

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self.size > self.limit:
            raise UploadTooLarge(self.limit)
        return self._file.write(data)

    def read(self, n: int = -1) -> bytes:
        return self._file.read(n)

    def readline(self, limit: int = -1) -> bytes:
        return self._file.readline(limit)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    @property
    def closed(self) -> bool:
        return self._file.closed

    @property
    def in_memory(self) -> bool:
        """True while the content has not spilled to disk."""
        return not getattr(self._file, "_rolled", False)

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def __enter__(self) -> CappedSpool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class UploadRequest(Request):
    """Flask request whose multipart file parts go to a ``CappedSpool``.

    Reads the limits from ``current_app.config``: ``MAX_UPLOAD_BYTES`` and
    ``SPOOL_MEMORY_BYTES``. Only one file part is accepted per request.
    """

    max_form_parts = 16
    # Bounds non-file fields *and* werkzeug's parse buffer (which takes 64 KiB
    # reads), so it must stay well above 64 KiB.
    max_form_memory_size = 1024 * 1024

    def _get_file_stream(self, total_content_length: int | None, content_type: str | None,
                         filename: str | None = None, content_length: int | None = None) -> Any:
        count = getattr(self, "_file_parts", 0) + 1
        self._file_parts = count
        if count > 1:
            raise Problem(400, "send exactly one file, in the multipart field 'file'")
        if filename:
            try:
                match_extension(sanitise_filename(filename))
            except UnsupportedFormat as exc:
                raise Problem(415, str(exc)) from exc
        limit = int(current_app.config["MAX_UPLOAD_BYTES"])
        return CappedSpool(limit, int(current_app.config["SPOOL_MEMORY_BYTES"]))
