"""Fixtures of the end-to-end tests: the corpus manifest reader and a started local platform (see ``localplatform``)."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest
from localplatform import LocalPlatform, load_manifest_module, running_platform


@pytest.fixture(scope="module")
def manifest() -> ModuleType:
    """The corpus test's MANIFEST.tsv reader (``tests/apps/manifest.py``); skips without the samples."""
    module = load_manifest_module()
    if not module.MANIFEST.is_file():
        pytest.skip(f"sample corpus not found at {module.SAMPLES} (tests read ../shared/samples)")
    return module


@pytest.fixture(scope="module")
def platform(manifest: ModuleType) -> Iterator[LocalPlatform]:
    """A started local platform (runner + extractor); stopped and its data folder removed afterwards."""
    with running_platform() as plat:
        yield plat
