"""Identity-Aware Proxy (IAP) JWT verification.

When IAP fronts the load balancer it signs each request it lets through with
an ES256 JWT in ``x-goog-iap-jwt-assertion``. The service checks it (defence
in depth: a request that bypassed the LB has none) as Google documents
(https://cloud.google.com/iap/docs/signed-headers-howto): signature against
IAP's public keys, ``aud`` = the backend service's audience, ``iss`` =
``https://cloud.google.com/iap``, and ``exp``/``iat`` with a little clock skew.
Verification is google-auth's ``google.oauth2.id_token.verify_token``.

The expected audience is either exact, ``/projects/<number>/global/backendServices/<id>``,
or bound to the project, ``/projects/<number>/global/backendServices/*``: the
backend service behind a GKE Gateway is created by the Gateway controller after
the deployment, so its numeric id cannot be part of the deployment; the stack
binds the project number and the rest of the form is checked here (docs/edge.md,
"IAP").

The keys are fetched through ``CachingRequest``, which keeps a response for
its ``Cache-Control: max-age`` so a request costs no extra HTTP round trip.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

import google.auth.exceptions
import google.auth.transport
import google.auth.transport.requests
from google.oauth2 import id_token

from .problems import Problem, Unavailable

log = logging.getLogger("files_api.auth")

IAP_HEADER = "x-goog-iap-jwt-assertion"
IAP_ISSUER = "https://cloud.google.com/iap"
CLOCK_SKEW_SECONDS = 30
#: The audiences ``IAP_AUDIENCE`` may name: one global backend service, or every
#: global backend service of one project (``*``).
AUDIENCE_PATTERN = re.compile(r"^/projects/([0-9]+)/global/backendServices/([0-9]+|\*)$")
_MAX_AGE = re.compile(r"max-age=(\d+)")


class CachingRequest(google.auth.transport.Request):
    """A google-auth transport that caches successful GETs by URL for their ``max-age``.

    Args:
        inner: the transport doing real requests (default: requests-based, 5 s timeout).
        default_ttl: seconds to keep a response without ``Cache-Control`` (300).
    """

    def __init__(self, inner: google.auth.transport.Request | None = None, default_ttl: float = 300.0) -> None:
        self._inner = inner or google.auth.transport.requests.Request()
        self._ttl = default_ttl
        self._cache: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def __call__(self, url: str, method: str = "GET", body: Any = None, headers: Any = None,
                 timeout: float | None = None, **kwargs: Any) -> Any:
        if method != "GET":
            return self._inner(url, method=method, body=body, headers=headers, timeout=timeout, **kwargs)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(url)
            if hit and hit[0] > now:
                return hit[1]
        response = self._inner(url, method=method, body=body, headers=headers, timeout=timeout or 5, **kwargs)
        if response.status == 200:
            m = _MAX_AGE.search(response.headers.get("cache-control", "") or "")
            ttl = min(float(m.group(1)), 3600.0) if m else self._ttl
            with self._lock:
                self._cache[url] = (now + ttl, response)
        return response


@dataclass(frozen=True)
class Principal:
    """Who IAP says is calling: ``email`` and ``subject`` (``accounts.google.com:<id>``)."""

    email: str | None
    subject: str | None


class IapVerifier:
    """Checks IAP assertions for one audience.

    Args:
        audience: the expected ``aud`` claim, ``/projects/NUM/global/backendServices/ID``,
            or ``/projects/NUM/global/backendServices/*`` for any global backend
            service of project NUM (:data:`AUDIENCE_PATTERN`).
        public_keys_url: where IAP's keys are (PEM by key id).
        request: google-auth transport used to fetch the keys (cached by default).

    Raises:
        ValueError: ``audience`` is neither form.
    """

    def __init__(self, audience: str, public_keys_url: str, request: google.auth.transport.Request | None = None) -> None:
        match = AUDIENCE_PATTERN.match(audience or "")
        if match is None:
            raise ValueError(f"IAP audience {audience!r} is not /projects/<number>/global/backendServices/<id or *>")
        self.audience = audience
        # The audience google-auth checks (exact), or None when the id is a wildcard
        # (then _audience_ok checks the claim against the project-bound form).
        self._exact = None if match.group(2) == "*" else audience
        self._project_backends = re.compile(
            rf"^/projects/{match.group(1)}/global/backendServices/[0-9]+$")
        self.public_keys_url = public_keys_url
        self._request = request or CachingRequest()

    def verify(self, assertion: str | None) -> Principal:
        """The caller's identity.

        Raises:
            Problem: 401 when the header is missing, or the token is malformed,
                expired, for another audience or issuer, or badly signed; 503
                when IAP's keys cannot be fetched.
        """
        challenge = {"WWW-Authenticate": 'Bearer realm="iap"'}
        if not assertion:
            raise Problem(401, f"missing {IAP_HEADER} header: requests must come through Identity-Aware Proxy",
                          headers=challenge)
        try:
            claims = id_token.verify_token(
                assertion, self._request, audience=self._exact, certs_url=self.public_keys_url,
                clock_skew_in_seconds=CLOCK_SKEW_SECONDS,
            )
        except google.auth.exceptions.TransportError as exc:
            log.error("cannot fetch IAP public keys", extra={"url": self.public_keys_url, "error": str(exc)})
            raise Unavailable("cannot verify the IAP assertion right now (signing keys unavailable)") from exc
        except (ValueError, google.auth.exceptions.GoogleAuthError) as exc:
            log.warning("rejected IAP assertion", extra={"reason": str(exc)})
            raise Problem(401, f"invalid {IAP_HEADER}: {exc}", headers=challenge) from exc
        if claims.get("iss") != IAP_ISSUER:
            raise Problem(401, f"invalid {IAP_HEADER}: issuer {claims.get('iss')!r} is not {IAP_ISSUER}",
                          headers=challenge)
        audience = claims.get("aud")
        if not (isinstance(audience, str) and self._project_backends.match(audience)):
            log.warning("rejected IAP assertion", extra={"reason": f"audience {audience!r}"})
            raise Problem(401, f"invalid {IAP_HEADER}: audience {audience!r} is not {self.audience}",
                          headers=challenge)
        return Principal(email=claims.get("email"), subject=claims.get("sub"))
