"""Marshmallow schemas of the API: what the OpenAPI document describes and responses are dumped with."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from pipeline_core.models import FileStatus

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
    next_cursor = fields.String(allow_none=True, metadata={"description": "pass as ?cursor= for the next page; null at the end"})


class ListQuerySchema(Schema):
    """Query parameters of GET /v1/files."""

    limit = fields.Integer(load_default=DEFAULT_PAGE_SIZE, validate=validate.Range(min=1, max=MAX_PAGE_SIZE),
                           metadata={"description": f"page size, 1..{MAX_PAGE_SIZE}"})
    cursor = fields.String(load_default=None, metadata={"description": "next_cursor of the previous page"})
    status = fields.String(load_default=None, validate=validate.OneOf([s.value for s in FileStatus]))


class ProblemSchema(Schema):
    """RFC 9457 problem details."""

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String()
    instance = fields.String()
    request_id = fields.String()
    errors = fields.Dict()
