"""Marshmallow schemas of the API: what the OpenAPI document describes and responses are dumped with."""

from __future__ import annotations

from marshmallow import INCLUDE, Schema, fields, validate

from pipeline_core.models import FileStatus

from .repository import CURSOR_PATTERN

#: The page size bounds of GET /v1/files.
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20


class FileSchema(Schema):
    """A stored print file and what the extractor found in it."""

    id = fields.UUID(required=True, metadata={"description": "file id"})
    filename = fields.String(required=True, metadata={"description": "sanitised upload name"})
    size_bytes = fields.Integer(required=True, metadata={"description": "size in bytes"})
    content_type = fields.String(required=True, metadata={"example": "text/x.gcode"})
    status = fields.String(required=True, validate=validate.OneOf([s.value for s in FileStatus]),
                           metadata={"description": "pending until the extractor has a result"})
    metadata = fields.Dict(allow_none=True, metadata={"description": "extracted metadata (processed only)"})
    error = fields.String(allow_none=True, metadata={"description": "why extraction failed (failed only)"})
    thumbnail_url = fields.String(
        required=True, allow_none=True,
        metadata={"description": "path of the file's preview image (GET /v1/files/{id}/thumbnail, a PNG); "
                                 "null when the file embeds none (or is not processed yet)",
                  "example": "/v1/files/3f1c.../thumbnail"})
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


class FilePageSchema(Schema):
    """One page of files, newest first."""

    items = fields.List(fields.Nested(FileSchema), required=True)
    next_cursor = fields.String(allow_none=True, validate=validate.Regexp(CURSOR_PATTERN), metadata={
        "description": "pass as ?cursor= for the next page; null at the end", "pattern": CURSOR_PATTERN})


class ListQuerySchema(Schema):
    """Query parameters of GET /v1/files."""

    limit = fields.Integer(load_default=DEFAULT_PAGE_SIZE, validate=validate.Range(min=1, max=MAX_PAGE_SIZE),
                           metadata={"description": f"page size, 1..{MAX_PAGE_SIZE}"})
    cursor = fields.String(validate=validate.Regexp(CURSOR_PATTERN, error="not of the form <microseconds>.<32 hex digits>"),
                           metadata={"description": "next_cursor of the previous page: files older than that key "
                                                    "(microseconds since the epoch, then the file id in hex)"})
    status = fields.String(validate=validate.OneOf([s.value for s in FileStatus]),
                           metadata={"description": "only files with this status"})


class ProblemSchema(Schema):
    """RFC 9457 problem details (extension members allowed, RFC 9457 section 3.2)."""

    class Meta:
        unknown = INCLUDE

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String()
    instance = fields.String()
    request_id = fields.String()
    errors = fields.Dict()


class TooLargeProblemSchema(ProblemSchema):
    """The 413 problem of an upload: also says the limit."""

    max_upload_bytes = fields.Integer(required=True, metadata={"description": "MAX_UPLOAD_BYTES: the largest accepted file"})

