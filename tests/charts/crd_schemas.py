"""Validation of custom resources against the upstream CRDs vendored in ``crds/`` (sources: crds/README.md).

kubernetes-validate ships the schemas of the built-in kinds only. For the custom
resources (Gateway API Gateway/HTTPRoute, GKE HealthCheckPolicy/GCPBackendPolicy/
GCPGatewayPolicy, Managed Prometheus PodMonitoring) this module does what the API
server does with a CRD's ``openAPIV3Schema`` on create, in its order:

1. **defaulting**: a property's ``default`` is set where the property is absent and
   its parent object exists (structural schema defaulting);
2. **schema validation** with jsonschema; unknown fields are errors, as with
   ``kubectl``'s and the API server's strict field validation (every object schema
   with ``properties`` and no ``x-kubernetes-preserve-unknown-fields`` gets
   ``additionalProperties: false``);
3. **CEL rules** (``x-kubernetes-validations``) evaluated with cel-python at every
   node of the object, ``self`` bound to that node. An evaluation error (for
   example reading an absent field without ``has()``) fails the rule, as in the API
   server. Transition rules (those reading ``oldSelf``) apply to updates only and are
   skipped. The Kubernetes CEL library functions the vendored rules use beyond
   standard CEL (``isURL``; strings ``split``) are provided here.

Public API: :func:`validate` (raises :class:`CRDValidationError`), :func:`errors`,
:func:`schema_for`, :data:`KINDS`.
"""
from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlparse

import celpy
import celpy.celtypes as celtypes
import jsonschema
import yaml

#: Where the vendored CRDs are (one folder per upstream source).
CRD_DIR = Path(__file__).resolve().parent / "crds"


class CRDValidationError(AssertionError):
    """An object violates its CRD; the message lists every violation with its path."""


@functools.cache
def _crds() -> dict[tuple[str, str], dict[str, Any]]:
    """``{(apiVersion, kind): openAPIV3Schema}`` of every served version of every vendored CRD."""
    out = {}
    for path in sorted(CRD_DIR.glob("*/*.yaml")):
        crd = yaml.safe_load(path.read_text())
        assert crd["kind"] == "CustomResourceDefinition", path
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served"):
                out[(f"{group}/{version['name']}", kind)] = version["schema"]["openAPIV3Schema"]
    return out


#: ``(apiVersion, kind)`` of every vendored custom resource version.
KINDS = frozenset(_crds())


def schema_for(api_version: str, kind: str) -> dict[str, Any]:
    """The upstream ``openAPIV3Schema`` of ``kind`` at ``api_version``; KeyError when none is vendored."""
    return _crds()[(api_version, kind)]


def _strict(schema: Any) -> Any:
    """A copy of ``schema`` where objects with declared properties reject unknown fields (strict field validation)."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    # Only the structural part (properties, items, additionalProperties) says which fields
    # exist; properties inside anyOf/allOf/oneOf/not are value validations of those fields.
    out = {k: (_strict(v) if k in ("items", "additionalProperties") else v) for k, v in schema.items()}
    if "properties" in out:
        out["properties"] = {k: _strict(v) for k, v in schema["properties"].items()}
        if "additionalProperties" not in out and not schema.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    return out


def _apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    """Structural defaulting (in place on copies): absent properties with a ``default`` get it."""
    if isinstance(value, dict):
        for name, sub in schema.get("properties", {}).items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                value[name] = _apply_defaults(sub, value[name])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for name in list(value):
                if name not in schema.get("properties", {}):
                    value[name] = _apply_defaults(extra, value[name])
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_apply_defaults(schema["items"], v) for v in value]
    return value


# -- CEL ---------------------------------------------------------------------------------------

def _is_url(value: celtypes.StringType) -> celtypes.BoolType:
    """Kubernetes CEL ``isURL(string)``: an absolute URI with a scheme (k8s.io/apiserver/pkg/cel/library/urls.go)."""
    parsed = urlparse(str(value))
    return celtypes.BoolType(bool(parsed.scheme) and bool(parsed.netloc or parsed.path))


def _split(value: celtypes.StringType, sep: celtypes.StringType, limit: Any = None) -> celtypes.ListType:
    """CEL strings extension ``<string>.split(<string>[, <int>])`` (cel-go ext/strings.go)."""
    parts = str(value).split(str(sep)) if limit is None or int(limit) < 0 else str(value).split(str(sep), int(limit) - 1)
    return celtypes.ListType([celtypes.StringType(p) for p in parts])


def _eq(a: Any, b: Any) -> celtypes.BoolType:
    """Heterogeneous equality, as cel-go (and so Kubernetes) evaluates ``==``: values of unrelated
    types are unequal, not an error; the vendored PodMonitoring rule ``self != 0`` on an
    int-or-string port relies on it."""
    for operand in (a, b):
        if isinstance(operand, celpy.CELEvalError):
            return operand  # an error stays an error (e.g. an absent field read without has())
    try:
        return celpy.evaluation.bool_eq(a, b)
    except TypeError:
        return celtypes.BoolType(False)


def _ne(a: Any, b: Any) -> celtypes.BoolType:
    """``!=`` under heterogeneous equality (see ``_eq``)."""
    equal = _eq(a, b)
    return equal if isinstance(equal, celpy.CELEvalError) else celtypes.BoolType(not equal)


_FUNCTIONS = {"isURL": _is_url, "split": _split, "_==_": _eq, "_!=_": _ne}
_ENV = celpy.Environment()


@functools.cache
def _program(rule: str) -> Any:
    return _ENV.program(_ENV.compile(rule), functions=_FUNCTIONS)


def _walk(schema: dict[str, Any], value: Any, path: str) -> Iterator[tuple[str, dict[str, Any], Any]]:
    """``(path, schema node, value)`` for every node of ``value`` that its schema describes."""
    yield path, schema, value
    if isinstance(value, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for name, sub in value.items():
            if name in props:
                yield from _walk(props[name], sub, f"{path}.{name}")
            elif isinstance(extra, dict):
                yield from _walk(extra, sub, f"{path}[{name!r}]")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            yield from _walk(schema["items"], item, f"{path}[{i}]")


def cel_errors(schema: dict[str, Any], obj: dict[str, Any]) -> list[str]:
    """Messages of the ``x-kubernetes-validations`` rules ``obj`` (already defaulted) breaks."""
    out = []
    for path, node, value in _walk(schema, obj, "<root>"):
        for check in node.get("x-kubernetes-validations", []):
            rule = check["rule"]
            if "oldSelf" in rule:
                continue  # a transition rule: checked on update only
            try:
                ok = _program(rule).evaluate({"self": celpy.json_to_cel(value)})
            except celpy.CELEvalError as exc:
                ok = exc
            if ok is not True and ok != celtypes.BoolType(True):
                reason = check.get("message") or f"failed rule: {rule}"
                detail = f" (evaluation error: {ok.args[0] if ok.args else ok})" if isinstance(ok, Exception) else ""
                out.append(f"{path}: {reason}{detail}")
    return out


def errors(obj: dict[str, Any]) -> list[str]:
    """Every violation of ``obj`` against its vendored CRD: schema (strict) then CEL, each with its path.

    Raises:
        KeyError: no CRD is vendored for ``obj``'s ``apiVersion`` and ``kind``.
    """
    schema = schema_for(obj["apiVersion"], obj["kind"])
    defaulted = _apply_defaults(schema, copy.deepcopy(obj))
    validator = jsonschema.Draft7Validator(_strict_schema(obj["apiVersion"], obj["kind"]))
    found = [f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
             for e in sorted(validator.iter_errors(defaulted), key=lambda e: list(map(str, e.absolute_path)))]
    if found:
        return found  # CEL rules assume a schema-valid object
    return cel_errors(schema, defaulted)


@functools.cache
def _strict_schema(api_version: str, kind: str) -> dict[str, Any]:
    return _strict(schema_for(api_version, kind))


def validate(obj: dict[str, Any]) -> None:
    """Raise :class:`CRDValidationError` listing every violation of ``obj`` (see :func:`errors`)."""
    found = errors(obj)
    if found:
        name = obj.get("metadata", {}).get("name", "?")
        raise CRDValidationError(f"{obj['kind']} {name} ({obj['apiVersion']}):\n  " + "\n  ".join(found))
