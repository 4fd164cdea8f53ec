"""files-api: upload print files to GCS, record them in Postgres, serve their metadata.

Entry points: ``files_api.wsgi:app`` (gunicorn), ``files_api.app.create_app``, ``files-api-sweep``. See docs/services.md.
"""
