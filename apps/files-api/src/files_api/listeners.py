"""Which endpoints answer on which listener: the public port and the cluster-only ops port.

gunicorn binds two TCP listeners (``gunicorn.conf.py``): ``PORT``, where the load
balancer sends clients, and ``OPS_PORT``, which only the cluster reaches (kubelet
probes, Managed Service for Prometheus; the chart's Service and HTTPRoute never name
it and its NetworkPolicy admits only the scrapers). One app serves both:

- on ``OPS_PORT``: ``OPS_ENDPOINTS`` only (``/healthz``, ``/readyz`` with its
  dependency details, ``/metrics``); anything else is a 404;
- on any other port: everything but ``INTERNAL_ENDPOINTS`` (``/readyz``, ``/metrics``
  answer 404 there, the same problem body as an unknown path). ``/healthz`` stays
  public: the load balancer's health check and the uptime check use it, and it
  says nothing about dependencies.

A request's listener is its WSGI ``SERVER_PORT``. For a TCP bind gunicorn sets it
from the listening socket's own address (``gunicorn.http.wsgi.create``: the server
address is ``getsockname()`` of the listener, the ``Host`` header is used only for
Unix sockets), so a client cannot choose it. A request with no ``SERVER_PORT`` or
another one is public: in doubt, nothing internal is shown.
"""

from __future__ import annotations

from flask import Flask, abort, request

#: Endpoints served only on ``OPS_PORT`` (Flask endpoint names of ``ops.bp``).
INTERNAL_ENDPOINTS = frozenset({"ops.readyz", "ops.metrics_endpoint"})
#: Everything the ops listener serves.
OPS_ENDPOINTS = INTERNAL_ENDPOINTS | {"ops.healthz"}


def on_ops_listener(environ: dict, ops_port: int) -> bool:
    """True when the WSGI request ``environ`` arrived on the ops listener (``SERVER_PORT == ops_port``)."""
    return str(environ.get("SERVER_PORT", "")) == str(ops_port)


def install(app: Flask, ops_port: int) -> None:
    """Refuse, with a 404 problem, what ``app`` must not serve on the listener a request came in on.

    Runs as a ``before_request`` hook after URL matching, so the decision uses the
    endpoint Flask resolved (not the raw path: ``/metrics/``, percent-encoding and
    the like resolve to the same endpoint or to none).
    """

    @app.before_request
    def _listener_guard() -> None:
        internal = on_ops_listener(request.environ, ops_port)
        endpoint = request.endpoint
        if internal and endpoint not in OPS_ENDPOINTS:
            abort(404)
        if not internal and endpoint in INTERNAL_ENDPOINTS:
            abort(404)
