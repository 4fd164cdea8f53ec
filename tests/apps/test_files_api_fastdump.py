"""``FastDumper`` (the list API's dump) gives exactly ``schema.dump``, for the API's schema and for field kinds it
does not convert itself (which go through the field)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from marshmallow import Schema, fields

from files_api.fastdump import FastDumper
from files_api.repository import FileView
from files_api.schemas import FilePageSchema, FileSchema


def _view(**over: Any) -> FileView:
    now = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)
    base = dict(id=uuid.uuid4(), filename="pärt <b>.gcode", size_bytes=123, content_type="text/x.gcode",
                status="processed", metadata={"format": "gcode", "print_time_s": 1479.0,
                                              "bbox_mm": {"min": [0, 0, 0], "max": [1.5, None, 3]}},
                error=None, created_at=now, updated_at=now + timedelta(seconds=1), bucket="b",
                object_name="files/x/pärt.gcode", generation=7)
    base.update(over)
    return FileView(**base)


VIEWS = [
    _view(),
    _view(status="pending", metadata=None),
    _view(status="failed", metadata=None, error="not G-code: NUL byte at offset 12"),
    _view(created_at=datetime(2026, 1, 2, 3, 4, 5), size_bytes=0),  # naive datetime, zero size
]


def test_fast_dump_equals_marshmallow_for_the_file_schema():
    schema, dump = FileSchema(), FastDumper(FileSchema())
    for view in VIEWS:
        assert dump(view) == schema.dump(view)
        assert list(dump(view)) == list(schema.dump(view)), "same key order (the JSON keeps it)"
    page = {"items": [dump(v) for v in VIEWS], "next_cursor": "abc"}
    assert json.dumps(page) == json.dumps(FilePageSchema().dump({"items": VIEWS, "next_cursor": "abc"}))


class _Odd(Schema):
    id = fields.UUID()
    renamed = fields.String(data_key="name", attribute="filename")
    size_bytes = fields.Integer(as_string=True)
    flag = fields.Method("_flag")
    when = fields.DateTime(format="rfc", attribute="created_at")
    status = fields.String(dump_default="?")
    metadata = fields.Dict(keys=fields.String(), values=fields.Raw())
    secret = fields.String(load_only=True)
    owner = fields.String(attribute="owner.name")

    def _flag(self, obj: Any) -> bool:
        return getattr(obj, "status", None) == "processed"


def test_fields_it_does_not_convert_go_through_marshmallow():
    class Obj:
        id = "12345678123456781234567812345678"  # a str UUID: marshmallow normalises it
        filename = "a.stl"
        size_bytes = 5
        created_at = datetime(2026, 1, 2, tzinfo=timezone.utc)
        metadata = {"k": 1}
        secret = "x"

        class owner:  # noqa: N801  (a dotted attribute path)
            name = "ann"

    as_dict = {"id": uuid.UUID(int=1), "filename": "m.3mf", "size_bytes": 2, "owner": {"name": "bo"}}
    for obj in [Obj(), as_dict, *VIEWS]:
        assert FastDumper(_Odd())(obj) == _Odd().dump(obj)
    assert "secret" not in FastDumper(_Odd())(Obj()) and FastDumper(_Odd())(Obj())["owner"] == "ann"
    assert FastDumper(_Odd())(as_dict)["owner"] == "bo"
