"""The extractor's small HTTP app: ``/healthz``, ``/readyz``, ``/metrics``.

Served by gunicorn on ``PORT`` (default 8081) next to the Pub/Sub worker it
reports on (``extractor.gunicorn_conf`` starts the worker in the same
process). Probe answers are JSON ``{"status": "ok"|"unavailable", "detail": ...}``
with 200 or 503.

- ``/healthz`` (liveness): 503 only when the streaming pull died on its own;
- ``/readyz`` (readiness): 503 until the worker pulls, while it stops, or
  while the database does not answer;
- ``/metrics``: Prometheus text exposition of the default registry, with the
  pipeline's backlog read from the database at scrape time (``extractor.backlog``).
"""

from __future__ import annotations

from flask import Flask, Response, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from extractor import backlog
from extractor.config import load_extractor_settings
from extractor.service import ExtractorService, Probe
from pipeline_core.log import configure_logging

#: Key of the ``ExtractorService`` in ``app.extensions``.
EXTENSION_KEY = "extractor"


def create_app(service: ExtractorService | None = None) -> Flask:
    """Build the Flask app around ``service`` (default: one built from the environment, not started).

    Raises:
        pipeline_core.settings.SettingsError: the environment is incomplete
            (only when ``service`` is None).
    """
    if service is None:
        settings = load_extractor_settings()
        configure_logging(settings.log_level)
        service = ExtractorService(settings)
    app = Flask("extractor")
    app.extensions[EXTENSION_KEY] = service
    backlog.install(service.settings.database_url)

    def answer(probe: Probe) -> tuple[Response, int]:
        body = {"status": "ok" if probe.ok else "unavailable", "detail": probe.detail}
        return jsonify(body), 200 if probe.ok else 503

    @app.get("/healthz")
    def healthz() -> tuple[Response, int]:
        return answer(service.liveness())

    @app.get("/readyz")
    def readyz() -> tuple[Response, int]:
        return answer(service.readiness())

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)

    return app


def service_of(app: Flask) -> ExtractorService:
    """The ``ExtractorService`` ``create_app`` attached to ``app``."""
    return app.extensions[EXTENSION_KEY]
