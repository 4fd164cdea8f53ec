"""Receiving a multipart upload with bounded memory, bounded patience and nothing half-kept.

Werkzeug's multipart parser reads the request body in small pieces and writes
each file part to the stream our ``UploadRequest._get_file_stream`` returns: a
``CappedSpool``, which keeps up to ``spool_memory_bytes`` in memory, spills the
rest to an anonymous temp file, and stops the request with 413 the moment the
file passes ``MAX_UPLOAD_BYTES``. A file whose name is not an accepted print
file is refused with 415 before any of its bytes are stored.

The body itself is read through a ``RequestBody``: a read that makes no
progress for ``UPLOAD_IDLE_TIMEOUT_SECONDS`` ends the request with 408 (under
gunicorn, whose socket it bounds), and a body that ends before its
``Content-Length`` (or a chunked body cut before its last chunk) with 400, so
an incomplete body is never stored.

Upload names are checked (``sanitise_filename``) before they become part of
an object name ``files/<id>/<name>``.
"""

from __future__ import annotations

import os
import re
import socket
import tempfile
import unicodedata
from typing import Any

from flask import Request, current_app

from pipeline_core.formats import UnsupportedFormat, match_extension

from .problems import Problem

#: Longest accepted file name, in UTF-8 bytes (after taking the last path component).
#: Not GCS's limit (object names may have 1024 bytes): a downloaded file must fit a
#: file name on common file systems (255 bytes), and the local platform's
#: fake-gcs-server (filesystem backend) stores the object's last path segment as a
#: file name with a suffix, which fails from 236 bytes on. 200 leaves room for both.
MAX_FILENAME_BYTES = 200
#: Slack for the multipart framing (boundaries, part headers) on top of the file size.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
#: WSGI environ key the app sets when the connection must end after this response (a body
#: left half-read). Not a ``Connection: close`` header: PEP 3333 forbids hop-by-hop headers in
#: applications. ``files_api.gunicorn_worker`` honours it.
CLOSE_CONNECTION_KEY = "files_api.close_connection"
#: Unicode categories refused in names: control characters (C0, DEL, C1) and lone surrogates.
_REFUSED_CATEGORIES = ("Cc", "Cs")


def sanitise_filename(raw: str | None) -> str:
    """The stored name of a client-supplied file name, or a 400 saying what is wrong with it.

    Keeps the last path component (``C:/x/part.gcode`` -> ``part.gcode``: some
    clients send paths), NFC-normalises, trims spaces and leading/trailing dots.

    Raises:
        Problem: 400 when nothing usable remains, when the name holds a control
            character, or when it is longer than ``MAX_FILENAME_BYTES`` UTF-8 bytes.
    """
    name = unicodedata.normalize("NFC", raw or "")
    name = re.split(r"[/\\]", name)[-1]
    bad = next((c for c in name if unicodedata.category(c) in _REFUSED_CATEGORIES), None)
    if bad is not None:
        raise Problem(400, f"the file name {raw!r} contains the control character U+{ord(bad):04X}; "
                           "names may not contain control characters")
    name = name.strip().strip(".").strip()
    if not name:
        raise Problem(400, f"the file part has no usable file name (got {raw!r})")
    size = len(name.encode("utf-8", "surrogatepass"))
    if size > MAX_FILENAME_BYTES:
        raise Problem(400, f"the file name is {size} bytes long (UTF-8); names may have at most "
                           f"{MAX_FILENAME_BYTES} bytes")
    return name


class BodyStalled(Problem):
    """408: the client sent no body data for ``UPLOAD_IDLE_TIMEOUT_SECONDS``; the connection is closed."""

    def __init__(self, idle_seconds: float, received: int) -> None:
        super().__init__(408, f"no data for {idle_seconds:g} s after {received} bytes of the request body "
                              "(UPLOAD_IDLE_TIMEOUT_SECONDS); nothing was stored")


class IncompleteBody(Problem):
    """400: the request body ended before its announced end; the connection is closed."""

    def __init__(self, received: int, expected: int | None) -> None:
        if expected is not None:
            detail = (f"the request body ended after {received} of the {expected} bytes its Content-Length "
                      "announced; nothing was stored")
        else:
            detail = f"the request body ended before its last chunk (after {received} bytes); nothing was stored"
        super().__init__(400, detail)


class RequestBody:
    """``wsgi.input`` that refuses to end early and to wait forever.

    On either failure it sets ``environ[CLOSE_CONNECTION_KEY]``: the rest of
    the body is not read, so the connection cannot carry another request.

    Args:
        environ: the request's WSGI environ.
        raw: the server's input stream.
        expected: the request's ``Content-Length`` (None when chunked).
        idle_seconds: longest wait for the next body bytes; applied to
            ``sock`` (gunicorn's ``environ["gunicorn.socket"]``) while the body
            is read and restored by ``release()``. Without a socket (other
            servers, the test client) reads are not bounded here.
        sock: the client connection, if the server exposes it.

    Raises (from ``read``):
        BodyStalled: no bytes for ``idle_seconds``.
        IncompleteBody: end of input before ``expected`` bytes, or the server's
            reader failed (connection reset, chunked body cut short).
    """

    def __init__(self, environ: dict[str, Any], raw: Any, expected: int | None, idle_seconds: float,
                 sock: socket.socket | None = None) -> None:
        self._environ = environ
        self._raw = raw
        self.expected = expected
        self.idle_seconds = idle_seconds
        self.received = 0
        self._sock = sock
        self._previous_timeout: float | None = None
        self._armed = False

    def _arm(self) -> None:
        if self._sock is not None and not self._armed:
            self._previous_timeout = self._sock.gettimeout()
            self._sock.settimeout(self.idle_seconds)
            self._armed = True

    def release(self) -> None:
        """Give the socket its previous timeout back (idempotent)."""
        if self._armed:
            self._armed = False
            try:
                self._sock.settimeout(self._previous_timeout)  # type: ignore[union-attr]
            except OSError:
                pass

    def _checked(self, call: Any, size: int) -> bytes:
        self._arm()
        try:
            data = call(size)
        except TimeoutError:
            self._environ[CLOSE_CONNECTION_KEY] = True
            raise BodyStalled(self.idle_seconds, self.received) from None
        except OSError as exc:  # includes gunicorn's NoMoreData / InvalidChunkSize (IOError)
            self._environ[CLOSE_CONNECTION_KEY] = True
            raise IncompleteBody(self.received, self.expected) from exc
        self.received += len(data)
        if not data and size != 0:
            if self.expected is not None and self.received < self.expected:
                self._environ[CLOSE_CONNECTION_KEY] = True
                raise IncompleteBody(self.received, self.expected)
            self.release()
        return data

    def read(self, size: int | None = -1) -> bytes:
        return self._checked(self._raw.read, -1 if size is None else size)

    def readline(self, size: int | None = -1) -> bytes:
        return self._checked(self._raw.readline, -1 if size is None else size)

    def __iter__(self) -> Any:
        while line := self.readline():
            yield line


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
    """Flask request whose multipart body is read through a ``RequestBody`` into ``CappedSpool`` file parts.

    Reads the limits from ``current_app.config``: ``MAX_UPLOAD_BYTES``,
    ``SPOOL_MEMORY_BYTES`` and ``UPLOAD_IDLE_TIMEOUT_SECONDS``. Only one file
    part is accepted per request. The form parser is not silent: a malformed
    multipart body raises ``ValueError`` from ``files``/``form`` instead of
    looking like an empty form.
    """

    max_form_parts = 16
    # Bounds non-file fields *and* werkzeug's parse buffer (which takes 64 KiB
    # reads), so it must stay well above 64 KiB.
    max_form_memory_size = 1024 * 1024
    _body: RequestBody | None = None

    def make_form_data_parser(self) -> Any:
        parser = super().make_form_data_parser()
        parser.silent = False
        return parser

    def _get_stream_for_parsing(self) -> Any:
        if self._body is None and "stream" not in self.__dict__:  # before werkzeug wraps wsgi.input
            self._body = RequestBody(self.environ, self.environ["wsgi.input"], self.content_length,
                                     float(current_app.config["UPLOAD_IDLE_TIMEOUT_SECONDS"]),
                                     self.environ.get("gunicorn.socket"))
            self.environ["wsgi.input"] = self._body
        return super()._get_stream_for_parsing()

    def close(self) -> None:
        if self._body is not None:
            self._body.release()
        super().close()

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
