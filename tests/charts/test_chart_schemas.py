"""Every rendered object validated against the Kubernetes JSON schemas of the cluster's minor version.

Built-in kinds: kubernetes-validate's strict schemas for ``render.KUBE_VERSION``
(unknown fields fail). Custom resources: the upstream CRDs vendored in crds/
(schema, defaults and CEL rules; crd_schemas.py), which kubernetes-validate lacks.
"""
from __future__ import annotations

import copy

import kubernetes_validate
import pytest

import crd_schemas
from tools import render

pytestmark = pytest.mark.slow


def test_the_cluster_version_has_schemas():
    kubernetes_validate.validate({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}},
                                 render.KUBE_VERSION, strict=True)


def test_every_object_is_valid_for_the_cluster_version(release):
    checked_crds = set()
    for obj in release.objects:
        if (obj["apiVersion"], obj["kind"]) in crd_schemas.KINDS:
            crd_schemas.validate(obj)
            checked_crds.add(obj["kind"])
            continue
        assert "." not in obj["apiVersion"].split("/")[0] or obj["apiVersion"].split("/")[0].endswith(".k8s.io"), \
            f"{obj['kind']} ({obj['apiVersion']}): a custom resource without a vendored CRD (tests/charts/crds/README.md)"
        try:
            kubernetes_validate.validate(obj, render.KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{release.stack}/{release.service}: {obj['kind']} {obj['metadata']['name']}: {exc}")
    assert "PodMonitoring" in checked_crds
    if release.service == "files-api":
        assert {"HTTPRoute", "HealthCheckPolicy", "GCPBackendPolicy"} <= checked_crds


def test_health_check_timeout_within_interval(release):
    for obj in release.objects:
        if obj["kind"] == "HealthCheckPolicy":
            d = obj["spec"]["default"]
            assert d["timeoutSec"] <= d["checkIntervalSec"], "GKE rejects timeoutSec > checkIntervalSec"


def test_strict_validation_catches_a_misspelt_field(rendered):
    deployment = copy.deepcopy(rendered[("prod", "files-api")].one("Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, render.KUBE_VERSION, strict=True)
    policy = copy.deepcopy(rendered[("prod", "files-api")].one("GCPBackendPolicy"))
    policy["spec"]["default"]["securityPolicyName"] = "x"
    with pytest.raises(crd_schemas.CRDValidationError, match="securityPolicyName"):
        crd_schemas.validate(policy)
