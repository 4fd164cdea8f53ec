"""files-api's two listeners: /readyz (dependency details) and /metrics only on the cluster-only OPS_PORT.

The app decides by the listener a request came in on (WSGI ``SERVER_PORT``, which
gunicorn takes from the listening socket); the test client picks it with ``base_url``.
The route side (the HTTPRoute never sends a client to those paths) is proven from the
rendered chart in tests/charts/test_chart_route.py.
"""

from __future__ import annotations

import pytest

from files_api import listeners
from files_api.settings import DEFAULT_OPS_PORT, DEFAULT_PORT, FilesApiSettings, load
from pipeline_core.settings import SettingsError

pytestmark = pytest.mark.slow

PUBLIC = f"http://localhost:{DEFAULT_PORT}"
OPS = f"http://localhost:{DEFAULT_OPS_PORT}"


def _is_404_problem(resp) -> bool:
    return resp.status_code == 404 and resp.mimetype == "application/problem+json"


@pytest.mark.parametrize("path", ["/readyz", "/metrics", "/readyz/", "/metrics/", "/%6Detrics", "/readyz?x=1",
                                  "/metrics?name[]=x"])
@pytest.mark.parametrize("base", [PUBLIC, "http://localhost", "http://files.example.com:443"])
def test_public_listener_never_shows_readiness_details_or_metrics(files_api, path, base):
    resp = files_api.get(path, base_url=base)
    assert _is_404_problem(resp), (path, base, resp.status_code)
    body = resp.get_data(as_text=True)
    assert "files_api_http_requests_total" not in body and "checks" not in body


@pytest.mark.parametrize("raw", ["//metrics", "/readyz//", "/./metrics"])
def test_odd_raw_paths_show_nothing_either(files_api, raw):
    """Paths a client may send verbatim: at most a redirect (merged slashes), never the content."""
    resp = files_api.get("/", base_url=PUBLIC, environ_overrides={"PATH_INFO": raw})
    assert resp.status_code in (404, 308), (raw, resp.status_code)
    assert "files_api_http_requests_total" not in resp.get_data(as_text=True)
    if resp.status_code == 308:
        assert _is_404_problem(files_api.get(resp.headers["Location"], base_url=PUBLIC))


def test_a_host_header_does_not_choose_the_listener(files_api):
    resp = files_api.get("/metrics", base_url=PUBLIC, headers={"Host": f"localhost:{DEFAULT_OPS_PORT}"})
    assert resp.status_code == 404


def test_public_listener_serves_what_clients_use(files_api):
    for path in ("/healthz", "/v1/files", "/", "/openapi.json", "/docs"):
        assert files_api.get(path, base_url=PUBLIC).status_code == 200, path
    assert files_api.get("/healthz", base_url=PUBLIC).get_json() == {"status": "ok"}


def test_ops_listener_serves_probes_and_metrics_only(files_api):
    assert files_api.get("/healthz", base_url=OPS).get_json() == {"status": "ok"}
    ready = files_api.get("/readyz", base_url=OPS)
    assert ready.status_code == 200 and set(ready.get_json()["checks"]) == {"database", "bucket"}
    assert "files_api_http_requests_total" in files_api.get("/metrics", base_url=OPS).get_data(as_text=True)
    for path in ("/v1/files", "/", "/openapi.json", "/docs", "/docs/assets/swagger-ui.css", "/nope"):
        assert _is_404_problem(files_api.get(path, base_url=OPS)), path
    assert files_api.post("/v1/files", base_url=OPS, data={}).status_code == 404


def test_every_endpoint_of_the_app_is_classified(make_files_api):
    """A new endpoint is public unless listed; the ops set names only endpoints that exist."""
    app = make_files_api()
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert listeners.OPS_ENDPOINTS <= endpoints
    assert listeners.INTERNAL_ENDPOINTS == {"ops.readyz", "ops.metrics_endpoint"}


def test_ops_port_must_differ_from_port(monkeypatch):
    for name, value in {"DATABASE_URL": "postgresql+psycopg://u@127.0.0.1:5432/d", "GOOGLE_CLOUD_PROJECT": "print-test",
                        "UPLOADS_BUCKET": "uploads-bucket", "PORT": "9000", "OPS_PORT": "9000"}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=r"OPS_PORT: Value error, must differ from PORT \(9000\)"):
        load()
    monkeypatch.setenv("OPS_PORT", "9001")
    assert (load().port, load().ops_port) == (9000, 9001)
    assert FilesApiSettings.model_fields["ops_port"].default == DEFAULT_OPS_PORT == 8082
