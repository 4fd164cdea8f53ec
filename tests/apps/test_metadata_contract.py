"""The API contract: bad content raises ExtractionError with a reason, nothing else.

Every real sample is cut short at several points and garbage is offered under
every accepted ending; each call must return metadata or raise
``ExtractionError`` whose reason names the file.
"""

from __future__ import annotations

import errno
import random
from pathlib import Path

import pytest
from extractor.metadata import ExtractionError, extract_metadata
from manifest import SAMPLES
from pipeline_core.formats import EXTENSIONS

SAMPLE_FILES = sorted(
    p for p in SAMPLES.rglob("*") if p.is_file() and p.name not in ("MANIFEST.tsv", "README.md")
)


def _call(path: Path, name: str) -> dict | ExtractionError:
    try:
        result = extract_metadata(path, name)
    except ExtractionError as exc:
        assert isinstance(exc.reason, str) and exc.reason.strip()
        return exc
    assert isinstance(result, dict) and "format" in result
    return result


@pytest.mark.parametrize("sample", SAMPLE_FILES, ids=lambda p: p.relative_to(SAMPLES).as_posix())
def test_truncated_samples(tmp_path: Path, sample: Path) -> None:
    data = sample.read_bytes()
    for fraction in (0.0, 0.01, 0.1, 0.5, 0.9, 0.999):
        cut = tmp_path / sample.name
        cut.write_bytes(data[: int(len(data) * fraction)])
        _call(cut, sample.name)


@pytest.mark.parametrize("ending", sorted(EXTENSIONS))
def test_garbage_under_every_ending(tmp_path: Path, ending: str) -> None:
    rng = random.Random(ending)
    for size in (1, 83, 84, 134, 4096, 70_000):
        path = tmp_path / f"junk{ending}"
        path.write_bytes(bytes(rng.randrange(256) for _ in range(size)))
        result = _call(path, path.name)
        assert isinstance(result, ExtractionError), f"{size} random bytes as {ending} gave {result}"
        assert path.name in result.reason


def test_missing_file_is_an_os_error_not_a_content_failure(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        extract_metadata(tmp_path / "gone.stl", "gone.stl")


def test_io_error_while_reading_propagates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A disk fault is not a property of the file: it must not become ``failed``."""
    path = tmp_path / "part.gcode"
    path.write_text(";TIME:1\n")

    def broken_open(self: Path, *args: object, **kwargs: object) -> None:
        raise OSError(errno.EIO, "Input/output error", str(self))

    monkeypatch.setattr(Path, "open", broken_open)
    with pytest.raises(OSError) as info:
        extract_metadata(path, path.name)
    assert not isinstance(info.value, ExtractionError) and info.value.errno == errno.EIO
