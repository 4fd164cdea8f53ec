"""The service Dockerfiles follow the image rules of the issue.

No Docker engine here, so: static checks of each Dockerfile (slim Python base
pinned by digest, multi-stage, no dev dependencies, non-root numeric USER,
exec-form gunicorn CMD) and a replay of the builder stage's ``uv sync`` on a
copy of the build context the Dockerfile sends, whose venv must hold the
service, its gunicorn config and entry points, and no dev tools.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Image:
    """What one service's image must contain."""

    package: str  # the uv workspace member the builder syncs
    cmd: list[str]  # the runtime CMD
    port: int
    in_venv: tuple[str, ...]  # paths under site-packages the service needs
    scripts: tuple[str, ...]  # console scripts under bin/
    not_in_venv: tuple[str, ...]  # dev tools and the other service
    runtime_env: tuple[str, ...] = ()  # KEY=value the runtime stage sets

    @property
    def dockerfile(self) -> Path:
        return ROOT / "apps" / self.package / "Dockerfile"


IMAGES = {
    "files-api": Image(
        package="files-api",
        cmd=["gunicorn", "-c", "/app/gunicorn.conf.py"],
        port=8080,
        in_venv=("files_api/templates/index.html", "pipeline_core/migrations/versions"),
        scripts=("gunicorn", "pipeline-migrate", "files-api-sweep"),
        not_in_venv=("pytest", "pulumi", "honcho", "extractor"),
    ),
    "extractor": Image(
        package="extractor",
        cmd=["gunicorn", "-c", "python:extractor.gunicorn_conf"],
        port=8081,
        in_venv=("extractor/gunicorn_conf.py", "extractor/metadata"),
        scripts=("gunicorn", "extract-metadata"),
        not_in_venv=("pytest", "pulumi", "honcho", "files_api"),
        runtime_env=("TMPDIR=/tmp",),
    ),
}


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` of a Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            out.append((op.upper(), rest.strip()))
    return out


def build_args(dockerfile: Path) -> dict[str, str]:
    return dict(a.split("=", 1) for op, a in instructions(dockerfile) if op == "ARG" and "=" in a)


def runtime_stage(dockerfile: Path) -> list[tuple[str, str]]:
    ins = instructions(dockerfile)
    return ins[max(i for i, (op, _) in enumerate(ins) if op == "FROM"):]


@pytest.fixture(params=sorted(IMAGES))
def image(request) -> Image:
    return IMAGES[request.param]


def test_base_is_slim_python_pinned_by_digest_and_multi_stage(image):
    base = build_args(image.dockerfile)["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.1[12]-slim-bookworm@sha256:[0-9a-f]{64}", base), base
    froms = [rest for op, rest in instructions(image.dockerfile) if op == "FROM"]
    assert len(froms) >= 2 and all(f.startswith("${PYTHON_IMAGE}") for f in froms), "multi-stage on the pinned base"
    assert {build_args(i.dockerfile)["PYTHON_IMAGE"] for i in IMAGES.values()} == {base}, "re-pin both images together"


def test_runtime_is_non_root_with_exec_form_gunicorn_cmd(image):
    runtime = runtime_stage(image.dockerfile)
    users = [rest for op, rest in runtime if op == "USER"]
    # Numeric uid:gid, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
    assert users and re.fullmatch(r"[1-9][0-9]*:[1-9][0-9]*", users[-1]), users
    cmd = json.loads(next(rest for op, rest in runtime if op == "CMD"))
    assert cmd == image.cmd
    assert not any(op == "RUN" and "uv" in rest for op, rest in runtime), "no build tools in the runtime stage"
    env = " ".join(rest for op, rest in runtime if op == "ENV")
    for setting in (f"PORT={image.port}", *image.runtime_env):
        assert setting in env
    assert [rest for op, rest in runtime if op == "EXPOSE"] == [str(image.port)]


def test_builder_installs_without_dev_dependencies_and_copies_existing_paths(image):
    ins = instructions(image.dockerfile)
    syncs = [rest for op, rest in ins if op == "RUN" and "uv sync" in rest]
    assert syncs and all("--frozen" in s and "--no-dev" in s and f"--package {image.package}" in s for s in syncs)
    uv_pins = re.findall(r"\buv==(\S+)", " ".join(rest for op, rest in ins if op == "RUN"))
    makefile_uv = re.search(r"^UV_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.M).group(1)
    assert uv_pins == [makefile_uv], "the builder's uv is the one the lock was made with (Makefile UV_VERSION)"
    ignored = (ROOT / ".dockerignore").read_text().split()
    for op, rest in ins:
        if op == "COPY" and not rest.startswith("--from"):
            for src in rest.split()[:-1]:
                assert (ROOT / src).exists(), f"COPY source {src} missing from the repository"
                assert not any(src == pattern.rstrip("/") or src.startswith(pattern) for pattern in ignored), \
                    f"COPY source {src} excluded by .dockerignore"


def _replay_builder(image: Image, tmp_path: Path) -> Path:
    """Run the builder stage's final ``uv sync`` on a copy of what its COPY lines send; returns the venv."""
    uv = shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    ctx = tmp_path / "src"
    for op, rest in instructions(image.dockerfile):
        if op != "COPY" or rest.startswith("--from"):
            continue
        for src in rest.split()[:-1]:
            source, dest = ROOT / src, ctx / src
            dest.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, dest, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
            else:
                shutil.copy(source, dest)
    venv = tmp_path / "venv"
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv), "UV_PYTHON_DOWNLOADS": "never"}
    env.pop("VIRTUAL_ENV", None)
    subprocess.run([uv, "sync", "--frozen", "--no-dev", "--package", image.package, "--no-editable", "--quiet"],
                   cwd=ctx, env=env, check=True, timeout=300)
    return venv


@pytest.mark.slow
def test_builder_uv_command_yields_a_runtime_venv_without_dev_tools(image, tmp_path):
    venv = _replay_builder(image, tmp_path)
    site = next(venv.glob("lib/python3.*/site-packages"))
    for path in image.in_venv:
        assert (site / path).exists(), path
    for script in image.scripts:
        assert (venv / "bin" / script).exists(), script
    for dev_only in image.not_in_venv:
        assert not (site / dev_only).exists(), f"{dev_only} must not be in the image"

    # The CMD's gunicorn config loads from the image's venv alone (not from the source tree).
    run_env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "DATABASE_URL": "postgresql+psycopg://u@127.0.0.1:1/db",
        "GOOGLE_CLOUD_PROJECT": "p",
        "UPLOADS_BUCKET": "uploads",
        "UPLOADS_SUBSCRIPTION": "uploads-extractor",
        "STORAGE_EMULATOR_HOST": "http://127.0.0.1:1",
        "PORT": str(image.port),
    }
    if image.package == "files-api":
        config = str(ROOT / "apps" / "files-api" / "gunicorn.conf.py")  # COPY'd to /app/gunicorn.conf.py
        load = f"import runpy; c = runpy.run_path({config!r})"
    else:
        load = "import extractor.gunicorn_conf as m; c = vars(m)"
    probe = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         f"{load}; import importlib, sys; bind = c['bind'] if isinstance(c['bind'], str) else c['bind'][0]; "
         "m = importlib.import_module(c['wsgi_app'].split(':')[0]); "
         "sys.stdout.flush(); print('PROBE', c['workers'], bind, m.__file__, flush=True)"],
        cwd=tmp_path, env=run_env, capture_output=True, text=True, timeout=60,
    )
    assert probe.returncode == 0, probe.stderr
    line = next(line for line in probe.stdout.splitlines() if line.startswith("PROBE "))
    workers, bind, app_file = line.split()[1:]
    assert bind == f"0.0.0.0:{image.port}" and int(workers) >= 1
    if image.package == "extractor":
        assert workers == "1", "the extractor runs one worker process (extractor/gunicorn_conf.py)"
    assert app_file.startswith(str(site)), app_file
