"""The ``/v1/files`` resource: upload, list, get, download, delete."""

from __future__ import annotations

import copy
import logging
import uuid
from typing import Any

from flask import Response, current_app, jsonify, request, stream_with_context, url_for
from flask_smorest import Blueprint
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import RequestEntityTooLarge

from pipeline_core.formats import EXTENSIONS, SNIFF_BYTES, UnsupportedFormat, content_type_for, content_type_for_content

from . import metrics, repository
from .fastdump import FastDumper
from .problems import PROBLEM_JSON, RETRY_AFTER_SECONDS, Problem, Unavailable
from .schemas import FilePageSchema, FileSchema, ListQuerySchema
from .storage import StorageUnavailable
from .uploads import (
    MAX_FILENAME_BYTES,
    MULTIPART_OVERHEAD_BYTES,
    BodyStalled,
    CappedSpool,
    IncompleteBody,
    UploadRequest,
    sanitise_filename,
)

log = logging.getLogger("files_api.api")


class _Parser(FlaskParser):
    DEFAULT_VALIDATION_STATUS = 400  # bad query input is a 400, not webargs' 422


class _Blueprint(Blueprint):
    ARGUMENTS_PARSER = _Parser()


blp = _Blueprint("files", __name__, url_prefix="/v1/files", description="Print files and their metadata")

_ENDINGS = " ".join(sorted(EXTENSIONS, key=lambda e: (EXTENSIONS[e][0].value, len(e))))
#: Every Content-Type a stored file is served with (pipeline_core.formats.EXTENSIONS).
_STORED_CONTENT_TYPES = sorted({content_type for _, content_type in EXTENSIONS.values()})
_RETRY_AFTER = {"Retry-After": {"required": True, "description": "seconds to wait before retrying",
                                "schema": {"type": "integer", "minimum": 1, "example": RETRY_AFTER_SECONDS}}}
_PROBLEMS = {code: {"description": text, "content": {PROBLEM_JSON: {"schema": schema}}} for code, (text, schema) in {
    400: ("bad input (the detail says what and where)", "ProblemSchema"),
    401: ("missing or invalid IAP assertion (only when IAP_AUDIENCE is set)", "ProblemSchema"),
    404: ("no such file", "ProblemSchema"),
    408: ("the client sent no body data for UPLOAD_IDLE_TIMEOUT_SECONDS; the connection is closed", "ProblemSchema"),
    413: ("file larger than MAX_UPLOAD_BYTES (the limit is in max_upload_bytes), or a multipart body past the "
          "parser's limits", "TooLargeProblem"),
    415: (f"not a supported print file (name ending in {_ENDINGS}, any case) or not multipart/form-data",
          "ProblemSchema"),
    503: ("storage, database or IAP keys unavailable, or this instance busy with uploads: retry after Retry-After "
          "seconds", "ProblemSchema"),
}.items()}
_PROBLEMS[503]["headers"] = _RETRY_AFTER


def _problems(*codes: int, **more: Any) -> dict[str, Any]:
    """``responses`` doc for these problem statuses (fresh copies: flask-smorest edits them in place).

    No ``default`` response: every status an operation answers is listed.
    """
    responses = {str(c): copy.deepcopy(_PROBLEMS[c]) for c in codes}
    return {"responses": {**responses, **copy.deepcopy(more)}}


def _state():
    return current_app.extensions["files_api"]


def _file_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise Problem(404, f"no file {raw!r} (file ids are UUIDs)") from None


@blp.route("", methods=["POST"])
@blp.doc(
    summary="Upload a print file",
    description=(
        "One multipart/form-data part named `file` carrying the print file; no other file part, every part "
        "with a name. The file must not be empty. Its file name: the last path component is kept "
        f"(Unicode NFC, spaces and leading/trailing dots trimmed), it must end in one of {_ENDINGS} (any case), "
        f"hold no control characters and have at most {MAX_FILENAME_BYTES} UTF-8 bytes (400 otherwise). "
        "A body that ends before its Content-Length, or a chunked body cut before its last chunk, is 400; "
        "one that stalls for UPLOAD_IDLE_TIMEOUT_SECONDS is 408; neither is stored."),
    requestBody={"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {"file": {"type": "string", "format": "binary", "minLength": 1,
                                "description": f"the print file ({_ENDINGS}); not empty"}}},
        "encoding": {"file": {"headers": {"Content-Disposition": {
            "description": "the part's file name carries the print file's name and ending",
            "schema": {"type": "string"}, "example": 'form-data; name="file"; filename="part.gcode"'}}}}}}},
    **_problems(400, 401, 408, 413, 415, 503),
)
@blp.response(201, FileSchema, description="stored; Location names the new file",
              headers={"Location": {"schema": {"type": "string"}, "description": "URL of the new file"}})
def upload() -> tuple[repository.FileView, int, dict[str, str]]:
    """Store the multipart field ``file`` in the uploads bucket and record it (status pending)."""
    state = _state()
    settings = state.settings
    limit = settings.max_upload_bytes
    if request.content_length is not None and request.content_length > limit + MULTIPART_OVERHEAD_BYTES:
        raise Problem(413, f"request body of {request.content_length} bytes exceeds the limit of {limit} bytes "
                           "(MAX_UPLOAD_BYTES)", max_upload_bytes=limit)
    if request.mimetype != "multipart/form-data":
        raise Problem(415, f"send multipart/form-data with the print file in field 'file', not {request.mimetype or 'no Content-Type'}")
    if not state.upload_slots.acquire(blocking=False):
        metrics.UPLOADS.labels(outcome="busy").inc()
        raise Unavailable(f"this instance is already receiving {settings.max_concurrent_uploads} uploads; retry shortly")
    try:
        return _receive(state, limit)
    finally:
        state.upload_slots.release()


def _receive(state: Any, limit: int) -> tuple[repository.FileView, int, dict[str, str]]:
    """Parse the multipart body (spooling the file part), validate it, store it."""
    try:
        files, form = request.files, request.form
    except RequestEntityTooLarge:
        # Werkzeug's own limits (a too-large file part raises UploadTooLarge, a Problem, instead).
        raise Problem(413, f"the multipart body exceeds a limit: at most {limit} bytes of file (MAX_UPLOAD_BYTES) "
                           f"plus {MULTIPART_OVERHEAD_BYTES} bytes of framing, {UploadRequest.max_form_parts} parts, "
                           f"{UploadRequest.max_form_memory_size} bytes per non-file field",
                      max_upload_bytes=limit) from None
    except (BodyStalled, IncompleteBody) as exc:
        metrics.UPLOADS.labels(outcome="stalled" if isinstance(exc, BodyStalled) else "incomplete").inc()
        log.warning("upload body not received", extra={"reason": exc.description})
        raise
    except ValueError as exc:  # Werkzeug's parser (not silent, see UploadRequest)
        raise Problem(400, f"the multipart/form-data body is malformed: {exc}") from None
    names = [*files, *form]
    if not all(isinstance(name, str) and name for name in names):
        raise Problem(400, "a multipart part without a name: every part needs "
                           "Content-Disposition: form-data; name=\"...\" (the file goes in 'file')")
    part = files.get("file")
    if part is None:
        present = sorted(set(names))
        raise Problem(400, "missing multipart field 'file'" + (f" (got fields: {', '.join(present)})" if present else ""))
    spool = part.stream
    try:
        filename = sanitise_filename(part.filename)
        try:
            content_type = content_type_for(filename)
        except UnsupportedFormat as exc:
            raise Problem(415, str(exc)) from exc
        if not isinstance(spool, CappedSpool):  # UploadRequest makes every file part one
            raise RuntimeError(f"file part not spooled by UploadRequest (got {type(spool).__name__})")
        size = spool.size
        if size == 0:
            raise Problem(400, f"the file {filename!r} is empty")
        content_type = content_type_for_content(filename, _head(spool))
        view = _store(filename, content_type, size, spool)
    finally:
        part.close()
    metrics.UPLOADED_BYTES.inc(size)
    location = url_for("files.get_file", file_id=view.id, _external=False)
    log.info("file uploaded", extra={"file_id": str(view.id), "upload_name": filename, "size_bytes": size,
                                     "object_name": view.object_name, "generation": view.generation})
    return view, 201, {"Location": location}


def _head(spool: CappedSpool) -> bytes:
    """The first bytes of the spooled file (``pipeline_core.formats.SNIFF_BYTES``), position restored to 0."""
    spool.seek(0)
    head = spool.read(SNIFF_BYTES)
    spool.seek(0)
    return head


def _store(filename: str, content_type: str, size: int, spool: Any) -> repository.FileView:
    """Row (pending) -> object (ifGenerationMatch=0) -> generation; undo on any failure.

    Never leaves a row without its object nor an object without its row
    (except if the process dies between the steps: then an unfinished row,
    invisible to the API, remains).
    """
    state = _state()
    file_id = uuid.uuid4()
    with state.sessions() as session:
        try:
            row = repository.create_pending(session, file_id=file_id, filename=filename,
                                            content_type=content_type, size_bytes=size, bucket=state.bucket.name)
        except Exception as exc:
            metrics.UPLOADS.labels(outcome="db_error").inc()
            log.exception("recording the upload failed")
            raise Unavailable("the database is unavailable; the file was not stored") from exc
        try:
            generation = state.bucket.upload(row.object_name, spool, size, content_type)
        except StorageUnavailable as exc:
            metrics.UPLOADS.labels(outcome="storage_error").inc()
            log.error("storing the upload failed", extra={"file_id": str(file_id), "error": str(exc)})
            _undo(session, file_id, None, None)
            raise Unavailable("the storage bucket is unavailable; the file was not stored") from exc
        try:
            repository.mark_stored(session, file_id, generation)
            view = repository.get(session, file_id)
            if view is None:
                raise LookupError(f"file row {file_id} vanished right after its upload")
        except Exception as exc:
            metrics.UPLOADS.labels(outcome="db_error").inc()
            log.exception("recording the stored object failed", extra={"file_id": str(file_id)})
            _undo(session, file_id, row.object_name, generation)
            raise Unavailable("the database is unavailable; the file was not stored") from exc
    metrics.UPLOADS.labels(outcome="stored").inc()
    return view


def _undo(session: Any, file_id: uuid.UUID, object_name: str | None, generation: int | None) -> None:
    """Best-effort removal of a failed upload's object (that generation) and row; logs what it cannot undo."""
    state = _state()
    if object_name is not None:
        try:
            state.bucket.delete(object_name, generation)
        except StorageUnavailable:
            log.exception("could not remove the object of a failed upload", extra={"object_name": object_name})
    try:
        session.rollback()
        repository.forget(session, file_id)
    except Exception:
        log.exception("could not remove the row of a failed upload", extra={"file_id": str(file_id)})


#: The list API dumps its items with the schema's plan (same output as ``FileSchema().dump``, ~10x cheaper).
_DUMP_FILE = FastDumper(FileSchema())


@blp.route("", methods=["GET"])
@blp.doc(summary="List files, newest first", **_problems(400, 401, 503))
# An instance, not the class: webargs would build (and deep-copy the fields of) a new schema per request.
@blp.arguments(ListQuerySchema(), location="query", as_kwargs=True)
@blp.response(200, FilePageSchema)
def list_files(limit: int, cursor: str | None = None, status: str | None = None) -> Response:
    """A page of stored files (cursor pagination), optionally only those with ``status``.

    The body is what ``FilePageSchema`` documents (``FastDumper`` of ``FileSchema``; a
    ``Response`` passes flask-smorest's dump), read over a Core connection (no ORM session).
    """
    with _state().engine.connect() as conn:
        try:
            views, next_cursor = repository.list_page(conn, limit=limit, cursor=cursor, status=status)
        except repository.BadCursor as exc:
            raise Problem(400, str(exc), errors={"query": {"cursor": [str(exc)]}}) from exc
    return jsonify({"items": [_DUMP_FILE(v) for v in views], "next_cursor": next_cursor})


@blp.route("/<file_id>", methods=["GET"])
@blp.doc(summary="One file with its metadata", **_problems(401, 404, 503))
@blp.response(200, FileSchema)
def get_file(file_id: str) -> repository.FileView:
    """The file resource."""
    fid = _file_id(file_id)
    with _state().sessions() as session:
        view = repository.get(session, fid)
    if view is None:
        raise Problem(404, f"no file {file_id}")
    return view


@blp.route("/<file_id>/content", methods=["GET"])
@blp.doc(summary="The stored bytes", **_problems(401, 404, 503, **{"200": {
    "description": "the file as uploaded, with the Content-Type stored for its ending",
    "headers": {
        "Content-Disposition": {"required": True, "schema": {"type": "string"},
                                "description": "attachment; filename (ASCII fallback) and filename* (UTF-8)"},
        "ETag": {"required": True, "schema": {"type": "string"}, "description": "the object generation, quoted"},
    },
    "content": {ct: {"schema": {"type": "string", "format": "binary"}} for ct in _STORED_CONTENT_TYPES}}}))
def get_content(file_id: str) -> Response:
    """Stream the stored object (the generation recorded for the file) back."""
    fid = _file_id(file_id)
    state = _state()
    with state.sessions() as session:
        view = repository.get(session, fid)
    if view is None or view.generation is None:
        raise Problem(404, f"no file {file_id}")
    try:
        chunks = state.bucket.iter_content(view.object_name, view.generation)
    except FileNotFoundError:
        raise Problem(404, f"file {file_id} has no stored content any more") from None
    except StorageUnavailable as exc:
        log.error("reading the object failed", extra={"file_id": file_id, "error": str(exc)})
        raise Unavailable("the storage bucket is unavailable") from exc
    resp = Response(stream_with_context(chunks), content_type=view.content_type, direct_passthrough=True)
    resp.headers["Content-Length"] = str(view.size_bytes)
    resp.headers["Content-Disposition"] = _content_disposition(view.filename)
    resp.headers["ETag"] = f'"{view.generation}"'
    resp.headers["Cache-Control"] = "private, max-age=0"
    return resp


def _content_disposition(filename: str) -> str:
    """RFC 6266 ``attachment`` with an ASCII fallback and the UTF-8 name (RFC 8187)."""
    from urllib.parse import quote

    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "'").replace("?", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


@blp.route("/<file_id>/thumbnail", methods=["GET"])
@blp.doc(summary="The file's preview image", **_problems(401, 404, 503, **{"200": {
    "description": "the preview the file embeds (G-code/bgcode thumbnail, 3MF plate image, UFP thumbnail), "
                   "re-encoded as a PNG of at most 512 px per side and 256 KiB",
    "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}},
    "304": {"description": "not modified: the If-None-Match header names the current ETag"}}))
def get_thumbnail(file_id: str) -> Response:
    """The stored PNG thumbnail; 404 when the file does not exist or embeds no preview."""
    fid = _file_id(file_id)
    with _state().sessions() as session:
        thumb = repository.get_thumbnail(session, fid)
    if thumb is None:
        raise Problem(404, f"file {file_id} has no thumbnail (no such file, not processed yet, or no embedded preview)")
    etag = f'"{thumb.generation}-{int(thumb.updated_at.timestamp())}"'
    if request.if_none_match.contains(etag.strip('"')):
        return Response(status=304, headers={"ETag": etag})
    resp = Response(thumb.png, content_type="image/png")
    resp.headers["ETag"] = etag
    resp.headers["Cache-Control"] = "private, max-age=300"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


@blp.route("/<file_id>", methods=["DELETE"])
@blp.doc(summary="Delete a file: its object, row and results", **_problems(401, 404, 503))
@blp.response(204, description="deleted")
def delete_file(file_id: str) -> tuple[str, int]:
    """Remove the object and the row (and any extraction results) of the file."""
    fid = _file_id(file_id)
    state = _state()
    with state.sessions() as session:
        view = repository.delete_with_results(session, fid)
        if view is None:
            raise Problem(404, f"no file {file_id}")
        try:
            state.bucket.delete(view.object_name, view.generation)
        except StorageUnavailable as exc:
            session.rollback()
            log.error("deleting the object failed", extra={"file_id": file_id, "error": str(exc)})
            raise Unavailable("the storage bucket is unavailable; nothing was deleted") from exc
        session.commit()
    log.info("file deleted", extra={"file_id": file_id, "object_name": view.object_name})
    return "", 204
