"""``schema.dump`` for the list API without marshmallow's per-field machinery.

marshmallow walks every field of every object through ``Field.serialize``
(attribute lookup, missing/default handling, ``_serialize``): for a page of 20
files that was a tenth of the list API's CPU time (tools/bench_list_api.py).
``FastDumper(schema)`` plans the dump once per schema and compiles it into one
small function (as ``dataclasses`` does for ``__init__``): fields of the plain
types below are converted inline, exactly as marshmallow converts values of
those types; any other field, or a value of another type, goes through the
field's own ``serialize``, so the output is always ``schema.dump(obj)``, key
order included (tests/apps/test_files_api_fastdump.py compares them).
"""

from __future__ import annotations

import datetime as dt
import keyword
import uuid
from collections.abc import Callable
from typing import Any

from marshmallow import Schema, fields
from marshmallow.utils import missing

#: Inline conversion of a value ``v`` whose exact type is the first element (``{v}`` in the template).
_INLINE: dict[type, tuple[type, str]] = {
    fields.String: (str, "{v}"),
    fields.Integer: (int, "{v}"),
    fields.UUID: (uuid.UUID, "str({v})"),
    fields.DateTime: (dt.datetime, "{v}.isoformat()"),
    fields.Dict: (dict, "dict({v})"),
}


def _inline(field: fields.Field) -> tuple[type, str] | None:
    """How ``field`` converts a value of one exact type, or None when only the field itself may serialise
    (another class, or options that change the output)."""
    kind = type(field)
    if kind is fields.Integer and field.as_string:
        return None
    if kind is fields.DateTime and field.format not in (None, "iso", "iso8601"):
        return None
    if kind is fields.Dict and (field.key_field is not None or field.value_field is not None):
        return None
    return _INLINE.get(kind)


def _is_attribute_path(attr: str) -> bool:
    return all(part.isidentifier() and not keyword.iskeyword(part) for part in attr.split("."))


class FastDumper:
    """``dumper(obj)`` == ``schema.dump(obj)`` for one object (attribute access, no ``many``).

    Args:
        schema: a marshmallow ``Schema`` instance (its ``dump_fields`` honour
            ``only``/``exclude``/``load_only``).
    """

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self._fields = [(field.data_key or name, field.attribute or name, field)
                        for name, field in schema.dump_fields.items()]
        self._dump = self._compile()

    def __call__(self, obj: Any) -> dict[str, Any]:
        return self._dump(obj)

    def _slow(self, obj: Any) -> dict[str, Any]:
        """Every field through marshmallow (objects lacking an attribute, mappings, odd attribute paths)."""
        out: dict[str, Any] = {}
        for key, attr, field in self._fields:
            value = field.serialize(attr, obj)
            if value is not missing:
                out[key] = value
        return out

    def _compile(self) -> Callable[[Any], dict[str, Any]]:
        if not all(_is_attribute_path(attr) for _, attr, _ in self._fields):
            return self._slow
        env: dict[str, Any] = {"missing": missing, "slow": self._slow}
        reads, body = [], []
        for i, (key, attr, field) in enumerate(self._fields):
            env[f"f{i}"] = field
            env[f"k{i}"] = key
            env[f"a{i}"] = attr
            plan = _inline(field)
            if plan is None:  # the field decides, and may leave the key out
                body += [f"    r = f{i}.serialize(a{i}, obj)", f"    if r is not missing: out[k{i}] = r"]
                continue
            reads.append(f"        v{i} = obj.{attr}")
            env[f"t{i}"] = plan[0]
            body.append(f"    out[k{i}] = None if v{i} is None else "
                        f"{plan[1].format(v=f'v{i}')} if type(v{i}) is t{i} else f{i}.serialize(a{i}, obj)")
        source = "\n".join(["def dump(obj):", "    try:", *(reads or ["        pass"]),
                            "    except AttributeError:", "        return slow(obj)", "    out = {}", *body,
                            "    return out"])
        exec(compile(source, f"<FastDumper {type(self.schema).__name__}>", "exec"), env)  # noqa: S102 (our own source)
        return env["dump"]
