"""Corpus test: every real sample in ../shared/samples and ../shared/more-samples through ``extract-metadata``.

Each fact MANIFEST.tsv states must equal what the console script returns
(relative tolerance 1e-3, strings case-insensitive); each empty cell means the
file does not state the fact, so the field must be absent (never guessed).
How every cell maps to a field is in tests/apps/manifest.py. Parametrized
per file and field, so a failure names both.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from manifest import (
    ABSENT,
    EXPECTED_FAILURES,
    GCODE_FIELDS,
    MANIFEST,
    MESH_FIELDS,
    OVERRIDES,
    SAME_CONTENT_AS,
    THUMBNAILS,
    TREES,
    Row,
    git_blob_sha1,
    read_all,
    same_value,
)
from pipeline_core.formats import detect_format

ROWS: list[Row] = read_all() if MANIFEST.is_file() else []
BY_PATH = {row.path: row for row in ROWS}
FIELDS = GCODE_FIELDS + MESH_FIELDS



def _sample_files() -> list[str]:
    """``<tree>/<path>`` of every sample file of every tree."""
    return sorted(
        f"{tree}/{p.relative_to(root).as_posix()}"
        for tree, root in TREES.items() if root.is_dir()
        for p in root.rglob("*")
        if p.is_file() and p.name not in ("MANIFEST.tsv", "README.md")
    )


def _file(key: str) -> Path:
    tree, _, path = key.partition("/")
    return TREES[tree] / path


def _fact_cases() -> list:
    cases = []
    for row in ROWS:
        if row.path in EXPECTED_FAILURES:
            continue
        for name in FIELDS:
            if name in row.expected or name in row.errors:
                cases.append(pytest.param(row.path, name, id=f"{row.path}::{name}"))
    return cases


def _extract_metadata_command() -> list[str]:
    script = shutil.which("extract-metadata", path=str(Path(sys.executable).parent))
    assert script, f"console script extract-metadata not installed beside {sys.executable}"
    return [script]


@pytest.fixture(scope="module")
def results() -> dict[str, dict]:
    """``extract-metadata`` run once over every sample: relative path -> JSON line."""
    assert MANIFEST.is_file(), f"sample corpus missing: {MANIFEST} (tests read ../shared/samples)"
    files = _sample_files()
    proc = subprocess.run(
        [*_extract_metadata_command(), *(str(_file(f)) for f in files)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        check=False,
    )
    assert proc.returncode in (0, 1), f"extract-metadata crashed ({proc.returncode}): {proc.stderr[-2000:]}"
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [line["path"] for line in lines] == [str(_file(f)) for f in files], "one line per path, in order"
    expect_rc = 1 if any(line["status"] == "failed" for line in lines) else 0
    assert proc.returncode == expect_rc
    return {f: line for f, line in zip(files, lines, strict=True)}


def test_manifest_covers_every_sample_file() -> None:
    assert ROWS, f"no rows read from {MANIFEST}"
    assert {row.tree for row in ROWS} == set(TREES), "both trees are read"
    files = set(_sample_files())
    assert files == set(BY_PATH), (
        f"files without a manifest row: {sorted(files - set(BY_PATH))}; "
        f"rows without a file: {sorted(set(BY_PATH) - files)}"
    )


@pytest.mark.parametrize("path", sorted(BY_PATH))
def test_sample_is_the_file_the_manifest_describes(path: str) -> None:
    row = BY_PATH[path]
    assert row.file.stat().st_size == int(row.cells["size_bytes"])
    assert git_blob_sha1(row.file) == row.cells["git_blob_sha1"]


def test_same_content_rows_really_are_the_same_content() -> None:
    for path, source in SAME_CONTENT_AS.items():
        assert gzip.decompress(_file(path).read_bytes()) == _file(source).read_bytes()


def test_overrides_name_real_cells() -> None:
    """Every override is for a field the row compares and says why."""
    for (path, name), (_value, why) in OVERRIDES.items():
        assert path in BY_PATH and name in FIELDS and len(why) > 20


@pytest.mark.parametrize("path", _sample_files())
def test_every_sample_ends_processed_or_failed_with_a_reason(results: dict[str, dict], path: str) -> None:
    line = results[path]
    assert set(line) == {"path", "status", "metadata", "error"}
    if path in EXPECTED_FAILURES:
        assert line["status"] == "failed", f"{path} must fail: {line}"
        assert line["metadata"] is None
        assert EXPECTED_FAILURES[path] in line["error"], line["error"]
        assert Path(path).name in line["error"], "the reason names the file"
    else:
        assert line["status"] == "processed", f"{path}: {line['error']}"
        assert line["error"] is None
        assert line["metadata"]["format"] == detect_format(path).value
        if path in THUMBNAILS:
            assert line["metadata"]["thumbnail"]["source"] == THUMBNAILS[path], line["metadata"].get("thumbnail")
        else:
            assert "thumbnail" not in line["metadata"], f"{path} embeds no preview"


@pytest.mark.parametrize(("path", "name"), _fact_cases())
def test_stated_fact_matches_manifest(results: dict[str, dict], path: str, name: str) -> None:
    row = BY_PATH[path]
    assert name not in row.errors, f"manifest cell for {name} maps to no rule: {row.errors.get(name)}"
    line = results[path]
    assert line["status"] == "processed", line["error"]
    metadata = line["metadata"]
    expected = row.expected[name]
    if expected is ABSENT:
        assert name not in metadata, f"{path}: {name}={metadata.get(name)!r} but the file does not state it"
    else:
        assert name in metadata, f"{path}: {name} missing, manifest says {expected!r}"
        assert same_value(metadata[name], expected), f"{path}: {name}={metadata[name]!r}, manifest {expected!r}"


def test_broken_directory_is_fully_covered(results: dict[str, dict]) -> None:
    broken = [f for f in _sample_files() if f.startswith("samples/broken/")]
    assert len(broken) >= 10
    for path in broken:
        line = results[path]
        assert line["status"] in ("processed", "failed")
        if line["status"] == "failed":
            assert line["error"] and len(line["error"]) > 15


def test_every_cell_of_a_compared_row_is_mapped() -> None:
    """Unmapped cells may occur only in rows that must fail (nothing of theirs is compared)."""
    unmapped = {row.path: row.errors for row in ROWS if row.errors and row.path not in EXPECTED_FAILURES}
    assert not unmapped
