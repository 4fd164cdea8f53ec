"""Resource-level diff of two offline preview documents, as `pulumi preview --diff` shows it.

The input is the JSON document that the offline preview prints
(`python -m tools.preview --stack <stack> --format json`, contract in
docs/seams.md)::

    {"stack": "prod",
     "resources": [{"urn", "type", "name", "parent", "provider", "protect",
                    "dependencies", "inputs"}],
     "outputs": {...}}

Semantics follow the Pulumi engine's: resources are matched by URN; a URN only
at the base is a *delete*, only at the head a *create*, at both with different
inputs (or a different `protect` / `provider` option) an *update*. Whether an
update is in fact a *replace* depends on the provider schema, which the offline
preview does not have, so it is never claimed here.

Secrets: a value shown as ``"[secret]"`` (the preview's mask) at either side,
or a value under a key whose name marks a credential (`SENSITIVE_KEY`), is
masked in both the old and the new value, so a report never reveals a secret
that either side holds in plain text.

Pure functions on plain data: no Pulumi runtime, no I/O.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

SECRET = "[secret]"
"""The preview's mask for a secret value (docs/seams.md, "Offline preview JSON")."""

HELM_RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
"""Pulumi type token of a Helm release (pulumi-kubernetes `helm.v3.Release`)."""

STATEFUL_TYPES: frozenset[str] = frozenset(
    {
        "gcp:sql/databaseInstance:DatabaseInstance",
        "gcp:sql/database:Database",
        "gcp:storage/bucket:Bucket",
        "gcp:container/cluster:Cluster",
        "gcp:pubsub/topic:Topic",
        "gcp:pubsub/subscription:Subscription",
        "gcp:artifactregistry/repository:Repository",
    }
)
"""Resource types whose change can lose data or take the platform down.

Cloud SQL instance and database (the data), the uploads bucket (the files),
the GKE cluster (every workload), Pub/Sub topics and subscriptions (messages
in flight; a recreated subscription loses its backlog) and the Artifact
Registry repository (the images the releases run, by digest).

The one list of them: a change to any of these (or to any resource with
``protect: true`` at either side) is called out at the top of the report.
Type tokens as in pulumi-gcp (e.g. ``gcp.sql.DatabaseInstance`` is
``gcp:sql/databaseInstance:DatabaseInstance``).
"""

SENSITIVE_KEY = re.compile(
    r"(?i)^(?:.*[_-])?(?:password|passwd|private_?key|client_?secret|api_?key|access_?token|"
    r"refresh_?token|credentials?|secret_?(?:data|key|value))$"
)
"""Dict keys whose values are masked even when the preview shows them in plain text."""

OPTION_FIELDS = ("protect", "provider")
"""Resource options that are diffed besides the inputs (shown as ``[protect]``, ``[provider]``)."""

Op = Literal["create", "update", "delete"]


class _Absent:
    """Marker for "no value at this path on this side"."""

    _instance: "_Absent | None" = None

    def __new__(cls) -> "_Absent":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = _Absent()
"""The old value of an added property, or the new value of a removed one."""


class PreviewDocumentError(ValueError):
    """A preview document does not have the documented shape; the message names where."""


@dataclass(frozen=True)
class PropertyChange:
    """One changed leaf (or masked subtree) of a resource.

    path: Pulumi property path, e.g. ``settings.backupConfiguration.enabled``,
    ``labels["app.kubernetes.io/name"]``, ``rules[0].ports[1]``; resource options
    are ``[protect]`` and ``[provider]``.
    old / new: the values, or `ABSENT`.
    secret: True when the value is masked; render ``SECRET`` for both sides then.
    """

    path: str
    old: Any
    new: Any
    secret: bool = False

    @property
    def kind(self) -> Literal["add", "remove", "change"]:
        """``add`` (old absent), ``remove`` (new absent) or ``change``."""
        if self.old is ABSENT:
            return "add"
        if self.new is ABSENT:
            return "remove"
        return "change"


@dataclass(frozen=True)
class ResourceChange:
    """A resource to create, update or delete.

    protected: ``protect: true`` at either side. stateful: its type is in
    `STATEFUL_TYPES`. properties: sorted by path; for a create all inputs of the
    head, for a delete all inputs of the base.
    """

    op: Op
    urn: str
    type: str
    name: str
    protected: bool
    stateful: bool
    properties: tuple[PropertyChange, ...] = ()

    @property
    def needs_attention(self) -> bool:
        """True when the change touches a protected or stateful resource."""
        return self.protected or self.stateful


@dataclass(frozen=True)
class StackDiff:
    """The diff of one stack: changes in a stable order (delete, update, create; then URN).

    unchanged / base_count / head_count: resource counts. helm_releases: names
    of the head's Helm releases. outputs: changed stack outputs (paths as for
    properties; not counted in `summary`, as in `pulumi preview`).
    """

    stack: str
    changes: tuple[ResourceChange, ...]
    unchanged: int
    base_count: int
    head_count: int
    helm_releases: tuple[str, ...] = field(default=())
    outputs: tuple[PropertyChange, ...] = field(default=())

    def count(self, op: Op) -> int:
        """Number of changes with operation `op`."""
        return sum(1 for c in self.changes if c.op == op)

    @property
    def summary(self) -> str:
        """The one-line summary ``+N ~M -K`` (creates, updates, deletes)."""
        return f"+{self.count('create')} ~{self.count('update')} -{self.count('delete')}"

    @property
    def attention(self) -> tuple[ResourceChange, ...]:
        """Changes to protected or stateful resources."""
        return tuple(c for c in self.changes if c.needs_attention)


def format_path(parent: str, key: str | int) -> str:
    """Append `key` to the property path `parent` the way Pulumi prints paths.

    Integers become ``[i]``; identifier-like keys ``.key``; any other key
    (dots, slashes, spaces...) ``["key"]``.
    """
    if isinstance(key, int):
        return f"{parent}[{key}]"
    if re.fullmatch(r"[A-Za-z_$][A-Za-z0-9_$]*", key):
        return f"{parent}.{key}" if parent else key
    escaped = key.replace("\\", "\\\\").replace('"', '\\"')
    return f'{parent}["{escaped}"]'


def _is_secret(value: Any) -> bool:
    return isinstance(value, str) and value == SECRET


def diff_values(old: Any, new: Any, path: str = "", *, masked: bool = False) -> list[PropertyChange]:
    """Leaf-level changes between two JSON values.

    Dicts are compared key by key and lists index by index; a non-empty
    container facing `ABSENT` is expanded into its leaves, so an added subtree
    lists each added leaf. Empty dicts/lists and scalars are leaves. A side
    equal to ``SECRET``, or a key matching `SENSITIVE_KEY` (`masked`), yields
    one masked change at that path. Returns changes in document order (dict
    keys sorted). Raises PreviewDocumentError for a non-string dict key.
    """
    if old == new and type(old) is type(new):
        return []
    if masked or _is_secret(old) or _is_secret(new):
        return [PropertyChange(path, old, new, secret=True)]
    for container in (dict, list):
        old_is, new_is = isinstance(old, container), isinstance(new, container)
        both = old_is and new_is
        expand = (old_is and bool(old) and new is ABSENT) or (new_is and bool(new) and old is ABSENT)
        if not (both or expand):
            continue
        changes: list[PropertyChange] = []
        if container is dict:
            old_map = old if old_is else {}
            new_map = new if new_is else {}
            for key in sorted(set(old_map) | set(new_map), key=str):
                if not isinstance(key, str):
                    raise PreviewDocumentError(f"non-string key {key!r} at {path or '<root>'}")
                changes += diff_values(
                    old_map.get(key, ABSENT),
                    new_map.get(key, ABSENT),
                    format_path(path, key),
                    masked=bool(SENSITIVE_KEY.match(key)),
                )
        else:
            old_seq = old if old_is else []
            new_seq = new if new_is else []
            for index in range(max(len(old_seq), len(new_seq))):
                changes += diff_values(
                    old_seq[index] if index < len(old_seq) else ABSENT,
                    new_seq[index] if index < len(new_seq) else ABSENT,
                    format_path(path, index),
                )
        return changes
    return [PropertyChange(path, old, new)]


def _index(document: Any, where: str) -> tuple[str, dict[str, Mapping[str, Any]]]:
    """Validate a preview document and index its resources by URN.

    Raises PreviewDocumentError naming `where` (e.g. "base origin/main") and the
    offending resource when the shape is not the documented one.
    """
    if not isinstance(document, Mapping):
        raise PreviewDocumentError(f"{where}: preview document is {type(document).__name__}, expected an object")
    stack = document.get("stack")
    if not isinstance(stack, str) or not stack:
        raise PreviewDocumentError(f"{where}: preview document has no string 'stack'")
    resources = document.get("resources")
    if not isinstance(resources, list):
        raise PreviewDocumentError(f"{where}: preview document 'resources' is not a list")
    by_urn: dict[str, Mapping[str, Any]] = {}
    for position, resource in enumerate(resources):
        if not isinstance(resource, Mapping):
            raise PreviewDocumentError(f"{where}: resources[{position}] is not an object")
        for key, expected in (("urn", str), ("type", str), ("name", str)):
            if not isinstance(resource.get(key), expected):
                raise PreviewDocumentError(f"{where}: resources[{position}] has no string {key!r}")
        urn = resource["urn"]
        inputs = resource.get("inputs", {})
        if not isinstance(inputs, Mapping):
            raise PreviewDocumentError(f"{where}: {urn}: 'inputs' is not an object")
        if urn in by_urn:
            raise PreviewDocumentError(f"{where}: duplicate URN {urn}")
        by_urn[urn] = resource
    return stack, by_urn


def _outputs(document: Mapping[str, Any], where: str) -> dict[str, Any]:
    outputs = document.get("outputs", {})
    if not isinstance(outputs, Mapping):
        raise PreviewDocumentError(f"{where}: preview document 'outputs' is not an object")
    return dict(outputs)


def _options(resource: Mapping[str, Any]) -> dict[str, Any]:
    return {f"[{name}]": resource.get(name) for name in OPTION_FIELDS if resource.get(name) not in (None, False)}


_OP_ORDER = {"delete": 0, "update": 1, "create": 2}


def diff_documents(base: Any, head: Any, *, base_label: str = "base", head_label: str = "head") -> StackDiff:
    """Diff two preview documents of the same stack.

    base / head: parsed preview JSON; base may be None (nothing deployed yet:
    every head resource is a create). Labels name the sides in error messages.
    Raises PreviewDocumentError for a malformed document or when the two
    documents are of different stacks.
    """
    head_stack, head_res = _index(head, head_label)
    if base is None:
        base_stack, base_res = head_stack, {}
    else:
        base_stack, base_res = _index(base, base_label)
    if base_stack != head_stack:
        raise PreviewDocumentError(f"{base_label} is stack {base_stack!r} but {head_label} is stack {head_stack!r}")
    changes: list[ResourceChange] = []
    unchanged = 0
    for urn in sorted(set(base_res) | set(head_res)):
        old, new = base_res.get(urn), head_res.get(urn)
        any_side = new if new is not None else old
        assert any_side is not None
        protected = bool((old or {}).get("protect")) or bool((new or {}).get("protect"))
        common = dict(
            urn=urn,
            type=str(any_side["type"]),
            name=str(any_side["name"]),
            protected=protected,
            stateful=any_side["type"] in STATEFUL_TYPES,
        )
        if old is None:
            inputs = dict(new.get("inputs") or {})
            props = diff_values(ABSENT, inputs) if inputs else []
            changes.append(ResourceChange(op="create", properties=tuple(props), **common))
        elif new is None:
            inputs = dict(old.get("inputs") or {})
            props = diff_values(inputs, ABSENT) if inputs else []
            changes.append(ResourceChange(op="delete", properties=tuple(props), **common))
        else:
            props = diff_values(dict(old.get("inputs") or {}), dict(new.get("inputs") or {}))
            old_opts, new_opts = _options(old), _options(new)
            for key in sorted(set(old_opts) | set(new_opts)):
                before, after = old_opts.get(key, ABSENT), new_opts.get(key, ABSENT)
                if before != after:
                    props.append(PropertyChange(key, before, after))
            if props:
                changes.append(ResourceChange(op="update", properties=tuple(props), **common))
            else:
                unchanged += 1
    changes.sort(key=lambda c: (_OP_ORDER[c.op], c.urn))
    releases = tuple(sorted(r["name"] for r in head_res.values() if r["type"] == HELM_RELEASE_TYPE))
    outputs = diff_values(
        _outputs(base, base_label) if base is not None else {}, _outputs(head, head_label)
    )
    return StackDiff(
        stack=head_stack,
        changes=tuple(changes),
        unchanged=unchanged,
        base_count=len(base_res),
        head_count=len(head_res),
        helm_releases=releases,
        outputs=tuple(outputs),
    )
