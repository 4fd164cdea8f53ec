"""The pipeline's backlog as Prometheus gauges, read from the database at scrape time.

What Pub/Sub's own metrics cannot show: a file whose notification was lost
has no message anywhere, only a ``files`` row without a result. The
extractor (always running, scraped by Managed Prometheus through the chart's
PodMonitoring) exports, per scrape, with one bounded query each:

- ``pipeline_pending_files{older_than_seconds}``: stored files without a
  result for their generation whose upload finished more than N seconds ago
  (N in ``AGE_THRESHOLDS``; cumulative, like a histogram's ``le``);
- ``pipeline_pending_oldest_age_seconds``: age of the oldest such file (0
  when none): the signal of infra/monitoring.py's ``pending_age`` alert;
- ``pipeline_pending_redriven_files``: pending files the reconciler has
  re-driven at least once;
- ``pipeline_unfinished_uploads`` / ``pipeline_unfinished_upload_oldest_age_seconds``:
  rows without a generation (uploads running, or left by a crashed files-api
  worker until the sweep removes them);
- ``pipeline_backlog_up``: 1 when the query answered within
  ``QUERY_TIMEOUT_MS``, else 0 (then the other series are absent, not 0).

Every replica reports the same values; aggregate with ``max``. The queries run
on the collector's own one-connection engine (a scrape never takes a
connection the message handlers need) and their answer is reused for
``CACHE_SECONDS`` (scrapes come every 30 s in the cluster, more often from a
person with curl).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

from prometheus_client.core import REGISTRY, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select, text

from extractor.reconcile import pending_condition
from pipeline_core.models import File

log = logging.getLogger(__name__)

#: Age thresholds of ``pipeline_pending_files``, seconds.
AGE_THRESHOLDS = (0, 60, 300, 900, 3600, 21600)
#: Bound of the scrape's queries (Postgres ``statement_timeout``), milliseconds.
QUERY_TIMEOUT_MS = 2000
#: How long one answer of the database is reused, seconds.
CACHE_SECONDS = 5.0


class BacklogCollector(Collector):
    """Collects the gauges of the module doc from ``engine`` on every scrape."""

    def __init__(self, engine: Engine, *, cache_seconds: float = CACHE_SECONDS) -> None:
        self.engine = engine
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._cached: tuple[float, tuple[list[int], float, int, int, float]] | None = None

    def _answer(self) -> tuple[list[int], float, int, int, float]:
        with self._lock:
            if self._cached is not None and time.monotonic() - self._cached[0] < self.cache_seconds:
                return self._cached[1]
            answer = self._query()
            self._cached = (time.monotonic(), answer)
            return answer

    def _query(self) -> tuple[list[int], float, int, int, float]:
        age = func.extract("epoch", func.now() - File.updated_at)
        pending = select(
            *[func.count().filter(age > threshold) for threshold in AGE_THRESHOLDS],
            func.coalesce(func.max(age), 0),
            func.count().filter(File.redrive_count > 0),
        ).where(pending_condition())
        unfinished = select(func.count(), func.coalesce(func.max(func.extract("epoch", func.now() - File.created_at)), 0)
                            ).where(File.generation.is_(None))
        with self.engine.connect() as conn:
            conn.execute(text(f"SET LOCAL statement_timeout = {QUERY_TIMEOUT_MS}"))
            row = conn.execute(pending).one()
            unfinished_row = conn.execute(unfinished).one()
        n = len(AGE_THRESHOLDS)
        return list(row[:n]), float(row[n]), int(row[n + 1]), int(unfinished_row[0]), float(unfinished_row[1])

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("pipeline_backlog_up", "1 when the backlog query answered within its bound.")
        try:
            counts, oldest, redriven, unfinished, unfinished_oldest = self._answer()
        except Exception as exc:  # noqa: BLE001 - a scrape never fails because the database does
            log.warning("backlog query failed: %s", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        by_age = GaugeMetricFamily("pipeline_pending_files",
                                   "Stored files without a result whose upload finished more than N seconds ago.",
                                   labels=["older_than_seconds"])
        for threshold, count in zip(AGE_THRESHOLDS, counts):
            by_age.add_metric([str(threshold)], count)
        yield by_age
        yield GaugeMetricFamily("pipeline_pending_oldest_age_seconds",
                                "Seconds since the oldest pending file's upload finished (0: none pending).", value=oldest)
        yield GaugeMetricFamily("pipeline_pending_redriven_files",
                                "Pending files whose notification the reconciler re-drove at least once.", value=redriven)
        yield GaugeMetricFamily("pipeline_unfinished_uploads",
                                "files rows without a generation (uploads running or left by a crash).", value=unfinished)
        yield GaugeMetricFamily("pipeline_unfinished_upload_oldest_age_seconds",
                                "Seconds since the oldest unfinished upload row was created (0: none).",
                                value=unfinished_oldest)


_installed: BacklogCollector | None = None


def install(database_url: str) -> BacklogCollector:
    """Register a ``BacklogCollector`` with its own one-connection engine on ``database_url`` on the
    default registry (replacing, and disposing of, one installed before)."""
    from pipeline_core.db import make_engine

    global _installed
    if _installed is not None:
        REGISTRY.unregister(_installed)
        _installed.engine.dispose()
    _installed = BacklogCollector(make_engine(database_url, pool_size=1, statement_timeout_ms=QUERY_TIMEOUT_MS))
    REGISTRY.register(_installed)
    return _installed

