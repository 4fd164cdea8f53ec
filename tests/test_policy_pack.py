"""The CrossGuard policy pack's own suite (policy/tests), run in the pack's own uv environment.

pulumi-policy pins protobuf 5 / grpcio 1.71 and cannot share this virtualenv (protobuf 6), so
the pack is a separate uv project (policy/pyproject.toml, policy/uv.lock; docs/policy.md).
This test runs ``uv run --project policy --frozen pytest policy/tests`` as a subprocess — uv
creates ``policy/.venv`` on a fresh clone — so ``make test`` and CI cover the pack. The pack's
integration tests evaluate the offline preview of both stacks with *this* interpreter
(``PREVIEW_PYTHON``), and must not skip (``POLICY_REQUIRE_PREVIEW=1``).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _uv() -> str:
    local = ROOT / ".tools" / "bin" / "uv"
    found = shutil.which("uv") or (str(local) if local.exists() else None)
    assert found, "uv not found (on PATH or .tools/bin/uv: `make setup` installs it)"
    return found


def test_policy_pack_suite_passes():
    env = {k: v for k, v in os.environ.items()
           # The Makefile's UV_PROJECT_ENVIRONMENT points at the program's .venv: the pack has its own.
           if k not in ("UV_PROJECT_ENVIRONMENT", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env.update(PREVIEW_PYTHON=sys.executable, POLICY_REQUIRE_PREVIEW="1", UV_PYTHON_DOWNLOADS="never")
    proc = subprocess.run(
        [_uv(), "run", "--project", "policy", "--frozen", "--quiet", "pytest", "policy/tests", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"policy pack tests failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    assert " passed" in proc.stdout and "skipped" not in proc.stdout, proc.stdout[-2000:]
