"""The service images as resources of the stack: built with BuildKit and pushed by the program.

One ``pulumi_docker_build.Image`` per service (https://www.pulumi.com/registry/packages/docker-build/):
``apps/<service>/Dockerfile``, platform ``linux/amd64`` whatever the machine
running Pulumi (GKE Autopilot schedules these pods on x86-64 nodes; an image
built natively on an arm64 laptop would not start there), a registry cache in
the stack's build-cache repository (infra/registry.py), pushed to the stack's
image repository under an immutable, content-addressed tag. The Helm releases
(infra/releases.py) deploy each image by the ``digest`` output.

Why the build context is staged (``build/image-context/<service>-<tag>/``):
pulumi-docker-build decides whether to rebuild from a hash of the context
files' bytes *and modes*. A checkout's modes depend on the umask of whoever
cloned it (``-rw-r--r--`` in CI, often ``-rw-rw-r--`` on a laptop), so hashing
the repository root directly would make a local ``pulumi up`` after a CI
deploy of the same commit rebuild both images and roll the releases. The
program therefore copies exactly the files each Dockerfile needs
(:data:`IMAGES`) into a directory of its own with normalised modes (0644, or
0755 for executables), skipping caches (:data:`EXCLUDED_NAMES`). The same
files define the image's tag (:func:`source_tag`): the tag changes exactly
when the context, the Dockerfile or the build recipe changes, so a rebuild
never needs to move a tag (the repository's tags are immutable) and two
machines on the same commit compute the same tag and the same context hash.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional

import pulumi
import pulumi_docker_build as docker_build
from pydantic import BaseModel, ConfigDict, Field, field_validator

from infra.config import ConfigModel
from infra.services import SERVICES

ROOT = Path(__file__).resolve().parent.parent
#: Where the staged build contexts live, relative to the repository root (git-ignored ``build/``).
STAGING_DIR = Path("build") / "image-context"
#: The one target platform. Why hard-coded: the cluster's nodes are x86-64; a
#: multi-platform image would double build time for a platform nothing runs.
PLATFORM = docker_build.Platform.LINUX_AMD64
#: Bump when the build recipe changes in a way the sources do not show (it is part of every tag).
RECIPE_VERSION = "1"
#: Tag of each service's BuildKit cache manifest in the build-cache repository.
CACHE_TAG = "buildcache"
#: Artifact Registry's user name for an OAuth access token
#: (https://cloud.google.com/artifact-registry/docs/docker/authentication#token).
REGISTRY_USERNAME = "oauth2accesstoken"
#: Never part of a build context (interpreter and tool caches, editor droppings).
EXCLUDED_NAMES = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".DS_Store"})
EXCLUDED_SUFFIXES = (".pyc", ".pyo", ".egg-info")


class ImageSourceError(ValueError):
    """An image's declared sources are missing or malformed; the message names the service and path."""


@dataclass(frozen=True)
class ImageSource:
    """What one service image is built from.

    Attributes:
        dockerfile: the Dockerfile, relative to the repository root.
        paths: files and directories (relative to the repository root) the
            Dockerfile's ``COPY`` instructions read; the staged context holds
            exactly these, at the same relative paths.
    """

    dockerfile: str
    paths: tuple[str, ...]


#: The images, by service. The Dockerfiles' build context is the repository root
#: layout (they ``COPY`` the uv workspace manifests, the lock and the packages);
#: tests/infra/test_image_builds.py checks every ``COPY`` source is listed here.
IMAGES: Mapping[str, ImageSource] = {
    "files-api": ImageSource(
        dockerfile="apps/files-api/Dockerfile",
        paths=("pyproject.toml", "uv.lock", "README.md", "apps/pipeline-core", "apps/files-api",
               "apps/extractor/pyproject.toml"),
    ),
    "extractor": ImageSource(
        dockerfile="apps/extractor/Dockerfile",
        paths=("pyproject.toml", "uv.lock", "README.md", "apps/pipeline-core", "apps/extractor",
               "apps/files-api/pyproject.toml"),
    ),
}


def _excluded(name: str) -> bool:
    return name in EXCLUDED_NAMES or name.endswith(EXCLUDED_SUFFIXES)


def context_files(service: str, root: Path = ROOT) -> list[tuple[str, Path, bool]]:
    """The files of ``service``'s build context: ``(relative posix path, absolute path, executable)``, sorted.

    Symlinks are followed (their target's bytes are what Docker copies).

    Raises:
        ImageSourceError: unknown service, or a declared path that does not exist.
    """
    if service not in IMAGES:
        raise ImageSourceError(f"images: unknown service {service!r}; expected one of {sorted(IMAGES)}")
    found: dict[str, tuple[Path, bool]] = {}
    for declared in IMAGES[service].paths:
        base = root / declared
        if not base.exists():
            raise ImageSourceError(f"images: {service}: declared source {declared!r} does not exist under {root}")
        candidates = [base] if base.is_file() else sorted(p for p in base.rglob("*"))
        for path in candidates:
            rel = path.relative_to(root)
            if any(_excluded(part) for part in rel.parts) or not path.is_file():
                continue
            found[rel.as_posix()] = (path, bool(path.stat().st_mode & stat.S_IXUSR))
    return [(rel, path, executable) for rel, (path, executable) in sorted(found.items())]


def source_tag(service: str, root: Path = ROOT) -> str:
    """The image tag of ``service``: ``src-`` + 24 hex of a sha256 over everything the build reads.

    Hashed: :data:`RECIPE_VERSION`, :data:`PLATFORM`, the Dockerfile's bytes,
    and for each context file its path, normalised mode and bytes. Independent
    of the checkout's location, umask and timestamps.

    Raises:
        ImageSourceError: see :func:`context_files`.
    """
    files = context_files(service, root)
    dockerfile = root / IMAGES[service].dockerfile
    if not dockerfile.is_file():
        raise ImageSourceError(f"images: {service}: {IMAGES[service].dockerfile} does not exist under {root}")
    digest = hashlib.sha256()
    digest.update(f"recipe={RECIPE_VERSION}\0platform={PLATFORM.value}\0".encode())
    digest.update(dockerfile.read_bytes())
    for rel, path, executable in files:
        digest.update(b"\0" + rel.encode() + (b"\0755\0" if executable else b"\0644\0"))
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return "src-" + digest.hexdigest()[:24]


def stage_context(service: str, root: Path = ROOT, staging: Optional[Path] = None) -> Path:
    """Copy ``service``'s context files into ``<staging>/<service>-<tag>`` with normalised modes; return it.

    ``staging`` defaults to ``<root>/build/image-context``. The directory is
    content-addressed (:func:`source_tag`), written under a temporary name and
    renamed into place, so concurrent runs (the dev and prod previews in
    parallel) never see a half-written context: a run that finds it complete
    (marker ``.source-tag``, kept out of the build by the staged
    ``.dockerignore``) uses it; one that loses the rename race uses the
    winner's identical copy. Contexts of other tags of the service are removed
    (best effort).

    Raises:
        ImageSourceError: see :func:`context_files`.
    """
    staging = staging or root / STAGING_DIR
    tag = source_tag(service, root)
    target = staging / f"{service}-{tag}"
    marker = target / ".source-tag"
    if not (marker.is_file() and marker.read_text() == tag):
        staging.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{service}-", dir=staging))
        try:
            for rel, path, executable in context_files(service, root):
                dest = tmp / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, dest)
                os.chmod(dest, 0o755 if executable else 0o644)
            # Only the marker files are ignored: they must not change the context Docker hashes.
            (tmp / ".dockerignore").write_text(".source-tag\n.dockerignore\n")
            os.chmod(tmp / ".dockerignore", 0o644)
            (tmp / ".source-tag").write_text(tag)
            try:
                os.rename(tmp, target)
            except OSError:
                if not (marker.is_file() and marker.read_text() == tag):
                    raise  # not a lost race: a stale or foreign directory is in the way
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    for stale in staging.glob(f"{service}-src-*"):
        if stale != target:
            shutil.rmtree(stale, ignore_errors=True)
    return target


#: An image digest as Artifact Registry reports it.
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class ImageConfig(ConfigModel):
    """One service image pinned by ``digest`` (``sha256:<64 hex>``) instead of built by the program.

    The digest must name an image already in the stack's Artifact Registry
    repository (a rollback to an earlier build, committed in the stack file);
    the program then builds no image for that service (docs/infra.md, "Images").
    """

    digest: str = Field(description="`sha256:<64 hex>` of an image already in the stack's repository")

    @field_validator("digest")
    @classmethod
    def _digest(cls, v: str) -> str:
        if not _DIGEST.match(v):
            raise ValueError(f"{v!r} is not an image digest 'sha256:<64 lower-case hex>'")
        return v


class ImagesConfig(BaseModel):
    """``print-platform:images``, the inputs of :class:`Images`: optional pins ``{files-api: {digest}, extractor: {digest}}``.

    A service without an entry (the default) runs the image the program builds
    from ``apps/<service>/Dockerfile`` (:class:`Images`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    files_api: Optional[ImageConfig] = Field(default=None, alias="files-api")
    extractor: Optional[ImageConfig] = None

    def digest(self, service: str) -> Optional[str]:
        """The pinned digest of ``service`` (one of :data:`SERVICES`) or None (the program builds it).

        Raises:
            KeyError: ``service`` is not one of :data:`SERVICES`.
        """
        images = {"files-api": self.files_api, "extractor": self.extractor}
        image = images[service]
        return image.digest if image else None

    def unpinned(self) -> list[str]:
        """The services of :data:`infra.services.SERVICES` without a pin: the ones the program builds."""
        return [service for service in SERVICES if self.digest(service) is None]


@dataclass(frozen=True)
class ImagesContext:
    """What :class:`Images` takes besides its :class:`ImagesConfig` (which services are pinned, not built).

    Attributes:
        repository_url: ``<region>-docker.pkg.dev/<project>/<repo>`` (Output of infra/registry.py).
        cache_repository_url: the build-cache repository's URL.
        registry_host: ``<region>-docker.pkg.dev``.
        access_token: an OAuth access token of the deploying identity (secret), for the push.
        root: the checkout the images are built from (default: this one).
        labels: OCI labels put on every image (plain strings).
    """

    repository_url: pulumi.Input[str]
    cache_repository_url: pulumi.Input[str]
    registry_host: str
    access_token: pulumi.Input[str]
    root: Path = ROOT
    labels: Mapping[str, str] = field(default_factory=dict)


class Images(pulumi.ComponentResource):
    """Both service images, built and pushed by ``pulumi up`` (never during ``pulumi preview``).

    Attributes:
        images: service -> its ``docker_build.Image``.
        tags: service -> the content tag (:func:`source_tag`), plain string.
        digests: service -> Output of the pushed image's ``sha256:...`` digest
            (unknown in a preview that would rebuild it).
        refs: service -> Output ``<repo>/<service>:<tag>@<digest>``.
    """

    def __init__(self, name: str, config: ImagesConfig, context: ImagesContext, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__("print-platform:images:Images", name, None, opts)
        cwd = os.getcwd()
        self.images: dict[str, docker_build.Image] = {}
        self.tags: dict[str, str] = {}
        for service in config.unpinned():
            source = IMAGES[service]
            tag = source_tag(service, context.root)
            staged = stage_context(service, context.root)
            self.tags[service] = tag
            cache_ref = pulumi.Output.concat(context.cache_repository_url, "/", service, ":", CACHE_TAG)
            self.images[service] = docker_build.Image(
                service,
                push=True,
                tags=[pulumi.Output.concat(context.repository_url, "/", service, ":", tag)],
                platforms=[PLATFORM],
                # Relative to the directory Pulumi runs the program in (the project root),
                # so the inputs are the same on every machine (an absolute path would diff).
                context=docker_build.BuildContextArgs(location=os.path.relpath(staged, cwd)),
                dockerfile=docker_build.DockerfileArgs(location=os.path.relpath(context.root / source.dockerfile, cwd)),
                cache_from=[docker_build.CacheFromArgs(registry=docker_build.CacheFromRegistryArgs(ref=cache_ref))],
                cache_to=[docker_build.CacheToArgs(registry=docker_build.CacheToRegistryArgs(
                    ref=cache_ref, mode=docker_build.CacheMode.MAX,
                    # A plain OCI image manifest: Artifact Registry stores it like any image.
                    image_manifest=True, oci_media_types=True,
                ))],
                registries=[docker_build.RegistryArgs(
                    address=context.registry_host, username=REGISTRY_USERNAME,
                    password=pulumi.Output.secret(context.access_token),
                )],
                # Why no build on preview: a preview must not need a push or change the
                # cache; the digest of an image that would be rebuilt shows as computed.
                build_on_preview=False,
                labels={**dict(context.labels), "org.opencontainers.image.title": service,
                        "org.opencontainers.image.version": tag},
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.digests: dict[str, pulumi.Output[str]] = {s: i.digest for s, i in self.images.items()}
        self.refs: dict[str, pulumi.Output[str]] = {s: i.ref for s, i in self.images.items()}
        self.register_outputs({f"{s}_digest": d for s, d in self.digests.items()})
