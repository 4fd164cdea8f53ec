"""The server-rendered page at ``/``: the latest files and their metadata, for a person to look at."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request

from . import repository
from .problems import Problem
from .schemas import MAX_PAGE_SIZE

bp = Blueprint("web", __name__, template_folder="templates")
PAGE_SIZE = 50


@bp.get("/")
def index() -> str:
    """HTML list of stored files, newest first (``?cursor=`` pages on, ``?status=`` filters)."""
    state = current_app.extensions["files_api"]
    status = request.args.get("status") or None
    if status not in (None, "pending", "processed", "failed"):
        raise Problem(400, f"status must be pending, processed or failed, not {status!r}")
    cursor = request.args.get("cursor") or None
    with state.sessions() as session:
        try:
            files, next_cursor = repository.list_page(session, limit=min(PAGE_SIZE, MAX_PAGE_SIZE),
                                                      cursor=cursor, status=status)
        except repository.BadCursor as exc:
            raise Problem(400, str(exc)) from exc
    return render_template("index.html", files=files, next_cursor=next_cursor, status=status,
                           bucket=state.bucket.name, max_upload_bytes=state.settings.max_upload_bytes)
