"""``assert_problem``: a files-api response is an RFC 9457 problem (shared by the files-api tests)."""

from __future__ import annotations

PROBLEM_JSON = "application/problem+json"


def assert_problem(resp, status: int, *fragments: str) -> dict:
    """Check ``resp`` (a Flask test response) is a ``status`` problem whose ``detail`` holds ``fragments``.

    RFC 9457 section 3.1 members: ``type`` (``about:blank``), ``title``,
    ``status`` (same as the HTTP status), ``detail``, ``instance`` (the
    request path); plus ``request_id``, equal to the ``X-Request-Id`` header.
    Returns the body.
    """
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == PROBLEM_JSON
    body = resp.get_json()
    assert body["type"] == "about:blank" and body["title"] and body["status"] == status, body
    assert body["detail"] and body["instance"] == resp.request.path, body
    assert body["request_id"] == resp.headers["X-Request-Id"]
    for fragment in fragments:
        assert fragment in body["detail"], body
    return body
