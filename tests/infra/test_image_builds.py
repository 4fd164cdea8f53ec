"""The service images as resources of the stack (infra/images.py) and the releases that deploy them.

The program runs under the mock runtime (tests/infra/conftest.py) for each real
stack file; the mock answers the image builds like a preview that has not built
them: their outputs are unknown, so a release's ``values.image.digest`` is
``[unknown]`` while every other value is known.
"""
from __future__ import annotations

import os
import re
import shutil
import stat
from pathlib import Path

import pytest

from infra import images
from infra.settings import SERVICES, StackSettings
from tools.mock_runtime import UNKNOWN_PLACEHOLDER, Capture, read_stack_file, run_stack

IMAGE = "docker-build:index:Image"
RELEASE = "kubernetes:helm.sh/v3:Release"
ROOT = Path(__file__).resolve().parents[2]


def test_each_service_image_is_built_for_amd64_and_pushed_by_content_tag(run: Capture, settings: StackSettings):
    repo = f"{settings.region}-docker.pkg.dev/{settings.project}/{settings.names.registry_repository}"
    cache = f"{settings.region}-docker.pkg.dev/{settings.project}/{settings.names.registry_cache_repository}"
    built = {r.name: r for r in run.of_type(IMAGE)}
    assert sorted(built) == sorted(SERVICES)
    for service, image in built.items():
        i = image.inputs
        assert i["platforms"] == ["linux/amd64"], "the nodes are x86-64, whatever the laptop"
        assert i["push"] is True and i["buildOnPreview"] is False
        assert i["tags"] == [f"{repo}/{service}:{images.source_tag(service)}"]
        assert re.fullmatch(r"src-[0-9a-f]{24}", images.source_tag(service))
        assert i["context"] == {"location": f"build/image-context/{service}-{images.source_tag(service)}"}
        assert i["dockerfile"] == {"location": f"apps/{service}/Dockerfile"}
        ref = f"{cache}/{service}:buildcache"
        assert i["cacheFrom"] == [{"registry": {"ref": ref}}]
        (to,) = i["cacheTo"]
        assert to["registry"]["ref"] == ref and to["registry"]["mode"] == "max"
        assert to["registry"]["imageManifest"] is True
        (registry,) = i["registries"]
        assert registry["address"] == f"{settings.region}-docker.pkg.dev"
        assert registry["username"] == "oauth2accesstoken" and registry["password"] == "[secret]"
        assert image.parent.endswith("print-platform:images:Images::images")
        # the push waits for both repositories
        deps = set(image.dependencies)
        assert any(d.endswith("Repository::services") for d in deps)
        assert any(d.endswith("Repository::build-cache") for d in deps)


def test_both_releases_are_in_the_plan_with_the_stacks_values_and_the_built_images(run: Capture,
                                                                                  settings: StackSettings):
    """The issue's "done when": two Releases whose values carry the bucket, subscription,
    service account, connection name and the image (digest computed until built)."""
    names = settings.names
    releases = {r.name: r for r in run.of_type(RELEASE)}
    assert sorted(releases) == sorted(SERVICES)
    built = {r.name: r.urn for r in run.of_type(IMAGE)}
    for service, release in releases.items():
        values = release.inputs["values"]
        assert values["image"] == {
            "repository": f"{settings.region}-docker.pkg.dev/{settings.project}/{names.registry_repository}/{service}",
            "digest": UNKNOWN_PLACEHOLDER,
        }
        assert values["app"]["uploadsBucket"] == names.uploads_bucket
        assert values["serviceAccount"]["gcpServiceAccount"] == names.service_account_email(service, settings.project)
        assert values["cloudSqlProxy"]["instanceConnectionName"] == (
            f"{settings.project}:{settings.region}:{names.sql_instance}")
        assert built[service] in release.dependencies, "the release waits for its image"
    assert releases["extractor"].inputs["values"]["app"]["uploadsSubscription"] == names.extractor_subscription


def test_a_pinned_digest_is_deployed_as_is_and_not_built():
    config, _ = read_stack_file("prod")
    digest = "sha256:" + "cd" * 32
    captured = run_stack("prod", config_override=dict(config, **{"print-platform:images": {
        "extractor": {"digest": digest}}}))
    assert captured.error is None, captured.error
    assert [r.name for r in captured.of_type(IMAGE)] == ["files-api"]
    values = {r.name: r.inputs["values"] for r in captured.of_type(RELEASE)}
    assert values["extractor"]["image"]["digest"] == digest
    assert values["files-api"]["image"]["digest"] == UNKNOWN_PLACEHOLDER


# --- the content tag and the staged context ------------------------------------------


def _copy_sources(tmp_path: Path) -> Path:
    root = tmp_path / "checkout"
    for source in images.IMAGES.values():
        for rel in (*source.paths, source.dockerfile):
            src, dest = ROOT / rel, root / rel
            if src.is_dir():
                shutil.copytree(src, dest, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
            else:
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest)
    return root


def test_the_tag_ignores_location_umask_timestamps_and_caches(tmp_path):
    """Two checkouts of one commit, one of them group-writable, with caches: the same tag,
    so a local `pulumi up` after a CI deploy of the same commit rebuilds nothing."""
    root = _copy_sources(tmp_path)
    for service in SERVICES:
        assert images.source_tag(service, root) == images.source_tag(service, ROOT)
    some = root / "apps" / "files-api" / "src" / "files_api" / "app.py"
    os.chmod(some, 0o664)
    os.utime(some, (0, 0))
    (some.parent / "__pycache__").mkdir(exist_ok=True)
    (some.parent / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\0junk")
    assert images.source_tag("files-api", root) == images.source_tag("files-api", ROOT)


def test_the_tag_changes_with_a_source_the_dockerfile_or_an_executable_bit(tmp_path):
    root = _copy_sources(tmp_path)
    before = {s: images.source_tag(s, root) for s in SERVICES}
    core = root / "apps" / "pipeline-core" / "src" / "pipeline_core" / "log.py"
    core.write_text(core.read_text() + "\n# changed\n")
    after = {s: images.source_tag(s, root) for s in SERVICES}
    assert all(after[s] != before[s] for s in SERVICES), "both images contain pipeline-core"
    extractor_only = root / "apps" / "extractor" / "src" / "extractor" / "cli.py"
    extractor_only.write_text(extractor_only.read_text() + "\n")
    assert images.source_tag("files-api", root) == after["files-api"]
    assert images.source_tag("extractor", root) != after["extractor"]
    dockerfile = root / "apps" / "files-api" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "\n# changed\n")
    tag = images.source_tag("files-api", root)
    assert tag != after["files-api"]
    os.chmod(core, 0o755)
    assert images.source_tag("files-api", root) != tag


def test_staged_context_holds_exactly_the_sources_with_normalised_modes(tmp_path):
    root = _copy_sources(tmp_path)
    os.chmod(root / "uv.lock", 0o666)
    target = images.stage_context("extractor", root, tmp_path / "staging")
    staged = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    expected = sorted(rel for rel, _, _ in images.context_files("extractor", root))
    assert staged == sorted(expected + [".dockerignore", ".source-tag"])
    assert not any("files_api/" in p for p in staged), "the extractor image gets no files-api code"
    for rel in expected:
        mode = stat.S_IMODE((target / rel).stat().st_mode)
        assert mode in (0o644, 0o755), (rel, oct(mode))
        assert (target / rel).read_bytes() == (root / rel).read_bytes()
    assert (target / ".dockerignore").read_text().split() == [".source-tag", ".dockerignore"]
    assert (target / ".source-tag").read_text() == images.source_tag("extractor", root)
    # unchanged sources: left alone; changed: a new content-addressed directory, the old one removed
    marker_inode = (target / ".source-tag").stat().st_ino
    assert images.stage_context("extractor", root, tmp_path / "staging") == target
    assert (target / ".source-tag").stat().st_ino == marker_inode
    (root / "apps" / "extractor" / "src" / "extractor" / "new_module.py").write_text("X = 1\n")
    changed = images.stage_context("extractor", root, tmp_path / "staging")
    assert changed != target and not target.exists()
    assert changed.name == f"extractor-{images.source_tag('extractor', root)}"
    assert (changed / "apps/extractor/src/extractor/new_module.py").read_text() == "X = 1\n"
    assert not [p for p in (tmp_path / "staging").iterdir() if p.name.startswith(".")], "no temp dirs left"


def test_concurrent_staging_is_safe(tmp_path):
    """The dev and prod previews stage the same contexts at the same time (seen: ENOTEMPTY)."""
    from concurrent.futures import ProcessPoolExecutor

    root = _copy_sources(tmp_path)
    with ProcessPoolExecutor(4) as pool:
        results = list(pool.map(images.stage_context, ["files-api"] * 8, [root] * 8, [tmp_path / "s"] * 8))
    assert len(set(results)) == 1
    staged = sorted(p.relative_to(results[0]).as_posix() for p in results[0].rglob("*") if p.is_file())
    assert staged == sorted([rel for rel, _, _ in images.context_files("files-api", root)]
                            + [".dockerignore", ".source-tag"])
    assert [p.name for p in (tmp_path / "s").iterdir()] == [results[0].name]


@pytest.mark.parametrize("service", SERVICES)
def test_every_copy_in_the_dockerfile_reads_a_declared_source(service):
    """The staged context must hold what the Dockerfile copies (a missing path would fail the build)."""
    source = images.IMAGES[service]
    text = (ROOT / source.dockerfile).read_text()
    copied = []
    for line in text.splitlines():
        parts = line.split()
        if not parts or parts[0] != "COPY" or any(p.startswith("--from") for p in parts):
            continue
        copied += [p for p in parts[1:-1] if not p.startswith("--")]
    assert copied, "the Dockerfile copies sources"
    for path in copied:
        path = path.rstrip("/")
        assert any(path == d or path.startswith(d + "/") for d in source.paths), (
            f"{source.dockerfile} copies {path!r}, which infra.images.IMAGES[{service!r}] does not stage")


def test_unknown_service_or_missing_source_is_a_clear_error(tmp_path):
    with pytest.raises(images.ImageSourceError, match="unknown service 'web'"):
        images.context_files("web")
    with pytest.raises(images.ImageSourceError, match="files-api: declared source 'pyproject.toml' does not exist"):
        images.source_tag("files-api", tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("service", SERVICES)
def test_the_staged_context_is_enough_for_the_builders_uv_sync(service, tmp_path):
    """Replay the builder stage's `uv sync` inside the staged context (what BuildKit receives):
    a file the Dockerfile needs but IMAGES forgot would fail here, not at `pulumi up`."""
    import subprocess

    staged = images.stage_context(service, ROOT, tmp_path / "staging")
    uv = shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    venv = tmp_path / "venv"
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv), "UV_PYTHON_DOWNLOADS": "never"}
    env.pop("VIRTUAL_ENV", None)
    subprocess.run([uv, "sync", "--frozen", "--no-dev", "--package", service, "--no-editable", "--quiet"],
                   cwd=staged, env=env, check=True, timeout=300)
    site = next(venv.glob("lib/python3.*/site-packages"))
    assert (site / service.replace("-", "_")).is_dir() and (site / "pipeline_core").is_dir()
