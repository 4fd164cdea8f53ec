"""Prometheus metrics of files-api (served at /metrics).

Under gunicorn with several workers, ``PROMETHEUS_MULTIPROC_DIR`` (set by
``gunicorn.conf.py``) makes prometheus_client aggregate the workers' values.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client import REGISTRY as DEFAULT_REGISTRY

REQUESTS = Counter("files_api_http_requests_total", "HTTP requests answered", ["method", "endpoint", "status"])
LATENCY = Histogram(
    "files_api_http_request_duration_seconds", "HTTP request latency in seconds", ["method", "endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
#: Metric children by label values: ``labels()`` builds a key and takes a lock on every call.
_REQUEST_CHILDREN: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def observe_request(method: str, endpoint: str, status: int, seconds: float) -> None:
    """Count one answered request and its latency (``REQUESTS``, ``LATENCY``).

    ``endpoint`` is the route's rule (``/v1/files/<file_id>``), never the raw
    path, so the label set stays bounded.
    """
    key = (method, endpoint, status)
    children = _REQUEST_CHILDREN.get(key)
    if children is None:
        children = (REQUESTS.labels(method, endpoint, str(status)), LATENCY.labels(method, endpoint))
        _REQUEST_CHILDREN[key] = children
    children[0].inc()
    children[1].observe(seconds)


UPLOADS = Counter("files_api_uploads_total", "Upload attempts that reached storage, by outcome", ["outcome"])
UPLOADED_BYTES = Counter("files_api_uploaded_bytes_total", "Bytes of files stored")


def render() -> tuple[bytes, str]:
    """The exposition text and its Content-Type (aggregated over workers in multiprocess mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = DEFAULT_REGISTRY
    return generate_latest(registry), CONTENT_TYPE_LATEST
