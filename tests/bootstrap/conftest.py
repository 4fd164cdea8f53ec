"""Fixtures of the bootstrap tests: the real bootstrap program under the mock runtime, per
committed bootstrap stack file (``infra/bootstrap/Pulumi.<stack>.yaml``), with the
registrations as the engine receives them (``tools.mock_bootstrap``)."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pulumi
import pytest

from infra.bootstrap.settings import BootstrapSettings, load_bootstrap_settings
from tools.mock_bootstrap import run_bootstrap_stack
from tools.mock_runtime import Capture

ROOT = Path(__file__).resolve().parents[2]
#: Every committed bootstrap stack file.
STACKS = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in (ROOT / "infra" / "bootstrap").glob("Pulumi.*.yaml"))
_CACHE: dict[str, Capture] = {}


def capture_for(stack: str) -> Capture:
    """The session-cached capture of the bootstrap ``stack`` (fails the test if the program errored)."""
    if stack not in _CACHE:
        _CACHE[stack] = run_bootstrap_stack(stack)
    captured = _CACHE[stack]
    if captured.error is not None:
        pytest.fail(f"the bootstrap program failed for stack {stack}: {captured.error!r}")
    return captured


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest) -> str:
    """Each committed bootstrap stack name in turn."""
    return request.param


@pytest.fixture
def run(stack: str) -> Capture:
    """The captured registrations of the bootstrap program for ``stack``."""
    return capture_for(stack)


@pytest.fixture
def settings(stack: str) -> BootstrapSettings:
    """The validated bootstrap settings of ``stack``."""
    return load_bootstrap_settings(stack)


@pytest.fixture(autouse=True)
def _clean_pulumi_config() -> Iterator[None]:
    """Leave no stack config behind in the Pulumi runtime for other tests."""
    yield
    pulumi.runtime.set_all_config({}, [])
