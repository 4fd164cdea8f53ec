"""``schema.dump`` for the list API without marshmallow's per-field machinery.

marshmallow walks every field of every object through ``Field.serialize``
(attribute lookup, missing/default handling, ``_serialize``): for a page of 20
files that was a tenth of the list API's CPU time (tools/bench_list_api.py).
``FastDumper(schema)`` plans the dump once per schema: fields of the plain
types below are converted directly, exactly as marshmallow does for values of
those types; any other field (or value of another type) goes through the
field's own ``serialize``, so the output is always ``schema.dump(obj)``
(tests/apps/test_files_api_fastdump.py compares them).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

from marshmallow import Schema, fields
from marshmallow.utils import missing

#: Not handled here: let the field serialise it.
_FALLBACK = object()


def _string(value: Any) -> Any:
    return value if type(value) is str else _FALLBACK


def _integer(value: Any) -> Any:
    return value if type(value) is int else _FALLBACK


def _uuid(value: Any) -> Any:
    return str(value) if type(value) is uuid.UUID else _FALLBACK


def _datetime_iso(value: Any) -> Any:
    return value.isoformat() if type(value) is dt.datetime else _FALLBACK


def _plain_dict(value: Any) -> Any:
    return dict(value) if type(value) is dict else _FALLBACK


def _converter(field: fields.Field) -> Callable[[Any], Any] | None:
    """The direct conversion of ``field`` (its exact class and options), or None to always use the field."""
    kind = type(field)
    if kind is fields.String:
        return _string
    if kind is fields.Integer and not field.as_string:
        return _integer
    if kind is fields.UUID:
        return _uuid
    if kind is fields.DateTime and field.format in (None, "iso", "iso8601"):
        return _datetime_iso
    if kind is fields.Dict and field.key_field is None and field.value_field is None:
        return _plain_dict
    return None


class FastDumper:
    """``dumper(obj)`` == ``schema.dump(obj)`` for one object (attribute access, no ``many``).

    Args:
        schema: a marshmallow ``Schema`` instance (its ``dump_fields`` honour
            ``only``/``exclude``/``load_only``).
    """

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self._plan = [(field.data_key or name, field.attribute or name, _converter(field), field)
                      for name, field in schema.dump_fields.items()]

    def __call__(self, obj: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, attr, convert, field in self._plan:
            if convert is not None:
                value = getattr(obj, attr, missing)
                if value is None:
                    out[key] = None
                    continue
                if value is not missing:
                    value = convert(value)
                    if value is not _FALLBACK:
                        out[key] = value
                        continue
            value = field.serialize(attr, obj)
            if value is not missing:
                out[key] = value
        return out
