"""The page at ``/`` in a real browser against the running local platform.

Debian's ``chromium`` (``/usr/bin/chromium``), driven by Playwright's Python
package over CDP -- no browser download, ever (``executable_path``). The
local platform is the one ``make dev`` runs (``localplatform``: free ports,
own data folder, extractor included). Through the page, without a reload:

- two real samples go in through the file chooser (several files at once),
  each with its own progress bar, and turn ``processed`` in their rows by the
  page's own polling; each row shows the sample's print time (h:mm, from
  MANIFEST.tsv), its other facts as columns and, for the sample with an
  embedded thumbnail, the preview image (``thumbnail_url``);
- a file dropped on the drop zone with the wrong type and an empty file are
  refused with the server's problem message shown in place, and so is a file
  too large for a second files-api on the same platform that takes 1 MiB;
- a row opens its formatted metadata with download and delete, by keyboard;
  delete removes the row;
- at 1400 px and at 375 px nothing overflows sideways, every control has an
  accessible name, and the console shows no error other than the browser's own
  "Failed to load resource" line for each refused upload's 4xx answer.

Screenshots of both widths go to ``build/`` (docs/services.md shows one).
Chromium missing fails the test naming the Debian package (``make test``
installs it as root); it never skips.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import requests

from localplatform import REPO_ROOT, LocalPlatform

from tools.devstack import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
#: Quiet, local-only Chromium: no GPU, no QUIC, no first-run UI, no background fetches, updates or sync.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
BUILD = REPO_ROOT / "build"
#: Seconds for an upload to turn processed in its row (the extractor's pull + extraction).
PROCESSED_TIMEOUT_MS = 120_000
WITH_THUMBNAIL = "prusaslicer/full_m73_layers_0.2mm_PLA_MK3SMMU2S_11m.gcode"
PLAIN = "cura/Kreistest.gcode"
EMPTY = "broken/fdn_all_empty.gcode"


def _chromium() -> str:
    path = CHROMIUM if os.path.isfile(CHROMIUM) else shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail(f"Chromium not found at {CHROMIUM}: install the Debian package chromium "
                    "(apt-get update && apt-get install -y chromium; `make test` does it as root)")
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's Chromium under Playwright (no downloaded browser)."""
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _print_times(manifest: ModuleType) -> dict[str, float]:
    with open(manifest.MANIFEST, newline="") as fh:
        return {r["path"]: float(r["print_time_s"]) for r in csv.DictReader(fh, delimiter="\t") if r["print_time_s"]}


def _h_mm(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60}:{minutes % 60:02d}"


class Console:
    """Console errors and uncaught page errors of one page."""

    def __init__(self, page) -> None:  # noqa: ANN001
        self.errors: list[str] = []
        page.on("console", lambda msg: self.errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))

    def unexpected(self, allowed_statuses: tuple[int, ...] = ()) -> list[str]:
        allowed = re.compile(r"^Failed to load resource: the server responded with a status of "
                             rf"({'|'.join(map(str, allowed_statuses)) or 'none'}) ")
        return [e for e in self.errors if not allowed.match(e)]


def _no_sideways_overflow(page) -> None:  # noqa: ANN001
    width = page.evaluate("document.documentElement.clientWidth")
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"page scrolls sideways at {width} px ({scroll} px wide)"


def _unlabelled_controls(page) -> list[str]:  # noqa: ANN001
    """Controls without an accessible name (label, aria-label/labelledby, or text)."""
    return page.evaluate("""() => Array.from(document.querySelectorAll('a[href], button, input, select, textarea, progress'))
        .filter(el => !el.hidden && el.offsetParent !== null)
        .filter(el => !((el.labels && el.labels.length) || el.getAttribute('aria-label')
                        || el.getAttribute('aria-labelledby') || el.textContent.trim()))
        .map(el => el.outerHTML.slice(0, 120))""")


def test_upload_watch_processed_and_refusals_in_a_real_browser(platform: LocalPlatform, manifest: ModuleType,
                                                               browser, tmp_path: Path) -> None:
    base = platform.cfg.files_api_url
    samples = manifest.SAMPLES
    times = _print_times(manifest)
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    console = Console(page)
    page.goto(base + "/")
    assert page.title() == "Print files"
    page.evaluate("window.__notReloaded = true")  # gone if anything reloads the page

    # Keyboard: the skip link comes first, the file chooser is reachable by Tab.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "file-input":
            break
    else:
        pytest.fail("the file chooser is not reachable by Tab")

    # Two samples at once through the file chooser: one progress bar each.
    page.set_input_files("#file-input", [str(samples / WITH_THUMBNAIL), str(samples / PLAIN)])
    items = page.locator("#upload-list li.upload-item")
    page.locator("#upload-list li.upload-item.ok").nth(1).wait_for(timeout=60_000)
    assert items.count() == 2
    assert page.locator("#upload-list li.upload-item progress").count() == 2
    assert page.locator("#upload-list progress[value='100']").count() == 2

    # A wrong type dropped on the drop zone and an empty file: the server's message, in place.
    drop = page.evaluate_handle("""() => { const dt = new DataTransfer();
        dt.items.add(new File(['just notes'], 'notes.txt', {type: 'text/plain'})); return dt; }""")
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": drop})
    page.set_input_files("#file-input", str(samples / EMPTY))
    refused = page.locator("#upload-list li.upload-item.error")
    refused.nth(1).wait_for(timeout=30_000)
    messages = {refused.nth(i).locator(".upload-name").inner_text(): refused.nth(i).locator(".upload-message").inner_text()
                for i in range(refused.count())}
    assert set(messages) == {"notes.txt", "fdn_all_empty.gcode"}, messages
    assert ".txt" in messages["notes.txt"] or "not a supported" in messages["notes.txt"], messages
    assert "empty" in messages["fdn_all_empty.gcode"], messages
    assert page.locator("#upload-list .upload-message[role=alert]").count() == 2

    # Both rows turn processed by the page's polling, without a reload.
    rows = {}
    for rel in (WITH_THUMBNAIL, PLAIN):
        name = Path(rel).name
        row = page.locator("tr.file", has=page.locator("button.open", has_text=name))
        row.and_(page.locator('[data-status="processed"]')).wait_for(timeout=PROCESSED_TIMEOUT_MS)
        rows[rel] = row
    assert page.evaluate("window.__notReloaded === true"), "the page was reloaded"

    for rel, row in rows.items():
        assert row.locator("td.print-time").inner_text() == _h_mm(times[rel]), rel
        assert row.locator(".status").inner_text() == "processed"
        assert row.locator("td.layers").inner_text() != "\u2014", rel
    assert rows[PLAIN].locator("td.producer").inner_text() == "Cura_SteamEngine 4.10.0"
    assert rows[PLAIN].locator("td.filament").inner_text().split() == ["8.36", "m", "\u2014"]
    assert rows[PLAIN].locator("td.size").inner_text() == "165.0 \u00d7 165.0 \u00d7 9.0"

    # The preview image the API's thumbnail_url names (PNG from the G-code's embedded thumbnail), loaded
    # in the row; a file without one has no image.
    file_id = rows[WITH_THUMBNAIL].get_attribute("data-id")
    thumb = rows[WITH_THUMBNAIL].locator("td.thumb img")
    thumb.wait_for(timeout=30_000)
    assert requests.get(base + thumb.get_attribute("src"), timeout=30).headers["Content-Type"] == "image/png"
    deadline = time.monotonic() + 30
    while not page.evaluate(f"document.querySelector('#file-{file_id} td.thumb img').naturalWidth > 0"):
        assert time.monotonic() < deadline, "the thumbnail did not load in the row"
        time.sleep(0.2)
    assert rows[PLAIN].locator("td.thumb img").count() == 0

    # A row opens its details by keyboard: formatted metadata, download and delete.
    button = rows[PLAIN].locator("button.open")
    button.focus()
    page.keyboard.press("Enter")
    assert button.get_attribute("aria-expanded") == "true"
    details = page.locator(f"#{button.get_attribute('aria-controls')}")
    assert details.is_visible()
    text = details.inner_text()
    assert "G-code flavour" in text and "Marlin" in text and "0:24:39" in text and "{" not in text
    download = details.locator("a", has_text="Download")
    assert download.get_attribute("href").endswith("/content")
    assert requests.get(base + download.get_attribute("href"), timeout=30).content == (samples / PLAIN).read_bytes()

    assert _unlabelled_controls(page) == []
    _no_sideways_overflow(page)
    BUILD.mkdir(exist_ok=True)
    page.screenshot(path=str(BUILD / "page-1400.png"), full_page=True)

    narrow = context.new_page()
    narrow_console = Console(narrow)
    narrow.set_viewport_size({"width": 375, "height": 812})
    narrow.goto(base + "/")
    narrow.locator('tr.file[data-status="processed"]').first.wait_for()
    assert narrow.locator("tr.file td.print-time").first.is_visible()
    _no_sideways_overflow(narrow)
    assert _unlabelled_controls(narrow) == []
    narrow.screenshot(path=str(BUILD / "page-375.png"), full_page=True)
    assert narrow_console.unexpected() == []
    narrow.close()

    # Delete from the details: confirmed, the row goes, the API has no such file any more.
    file_id = rows[PLAIN].get_attribute("data-id")
    page.once("dialog", lambda dialog: dialog.accept())
    details.locator("button.delete").click()
    rows[PLAIN].wait_for(state="detached", timeout=30_000)
    assert requests.get(f"{base}/v1/files/{file_id}", timeout=30).status_code == 404
    assert page.evaluate("window.__notReloaded === true")

    assert console.unexpected(allowed_statuses=(400, 415)) == []
    context.close()


@pytest.fixture
def small_files_api(platform: LocalPlatform, tmp_path: Path) -> Iterator[str]:
    """A second files-api (as a second pod would be) on the platform's database and bucket, taking at most 1 MiB."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": platform.cfg.database_url, "GOOGLE_CLOUD_PROJECT": platform.cfg.project,
           "UPLOADS_BUCKET": platform.cfg.stack.names.uploads_bucket, "STORAGE_EMULATOR_HOST": platform.cfg.storage_host,
           "HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": "1", "MAX_UPLOAD_BYTES": str(1024 * 1024)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = tmp_path / "small-files-api.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(REPO_ROOT / "apps/files-api/gunicorn.conf.py")],
                                cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if requests.get(f"{base}/healthz", timeout=5).ok:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_too_large_file_shows_the_servers_message(small_files_api: str, browser, tmp_path: Path) -> None:
    big = tmp_path / "too-big.gcode"
    big.write_bytes(b"G1 X1 Y1 ; filler line\n" * (3 * 1024 * 1024 // 23))
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    console = Console(page)
    page.goto(small_files_api + "/")
    page.set_input_files("#file-input", str(big))
    item = page.locator("#upload-list li.upload-item.error")
    item.wait_for(timeout=60_000)
    message = item.locator(".upload-message").inner_text()
    assert "exceeds the limit of 1048576 bytes" in message, message
    assert console.unexpected(allowed_statuses=(413,)) == []
    context.close()
