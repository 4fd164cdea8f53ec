"""The edge exposes only the public API: proven from the rendered manifests and the app itself.

A client on the internet reaches files-api only along one chain, each link read from
what `helm template` renders for each stack:

Gateway listener -> HTTPRoute path matches -> Service port -> container port ``http``
(= env ``PORT``) -> the app's public listener.

The tests check every link: the route's matches (Gateway API semantics: ``Exact``, and
``PathPrefix`` on whole path segments) reach every public endpoint of the app and no
ops endpoint; the Service and the route name only the ``http`` port; the ops port
(``OPS_PORT``) is admitted only to the Prometheus collectors; and the app, configured
with the rendered ``PORT``/``OPS_PORT``, refuses ``/readyz`` and ``/metrics`` on the public
listener. So even a route that matched too much would not show them.
"""
from __future__ import annotations

import os
import re
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from chart_support import STACKS

pytestmark = pytest.mark.slow

#: A sample value for each Flask converter in a rule (the paths a client could send).
_CONVERTER = re.compile(r"<(?:(\w+):)?(\w+)>")


def _env(release) -> dict[str, str]:
    container = release.one("Deployment")["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def route_matches(release) -> list[dict[str, str]]:
    """Every ``path`` match of every rule of the release's HTTPRoute."""
    route = release.one("HTTPRoute")
    out = []
    for rule in route["spec"]["rules"]:
        matches = rule.get("matches")
        assert matches, "a rule without matches matches every path (Gateway API default: PathPrefix /)"
        for match in matches:
            assert set(match) == {"path"}, f"only path matches are expected, got {match}"
            out.append(match["path"])
    return out


def gateway_matches(match: dict[str, str], path: str) -> bool:
    """Whether an HTTPRoute path match selects ``path`` (Gateway API v1 ``HTTPPathMatch``).

    ``Exact``: the whole path. ``PathPrefix``: element-wise prefix, a trailing ``/`` of
    the value ignored, so ``/v1`` matches ``/v1`` and ``/v1/files`` but not ``/v1files``
    (https://gateway-api.sigs.k8s.io/reference/spec/#httppathmatch).
    """
    kind, value = match["type"], match["value"]
    if kind == "Exact":
        return path == value
    if kind == "PathPrefix":
        prefix = value.rstrip("/")
        return prefix == "" or path == prefix or path.startswith(prefix + "/")
    raise AssertionError(f"unexpected match type {kind!r}")


def _sample(rule: str) -> str:
    return _CONVERTER.sub(lambda m: "a/b" if m.group(1) == "path" else "x", rule)


def files_api_app(port: int, ops_port: int):
    """The files-api app with the rendered ports; no backend is contacted to build it or for these requests."""
    from files_api.app import create_app
    from files_api.settings import FilesApiSettings

    settings = FilesApiSettings(database_url="postgresql+psycopg://u@127.0.0.1:1/none", google_cloud_project="print-test",
                                uploads_bucket="uploads-bucket", port=port, ops_port=ops_port)
    return create_app(settings, storage_client=storage.Client(project="print-test", credentials=AnonymousCredentials()))


@pytest.fixture(scope="module")
def app_rules():
    """``[(sample path, endpoint)]`` of every URL rule of files-api, and the set of public endpoints."""
    from files_api import listeners

    app = files_api_app(8080, 8082)
    rules = [(_sample(r.rule), r.endpoint) for r in app.url_map.iter_rules()]
    public = {e for _, e in rules if e not in listeners.INTERNAL_ENDPOINTS}
    if not os.path.isdir(app.static_folder or ""):
        public.discard("static")  # Flask's /static rule serves nothing without the folder
    return rules, public, listeners.INTERNAL_ENDPOINTS


@pytest.mark.parametrize("stack", STACKS)
def test_the_route_reaches_every_public_endpoint_and_no_ops_endpoint(stack, rendered, app_rules):
    r = rendered[(stack, "files-api")]
    matches = route_matches(r)
    rules, public, internal = app_rules
    routed = {e for path, e in rules if any(gateway_matches(m, path) for m in matches)}
    assert not routed & internal, f"{stack}: the route sends clients to {sorted(routed & internal)}"
    assert routed >= public, f"{stack}: public endpoints without a route: {sorted(public - routed)}"
    for match in matches:
        assert any(gateway_matches(match, path) for path, _ in rules if _ in public), f"{stack}: {match} reaches nothing"
    # The ops paths and their variants are matched by no rule (the Gateway answers 404 itself).
    for path in ("/metrics", "/readyz", "/metrics/", "/readyz/", "/metrics/x", "/readyz/x"):
        assert not any(gateway_matches(m, path) for m in matches), f"{stack}: {path} is routed"
    assert not any(m["type"] == "PathPrefix" and m["value"].rstrip("/") == "" for m in matches), "no catch-all"


def test_gateway_path_semantics_of_the_checker():
    prefix = {"type": "PathPrefix", "value": "/v1"}
    assert gateway_matches(prefix, "/v1") and gateway_matches(prefix, "/v1/files/x")
    assert not gateway_matches(prefix, "/v1files") and not gateway_matches(prefix, "/metrics")
    assert gateway_matches({"type": "PathPrefix", "value": "/"}, "/metrics")
    assert not gateway_matches({"type": "Exact", "value": "/"}, "/metrics")


@pytest.mark.parametrize("stack", STACKS)
def test_only_the_public_port_is_reachable_from_the_load_balancer(stack, rendered):
    r = rendered[(stack, "files-api")]
    env = _env(r)
    container = r.one("Deployment")["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": int(env["PORT"]), "ops": int(env["OPS_PORT"])} and ports["http"] != ports["ops"]
    service = r.one("Service")
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"], "the Service never names the ops port"
    route = r.one("HTTPRoute")
    backend_ports = {b["port"] for rule in route["spec"]["rules"] for b in rule["backendRefs"]}
    assert backend_ports == {p["port"] for p in service["spec"]["ports"]}
    np = r.one("NetworkPolicy", "files-api")
    for rule in np["spec"]["ingress"]:
        cidrs = [peer["ipBlock"]["cidr"] for peer in rule["from"] if "ipBlock" in peer]
        namespaces = [peer for peer in rule["from"] if "namespaceSelector" in peer]
        if cidrs:  # the load balancer's proxies and health checkers
            assert rule["ports"] == [{"port": "http", "protocol": "TCP"}], rule
        if any(p["port"] == "ops" for p in rule["ports"]):
            assert namespaces and not cidrs, f"{stack}: ops port open to {rule['from']}"
    hc = r.one("HealthCheckPolicy")["spec"]["default"]["config"]["httpHealthCheck"]
    assert hc == {"port": int(env["PORT"]), "portSpecification": "USE_FIXED_PORT", "requestPath": "/healthz"}


@pytest.mark.parametrize("stack", STACKS)
def test_the_app_with_the_rendered_ports_refuses_ops_paths_on_the_public_port(stack, rendered):
    env = _env(rendered[(stack, "files-api")])
    port, ops_port = int(env["PORT"]), int(env["OPS_PORT"])
    client = files_api_app(port, ops_port).test_client()
    public, ops = f"http://files.example.com:{port}", f"http://10.0.0.1:{ops_port}"
    for path in ("/metrics", "/readyz"):
        resp = client.get(path, base_url=public)
        assert resp.status_code == 404 and resp.mimetype == "application/problem+json", path
    assert client.get("/healthz", base_url=public).get_json() == {"status": "ok"}
    assert client.get("/metrics", base_url=ops).status_code == 200
    assert client.get("/openapi.json", base_url=ops).status_code == 404


def test_a_release_without_route_paths_is_refused(stack_root, helm):
    from tools import render

    spec = [s for s in render.releases_from_settings("dev", stack_root)[0] if s.name == "files-api"][0]
    spec.values["route"]["paths"] = []
    with pytest.raises(render.RenderError, match="route.enabled needs route.paths"):
        render.helm_template(spec, helm)
