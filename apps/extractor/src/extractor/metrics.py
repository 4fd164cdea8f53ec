"""The extractor's Prometheus metrics (prometheus_client, default registry).

The extractor runs one gunicorn worker (see ``gunicorn_conf``), so the
default in-process registry is complete: no multiprocess mode needed.

- ``extractor_messages_total{outcome}``: messages finished, by ``Outcome``
  value (processed, failed, duplicate, ignored, invalid, gone, retry);
- ``extractor_processing_seconds{outcome}``: wall time from callback start
  to ack/nack, seconds;
- ``extractor_messages_in_flight``: messages whose callback is running;
- ``extractor_download_bytes_total``: object bytes downloaded;
- ``extractor_dead_lettered_total``: messages nacked on their last delivery
  attempt (``MAX_DELIVERY_ATTEMPTS``), which Pub/Sub forwards to the
  dead-letter topic.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from extractor.outcomes import Outcome

MESSAGES = Counter(
    "extractor_messages",
    "Pub/Sub messages handled by the extractor, by outcome.",
    ["outcome"],
)
PROCESSING_SECONDS = Histogram(
    "extractor_processing_seconds",
    "Seconds from the start of a message's callback to its ack or nack, by outcome.",
    ["outcome"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
IN_FLIGHT = Gauge("extractor_messages_in_flight", "Messages whose callback is running now.")
DOWNLOAD_BYTES = Counter("extractor_download_bytes", "Object bytes downloaded from GCS.")
DEAD_LETTERED = Counter("extractor_dead_lettered", "Messages nacked on their last delivery attempt (sent to the dead-letter topic).")

# Export every outcome from the start (a zero is information; a missing series is not).
for _outcome in Outcome:
    MESSAGES.labels(outcome=_outcome.value)
    PROCESSING_SECONDS.labels(outcome=_outcome.value)
