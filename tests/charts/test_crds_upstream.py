"""The vendored upstream CRDs: their provenance, the validator built on them, and the edge objects of the program.

The chart's rendered custom resources are checked in test_chart_schemas.py; here the
Gateway, its HTTP->HTTPS redirect route and the GCPGatewayPolicy that
``infra/loadbalancer.py`` registers (captured from the real program under the mock
runtime) are checked against the same CRDs, and the validator is shown to reject what
the API server rejects.
"""
from __future__ import annotations

import copy
import re

import pulumi
import pytest
import yaml

import crd_schemas
from chart_support import STACKS

README = crd_schemas.CRD_DIR / "README.md"
EDGE_TYPES = ("kubernetes:gateway.networking.k8s.io/v1:Gateway", "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute",
              "kubernetes:networking.gke.io/v1:GCPGatewayPolicy")


def _readme_rows() -> list[list[str]]:
    rows = [[c.strip().strip("`") for c in line.strip().strip("|").split("|")]
            for line in README.read_text().splitlines() if line.startswith("| `")]
    assert rows, "crds/README.md has no table rows"
    return rows


def test_every_vendored_crd_names_its_source_version_commit_and_path():
    rows = {r[0]: r for r in _readme_rows()}
    files = {str(p.relative_to(crd_schemas.CRD_DIR)) for p in crd_schemas.CRD_DIR.glob("*/*.yaml")}
    assert files == set(rows), "every file has exactly one README row"
    for name, (_, repo, version, commit, path) in rows.items():
        assert re.fullmatch(r"[A-Za-z0-9-]+/[A-Za-z0-9._-]+", repo), name
        assert re.fullmatch(r"[0-9a-f]{40}", commit), name
        assert path.endswith(name.split("/")[-1]) and version, name
        crd = yaml.safe_load((crd_schemas.CRD_DIR / name).read_text())
        assert crd["kind"] == "CustomResourceDefinition"
        bundle = crd["metadata"].get("annotations", {}).get("gateway.networking.k8s.io/bundle-version")
        if bundle:  # Gateway API stamps its release and channel into each CRD
            assert version.startswith(bundle) and crd["metadata"]["annotations"]["gateway.networking.k8s.io/channel"] == "standard"


def test_the_kinds_the_chart_and_the_edge_use_are_vendored():
    for api_version, kind in [("gateway.networking.k8s.io/v1", "Gateway"), ("gateway.networking.k8s.io/v1", "HTTPRoute"),
                              ("networking.gke.io/v1", "HealthCheckPolicy"), ("networking.gke.io/v1", "GCPBackendPolicy"),
                              ("networking.gke.io/v1", "GCPGatewayPolicy"), ("monitoring.googleapis.com/v1", "PodMonitoring")]:
        assert (api_version, kind) in crd_schemas.KINDS


# -- the validator rejects what the API server rejects ----------------------------------------

def _health_check(**http: object) -> dict:
    return {"apiVersion": "networking.gke.io/v1", "kind": "HealthCheckPolicy",
            "metadata": {"name": "files-api", "namespace": "print-platform"},
            "spec": {"default": {"config": {"type": "HTTP", "httpHealthCheck": {"requestPath": "/healthz", **http}}},
                     "targetRef": {"group": "", "kind": "Service", "name": "files-api"}}}


def test_a_fixed_health_check_port_needs_port_specification():
    """The upstream CEL rules: a port without ``portSpecification`` counts as USE_SERVING_PORT, which forbids a port."""
    crd_schemas.validate(_health_check(port=8080, portSpecification="USE_FIXED_PORT"))
    crd_schemas.validate(_health_check(portSpecification="USE_SERVING_PORT"))
    # The rules read portSpecification without has(): absent, they fail to evaluate, which rejects the object
    # (the API server's behaviour), so every httpHealthCheck names its port specification.
    with pytest.raises(crd_schemas.CRDValidationError, match="portSpecification"):
        crd_schemas.validate(_health_check())
    with pytest.raises(crd_schemas.CRDValidationError, match="port and portName must be unset for portSpecification"):
        crd_schemas.validate(_health_check(port=8080))
    with pytest.raises(crd_schemas.CRDValidationError, match="port must be set"):
        crd_schemas.validate(_health_check(portSpecification="USE_FIXED_PORT"))


def test_unknown_fields_bad_enums_and_pod_monitoring_rules_fail():
    with pytest.raises(crd_schemas.CRDValidationError, match="requestPth"):
        crd_schemas.validate(_health_check(requestPth="/x"))
    with pytest.raises(crd_schemas.CRDValidationError, match="USE_ANY_PORT"):
        crd_schemas.validate(_health_check(port=8080, portSpecification="USE_ANY_PORT"))
    monitor = {"apiVersion": "monitoring.googleapis.com/v1", "kind": "PodMonitoring",
               "metadata": {"name": "x", "namespace": "print-platform"},
               "spec": {"selector": {"matchLabels": {"a": "b"}}, "endpoints": [{"port": "ops", "interval": "30s"}]}}
    crd_schemas.validate(monitor)
    monitor["spec"]["endpoints"][0]["port"] = 0
    with pytest.raises(crd_schemas.CRDValidationError, match="Port is required"):
        crd_schemas.validate(monitor)


# -- the program's edge objects ------------------------------------------------------------------

@pytest.fixture(scope="module", params=STACKS)
def edge_objects(request) -> dict[str, dict]:
    """``{type: object}`` of the edge's custom resources the program registers for a stack (mock runtime)."""
    from tools.mock_runtime import run_stack

    try:
        captured = run_stack(request.param)
    finally:
        pulumi.runtime.set_all_config({}, [])
    assert captured.error is None, captured.error
    out = {}
    for typ in EDGE_TYPES:
        (reg,) = captured.of_type(typ)
        out[typ] = {k: reg.inputs[k] for k in ("apiVersion", "kind", "metadata", "spec")}
    return out


@pytest.mark.slow
def test_the_gateway_its_redirect_and_its_policy_are_valid_upstream(edge_objects):
    for obj in edge_objects.values():
        crd_schemas.validate(obj)


@pytest.mark.slow
def test_stating_terminate_alone_on_the_certmap_listener_would_be_rejected(edge_objects):
    """Why the https listener has no ``tls`` block: its certificates come from the Certificate Manager map
    (annotation ``networking.gke.io/certmap``), and Gateway API (>= v1.1.0) rejects ``mode: Terminate``
    without ``certificateRefs`` or ``options``. Terminate is the default mode of an HTTPS listener."""
    gateway = copy.deepcopy(edge_objects[EDGE_TYPES[0]])
    (https,) = [lis for lis in gateway["spec"]["listeners"] if lis["protocol"] == "HTTPS"]
    assert "tls" not in https and "networking.gke.io/certmap" in gateway["metadata"]["annotations"]
    https["tls"] = {"mode": "Terminate"}
    with pytest.raises(crd_schemas.CRDValidationError, match="certificateRefs or options must be specified"):
        crd_schemas.validate(gateway)
    # The explicit form GKE documents names the Certificate Manager certificates as a listener option instead
    # of the map (a different way to attach them, not a spelling of the current one); it is valid upstream.
    https["tls"]["options"] = {"networking.gke.io/cert-manager-certs": "print-platform-dev-cert"}
    crd_schemas.validate(gateway)


def _rules(node) -> list[str]:
    if isinstance(node, dict):
        return [v["rule"] for v in node.get("x-kubernetes-validations", [])] + [r for v in node.values() for r in _rules(v)]
    if isinstance(node, list):
        return [r for v in node for r in _rules(v)]
    return []


#: Functions standard CEL (cel-python) evaluates, and the Kubernetes ones crd_schemas provides.
KNOWN_FUNCTIONS = {"has", "size", "all", "exists", "exists_one", "filter", "map", "matches", "contains", "startsWith",
                   "endsWith", "int", "uint", "string", "double", "bool", "type", "timestamp", "duration", "split", "isURL"}


def test_every_cel_rule_of_the_vendored_crds_compiles_and_uses_known_functions():
    """So a rule never fails for lack of a function: a CRD update that needs another library function fails here."""
    rules = {r for api_version, kind in crd_schemas.KINDS for r in _rules(crd_schemas.schema_for(api_version, kind))}
    assert len(rules) > 50
    for rule in rules:
        crd_schemas._program(rule)  # noqa: SLF001  (compiles, or raises naming the rule)
        used = set(re.findall(r"\b([A-Za-z_][A-Za-z0-9_]*)\s*\(", rule.replace("'", " ")))
        assert used <= KNOWN_FUNCTIONS, f"{rule!r} uses {sorted(used - KNOWN_FUNCTIONS)}"
