"""The extractor Dockerfile follows the image rules (no Docker engine here: static checks + the builder's uv command)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "apps" / "extractor" / "Dockerfile"
FILES_API_DOCKERFILE = ROOT / "apps" / "files-api" / "Dockerfile"


def _instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            out.append((op.upper(), rest.strip()))
    return out


def _args(path: Path) -> dict[str, str]:
    return dict(a.split("=", 1) for op, a in _instructions(path) if op == "ARG" and "=" in a)


def test_base_is_slim_python_pinned_by_digest_same_as_files_api():
    image = _args(DOCKERFILE)["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.1[12]-slim-bookworm@sha256:[0-9a-f]{64}", image), image
    assert image == _args(FILES_API_DOCKERFILE)["PYTHON_IMAGE"], "re-pin both service images together"
    froms = [rest for op, rest in _instructions() if op == "FROM"]
    assert len(froms) >= 2 and all(f.startswith("${PYTHON_IMAGE}") for f in froms), "multi-stage on the pinned base"


def test_runtime_is_non_root_with_exec_form_gunicorn_cmd():
    ins = _instructions()
    last_from = max(i for i, (op, _) in enumerate(ins) if op == "FROM")
    runtime = ins[last_from:]
    user = [rest for op, rest in runtime if op == "USER"]
    assert user and user[-1].split(":")[0] not in ("0", "root")
    cmd = json.loads(next(rest for op, rest in runtime if op == "CMD"))
    assert cmd == ["gunicorn", "-c", "python:extractor.gunicorn_conf"]
    assert not any(op == "RUN" and "uv" in rest for op, rest in runtime), "no build tools in the runtime stage"
    env = " ".join(rest for op, rest in runtime if op == "ENV")
    assert "PORT=8081" in env and "TMPDIR=/tmp" in env


def test_builder_installs_without_dev_dependencies_and_copies_existing_paths():
    ins = _instructions()
    syncs = [rest for op, rest in ins if op == "RUN" and "uv sync" in rest]
    assert syncs and all("--frozen" in s and "--no-dev" in s and "--package extractor" in s for s in syncs)
    for op, rest in ins:
        if op == "COPY" and not rest.startswith("--from"):
            for src in rest.split()[:-1]:
                assert (ROOT / src).exists(), f"COPY source {src} missing from the build context"


@pytest.mark.slow
def test_builder_uv_command_yields_a_runtime_venv_that_loads_the_gunicorn_config(tmp_path):
    """Replays the builder stage's `uv sync` on a copy of the build context, then loads the CMD's config from it."""
    uv = shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    ctx = tmp_path / "src"
    for rel in ["pyproject.toml", "uv.lock", "README.md", "apps/files-api/pyproject.toml"]:
        (ctx / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, ctx / rel)
    for app in ["pipeline-core", "extractor"]:
        shutil.copytree(ROOT / "apps" / app, ctx / "apps" / app, ignore=shutil.ignore_patterns("__pycache__"))
    venv = tmp_path / "venv"
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv), "UV_PYTHON_DOWNLOADS": "never"}
    env.pop("VIRTUAL_ENV", None)
    subprocess.run([uv, "sync", "--frozen", "--no-dev", "--package", "extractor", "--no-editable", "--quiet"],
                   cwd=ctx, env=env, check=True, timeout=300)
    site = next(venv.glob("lib/python3.*/site-packages"))
    assert (site / "extractor" / "gunicorn_conf.py").exists()
    assert (venv / "bin" / "gunicorn").exists()
    for dev_only in ["pytest", "pulumi", "honcho", "files_api"]:
        assert not (site / dev_only).exists(), f"{dev_only} must not be in the image"

    # The CMD's config module imports from the image's venv alone (not from the source tree).
    run_env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "DATABASE_URL": "postgresql+psycopg://u@127.0.0.1:1/db",
        "GOOGLE_CLOUD_PROJECT": "p",
        "UPLOADS_BUCKET": "uploads",
        "UPLOADS_SUBSCRIPTION": "uploads-extractor",
    }
    probe = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         "import extractor.gunicorn_conf as c, extractor.app, extractor.metadata; "
         "print(c.workers, c.graceful_timeout, c.bind[0], extractor.app.__file__)"],
        cwd=tmp_path, env=run_env, capture_output=True, text=True, timeout=60,
    )
    assert probe.returncode == 0, probe.stderr
    workers, graceful, bind, app_file = probe.stdout.split()[-4:]
    assert (workers, graceful, bind) == ("1", "30", "0.0.0.0:8081")
    assert app_file.startswith(str(site)), app_file
