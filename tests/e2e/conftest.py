"""Fixtures of the end-to-end tests: the corpus manifest reader and a started local platform (see ``localplatform``)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from types import ModuleType

import pytest
from localplatform import LocalPlatform, load_manifest_module, new_data_dir


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
    data_dir = new_data_dir()
    plat = LocalPlatform(data_dir)
    try:
        plat.start()
        yield plat
    finally:
        try:
            plat.stop()
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)
