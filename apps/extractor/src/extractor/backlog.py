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

Every replica reports the same values; aggregate with ``max``.
"""

from __future__ import annotations

import logging
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


class BacklogCollector(Collector):
    """Collects the gauges of the module doc from ``engine`` on every scrape."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

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
            counts, oldest, redriven, unfinished, unfinished_oldest = self._query()
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


def install(engine: Engine) -> BacklogCollector:
    """Register a ``BacklogCollector`` on the default registry (replacing one installed before)."""
    global _installed
    if _installed is not None:
        REGISTRY.unregister(_installed)
    _installed = BacklogCollector(engine)
    REGISTRY.register(_installed)
    return _installed

