"""The files-api Dockerfile follows the image rules (no Docker engine here: static checks + the builder's uv command)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "apps" / "files-api" / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            out.append((op.upper(), rest.strip()))
    return out


def test_base_is_slim_python_pinned_by_digest():
    args = dict(a.split("=", 1) for op, a in _instructions() if op == "ARG" and "=" in a)
    image = args["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.1[12]-slim-bookworm@sha256:[0-9a-f]{64}", image), image
    froms = [rest for op, rest in _instructions() if op == "FROM"]
    assert len(froms) >= 2 and all(f.startswith("${PYTHON_IMAGE}") for f in froms), "multi-stage on the pinned base"


def test_runtime_is_non_root_with_exec_form_gunicorn_cmd():
    ins = _instructions()
    last_from = max(i for i, (op, _) in enumerate(ins) if op == "FROM")
    runtime = ins[last_from:]
    user = [rest for op, rest in runtime if op == "USER"]
    assert user and user[-1].split(":")[0] not in ("0", "root")
    cmd = json.loads(next(rest for op, rest in runtime if op == "CMD"))
    assert cmd == ["gunicorn", "-c", "/app/gunicorn.conf.py"]
    assert not any(op == "RUN" and "uv" in rest for op, rest in runtime), "no build tools in the runtime stage"


def test_builder_installs_without_dev_dependencies_and_copies_existing_paths():
    ins = _instructions()
    syncs = [rest for op, rest in ins if op == "RUN" and "uv sync" in rest]
    assert syncs and all("--frozen" in s and "--no-dev" in s and "--package files-api" in s for s in syncs)
    for op, rest in ins:
        if op == "COPY" and not rest.startswith("--from"):
            for src in rest.split()[:-1]:
                assert (ROOT / src).exists(), f"COPY source {src} missing from the build context"
    ignored = (ROOT / ".dockerignore").read_text().split()
    for needed in ["apps/", "uv.lock", "pyproject.toml"]:
        assert needed not in ignored


@pytest.mark.slow
def test_builder_uv_command_yields_a_runtime_venv_without_dev_tools(tmp_path):
    """Replays the builder stage's `uv sync` on a copy of the build context it sees."""
    uv = shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    ctx = tmp_path / "src"
    for rel in ["pyproject.toml", "uv.lock", "README.md", "apps/extractor/pyproject.toml"]:
        (ctx / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, ctx / rel)
    for app in ["pipeline-core", "files-api"]:
        shutil.copytree(ROOT / "apps" / app, ctx / "apps" / app, ignore=shutil.ignore_patterns("__pycache__"))
    venv = tmp_path / "venv"
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv), "UV_PYTHON_DOWNLOADS": "never"}
    subprocess.run([uv, "sync", "--frozen", "--no-dev", "--package", "files-api", "--no-editable", "--quiet"],
                   cwd=ctx, env=env, check=True, timeout=300)
    site = next(venv.glob("lib/python3.*/site-packages"))
    assert (site / "files_api" / "templates" / "index.html").exists()
    assert (site / "pipeline_core" / "migrations" / "versions").is_dir()
    assert (venv / "bin" / "gunicorn").exists() and (venv / "bin" / "pipeline-migrate").exists()
    for dev_only in ["pytest", "pulumi", "honcho"]:
        assert not (site / dev_only).exists(), f"{dev_only} must not be in the image"
