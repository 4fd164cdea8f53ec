"""The ``extract-metadata`` console script: one JSON line per path, exit status."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from extractor.cli import extract_one, main
from manifest import SAMPLES

CURA = SAMPLES / "cura" / "Kreistest.gcode"
LFS = SAMPLES / "broken" / "benchy_git_lfs_pointer.gcode"


def _lines(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    out = capsys.readouterr().out
    assert out.endswith("\n")
    return [json.loads(line) for line in out.splitlines()]


def test_processed_and_failed_lines_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(CURA), str(LFS)]) == 1
    first, second = _lines(capsys)
    assert first == {
        "path": str(CURA),
        "status": "processed",
        "metadata": first["metadata"],
        "error": None,
    }
    assert first["metadata"]["format"] == "gcode" and first["metadata"]["print_time_s"] == 1479
    assert second["path"] == str(LFS)
    assert second["status"] == "failed" and second["metadata"] is None
    assert "Git LFS pointer" in second["error"]


def test_exit_zero_when_all_processed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(CURA), str(SAMPLES / "3mf" / "box.3mf")]) == 0
    assert [line["status"] for line in _lines(capsys)] == ["processed", "processed"]


def test_missing_path_is_a_failed_line_not_a_crash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.gcode"
    assert main([str(missing), str(CURA)]) == 1
    first, second = _lines(capsys)
    assert first["status"] == "failed" and "cannot read" in first["error"]
    assert second["status"] == "processed"


def test_unsupported_ending_fails_with_the_accepted_list(tmp_path: Path) -> None:
    path = tmp_path / "model.obj"
    path.write_text("v 0 0 0\n")
    line = extract_one(path)
    assert line["status"] == "failed"
    assert ".gcode" in line["error"] and ".3mf" in line["error"]


def test_name_option_chooses_the_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blob = tmp_path / "object-generation-17"
    blob.write_bytes(CURA.read_bytes())
    assert main(["--name", "Kreistest.gcode", str(blob)]) == 0
    (line,) = _lines(capsys)
    assert line["path"] == str(blob) and line["metadata"]["format"] == "gcode"


def test_name_option_needs_a_single_path() -> None:
    with pytest.raises(SystemExit) as info:
        main(["--name", "a.gcode", str(CURA), str(LFS)])
    assert info.value.code == 2


def test_no_path_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2


def test_module_entry_point_runs(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "extractor.cli", str(SAMPLES / "stl" / "ascii" / "20mmbox-LF.stl")],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    (line,) = [json.loads(x) for x in proc.stdout.splitlines()]
    assert line["metadata"]["triangle_count"] == 12 and line["metadata"]["volume_mm3"] == 8000.0


def test_thumbnails_are_written_as_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bambu = SAMPLES / "bambustudio" / "bambu_lab.gcode"
    assert main(["--thumbnails", str(tmp_path), str(bambu), str(CURA)]) == 0
    first, second = _lines(capsys)
    png = (tmp_path / "bambu_lab.gcode.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and first["metadata"]["thumbnail"]["width"] == 300
    assert "thumbnail" not in second["metadata"] and not (tmp_path / "Kreistest.gcode.png").exists()
