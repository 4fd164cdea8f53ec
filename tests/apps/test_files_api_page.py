"""The page at ``/`` and its table fragment ``/ui/files`` (server side; the browser test drives the script).

Facts as columns in the units the issue names, the details with every metadata field,
escaping of names and metadata, the Content-Security-Policy, no inline script or style,
the assets served by the app, filters and paging."""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser

import pytest
from problem_asserts import assert_problem
from result_rows import set_result

from files_api import web

pytestmark = pytest.mark.slow

CSP = web.CSP


def _upload(client, data: bytes, filename: str) -> str:
    resp = client.post("/v1/files", data={"file": (io.BytesIO(data), filename)}, content_type="multipart/form-data")
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return resp.get_json()["id"]


class _Inline(HTMLParser):
    """Collects what a strict CSP would block: inline scripts, style elements/attributes, event handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.assets: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and not attrs.get("src"):
            self.problems.append("inline <script>")
        if tag == "style":
            self.problems.append("<style> element")
        for name in attrs:
            if name == "style" or name.startswith("on"):
                self.problems.append(f"{tag} {name}=")
        for name in ("src", "href"):
            value = attrs.get(name) or ""
            if (tag in ("script", "img") and name == "src") or (tag == "link" and name == "href"):
                self.assets.append(value)
            if value.startswith(("javascript:", "//", "http:", "https:")):
                self.problems.append(f"{tag} {name}={value}")


CURA = {"format": "gcode", "producer": {"name": "Cura_SteamEngine", "version": "4.10.0"}, "flavor": "Marlin",
        "print_time_s": 1479.0, "filament_used_mm": 8361.28, "filament_used_g": 24.96, "layer_height_mm": 1.0,
        "layer_count": 10, "bbox_mm": {"min": [-82.48, -82.491, 1.3], "max": [82.483, 82.491, 10.3]}}


def test_page_shows_facts_as_columns_and_details(files_api, clean_db):
    cura, bambu, failed, pending = (_upload(files_api, b"G1 X1\n", n) for n in
                                    ("cura.gcode", "bambu.gcode", "broken.stl", "waiting.gcode"))
    set_result(clean_db, cura, "processed", metadata=CURA)
    set_result(clean_db, bambu, "processed", metadata={"format": "gcode", "print_time_s": 342521,
                                                        "bbox_mm": {"min": [None, None, None], "max": [None, None, 5.0]}})
    set_result(clean_db, failed, "failed", error="binary STL is empty: 0 triangles")
    resp = files_api.get("/")
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    html = resp.get_data(as_text=True)
    row = _row(html, cura)
    assert "Cura_SteamEngine 4.10.0" in row
    assert ">0:25<" in row, "print time h:mm (1479 s)"
    assert "8.36 m" in row and "25.0 g" in row
    assert ">10<" in row
    assert "165.0 \u00d7 165.0 \u00d7 9.0" in row, "W x D x H from bbox_mm"
    assert ">95:09<" in _row(html, bambu) and "\u2014 \u00d7 \u2014 \u00d7 \u2014" not in _row(html, bambu)
    assert "binary STL is empty: 0 triangles" in _row(html, failed) and 'status failed' in _row(html, failed)
    assert 'status pending' in _row(html, pending)
    details = _details(html, cura)
    for text_ in ("G-code flavour", "Marlin", "0:24:39 (1,479 s)", "8.361 m (8,361.3 mm)", "Layer height", "1 mm",
                  "min (-82.48, -82.491, 1.3) max (82.483, 82.491, 10.3)", f"/v1/files/{cura}/content", "Delete"):
        assert text_ in details, text_


def _row(html: str, file_id: str) -> str:
    m = re.search(rf'<tr class="file" id="file-{file_id}".*?</tr>', html, re.S)
    assert m, f"no row for {file_id}"
    return m.group(0)


def _details(html: str, file_id: str) -> str:
    m = re.search(rf'<tr class="details" id="details-{file_id}".*?</tr>', html, re.S)
    assert m, f"no details row for {file_id}"
    return m.group(0)


def test_names_and_metadata_are_escaped(files_api, clean_db):
    fid = _upload(files_api, b"G1 X1\n", "<img src=x onerror=alert(1)>.gcode")
    set_result(clean_db, fid, "processed", metadata={"format": "gcode", "producer": {"name": "<script>alert(2)</script>"},
                                                      "x-extra": "\"><b>bold</b>"})
    html = files_api.get("/").get_data(as_text=True)
    assert "<img src=x" not in html and "<script>alert" not in html and "<b>bold" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;.gcode" in html and "&lt;script&gt;alert(2)&lt;/script&gt;" in html
    parser = _Inline()
    parser.feed(html)
    assert parser.problems == []


def test_csp_allows_only_the_apps_own_assets(files_api, clean_db):
    _upload(files_api, b"G1 X1\n", "a.gcode")
    for path in ("/", "/ui/files"):
        resp = files_api.get(path)
        assert resp.headers["Content-Security-Policy"] == CSP
        assert resp.headers["X-Frame-Options"] == "DENY"
    directives = dict(d.strip().split(" ", 1) for d in CSP.split(";"))
    assert directives["default-src"] == "'none'"
    for name in ("script-src", "style-src", "img-src", "connect-src", "form-action"):
        assert directives[name] == "'self'", name
    assert "unsafe-inline" not in CSP and "unsafe-eval" not in CSP and "http" not in CSP
    parser = _Inline()
    parser.feed(files_api.get("/").get_data(as_text=True))
    assert parser.problems == []
    assert sorted(parser.assets) == ["/static/app.css", "/static/app.js", "/static/favicon.svg"]
    types = {"/static/app.css": "text/css", "/static/app.js": "text/javascript", "/static/favicon.svg": "image/svg+xml"}
    for asset, mimetype in types.items():
        resp = files_api.get(asset)
        assert resp.status_code == 200 and resp.mimetype == mimetype, asset
        assert resp.headers["Content-Security-Policy"] == CSP
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        resp.close()
    script = files_api.get("/static/app.js").get_data(as_text=True)
    assert "innerHTML" not in script and "eval(" not in script


def test_upload_form_names_what_files_api_accepts(files_api):
    from pipeline_core.formats import EXTENSIONS

    html = files_api.get("/").get_data(as_text=True)
    hint = re.search(r'<p id="upload-hint"[^>]*>(.*?)</p>', html, re.S).group(1)
    assert all(ending in hint.split() or f"{ending};" in hint.split() for ending in EXTENSIONS), hint
    accept = re.search(r'accept="([^"]+)"', html).group(1).split(",")
    assert ".gz" in accept and ".gcode" in accept and ".stl" in accept and ".3mf" in accept
    assert all("." + e.rsplit(".", 1)[1] in accept for e in EXTENSIONS)


def test_fragment_filters_and_pages(files_api, clean_db):
    ids = [_upload(files_api, b"G1 X1\n", f"p{i}.gcode") for i in range(5)]
    set_result(clean_db, ids[0], "processed", metadata={"format": "gcode"})
    frag = files_api.get("/ui/files?limit=2").get_data(as_text=True)
    assert "<html" not in frag and frag.count('<tr class="file"') == 2
    assert f'id="file-{ids[4]}"' in frag and f'id="file-{ids[3]}"' in frag
    older = re.search(r'<a rel="next" href="([^"]+)"', frag).group(1).replace("&amp;", "&")
    assert older.startswith("/?") and "cursor=" in older and "limit=2" in older
    page2 = files_api.get(older).get_data(as_text=True)
    assert f'id="file-{ids[2]}"' in page2 and f'id="file-{ids[4]}"' not in page2
    assert "Newest files" in page2
    poll = re.search(r'data-poll-url="([^"]+)"', page2).group(1).replace("&amp;", "&")
    assert poll.startswith("/ui/files?") and "cursor=" in poll, "the script polls the page it shows"
    processed = files_api.get("/?status=processed").get_data(as_text=True)
    assert processed.count('<tr class="file"') == 1 and 'aria-current="page">Processed' in processed
    assert "No files with status failed" in files_api.get("/ui/files?status=failed").get_data(as_text=True)
    assert_problem(files_api.get("/ui/files?status=bogus"), 400, "status")
    assert_problem(files_api.get("/?limit=0"), 400, "limit")
    assert_problem(files_api.get("/?cursor=forged"), 400, "cursor")


def test_display_rules():
    assert web.hours_minutes(1479) == "0:25" and web.hours_minutes(342521) == "95:09" and web.hours_minutes(29) == "0:00"
    assert web.part_size({"min": [0, 0, 0], "max": [10, 20.04, 5]}) == "10.0 \u00d7 20.0 \u00d7 5.0"
    assert web.part_size({"max": [None, None, 5]}) == "\u2014"
    assert web.part_size(None) == "\u2014"
    assert web.producer_text({"name": "PrusaSlicer", "version": "2.9.1"}) == "PrusaSlicer 2.9.1"
    assert web.producer_text({"name": "Cura"}) == "Cura" and web.producer_text(None) == "\u2014"
    row = web.row_for({"id": "x", "status": "processed", "metadata": {"print_time_s": float("nan"), "layer_count": True,
                                                                        "unknown_key": {"a": [1, 2]}}})
    assert row.print_time == "\u2014" and row.layers == "\u2014" and row.filament_m == "\u2014"
    assert ("unknown_key", "a: 1, 2") in row.details


def test_every_sample_shows_the_facts_its_metadata_has(files_api, clean_db, database_url, samples_dir):
    """Done-when of the issue: each processed sample of ../shared/samples (metadata as the extractor finds it)
    shows its facts in the row's columns and every metadata field in its details; each failed one its reason."""
    from markupsafe import escape  # what Jinja's autoescape does

    from tools.bench_list_api import fill_database

    count = fill_database(database_url, samples_dir)
    items = files_api.get("/v1/files?limit=100").get_json()["items"]
    html = files_api.get("/?limit=100").get_data(as_text=True)
    assert len(items) == count and html.count('<tr class="file"') == count
    processed = [i for i in items if i["status"] == "processed"]
    assert len(processed) >= 20, "most samples are good files"
    for item in items:
        row, details = _row(html, item["id"]), _details(html, item["id"])
        meta = item["metadata"] or {}
        if item["status"] == "failed":
            assert escape(item["error"]) in row, item["filename"]
            continue
        cells = {
            "print_time_s": lambda v: f">{web.hours_minutes(v)}<",
            "layer_count": lambda v: f">{v:,}<",
            "filament_used_mm": lambda v: f"{v / 1000:,.2f} m",
            "filament_used_g": lambda v: f"{v:,.1f} g",
            "producer": lambda v: escape(web.producer_text(v)),
            "bbox_mm": lambda v: web.part_size(v),
        }
        for key, cell in cells.items():
            if key in meta:
                assert cell(meta[key]) in row, (item["filename"], key)
        for key in meta:
            label = web.FIELD_LABELS.get(key, (key, ""))[0]
            assert f"<dt>{escape(label)}</dt>" in details, (item["filename"], key)
