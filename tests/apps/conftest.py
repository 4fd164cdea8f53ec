"""Fixtures of the service tests: files-api apps wired to the real local backends.

``files_api_settings`` is a ``FilesApiSettings`` for the session's Postgres
(``database_url``) and fake-gcs-server bucket (``uploads_bucket``);
``make_files_api`` builds an app with overrides (e.g. a small
``max_upload_bytes``); ``files_api`` is a test client of the default app on a
clean database. ``samples_dir`` is the shared corpus of real print files.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

SAMPLES_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "samples"


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    """``<repo>/../shared/samples`` (see its MANIFEST.tsv); skips when absent."""
    if not (SAMPLES_DIR / "MANIFEST.tsv").exists():
        pytest.skip(f"sample print files not found at {SAMPLES_DIR}")
    return SAMPLES_DIR


@pytest.fixture(scope="session")
def files_api_settings(database_url: str, fake_gcs, uploads_bucket: str, gcp_project: str):
    """Settings of a files-api on the session's backends (IAP off, default limits)."""
    from files_api.settings import FilesApiSettings

    return FilesApiSettings(
        database_url=database_url, google_cloud_project=gcp_project, uploads_bucket=uploads_bucket,
        storage_emulator_host=fake_gcs.emulator_host, log_level="DEBUG",
    )


@pytest.fixture
def make_files_api(files_api_settings) -> Callable[..., object]:
    """``make_files_api(**overrides)`` -> a Flask app with those settings changed."""
    from files_api.app import create_app

    apps = []

    def build(iap_request=None, **overrides):
        settings = files_api_settings.model_copy(update=overrides)
        app = create_app(settings, iap_request=iap_request)
        app.config["TESTING"] = True
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.extensions["files_api"].engine.dispose()


@pytest.fixture
def files_api(make_files_api, clean_db):
    """A test client of files-api (default settings) on an empty database."""
    return make_files_api().test_client()
