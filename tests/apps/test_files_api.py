"""files-api against real Postgres and fake-gcs-server: happy paths and every bad-input case of the issue."""

from __future__ import annotations

import hashlib
import io
import uuid
from pathlib import Path

import pytest
from problem_asserts import assert_problem
from result_rows import set_result
from sqlalchemy import text

from files_api.settings import DEFAULT_OPS_PORT

#: Base URL of the cluster-only ops listener (/readyz, /metrics; files_api.listeners).
OPS = f"http://localhost:{DEFAULT_OPS_PORT}"

pytestmark = pytest.mark.slow

# (sample path, expected stored Content-Type) -- one real file per accepted ending,
# including upper-case endings (origin_inside.STL, featuretype.3MF).
ACCEPTED = [
    ("cura/Kreistest.gcode", "text/x.gcode"),
    ("prusaslicer/prusa_slicer.bgcode", "application/octet-stream"),
    ("broken/um3.gcode.gz", "application/gzip"),
    ("stl/binary/origin_inside.STL", "model/stl"),
    ("stl/ascii/20mmbox-LF.stl", "model/stl"),
    ("3mf/box.3mf", "model/3mf"),
    ("3mf/featuretype.3MF", "model/3mf"),
]


def _upload(client, data: bytes, filename: str, field: str = "file"):
    return client.post("/v1/files", data={field: (io.BytesIO(data), filename)}, content_type="multipart/form-data")


def _objects(gcs_client, bucket: str) -> set[str]:
    return {b.name for b in gcs_client.list_blobs(bucket)}


def _rows(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM files")).scalar_one()


# -- upload --------------------------------------------------------------------


@pytest.mark.parametrize(("sample", "content_type"), ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_upload_stores_object_and_row(files_api, samples_dir, gcs_client, uploads_bucket, clean_db, sample, content_type):
    data = (samples_dir / sample).read_bytes()
    name = sample.rsplit("/", 1)[1]
    resp = _upload(files_api, data, name)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    body = resp.get_json()
    assert resp.headers["Location"] == f"/v1/files/{body['id']}"
    assert body["filename"] == name and body["size_bytes"] == len(data) and body["content_type"] == content_type
    assert body["status"] == "pending" and body["metadata"] is None and body["error"] is None
    assert set(body) == {"id", "filename", "size_bytes", "content_type", "status", "metadata", "error",
                         "created_at", "updated_at", "thumbnail_url"}

    with clean_db.connect() as conn:
        row = conn.execute(text("SELECT bucket, object_name, generation FROM files WHERE id = :id"),
                           {"id": body["id"]}).one()
    assert row.bucket == uploads_bucket and row.object_name == f"files/{body['id']}/{name}"
    blob = gcs_client.bucket(uploads_bucket).get_blob(row.object_name)
    assert blob is not None and blob.generation == row.generation and blob.content_type == content_type
    assert hashlib.sha256(blob.download_as_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()

    assert files_api.get(resp.headers["Location"]).get_json() == body
    content = files_api.get(f"{resp.headers['Location']}/content")
    assert content.status_code == 200 and content.data == data
    assert content.headers["Content-Type"] == content_type
    assert content.headers["Content-Length"] == str(len(data))
    assert f'filename="{name}"' in content.headers["Content-Disposition"]
    assert content.headers["X-Content-Type-Options"] == "nosniff"


def test_upload_sanitises_the_name_into_the_object_name(files_api, clean_db):
    resp = _upload(files_api, b"G28\n", "../../etc/ bed level.GCODE.")
    assert resp.status_code == 201
    body = resp.get_json()
    assert body["filename"] == "bed level.GCODE"
    with clean_db.connect() as conn:
        assert conn.execute(text("SELECT object_name FROM files")).scalar_one() == f"files/{body['id']}/bed level.GCODE"


def test_non_ascii_name_round_trips(files_api, clean_db):
    resp = _upload(files_api, b"G28\n", "Würfel – 20 mm.gcode")
    assert resp.status_code == 201
    content = files_api.get(f"{resp.headers['Location']}/content")
    assert "filename*=UTF-8''W%C3%BCrfel%20%E2%80%93%2020%20mm.gcode" in content.headers["Content-Disposition"]


@pytest.mark.parametrize("name", ["model.zip", "part.gz", "part.gcode.zip", "gcode", ".gcode", "notes.txt", "part.stl.exe"])
def test_unsupported_type_is_415_and_stores_nothing(files_api, gcs_client, uploads_bucket, clean_db, name):
    before = _objects(gcs_client, uploads_bucket)
    resp = _upload(files_api, b"PK\x03\x04data", name)
    assert_problem(resp, 415, "not a supported print file")
    assert _rows(clean_db) == 0 and _objects(gcs_client, uploads_bucket) == before


def test_non_multipart_body_is_415(files_api):
    resp = files_api.post("/v1/files", data=b"G28\n", content_type="application/octet-stream")
    assert_problem(resp, 415, "multipart/form-data")
    resp = files_api.post("/v1/files", json={"file": "G28"})
    assert_problem(resp, 415, "multipart/form-data")


def test_empty_file_is_400(files_api, samples_dir, clean_db):
    data = (samples_dir / "broken/fdn_all_empty.gcode").read_bytes()
    assert data == b""
    assert_problem(_upload(files_api, data, "fdn_all_empty.gcode"), 400, "empty")
    assert _rows(clean_db) == 0


def test_missing_file_field_is_400(files_api):
    assert_problem(_upload(files_api, b"G28\n", "a.gcode", field="upload"), 400, "missing multipart field 'file'", "upload")
    resp = files_api.post("/v1/files", data={"note": "x"}, content_type="multipart/form-data")
    assert_problem(resp, 400, "missing multipart field 'file'")


def test_file_part_without_a_name_is_400(files_api):
    resp = files_api.post("/v1/files", data={"file": (io.BytesIO(b"G28\n"), "")}, content_type="multipart/form-data")
    assert_problem(resp, 400)


def test_two_files_in_one_request_is_400(files_api, clean_db):
    resp = files_api.post("/v1/files", data={"file": [(io.BytesIO(b"G28\n"), "a.gcode"), (io.BytesIO(b"G28\n"), "b.gcode")]},
                          content_type="multipart/form-data")
    assert_problem(resp, 400, "exactly one file")
    assert _rows(clean_db) == 0


def test_file_over_the_limit_is_413_while_streaming(make_files_api, gcs_client, uploads_bucket, clean_db):
    client = make_files_api(max_upload_bytes=1000).test_client()
    before = _objects(gcs_client, uploads_bucket)
    # The body is allowed (limit + multipart slack) but the file part itself is 1 byte too big.
    body = assert_problem(_upload(client, b"G" * 1001, "big.gcode"), 413, "1000 bytes")
    assert body["max_upload_bytes"] == 1000
    assert _upload(client, b"G" * 1000, "exact.gcode").status_code == 201
    assert _rows(clean_db) == 1 and len(_objects(gcs_client, uploads_bucket) - before) == 1


def test_content_length_over_the_limit_is_413_before_reading(make_files_api, clean_db):
    client = make_files_api(max_upload_bytes=1000).test_client()
    resp = client.post("/v1/files", data=b"x" * 200_000,
                       headers={"Content-Type": "multipart/form-data; boundary=zzz"})
    assert_problem(resp, 413, "exceeds the limit")
    assert _rows(clean_db) == 0


def _chunked_multipart(client, parts: dict[str, bytes]):
    """POST a multipart body without Content-Length (chunked), so only Werkzeug's stream limits apply."""
    body = b"".join(b'--zzz\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (k.encode(), v)
                    for k, v in parts.items()) + b"--zzz--\r\n"
    return client.post("/v1/files", input_stream=io.BytesIO(body), environ_overrides={"wsgi.input_terminated": True},
                       headers={"Transfer-Encoding": "chunked", "Content-Type": "multipart/form-data; boundary=zzz"})


def test_werkzeug_form_limits_are_413_problems(make_files_api, clean_db):
    """Limits Werkzeug enforces while parsing, before the view sees a file, still answer problem+json."""
    from files_api.uploads import UploadRequest

    small = make_files_api(max_upload_bytes=1000).test_client()
    # More parts than UploadRequest.max_form_parts, in a body well under the size limit.
    too_many = {f"f{i}": "x" for i in range(UploadRequest.max_form_parts + 1)}
    resp = small.post("/v1/files", data=too_many, content_type="multipart/form-data")
    assert_problem(resp, 413, "exceeds a limit", f"{UploadRequest.max_form_parts} parts")
    # A chunked body longer than MAX_UPLOAD_BYTES + framing: Werkzeug's MAX_CONTENT_LENGTH on the stream.
    assert_problem(_chunked_multipart(small, {"note": b"n" * 100_000}), 413, "exceeds a limit", "MAX_UPLOAD_BYTES")
    # A non-file field above max_form_memory_size (default upload limit, so only that limit is passed).
    big_field = b"n" * (UploadRequest.max_form_memory_size + 1)
    assert_problem(_chunked_multipart(make_files_api().test_client(), {"note": big_field}), 413, "exceeds a limit")
    assert _rows(clean_db) == 0


def test_database_down_is_503_on_every_route(make_files_api):
    from tools.devstack import free_port

    client = make_files_api(database_url=f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none").test_client()
    fid = uuid.uuid4()
    for method, path in [("GET", "/v1/files"), ("GET", f"/v1/files/{fid}"), ("GET", f"/v1/files/{fid}/content"),
                         ("DELETE", f"/v1/files/{fid}"), ("GET", "/")]:
        resp = client.open(path, method=method)
        assert_problem(resp, 503, "database is unavailable")
        assert resp.headers["Retry-After"] == "5", path


def test_storage_failure_is_503_and_leaves_no_row(make_files_api, clean_db):
    client = make_files_api(uploads_bucket="no-such-bucket-here", storage_timeout_seconds=5).test_client()
    assert_problem(_upload(client, b"G28\n", "a.gcode"), 503, "storage")
    assert _rows(clean_db) == 0


def test_database_failure_is_503_and_leaves_no_object(make_files_api, gcs_client, uploads_bucket):
    from tools.devstack import free_port

    client = make_files_api(database_url=f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none").test_client()
    before = _objects(gcs_client, uploads_bucket)
    assert_problem(_upload(client, b"G28\n", "a.gcode"), 503, "database")
    assert _objects(gcs_client, uploads_bucket) == before


# -- list / get ----------------------------------------------------------------


def _seed(client, n: int) -> list[str]:
    return [_upload(client, f"G1 X{i}\n".encode(), f"part{i}.gcode").get_json()["id"] for i in range(n)]


def test_list_pages_newest_first_with_cursors(files_api):
    ids = _seed(files_api, 5)
    seen, cursor, pages = [], None, 0
    while True:
        resp = files_api.get("/v1/files", query_string={"limit": 2, **({"cursor": cursor} if cursor else {})})
        assert resp.status_code == 200
        page = resp.get_json()
        pages += 1
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert pages == 3 and seen == list(reversed(ids))
    assert files_api.get("/v1/files").get_json()["next_cursor"] is None  # default page holds all 5


def test_list_limit_bounds(files_api):
    _seed(files_api, 2)
    assert len(files_api.get("/v1/files?limit=100").get_json()["items"]) == 2
    assert len(files_api.get("/v1/files?limit=1").get_json()["items"]) == 1
    for bad in ["0", "101", "-1", "ten", "1.5"]:
        body = assert_problem(files_api.get(f"/v1/files?limit={bad}"), 400, "limit")
        assert "limit" in body["errors"]["query"]


def test_list_rejects_a_forged_cursor(files_api):
    assert_problem(files_api.get("/v1/files?cursor=not-a-cursor"), 400, "cursor")
    assert_problem(files_api.get("/v1/files?cursor=W10"), 400, "cursor")  # base64 of "[]"


def test_status_filter_and_result_fields(files_api, clean_db):
    pending, processed, failed = _seed(files_api, 3)
    set_result(clean_db, processed, "processed", metadata={"format": "gcode", "layer_count": 10})
    set_result(clean_db, failed, "failed", error="not G-code: Git LFS pointer")

    def ids(status):
        return [i["id"] for i in files_api.get(f"/v1/files?status={status}").get_json()["items"]]

    assert ids("pending") == [pending] and ids("processed") == [processed] and ids("failed") == [failed]
    got = files_api.get(f"/v1/files/{processed}").get_json()
    assert got["status"] == "processed" and got["metadata"] == {"format": "gcode", "layer_count": 10} and got["error"] is None
    got = files_api.get(f"/v1/files/{failed}").get_json()
    assert got["status"] == "failed" and got["error"] == "not G-code: Git LFS pointer" and got["metadata"] is None
    body = assert_problem(files_api.get("/v1/files?status=done"), 400, "status")
    assert "status" in body["errors"]["query"]


def test_result_of_another_generation_does_not_count(files_api, clean_db):
    (fid,) = _seed(files_api, 1)
    with clean_db.begin() as conn:
        conn.execute(text("INSERT INTO extraction_results (bucket, object_name, generation, status) "
                          "SELECT bucket, object_name, generation - 1, 'processed' FROM files WHERE id = :id"), {"id": fid})
    assert files_api.get(f"/v1/files/{fid}").get_json()["status"] == "pending"


def test_unfinished_upload_rows_are_invisible(files_api, clean_db, uploads_bucket):
    with clean_db.begin() as conn:
        conn.execute(text("INSERT INTO files (id, filename, content_type, size_bytes, bucket, object_name) "
                          "VALUES (:id, 'x.gcode', 'text/x.gcode', 1, :b, 'files/x/x.gcode')"),
                     {"id": uuid.uuid4(), "b": uploads_bucket})
    assert files_api.get("/v1/files").get_json()["items"] == []


@pytest.mark.parametrize("path", ["/v1/files/{id}", "/v1/files/{id}/content"])
def test_unknown_file_is_404(files_api, path):
    assert_problem(files_api.get(path.format(id=uuid.uuid4())), 404, "no file")
    assert_problem(files_api.get(path.format(id="not-a-uuid")), 404, "no file")


def test_unknown_route_and_method_are_problems(files_api):
    assert_problem(files_api.get("/v2/nothing"), 404)
    assert_problem(files_api.put("/v1/files"), 405)


# -- delete --------------------------------------------------------------------


def test_delete_removes_object_row_and_results(files_api, clean_db, gcs_client, uploads_bucket):
    (fid,) = _seed(files_api, 1)
    set_result(clean_db, fid, "processed", metadata={"format": "gcode"})
    with clean_db.connect() as conn:
        object_name = conn.execute(text("SELECT object_name FROM files WHERE id = :id"), {"id": fid}).scalar_one()
    assert object_name in _objects(gcs_client, uploads_bucket)

    resp = files_api.delete(f"/v1/files/{fid}")
    assert resp.status_code == 204 and resp.data == b""
    assert object_name not in _objects(gcs_client, uploads_bucket)
    with clean_db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM files")).scalar_one() == 0
        assert conn.execute(text("SELECT count(*) FROM extraction_results")).scalar_one() == 0
    assert_problem(files_api.get(f"/v1/files/{fid}"), 404)
    assert_problem(files_api.delete(f"/v1/files/{fid}"), 404)


# -- page, ops, docs -------------------------------------------------------------


def test_index_page_lists_files_and_metadata(files_api, clean_db):
    pending, processed = _seed(files_api, 2)
    set_result(clean_db, processed, "processed", metadata={"format": "gcode", "slicer": "<b>Cura</b>"})
    resp = files_api.get("/")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    assert "part0.gcode" in html and "part1.gcode" in html and "processed" in html and "pending" in html
    assert "&lt;b&gt;Cura&lt;/b&gt;" in html or "\\u003cb\\u003eCura" in html  # escaped, never raw HTML
    assert "<b>Cura</b>" not in html
    assert "part0.gcode" not in files_api.get("/?status=processed").get_data(as_text=True)
    assert_problem(files_api.get("/?status=bogus"), 400, "status")


def test_healthz_and_readyz(files_api):
    assert files_api.get("/healthz").get_json() == {"status": "ok"}
    ready = files_api.get("/readyz", base_url=OPS)
    assert ready.status_code == 200 and ready.get_json()["checks"] == {"database": "ok", "bucket": "ok"}


def test_readyz_names_the_failing_dependency(make_files_api):
    from tools.devstack import free_port

    client = make_files_api(uploads_bucket="no-such-bucket-here").test_client()
    body = assert_problem(client.get("/readyz", base_url=OPS), 503, "bucket")
    assert body["checks"]["database"] == "ok" and body["checks"]["bucket"] != "ok"

    client = make_files_api(database_url=f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none",
                            readiness_timeout_seconds=1).test_client()
    body = assert_problem(client.get("/readyz", base_url=OPS), 503, "database")
    assert body["checks"]["bucket"] == "ok"
    assert client.get("/healthz").status_code == 200  # liveness needs no dependency


def test_metrics_count_requests(files_api):
    files_api.get("/v1/files")
    text_ = files_api.get("/metrics", base_url=OPS).get_data(as_text=True)
    assert 'files_api_http_requests_total{endpoint="/v1/files",method="GET",status="200"}' in text_
    assert "files_api_http_request_duration_seconds_bucket" in text_


def test_openapi_document_and_docs(files_api):
    spec = files_api.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.") and spec["info"]["title"] == "files-api"
    assert set(spec["paths"]) == {"/v1/files", "/v1/files/{file_id}", "/v1/files/{file_id}/content",
                                  "/v1/files/{file_id}/thumbnail"}
    thumbnail = spec["paths"]["/v1/files/{file_id}/thumbnail"]["get"]["responses"]
    assert "image/png" in thumbnail["200"]["content"] and "404" in thumbnail
    assert "thumbnail_url" in spec["components"]["schemas"]["File"]["properties"]
    post = spec["paths"]["/v1/files"]["post"]
    assert "multipart/form-data" in post["requestBody"]["content"]
    assert {"201", "400", "413", "415"} <= set(post["responses"])
    assert "application/problem+json" in post["responses"]["415"]["content"]
    params = {p["name"]: p for p in spec["paths"]["/v1/files"]["get"]["parameters"]}
    assert params["limit"]["schema"]["maximum"] == 100 and set(params) >= {"cursor", "status"}
    assert set(spec["components"]["schemas"]) == {"File", "FilePage", "ProblemSchema", "TooLargeProblem"}
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if method == "parameters":
                continue
            for code, response in op["responses"].items():
                assert response.get("description"), f"{method} {path} {code} has no description"
                if not code.startswith(("2", "3")):  # 304 (thumbnail ETag) has no body
                    assert list(response["content"]) == ["application/problem+json"], f"{method} {path} {code}"
    docs = files_api.get("/docs")
    assert docs.status_code == 200 and b"/docs/assets/swagger-ui-bundle.js" in docs.data
    asset = files_api.get("/docs/assets/swagger-ui-bundle.js")
    assert asset.status_code == 200 and len(asset.data) > 100_000
    asset.close()


def test_request_id_is_echoed_or_made(files_api):
    assert files_api.get("/healthz", headers={"X-Request-Id": "abc-123"}).headers["X-Request-Id"] == "abc-123"
    trace = "105445aa7843bc8bf206b12000100000/1;o=1"
    assert files_api.get("/healthz", headers={"X-Cloud-Trace-Context": trace}).headers["X-Request-Id"] == "105445aa7843bc8bf206b12000100000"
    assert len(files_api.get("/healthz", headers={"X-Request-Id": "bad id with spaces"}).headers["X-Request-Id"]) == 32


def test_upload_slots_full_is_503_with_retry_after(make_files_api, clean_db):
    app = make_files_api(max_concurrent_uploads=1)
    client = app.test_client()
    slots = app.extensions["files_api"].upload_slots
    assert slots.acquire(blocking=False)  # another upload is in progress in this process
    try:
        resp = _upload(client, b"G28\n", "a.gcode")
        assert_problem(resp, 503, "already receiving 1 uploads")
        assert resp.headers["Retry-After"] == "5"
    finally:
        slots.release()
    assert _upload(client, b"G28\n", "a.gcode").status_code == 201
    assert _rows(clean_db) == 1


def test_failure_after_the_upload_removes_the_object_and_the_row(files_api, clean_db, gcs_client, uploads_bucket):
    """The database refuses the generation update (a real trigger): the stored object is deleted again."""
    before = _objects(gcs_client, uploads_bucket)
    with clean_db.begin() as conn:
        conn.execute(text("CREATE FUNCTION refuse_generation() RETURNS trigger LANGUAGE plpgsql AS "
                          "$$ BEGIN RAISE EXCEPTION 'generation update refused by test'; END $$"))
        conn.execute(text("CREATE TRIGGER refuse_generation BEFORE UPDATE OF generation ON files "
                          "FOR EACH ROW EXECUTE FUNCTION refuse_generation()"))
    try:
        assert_problem(_upload(files_api, b"G28\n", "a.gcode"), 503, "database")
    finally:
        with clean_db.begin() as conn:
            conn.execute(text("DROP TRIGGER refuse_generation ON files"))
            conn.execute(text("DROP FUNCTION refuse_generation()"))
    assert _rows(clean_db) == 0
    assert _objects(gcs_client, uploads_bucket) == before


def test_delete_with_storage_down_is_503_and_deletes_nothing(files_api, make_files_api, clean_db):
    import time

    from tools.devstack import free_port

    (fid,) = _seed(files_api, 1)
    down = make_files_api(storage_emulator_host=f"http://127.0.0.1:{free_port()}", storage_timeout_seconds=2).test_client()
    started = time.monotonic()
    assert_problem(down.delete(f"/v1/files/{fid}"), 503, "nothing was deleted")
    assert time.monotonic() - started < 30, "retries are bounded by STORAGE_TIMEOUT_SECONDS"
    assert_problem(down.get(f"/v1/files/{fid}/content"), 503, "storage")
    assert files_api.get(f"/v1/files/{fid}").status_code == 200
    assert _rows(clean_db) == 1


# -- new formats, content sniffing, thumbnails ------------------------------------------------

MORE_SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "more-samples"


@pytest.mark.parametrize(("sample", "content_type"), [
    ("ufp/cura_griffin2.ufp", "application/x-ufp"),
    ("bambustudio/bambu_reference_e2e_p1s.gcode.3mf", "model/3mf"),
])
def test_new_formats_are_accepted(files_api, clean_db, sample, content_type):
    data = (MORE_SAMPLES / sample).read_bytes()
    resp = _upload(files_api, data, sample.rsplit("/", 1)[1])
    assert resp.status_code == 201, resp.get_data(as_text=True)
    assert resp.get_json()["content_type"] == content_type


def test_content_decides_the_stored_type(files_api, samples_dir, clean_db):
    """Binary G-code named .gcode is stored as binary G-code (octet-stream), not text/x.gcode."""
    data = (samples_dir / "prusaslicer" / "prusa_slicer.bgcode").read_bytes()
    resp = _upload(files_api, data, "renamed.gcode")
    assert resp.status_code == 201 and resp.get_json()["content_type"] == "application/octet-stream"
    gz = (samples_dir / "broken" / "um3.gcode.gz").read_bytes()
    resp = _upload(files_api, gz, "um3.gcode")
    assert resp.status_code == 201 and resp.get_json()["content_type"] == "application/gzip"


def _png_bytes(width: int, height: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "blue").save(buffer, format="PNG")
    return buffer.getvalue()


def test_thumbnail_endpoint_and_thumbnail_url(files_api, samples_dir, clean_db):
    from extractor.notification import ObjectRef
    from extractor.results import store_thumbnail
    from sqlalchemy.orm import Session

    resp = _upload(files_api, (samples_dir / "cura" / "Kreistest.gcode").read_bytes(), "Kreistest.gcode")
    body = resp.get_json()
    assert body["thumbnail_url"] is None
    missing = files_api.get(f"/v1/files/{body['id']}/thumbnail")
    assert missing.status_code == 404 and missing.content_type == "application/problem+json"
    assert "no thumbnail" in missing.get_json()["detail"]
    assert files_api.get(f"/v1/files/{uuid.uuid4()}/thumbnail").status_code == 404
    assert files_api.get("/v1/files/not-a-uuid/thumbnail").status_code == 404

    with clean_db.connect() as conn:
        row = conn.execute(text("SELECT bucket, object_name, generation FROM files WHERE id = :id"),
                           {"id": body["id"]}).one()
    png = _png_bytes(40, 30)
    with Session(clean_db) as session, session.begin():
        # an older generation's thumbnail is not the file's: not served
        assert store_thumbnail(session, ObjectRef(row.bucket, row.object_name, row.generation - 1), png, 40, 30)
    assert files_api.get(f"/v1/files/{body['id']}").get_json()["thumbnail_url"] is None
    with Session(clean_db) as session, session.begin():
        assert store_thumbnail(session, ObjectRef(row.bucket, row.object_name, row.generation), png, 40, 30)
        # an object with no files row gets no thumbnail (and no error)
        assert not store_thumbnail(session, ObjectRef(row.bucket, "elsewhere/x.gcode", 1), png, 40, 30)

    got = files_api.get(f"/v1/files/{body['id']}").get_json()
    assert got["thumbnail_url"] == f"/v1/files/{body['id']}/thumbnail"
    listed = files_api.get("/v1/files").get_json()["items"]
    assert [item["thumbnail_url"] for item in listed] == [got["thumbnail_url"]]
    thumb = files_api.get(got["thumbnail_url"])
    assert thumb.status_code == 200 and thumb.content_type == "image/png" and thumb.data == png
    again = files_api.get(got["thumbnail_url"], headers={"If-None-Match": thumb.headers["ETag"]})
    assert again.status_code == 304

    assert files_api.delete(f"/v1/files/{body['id']}").status_code == 204
    with clean_db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM file_thumbnails")).scalar_one() == 0
