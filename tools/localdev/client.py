"""A small files-api client (``requests``) shared by ``make demo`` and the end-to-end test.

Speaks the ``/v1/files`` contract of ``apps/files-api`` (OpenAPI at
``/openapi.json``): ``POST /v1/files`` (multipart field ``file``) -> 201 and
the file resource; ``GET /v1/files/{id}`` -> the resource, whose ``status`` is
``pending`` until the extractor has a result, then ``processed`` (with
``metadata``) or ``failed`` (with ``error``). Errors are RFC 9457
problem+json documents with a ``detail``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

#: The sample corpus beside the repository (see its MANIFEST.tsv).
DEFAULT_SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples"
#: Files in the corpus folder that are not samples.
NOT_SAMPLES = frozenset({"MANIFEST.tsv", "README.md"})
#: Statuses after which the extractor will not change a file any more.
FINAL = frozenset({"processed", "failed"})


class ApiError(RuntimeError):
    """files-api answered with an error status.

    Attributes:
        status: the HTTP status code. detail: the problem's ``detail`` (or the body).
    """

    def __init__(self, what: str, status: int, detail: str) -> None:
        super().__init__(f"{what}: HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class Upload:
    """The outcome of uploading one sample: ``file`` (the 201 resource) or ``rejected`` (the ``ApiError``)."""

    path: str
    file: dict[str, Any] | None = None
    rejected: ApiError | None = None


def sample_files(samples: Path = DEFAULT_SAMPLES) -> list[Path]:
    """Every sample file under ``samples`` (recursively, sorted), without MANIFEST.tsv / README.md.

    Raises:
        FileNotFoundError: ``samples`` is not a folder.
    """
    if not samples.is_dir():
        raise FileNotFoundError(f"sample folder {samples} not found (expected ../shared/samples beside the repository)")
    return sorted(p for p in samples.rglob("*") if p.is_file() and p.name not in NOT_SAMPLES)


def _detail(resp: requests.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:500]
    return str(body.get("detail") or body.get("title") or body) if isinstance(body, dict) else str(body)


class FilesApi:
    """Client of one files-api base URL (``http://127.0.0.1:8080``).

    Args:
        base_url: scheme, host and port of the public listener; no trailing path.
        ops_url: the same for the ops listener (``http://127.0.0.1:8082``), where
            ``/readyz`` answers; None: ``ready`` asks the public ``/healthz``.
        timeout: seconds per HTTP request.
    """

    def __init__(self, base_url: str, *, ops_url: str | None = None, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.ops_url = ops_url.rstrip("/") if ops_url else None
        self.timeout = timeout
        self.session = requests.Session()

    @property
    def ready_url(self) -> str:
        """What ``ready`` asks: ``<ops_url>/readyz``, or ``<base_url>/healthz`` without an ops URL."""
        return f"{self.ops_url}/readyz" if self.ops_url else f"{self.base_url}/healthz"

    def ready(self) -> bool:
        """True when ``ready_url`` answers 200 (``/readyz``: database and bucket reachable)."""
        try:
            return self.session.get(self.ready_url, timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def upload(self, path: Path, name: str | None = None) -> dict[str, Any]:
        """``POST /v1/files`` with ``path`` as multipart field ``file`` (named ``name``, default its file name).

        Raises:
            ApiError: any status but 201 (e.g. 400 for an empty file, 415 unsupported type).
        """
        with path.open("rb") as fh:
            resp = self.session.post(f"{self.base_url}/v1/files", files={"file": (name or path.name, fh)},
                                     timeout=self.timeout)
        if resp.status_code != 201:
            raise ApiError(f"upload of {path}", resp.status_code, _detail(resp))
        return resp.json()

    def get(self, file_id: str) -> dict[str, Any]:
        """``GET /v1/files/{id}``. Raises ``ApiError`` unless 200."""
        resp = self.session.get(f"{self.base_url}/v1/files/{file_id}", timeout=self.timeout)
        if resp.status_code != 200:
            raise ApiError(f"GET file {file_id}", resp.status_code, _detail(resp))
        return resp.json()

    def list_all(self, status: str | None = None) -> list[dict[str, Any]]:
        """Every file (all pages of ``GET /v1/files``, 100 per page), newest first."""
        items: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": 100}
        if status:
            params["status"] = status
        while True:
            resp = self.session.get(f"{self.base_url}/v1/files", params=params, timeout=self.timeout)
            if resp.status_code != 200:
                raise ApiError("GET /v1/files", resp.status_code, _detail(resp))
            page = resp.json()
            items += page["items"]
            if not page.get("next_cursor"):
                return items
            params["cursor"] = page["next_cursor"]

    def upload_all(self, paths: Iterable[Path], root: Path) -> list[Upload]:
        """Upload each path; a rejected upload is recorded, not raised. ``Upload.path`` is relative to ``root``."""
        results = []
        for path in paths:
            rel = path.relative_to(root).as_posix()
            try:
                results.append(Upload(rel, file=self.upload(path)))
            except ApiError as exc:
                results.append(Upload(rel, rejected=exc))
        return results

    def wait_final(self, file_ids: Iterable[str], timeout: float, *, interval: float = 0.5) -> dict[str, dict[str, Any]]:
        """Poll until every file is ``processed`` or ``failed``; return ``{id: resource}``.

        Raises:
            TimeoutError: some files are still ``pending`` after ``timeout``
                seconds; the message lists them.
        """
        pending = list(dict.fromkeys(file_ids))
        done: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout
        while pending:
            still = []
            for file_id in pending:
                view = self.get(file_id)
                if view["status"] in FINAL:
                    done[file_id] = view
                else:
                    still.append(file_id)
            pending = still
            if pending:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{len(pending)} file(s) still pending after {timeout:g}s: {', '.join(pending)}")
                time.sleep(interval)
        return done
