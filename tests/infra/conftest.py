"""Fixtures of the infra tests: the real program run under the mock runtime, per real stack file.

``capture(stack)`` runs ``infra.program`` for ``Pulumi.<stack>.yaml`` once per session
through ``tools.mock_runtime.run_stack`` (the same code the offline preview uses) and
returns the :class:`tools.mock_runtime.Capture`: every registration with its inputs as
the engine receives them (camelCase), parent, provider, protect flag and dependencies,
plus the resolved stack outputs. Tests assert on that plain data, so no assertion hides
inside an ``apply`` that might never run.

``run`` is parametrised over both stacks; ``settings`` is the stack's validated
``StackSettings`` (tests compare against it, so a stack-file change is followed).
"""
from __future__ import annotations

from typing import Iterator

import pulumi
import pytest

from infra.settings import StackSettings, load_stack_settings
from tools.mock_runtime import Capture, run_stack

STACKS = ("dev", "prod")
_CACHE: dict[str, Capture] = {}


def capture_for(stack: str) -> Capture:
    """The session-cached capture of ``stack`` (fails the test if the program errored)."""
    if stack not in _CACHE:
        _CACHE[stack] = run_stack(stack)
    captured = _CACHE[stack]
    if captured.error is not None:
        pytest.fail(f"the program failed for stack {stack}: {captured.error!r}")
    return captured


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest) -> str:
    """Each real stack name in turn."""
    return request.param


@pytest.fixture
def run(stack: str) -> Capture:
    """The captured registrations of the program for ``stack``."""
    return capture_for(stack)


@pytest.fixture
def settings(stack: str) -> StackSettings:
    """The validated settings of ``stack``."""
    return load_stack_settings(stack)


@pytest.fixture(autouse=True)
def _clean_pulumi_config() -> Iterator[None]:
    """Leave no stack config behind in the Pulumi runtime for other tests."""
    yield
    pulumi.runtime.set_all_config({}, [])
