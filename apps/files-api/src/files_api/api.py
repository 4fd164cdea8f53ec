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

from pipeline_core.formats import UnsupportedFormat, content_type_for

from . import metrics, repository
from .fastdump import FastDumper
from .problems import PROBLEM_JSON, Problem
from .schemas import FilePageSchema, FileSchema, ListQuerySchema
from .storage import StorageUnavailable
from .uploads import MULTIPART_OVERHEAD_BYTES, CappedSpool, UploadRequest, sanitise_filename

log = logging.getLogger("files_api.api")


class _Parser(FlaskParser):
    DEFAULT_VALIDATION_STATUS = 400  # bad query input is a 400, not webargs' 422


class _Blueprint(Blueprint):
    ARGUMENTS_PARSER = _Parser()


blp = _Blueprint("files", __name__, url_prefix="/v1/files", description="Print files and their metadata")

_PROBLEMS = {code: {"description": text, "content": {PROBLEM_JSON: {"schema": "ProblemSchema"}}} for code, text in {
    400: "bad input (the detail says what and where)",
    401: "missing or invalid IAP assertion (only when IAP_AUDIENCE is set)",
    404: "no such file",
    413: "file larger than MAX_UPLOAD_BYTES",
    415: "not a supported print file (.gcode .gco .g .bgcode .gcode.gz .stl .3mf)",
    503: "storage or database unavailable",
}.items()}


def _problems(*codes: int, **more: Any) -> dict[str, Any]:
    """``responses`` doc for these problem statuses (fresh copies: flask-smorest edits them in place)."""
    responses = {str(c): copy.deepcopy(_PROBLEMS[c]) for c in codes}
    responses["default"] = {"description": "any other error", "content": {PROBLEM_JSON: {"schema": "ProblemSchema"}}}
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
    requestBody={"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {"file": {"type": "string", "format": "binary"}}}}}},
    **_problems(400, 401, 413, 415, 503),
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
        raise Problem(503, f"this instance is already receiving {settings.max_concurrent_uploads} uploads; retry shortly",
                      headers={"Retry-After": "5"})
    try:
        return _receive(state, limit)
    finally:
        state.upload_slots.release()


def _receive(state: Any, limit: int) -> tuple[repository.FileView, int, dict[str, str]]:
    """Parse the multipart body (spooling the file part), validate it, store it."""
    try:
        part = request.files.get("file")
    except RequestEntityTooLarge:
        # Werkzeug's own limits (a too-large file part raises UploadTooLarge, a Problem, instead).
        raise Problem(413, f"the multipart body exceeds a limit: at most {limit} bytes of file (MAX_UPLOAD_BYTES) "
                           f"plus {MULTIPART_OVERHEAD_BYTES} bytes of framing, {UploadRequest.max_form_parts} parts, "
                           f"{UploadRequest.max_form_memory_size} bytes per non-file field",
                      max_upload_bytes=limit) from None
    if part is None:
        present = sorted(set(request.files) | set(request.form))
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
        view = _store(filename, content_type, size, spool)
    finally:
        part.close()
    metrics.UPLOADED_BYTES.inc(size)
    location = url_for("files.get_file", file_id=view.id, _external=False)
    log.info("file uploaded", extra={"file_id": str(view.id), "upload_name": filename, "size_bytes": size,
                                     "object_name": view.object_name, "generation": view.generation})
    return view, 201, {"Location": location}


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
            raise Problem(503, "the database is unavailable; the file was not stored") from exc
        try:
            generation = state.bucket.upload(row.object_name, spool, size, content_type)
        except StorageUnavailable as exc:
            metrics.UPLOADS.labels(outcome="storage_error").inc()
            log.error("storing the upload failed", extra={"file_id": str(file_id), "error": str(exc)})
            _undo(session, file_id, None, None)
            raise Problem(503, "the storage bucket is unavailable; the file was not stored") from exc
        try:
            repository.mark_stored(session, file_id, generation)
            view = repository.get(session, file_id)
            if view is None:
                raise LookupError(f"file row {file_id} vanished right after its upload")
        except Exception as exc:
            metrics.UPLOADS.labels(outcome="db_error").inc()
            log.exception("recording the stored object failed", extra={"file_id": str(file_id)})
            _undo(session, file_id, row.object_name, generation)
            raise Problem(503, "the database is unavailable; the file was not stored") from exc
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
def list_files(limit: int, cursor: str | None, status: str | None) -> Response:
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
    "description": "the file as uploaded (Content-Type as stored)",
    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}))
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
        raise Problem(503, "the storage bucket is unavailable") from exc
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
            raise Problem(503, "the storage bucket is unavailable; nothing was deleted") from exc
        session.commit()
    log.info("file deleted", extra={"file_id": file_id, "object_name": view.object_name})
    return "", 204
