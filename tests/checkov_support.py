"""checkov for the tests, pinned and isolated: the chart's manifests (tests/charts) and the GitHub workflows.

checkov runs with ``uv tool run --from checkov==<Makefile CHECKOV_VERSION>``,
apart from the project's environment (its dependency tree clashes with
pulumi's), and offline: ``--skip-download``, ``BC_SKIP_MAPPING=TRUE``, no
Python downloads. Importable as ``checkov_support`` because pytest puts
``tests/`` on ``sys.path`` (``tests/conftest.py``, no ``__init__.py``); not
named ``checkov`` so it never shadows the real package.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def checkov_version() -> str:
    """The Makefile's ``CHECKOV_VERSION`` (the one pin of checkov)."""
    match = re.search(r"^CHECKOV_VERSION\s*:=\s*(\S+)\s*$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert match, "Makefile defines no CHECKOV_VERSION"
    return match.group(1)


def uv() -> str:
    """The uv on PATH, else the pinned one in ``.tools/bin``."""
    found = shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    assert Path(found).exists(), "uv missing: run `make setup`"
    return found


def run_checkov(framework: str, directory: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``checkov --framework <framework> -d <directory> <args>`` in ``cwd``; the completed process, output as text."""
    return subprocess.run(
        [uv(), "tool", "run", "--from", f"checkov=={checkov_version()}", "checkov",
         "--skip-download", "--framework", framework, "-d", str(directory), *args],
        cwd=cwd, env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "UV_PYTHON_DOWNLOADS": "never"},
        capture_output=True, text=True, timeout=600)
