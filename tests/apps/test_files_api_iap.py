"""IAP on: every /v1 request (and the page) needs a valid IAP JWT, checked against keys served over HTTP like Google's."""

from __future__ import annotations

import http.server
import json
import threading
import time

import pytest
from problem_asserts import assert_problem
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from google.auth import jwt
from google.auth.crypt import es256

from files_api.settings import DEFAULT_OPS_PORT

pytestmark = pytest.mark.slow

AUDIENCE = "/projects/123456/global/backendServices/987654"
ISSUER = "https://cloud.google.com/iap"


def _keypair(kid: str):
    key = ec.generate_private_key(ec.SECP256R1())
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return es256.ES256Signer.from_string(private_pem, key_id=kid), public_pem


@pytest.fixture(scope="module")
def iap_keys():
    """A loopback HTTP server publishing {kid: public PEM} like www.gstatic.com/iap/verify/public_key."""
    signer, public_pem = _keypair("key-1")
    rogue, _ = _keypair("key-1")  # same kid, other key: a forged signature
    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            body = json.dumps({"key-1": public_pem}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "public, max-age=300")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"url": f"http://127.0.0.1:{server.server_address[1]}/iap/verify/public_key",
           "signer": signer, "rogue": rogue, "hits": hits}
    server.shutdown()
    server.server_close()


def _token(signer, **claims) -> str:
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": AUDIENCE, "sub": "accounts.google.com:42", "email": "ada@example.com",
               "iat": now, "exp": now + 600, **claims}
    return jwt.encode(signer, payload).decode()


@pytest.fixture
def client(make_files_api, iap_keys, clean_db):
    return make_files_api(iap_audience=AUDIENCE, iap_public_keys_url=iap_keys["url"]).test_client()


def _assert_401(resp, fragment: str):
    assert_problem(resp, 401, fragment)
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


def test_valid_assertion_passes(client, iap_keys):
    headers = {"x-goog-iap-jwt-assertion": _token(iap_keys["signer"])}
    assert client.get("/v1/files", headers=headers).status_code == 200
    assert client.get("/", headers=headers).status_code == 200
    before = len(iap_keys["hits"])
    for _ in range(3):
        assert client.get("/v1/files", headers=headers).status_code == 200
    assert len(iap_keys["hits"]) == before, "keys are cached for their max-age, not fetched per request"


def test_missing_assertion_is_401(client):
    _assert_401(client.get("/v1/files"), "missing x-goog-iap-jwt-assertion")
    _assert_401(client.get("/v1/files/00000000-0000-0000-0000-000000000000"), "missing")
    _assert_401(client.post("/v1/files"), "missing")
    _assert_401(client.get("/"), "missing")
    _assert_401(client.get("/ui/files"), "missing")


@pytest.mark.parametrize("case", ["wrong_audience", "expired", "wrong_issuer", "forged", "garbage"])
def test_bad_assertions_are_401(client, iap_keys, case):
    token = {
        "wrong_audience": lambda: _token(iap_keys["signer"], aud="/projects/1/global/backendServices/2"),
        "expired": lambda: _token(iap_keys["signer"], iat=int(time.time()) - 7200, exp=int(time.time()) - 3600),
        "wrong_issuer": lambda: _token(iap_keys["signer"], iss="https://accounts.google.com"),
        "forged": lambda: _token(iap_keys["rogue"]),
        "garbage": lambda: "not.a.jwt",
    }[case]()
    _assert_401(client.get("/v1/files", headers={"x-goog-iap-jwt-assertion": token}), "invalid x-goog-iap-jwt-assertion")


def test_ops_and_docs_need_no_assertion(client):
    assert client.get("/healthz").status_code == 200
    ops = f"http://localhost:{DEFAULT_OPS_PORT}"  # the cluster-only listener (files_api.listeners)
    assert client.get("/readyz", base_url=ops).status_code == 200
    assert client.get("/metrics", base_url=ops).status_code == 200
    spec = client.get("/openapi.json").get_json()
    assert spec["components"]["securitySchemes"]["iap"]["name"] == "x-goog-iap-jwt-assertion"


def test_unreachable_key_server_is_503_not_401(make_files_api, iap_keys, clean_db):
    from tools.devstack import free_port

    client = make_files_api(iap_audience=AUDIENCE,
                            iap_public_keys_url=f"http://127.0.0.1:{free_port()}/key").test_client()
    resp = client.get("/v1/files", headers={"x-goog-iap-jwt-assertion": _token(iap_keys["signer"])})
    assert_problem(resp, 503, "signing keys unavailable")


def test_open_mode_logs_a_warning(make_files_api, caplog):
    import logging

    with caplog.at_level(logging.WARNING, logger="files_api"):
        make_files_api(iap_audience=None)
    assert any("IAP_AUDIENCE is not set" in r.getMessage() for r in caplog.records)


# --- The audience the stack sets: bound to the project, any global backend service id ---
# (infra.loadbalancer.iap_audience_pattern; the Gateway controller creates the backend
# service, and its id, only after the deployment: docs/edge.md "IAP").

PROJECT_AUDIENCE = "/projects/123456/global/backendServices/*"


@pytest.fixture
def project_bound(make_files_api, iap_keys, clean_db):
    return make_files_api(iap_audience=PROJECT_AUDIENCE, iap_public_keys_url=iap_keys["url"]).test_client()


def test_project_bound_audience_admits_any_backend_of_the_project(project_bound, iap_keys):
    for backend in ("987654", "1"):
        token = _token(iap_keys["signer"], aud=f"/projects/123456/global/backendServices/{backend}")
        assert project_bound.get("/v1/files", headers={"x-goog-iap-jwt-assertion": token}).status_code == 200


def test_project_bound_audience_still_rejects_requests_without_a_valid_assertion(project_bound, iap_keys):
    _assert_401(project_bound.get("/v1/files"), "missing x-goog-iap-jwt-assertion")
    _assert_401(project_bound.post("/v1/files"), "missing")
    bad = {
        "other project": _token(iap_keys["signer"], aud="/projects/654321/global/backendServices/987654"),
        "the pattern itself": _token(iap_keys["signer"], aud=PROJECT_AUDIENCE),
        "regional backend": _token(iap_keys["signer"], aud="/projects/123456/regions/x/backendServices/1"),
        "no audience": _token(iap_keys["signer"], aud=None),
        "forged": _token(iap_keys["rogue"], aud="/projects/123456/global/backendServices/987654"),
        "expired": _token(iap_keys["signer"], aud="/projects/123456/global/backendServices/987654",
                          iat=int(time.time()) - 7200, exp=int(time.time()) - 3600),
        "wrong issuer": _token(iap_keys["signer"], aud="/projects/123456/global/backendServices/987654",
                               iss="https://accounts.google.com"),
    }
    for case, token in bad.items():
        resp = project_bound.get("/v1/files", headers={"x-goog-iap-jwt-assertion": token})
        assert resp.status_code == 401, case
        _assert_401(resp, "invalid x-goog-iap-jwt-assertion")


@pytest.mark.parametrize("audience", ["/projects/123/global/backendServices/", "projects/123/global/backendServices/*",
                                      "/projects/*/global/backendServices/*", "123456"])
def test_a_malformed_audience_is_a_settings_error(audience):
    from files_api.settings import load
    from pipeline_core.settings import SettingsError

    with pytest.raises(SettingsError, match="IAP_AUDIENCE|iap_audience"):
        load(iap_audience=audience, database_url="postgresql+psycopg://u@127.0.0.1:1/db",
             uploads_bucket="b", google_cloud_project="p")
