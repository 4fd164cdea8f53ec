"""WSGI entry point for gunicorn: ``gunicorn -c gunicorn.conf.py files_api.wsgi:app``.

Configures JSON logging at ``LOG_LEVEL`` and builds the app from the environment.
"""

from __future__ import annotations

import os

from pipeline_core.log import configure_logging

configure_logging(os.environ.get("LOG_LEVEL", "INFO"))

from .app import create_app  # noqa: E402  (logging first, so import-time warnings are JSON too)

app = create_app()
