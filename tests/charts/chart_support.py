"""Shared helpers of the chart tests (conftest.py holds the fixtures).

The stack files in the repository may carry no image digest yet (the deploy
workflow sets ``print-platform:images``); the tests render from a copy of
``Pulumi.<stack>.yaml`` and ``environments/`` with made-up digests added where
none is configured, so every service of every stack is rendered and checked.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from infra import releases
from tools import render

ROOT = Path(__file__).resolve().parents[2]
STACKS = ("dev", "prod")
SERVICES = releases.SERVICES
#: Made-up digests for services whose stack file has none.
TEST_DIGESTS = {"files-api": "sha256:" + "a" * 64, "extractor": "sha256:" + "b" * 64}


@dataclass(frozen=True)
class Rendered:
    """One rendered release: its values, the manifest text and the parsed objects."""

    stack: str
    service: str
    namespace: str
    values: dict[str, Any]
    text: str
    objects: list[dict[str, Any]]

    def kinds(self) -> list[str]:
        return [o["kind"] for o in self.objects]

    def one(self, kind: str, name: str | None = None) -> dict[str, Any]:
        found = [o for o in self.objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
        assert len(found) == 1, f"{self.stack}/{self.service}: expected one {kind} {name or ''}, got {len(found)}"
        return found[0]


def render_stack(stack: str, root: Path, helm: Path) -> dict[str, Rendered]:
    specs, notes = render.releases_from_settings(stack, root)
    assert not notes, notes
    out = {}
    for spec in specs:
        text = render.helm_template(spec, helm)
        objects = [d for d in yaml.safe_load_all(text) if d]
        out[spec.name] = Rendered(stack, spec.name, spec.namespace, spec.values, text, objects)
    return out


