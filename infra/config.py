"""The shared ground of every config model: base class, common patterns and the error report.

A leaf module (imports pydantic, never another ``infra`` module), so that each
component module (``infra/network.py``, ``infra/loadbalancer.py``, ...) can own the
validated model of its inputs and :mod:`infra.settings` can compose them without an
import circle.

Error reporting: :func:`problems` turns a pydantic :class:`~pydantic.ValidationError`
into one line per problem, ``<file>: <key.path>: <what is wrong>``; an unknown key
names the closest known key at that place (``did you mean `backupStartTime`?``,
:func:`difflib.get_close_matches`). :class:`ConfigError` carries every line.
"""
from __future__ import annotations

import difflib
import ipaddress
import re
import types
import typing
from typing import Annotated, Any, Iterable, Optional, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

# Project ids: 6-30 chars, lower-case letters, digits, hyphens, start with a letter
# (https://cloud.google.com/resource-manager/docs/creating-managing-projects#before_you_begin).
PROJECT_ID_PATTERN = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
#: Stack names become part of resource names (service account ids have at most 30 chars).
STACK_PATTERN = re.compile(r"^[a-z][a-z0-9]{1,11}$")
#: An e-mail address (notification channels, IAM principals).
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
#: A lower-case fully qualified host name, no wildcard, no trailing dot (the public domain).
HOSTNAME_PATTERN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_DURATION = re.compile(r"^([0-9]+)s$")

#: Google Cloud regions (https://cloud.google.com/about/locations, checked 2025).
#: A region outside this list is rejected as a typo rather than failing at `pulumi up`.
KNOWN_REGIONS = frozenset(
    {
        "africa-south1",
        "asia-east1", "asia-east2",
        "asia-northeast1", "asia-northeast2", "asia-northeast3",
        "asia-south1", "asia-south2",
        "asia-southeast1", "asia-southeast2", "asia-southeast3",
        "australia-southeast1", "australia-southeast2",
        "europe-central2", "europe-north1", "europe-north2", "europe-southwest1",
        "europe-west1", "europe-west2", "europe-west3", "europe-west4", "europe-west6",
        "europe-west8", "europe-west9", "europe-west10", "europe-west12",
        "me-central1", "me-central2", "me-west1",
        "northamerica-northeast1", "northamerica-northeast2", "northamerica-south1",
        "southamerica-east1", "southamerica-west1",
        "us-central1", "us-east1", "us-east4", "us-east5", "us-south1",
        "us-west1", "us-west2", "us-west3", "us-west4",
    }
)


def _project_id(v: str) -> str:
    if not PROJECT_ID_PATTERN.match(v):
        raise ValueError(f"{v!r} is not a Google Cloud project id (6-30 chars: a-z, 0-9, '-')")
    return v


def _known_region(v: str) -> str:
    if v not in KNOWN_REGIONS:
        raise ValueError(f"unknown region {v!r} (see https://cloud.google.com/about/locations)")
    return v


#: A field holding a Google Cloud project id (:data:`PROJECT_ID_PATTERN`), for every program's config.
ProjectId = Annotated[str, AfterValidator(_project_id)]
#: A field holding a region of :data:`KNOWN_REGIONS`.
Region = Annotated[str, AfterValidator(_known_region)]


class ConfigError(ValueError):
    """One or more missing or malformed settings.

    ``problems`` holds one line per problem, ``<file>: <key>: <what is wrong>``, where
    ``<file>`` is the stack file (``Pulumi.prod.yaml``) or the environment file
    (``environments/prod/alerts.yaml``) and ``<key>`` the full key path
    (``print-platform:database.availability``); ``str()`` is those lines joined by
    newlines (a single problem is a single line).
    """

    def __init__(self, problems: Union[str, Iterable[str]]) -> None:
        self.problems: list[str] = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class ConfigModel(BaseModel):
    """Base of the config models: camelCase keys as in the stack file, unknown keys rejected, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )


def private_network(value: str, *, min_prefix: int, max_prefix: int) -> ipaddress.IPv4Network:
    """``value`` as a private IPv4 network with a prefix length in ``min_prefix..max_prefix``.

    Raises:
        ValueError: not a CIDR block, not private (RFC 1918 / RFC 6598), or prefix out of range.
    """
    try:
        net = ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an IPv4 CIDR block ({exc})") from None
    if not net.is_private:
        raise ValueError(f"{value} is not a private (RFC 1918 / RFC 6598) range")
    if not (min_prefix <= net.prefixlen <= max_prefix):
        raise ValueError(f"{value}: prefix length must be between /{min_prefix} and /{max_prefix}")
    return net


def not_bool(value: Any) -> Any:
    """A ``mode="before"`` validator for integer fields: refuse a boolean (YAML ``true`` would pass as 1)."""
    if isinstance(value, bool):
        raise ValueError(f"must be an integer, got {value!r}")
    return value


def duration_seconds(value: str) -> int:
    """``"600s"`` -> 600 (raises ValueError for anything else)."""
    match = _DURATION.match(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"{value!r} is not a duration in seconds like '600s'")
    return int(match.group(1))


# --------------------------------------------------------------------------- error report

# Model-level (cross-field) checks name the offending field first: "podsCidr: ...".
# A check may report several problems, one per line (e.g. the alert signals).
_NAMED_MESSAGE = re.compile(r"^([a-z][A-Za-z0-9_]*(?:\.[a-z][A-Za-z0-9_]*)*): (.*)$", re.S)


def _unwrap(annotation: Any) -> Any:
    """``Optional[X]`` -> ``X`` (other unions are left alone)."""
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _unwrap(args[0])
    return annotation


def _field(model: type[BaseModel], key: Any) -> Optional[Any]:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return info.annotation
    return None


def known_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys the stack file may write at ``loc`` (a pydantic error location) in ``model``; [] if not a model there."""
    current: Any = model
    for item in loc:
        current = _unwrap(current)
        origin = typing.get_origin(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            current = _field(current, item)
        elif origin in (list, tuple) or origin is typing.Sequence:
            current = typing.get_args(current)[0]
        elif origin is dict:
            current = typing.get_args(current)[1]
        else:
            return []
        if current is None:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [info.alias or name for name, info in current.model_fields.items()]
    return []


def _key_path(loc: tuple[Any, ...], model: type[BaseModel]) -> str:
    """A pydantic error location as a config key path (``print-platform:gke.masterAuthorizedNetworks[0].cidrBlock``)."""
    aliases = {name: (info.alias or name) for name, info in model.model_fields.items()}
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            name = aliases.get(str(item), str(item)) if not parts else str(item)
            parts.append(("." if parts else "") + name)
    return "".join(parts)


def _describe(error: Any, source: str, model: type[BaseModel], prefix: str) -> list[str]:
    loc = tuple(error["loc"])
    key = _key_path(loc, model) or "(top level)"
    if prefix:
        key = f"{prefix}.{key}" if key != "(top level)" else prefix
    message = error["msg"]
    if error["type"] == "missing":
        message = "missing (required key)"
    elif error["type"] == "extra_forbidden":
        close = difflib.get_close_matches(str(loc[-1]), known_keys(model, loc[:-1]), n=1, cutoff=0.6)
        message = (f"unknown key; did you mean `{close[0]}`? (see docs/infra.md)" if close
                   else "unknown key (not part of the config schema; see docs/infra.md)")
    elif message.startswith("Value error, "):
        lines = []
        for line in message[len("Value error, "):].split("\n"):
            named = _NAMED_MESSAGE.match(line)
            lines.append(f"{source}: {key}.{named.group(1)}: {named.group(2)}" if named else f"{source}: {key}: {line}")
        return lines
    elif "input" in error and not isinstance(error["input"], (dict, list)):
        message = f"{message}, got {error['input']!r}"
    return [f"{source}: {key}: {message}"]


def problems(exc: ValidationError, source: str, model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every problem of ``exc`` as one line ``<source>: <key.path>: <what is wrong>``.

    Args:
        exc: the error of ``model.model_validate(...)``.
        source: the file shown (``Pulumi.dev.yaml``).
        model: the model validated (aliases and known keys are looked up in it).
        prefix: a key path to put before each location (when ``model`` is validated
            under a key of a larger document).
    """
    return [line for error in exc.errors(include_url=False) for line in _describe(error, source, model, prefix)]
