"""files-api under hostile clients (issue 11, item 5): each case as the client does it.

Where the behaviour is gunicorn's (reading the body off the socket, recycling
workers), the service runs under real gunicorn with the image's
``gunicorn.conf.py`` on a free loopback port and the client is a raw socket
or ``http.client``; the rest uses the Flask test client on the real backends.
"""

from __future__ import annotations

import http.client
import io
import json
import logging
import socket
import threading
import time
import uuid

import pytest
import requests
from gunicorn_server import FilesApiServer, service_env
from problem_asserts import assert_problem
from sqlalchemy import text

from files_api.settings import DEFAULT_OPS_PORT

from tools.devstack import FakeGcsServer, free_port

pytestmark = pytest.mark.slow

BOUNDARY = "hostileboundary"


def _multipart(filename: str, data: bytes, field: str = "file") -> bytes:
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{BOUNDARY}--\r\n".encode()


def _head(content_length: int | None, *, chunked: bool = False) -> bytes:
    lines = ["POST /v1/files HTTP/1.1", "Host: 127.0.0.1", f"Content-Type: multipart/form-data; boundary={BOUNDARY}"]
    lines.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {content_length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _read_reply(sock: socket.socket, timeout: float) -> bytes:
    """Everything the server sends until it closes the connection (raises TimeoutError if it does not)."""
    sock.settimeout(timeout)
    chunks = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _parse(reply: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.decode("latin1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def _rows(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM files")).scalar_one()


def _objects(gcs_client, bucket: str) -> set[str]:
    return {b.name for b in gcs_client.list_blobs(bucket)}


@pytest.fixture
def start_server(database_url, fake_gcs, uploads_bucket, gcp_project, clean_db, tmp_path):
    """``start_server(**env)`` -> a ``FilesApiServer`` with those variables; all stopped at the end."""
    servers: list[FilesApiServer] = []

    def start(**env: str) -> FilesApiServer:
        server = FilesApiServer(service_env(database_url, fake_gcs, uploads_bucket, gcp_project, **env),
                                tmp_path / f"gunicorn-{len(servers)}.log")
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


# -- a client that stalls mid-upload --------------------------------------------------


def test_stalled_upload_gets_408_closes_and_frees_its_slot(start_server, clean_db, gcs_client, uploads_bucket):
    server = start_server(WEB_CONCURRENCY="1", MAX_CONCURRENT_UPLOADS="1", UPLOAD_IDLE_TIMEOUT_SECONDS="2")
    before = _objects(gcs_client, uploads_bucket)
    body = _multipart("stalled.gcode", b"G1 X1 Y1\n" * 20_000)
    stalled = socket.create_connection(("127.0.0.1", server.port))
    try:
        stalled.sendall(_head(len(body)) + body[: len(body) // 2])  # ... and then nothing more
        time.sleep(0.5)
        busy = requests.post(f"{server.base}/v1/files", files={"file": ("other.gcode", b"G28\n")}, timeout=10)
        assert busy.status_code == 503 and busy.headers["Retry-After"]  # the one slot is held by the stalled client
        started = time.monotonic()
        reply = _read_reply(stalled, timeout=10)  # returns only once the server closes the connection
        waited = time.monotonic() - started
    finally:
        stalled.close()
    status, headers, raw = _parse(reply)
    assert status == 408, reply[:500]
    assert headers["content-type"] == "application/problem+json" and headers["connection"] == "close"
    problem = json.loads(raw)
    assert problem["status"] == 408 and "no data for 2 s" in problem["detail"], problem
    assert waited < 6, f"the stalled body was given up after {waited:.1f} s (bound 2 s)"
    # The slot is free again, and nothing of the stalled upload was kept.
    ok = requests.post(f"{server.base}/v1/files", files={"file": ("after.gcode", b"G28\n")}, timeout=10)
    assert ok.status_code == 201, ok.text
    assert _rows(clean_db) == 1 and len(_objects(gcs_client, uploads_bucket) - before) == 1
    assert "upload body not received" in server.log()


# -- a body shorter than its Content-Length ------------------------------------------


@pytest.mark.parametrize("cut", ["after_the_closing_boundary", "inside_the_file"])
def test_body_shorter_than_its_content_length_is_never_stored(start_server, clean_db, gcs_client, uploads_bucket, cut):
    server = start_server(WEB_CONCURRENCY="1")
    before = _objects(gcs_client, uploads_bucket)
    body = _multipart("short.gcode", b"G1 X2 Y2\n" * 2000)
    declared = len(body) + 100
    sent = body if cut == "after_the_closing_boundary" else body[: len(body) // 2]
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(_head(declared) + sent)
        sock.shutdown(socket.SHUT_WR)  # the client is done sending: the body ends early
        reply = _read_reply(sock, timeout=10)
    status, headers, raw = _parse(reply)
    assert status == 400, reply[:500]
    assert headers["content-type"] == "application/problem+json"
    assert f"ended after {len(sent)} of the {declared} bytes" in json.loads(raw)["detail"]
    assert _rows(clean_db) == 0 and _objects(gcs_client, uploads_bucket) == before
    assert requests.get(f"{server.base}/v1/files", timeout=10).json()["items"] == []


def test_chunked_body_cut_before_its_last_chunk_is_never_stored(start_server, clean_db, gcs_client, uploads_bucket):
    server = start_server(WEB_CONCURRENCY="1")
    before = _objects(gcs_client, uploads_bucket)
    body = _multipart("chunked.gcode", b"G1 X3 Y3\n" * 500)
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(_head(None, chunked=True) + f"{len(body):x}\r\n".encode() + body + b"\r\n")  # no 0-chunk
        sock.shutdown(socket.SHUT_WR)
        reply = _read_reply(sock, timeout=10)
    status, _, raw = _parse(reply)
    assert status == 400, reply[:500]
    assert "ended before" in json.loads(raw)["detail"]
    assert _rows(clean_db) == 0 and _objects(gcs_client, uploads_bucket) == before


# -- a multipart part without a name ---------------------------------------------------


def _raw_multipart(client, *parts: bytes):
    body = b"".join(b"--zzz\r\n" + p + b"\r\n" for p in parts) + b"--zzz--\r\n"
    return client.post("/v1/files", data=body, headers={"Content-Type": "multipart/form-data; boundary=zzz"})


def test_multipart_part_without_a_name_is_400(files_api, clean_db):
    nameless_file = b'Content-Disposition: form-data; filename="a.gcode"\r\n\r\nG28\n'
    nameless_field = b"Content-Disposition: form-data\r\n\r\nhello"
    good_file = b'Content-Disposition: form-data; name="file"; filename="b.gcode"\r\n\r\nG28\n'
    other_field = b'Content-Disposition: form-data; name="note"\r\n\r\nhi'
    for parts in [(nameless_file,), (nameless_field, other_field), (other_field, nameless_file), (nameless_field, good_file)]:
        assert_problem(_raw_multipart(files_api, *parts), 400, "without a name")
    assert _rows(clean_db) == 0


def test_malformed_multipart_is_400_saying_so(files_api, clean_db):
    resp = files_api.post("/v1/files", data=b"--zzz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.gcode\"\r\n\r\nG28",
                          headers={"Content-Type": "multipart/form-data; boundary=zzz"})
    assert_problem(resp, 400, "multipart")
    resp = files_api.post("/v1/files", data=b"whatever", headers={"Content-Type": "multipart/form-data"})
    assert_problem(resp, 400, "boundary")
    assert _rows(clean_db) == 0


# -- file names ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fs_gcs():
    """fake-gcs-server with its filesystem backend, as `make dev` runs it (it limits name lengths)."""
    with FakeGcsServer(backend="filesystem") as server:
        server.create_bucket("uploads-fs")
        yield server


def _upload(client, data: bytes, filename: str):
    return client.post("/v1/files", data={"file": (io.BytesIO(data), filename)}, content_type="multipart/form-data")


def test_every_accepted_name_is_stored_and_longer_ones_are_400(make_files_api, fs_gcs, clean_db):
    from files_api.uploads import MAX_FILENAME_BYTES

    client = make_files_api(storage_emulator_host=fs_gcs.emulator_host, uploads_bucket="uploads-fs").test_client()
    for char in ["a", "ü", "中", "😀"]:
        stem = char * ((MAX_FILENAME_BYTES - len(".gcode")) // len(char.encode()))
        name = stem + "x" * (MAX_FILENAME_BYTES - len(".gcode") - len(stem.encode())) + ".gcode"
        assert len(name.encode()) == MAX_FILENAME_BYTES
        resp = _upload(client, b"G28\n", name)
        assert resp.status_code == 201, (char, resp.get_data(as_text=True))
        assert resp.get_json()["filename"] == name
        assert client.get(f"{resp.headers['Location']}/content").data == b"G28\n"
    for length in [MAX_FILENAME_BYTES + 1, 236, 255, 300, 2000]:
        name = "n" * (length - len(".gcode")) + ".gcode"
        assert_problem(_upload(client, b"G28\n", name), 400, f"at most {MAX_FILENAME_BYTES} bytes", f"{length} bytes")
    assert _rows(clean_db) == 4


@pytest.mark.parametrize("name", ["bed\x07level.gcode", "esc\x1b[31m.gcode", "tab\there.stl", "del\x7f.3mf", "c1\x85.gcode"])
def test_names_with_control_characters_are_400(files_api, clean_db, name):
    assert_problem(_upload(files_api, b"G28\n", name), 400, "control character")
    assert _rows(clean_db) == 0


@pytest.mark.parametrize(("raw", "stored"), [("C:/parts/cube.stl", "cube.stl"), ("../../x/y.gcode", "y.gcode"),
                                             ("  spaced.gcode  ", "spaced.gcode"), ("Cafe\u0301.3mf", "Caf\u00e9.3mf")])
def test_names_keep_their_last_path_component_nfc(files_api, clean_db, raw, stored):
    resp = _upload(files_api, b"G28\n", raw)
    assert resp.status_code == 201 and resp.get_json()["filename"] == stored


# -- gunicorn recycling workers (max_requests) -------------------------------------------------


def test_recycling_workers_drops_no_request_on_kept_alive_connections(start_server):
    """Many POSTs over kept-alive connections while workers recycle every 30-45 requests: every one answered."""
    server = start_server(WEB_CONCURRENCY="2", GUNICORN_THREADS="4",
                          GUNICORN_CMD_ARGS="--max-requests 30 --max-requests-jitter 15")
    clients, per_client = 6, 60
    statuses: list[int] = []
    failures: list[str] = []

    def client(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        for i in range(per_client):
            try:
                conn.request("POST", "/v1/files", body=b"G28\n", headers={"Content-Type": "text/plain"})
                resp = conn.getresponse()
                resp.read()
                statuses.append(resp.status)
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
            except (http.client.HTTPException, OSError) as exc:
                failures.append(f"client {n} request {i}: {type(exc).__name__}: {exc}")
                conn.close()
        conn.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    recycled = server.log().count("Booting worker") - 2
    assert recycled >= 5, server.log()[-3000:]
    assert failures == [], f"{len(failures)} of {clients * per_client} requests got no answer ({recycled} recycles): {failures[:5]}"
    assert statuses == [415] * (clients * per_client) or sorted(set(statuses)) == [415]
    assert len(statuses) == clients * per_client


# -- /readyz tells no secrets ---------------------------------------------------------------------


def test_readyz_503_names_the_failing_check_but_no_details(make_files_api, caplog, fake_gcs):
    port = free_port()
    client = make_files_api(database_url=f"postgresql+psycopg://postgres:s3cret@127.0.0.1:{port}/none",
                            uploads_bucket="no-such-bucket-here", readiness_timeout_seconds=1).test_client()
    with caplog.at_level(logging.WARNING, logger="files_api.ops"):
        resp = client.get("/readyz", base_url=f"http://localhost:{DEFAULT_OPS_PORT}")
    body = assert_problem(resp, 503, "database", "bucket")
    assert body["checks"] == {"database": "failing", "bucket": "failing"}
    text_ = resp.get_data(as_text=True)
    emulator_port = fake_gcs.emulator_host.rsplit(":", 1)[1]
    for secret in ["127.0.0.1", str(port), emulator_port, "s3cret", "postgres", "http", "Error", "no-such-bucket-here",
                   "psycopg", "refused"]:
        assert secret not in text_, (secret, text_)
    assert "Retry-After" not in resp.headers  # a probe answer, not a "retry this request"
    logged = " ".join(json.dumps(getattr(r, "checks", {})) for r in caplog.records)
    assert "OperationalError" in logged or "refused" in logged.lower(), logged  # the details are in the log


# -- Retry-After on every 503 that means "retry" ----------------------------------------------------


def test_every_retryable_503_has_retry_after(make_files_api, files_api, clean_db):
    down_port = free_port()
    storage_down = make_files_api(storage_emulator_host=f"http://127.0.0.1:{down_port}", storage_timeout_seconds=2).test_client()
    db_down = make_files_api(database_url=f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none").test_client()
    fid = _upload(files_api, b"G28\n", "kept.gcode").get_json()["id"]
    for client, method, path in [(storage_down, "POST", "/v1/files"), (storage_down, "GET", f"/v1/files/{fid}/content"),
                                 (storage_down, "DELETE", f"/v1/files/{fid}"), (db_down, "POST", "/v1/files"),
                                 (db_down, "GET", "/v1/files"), (db_down, "GET", f"/v1/files/{uuid.uuid4()}")]:
        if method == "POST":
            resp = _upload(client, b"G28\n", "x.gcode")
        else:
            resp = client.open(path, method=method)
        assert_problem(resp, 503)
        assert int(resp.headers["Retry-After"]) > 0, (method, path)


# -- the OpenAPI document tells the truth ------------------------------------------------------------


def test_openapi_document_tells_the_truth(files_api, make_files_api, clean_db, samples_dir):
    import re

    from files_api.repository import CURSOR_PATTERN
    from files_api.uploads import MAX_FILENAME_BYTES
    from pipeline_core.formats import EXTENSIONS

    spec = files_api.get("/openapi.json").get_json()
    schemas = spec["components"]["schemas"]
    post = spec["paths"]["/v1/files"]["post"]

    # The 413 body's extra member is in its schema, and a real 413 fits it.
    assert post["responses"]["413"]["content"]["application/problem+json"]["schema"]["$ref"].endswith("/TooLargeProblem")
    too_large = schemas["TooLargeProblem"]
    assert "max_upload_bytes" in too_large["required"]
    body = _upload(make_files_api(max_upload_bytes=10).test_client(), b"G" * 11, "big.gcode").get_json()
    assert set(too_large["required"]) <= set(body) <= set(too_large["properties"]), body
    assert schemas["ProblemSchema"].get("additionalProperties", True) is not False  # RFC 9457 extension members

    # The upload rules: non-empty file, name rules with the byte limit and every accepted ending; 408 listed.
    part = post["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]["file"]
    assert part["minLength"] == 1
    assert f"at most {MAX_FILENAME_BYTES} UTF-8 bytes" in post["description"] and "control characters" in post["description"]
    assert all(ending in post["description"] for ending in EXTENSIONS)
    assert {"201", "400", "408", "413", "415", "503"} <= set(post["responses"])

    # The download's real Content-Types.
    content = spec["paths"]["/v1/files/{file_id}/content"]["get"]["responses"]["200"]["content"]
    assert set(content) == {ct for _, ct in EXTENSIONS.values()}
    stl = _upload(files_api, (samples_dir / "stl/binary/origin_inside.STL").read_bytes(), "cube.stl")
    assert files_api.get(f"{stl.headers['Location']}/content").mimetype in content

    # The cursor format: documented by a pattern, issued in it, and every string of it is accepted.
    params = {p["name"]: p for p in spec["paths"]["/v1/files"]["get"]["parameters"]}
    assert params["cursor"]["schema"]["pattern"] == CURSOR_PATTERN
    assert schemas["FilePage"]["properties"]["next_cursor"]["pattern"] == CURSOR_PATTERN
    _upload(files_api, b"G28\n", "second.gcode")
    issued = files_api.get("/v1/files?limit=1").get_json()["next_cursor"]
    assert re.fullmatch(CURSOR_PATTERN, issued)
    for made_up in ["0." + "0" * 32, "9" * 16 + "." + "f" * 32, issued]:
        assert files_api.get(f"/v1/files?cursor={made_up}").status_code == 200
    assert "nullable" not in params["status"]["schema"] and "nullable" not in params["cursor"]["schema"]

    # Every status is listed (no catch-all), and every 503 promises Retry-After.
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            if method == "parameters":
                continue
            assert "default" not in op["responses"], (method, path)
            if "503" in op["responses"]:
                assert op["responses"]["503"]["headers"]["Retry-After"]["required"] is True, (method, path)
