"""``set_result``: write an extraction result for a stored file straight to the database (files-api tests)."""

from __future__ import annotations

import json

from sqlalchemy import Engine, text


def set_result(engine: Engine, file_id: str, status: str, metadata=None, error=None) -> None:
    """Record ``status`` (``processed`` | ``failed``) with ``metadata`` / ``error`` for the current
    generation of file ``file_id``, as the extractor's upsert would (the file must be stored)."""
    with engine.begin() as conn:
        row = conn.execute(text("SELECT bucket, object_name, generation FROM files WHERE id = :id"), {"id": file_id}).one()
        conn.execute(
            text("INSERT INTO extraction_results (bucket, object_name, generation, status, metadata, error) "
                 "VALUES (:b, :o, :g, :s, CAST(:m AS jsonb), :e)"),
            {"b": row.bucket, "o": row.object_name, "g": row.generation, "s": status,
             "m": json.dumps(metadata) if metadata is not None else None, "e": error},
        )
