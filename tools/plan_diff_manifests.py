"""Unified diffs of rendered Helm manifests (the `make render` output) between two trees.

A rendered release is the multi-document YAML that `helm template` prints,
one file per release (`build/rendered/<stack>/<release>.yaml`, written by
tools/render.py). Before diffing, the values of every Kubernetes ``Secret``
(``data`` and ``stringData``) are replaced by ``[secret]`` so that a report
never shows one; every other document is kept byte for byte.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Mapping

import yaml

from tools.plan_diff import SECRET

_DOCUMENT_SEPARATOR = re.compile(r"^---[ \t]*(?:#.*)?$", re.MULTILINE)


class ManifestError(ValueError):
    """A rendered manifest file cannot be read or parsed; the message names the file."""


def mask_secrets(text: str, source: str = "<manifest>") -> str:
    """Return `text` with the values of Secret documents replaced by ``[secret]``.

    text: multi-document YAML. Documents that are not ``kind: Secret`` are kept
    verbatim; a Secret document is re-serialised (keys sorted) with each value
    of ``data`` / ``stringData`` masked. Raises ManifestError naming `source`
    when a document is not valid YAML.
    """
    pieces = _DOCUMENT_SEPARATOR.split(text)
    separators = _DOCUMENT_SEPARATOR.findall(text)
    out: list[str] = []
    for index, piece in enumerate(pieces):
        try:
            document = yaml.safe_load(piece)
        except yaml.YAMLError as exc:
            raise ManifestError(f"{source}: document {index} is not valid YAML: {exc}") from exc
        if isinstance(document, dict) and document.get("kind") == "Secret":
            for key in ("data", "stringData"):
                if isinstance(document.get(key), dict):
                    document[key] = {name: SECRET for name in document[key]}
            comments = "".join(line + "\n" for line in piece.strip("\n").splitlines() if line.startswith("#"))
            piece = "\n" + comments + yaml.safe_dump(document, sort_keys=True, default_flow_style=False)
        out.append(piece)
        if index < len(separators):
            out.append(separators[index])
    return "".join(out)


def read_rendered(directory: Path | None) -> dict[str, str] | None:
    """Read the rendered releases of one stack: ``{release: masked manifest text}``.

    directory: `build/rendered/<stack>` of one tree, or None when that tree
    cannot render (returns None). Every ``*.yaml`` file is a release named by
    its stem. Raises ManifestError when the directory does not exist or a
    file is unreadable.
    """
    if directory is None:
        return None
    if not directory.is_dir():
        raise ManifestError(f"{directory}: rendered manifests directory does not exist")
    releases: dict[str, str] = {}
    for path in sorted(directory.glob("*.yaml")):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ManifestError(f"{path}: cannot read rendered manifest: {exc}") from exc
        releases[path.stem] = mask_secrets(text, str(path))
    return releases


@dataclass(frozen=True)
class ManifestDiff:
    """The diff of one release's rendered manifests.

    status: ``added`` (only at the head), ``removed`` (only at the base),
    ``changed`` or ``unchanged``. lines: the unified diff (no trailing
    newlines), empty when unchanged. added / removed: counted diff lines.
    """

    release: str
    status: Literal["added", "removed", "changed", "unchanged"]
    lines: tuple[str, ...]
    added: int
    removed: int


def diff_manifests(
    base: Mapping[str, str], head: Mapping[str, str], *, context: int = 3
) -> list[ManifestDiff]:
    """Unified diff per release of two ``{release: manifest text}`` maps, sorted by release.

    context: lines of context around each hunk (as `diff -U`).
    """
    diffs: list[ManifestDiff] = []
    for release in sorted(set(base) | set(head)):
        old, new = base.get(release), head.get(release)
        if old == new:
            diffs.append(ManifestDiff(release, "unchanged", (), 0, 0))
            continue
        lines = tuple(
            line.rstrip("\n")
            for line in difflib.unified_diff(
                (old or "").splitlines(keepends=True),
                (new or "").splitlines(keepends=True),
                fromfile=f"base/{release}.yaml" if old is not None else "/dev/null",
                tofile=f"head/{release}.yaml" if new is not None else "/dev/null",
                n=context,
            )
        )
        body = lines[2:]
        added = sum(1 for line in body if line.startswith("+"))
        removed = sum(1 for line in body if line.startswith("-"))
        status = "added" if old is None else "removed" if new is None else "changed"
        diffs.append(ManifestDiff(release, status, lines, added, removed))
    return diffs
