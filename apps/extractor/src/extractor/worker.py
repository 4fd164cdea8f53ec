"""The streaming-pull loop: leases messages within flow-control bounds, acks or nacks each.

``PullWorker`` wraps ``SubscriberClient.subscribe`` (google-cloud-pubsub,
https://cloud.google.com/pubsub/docs/pull#streamingpull):

- ``FlowControl(max_messages, max_bytes, max_lease_duration)`` bounds how many
  notifications are leased at once; the callbacks run on a thread pool of
  ``max_messages`` threads, so at most that many files are downloaded and
  parsed concurrently. The client extends the leases of running callbacks
  by itself (up to ``max_lease_duration``).
- Each message goes through ``NotificationHandler.handle``; an acking outcome
  acks it (after the result is committed), an exception nacks it.
- ``stop(timeout)`` stops pulling; messages leased but not yet started are
  nacked by the client library; running callbacks get ``timeout`` seconds to
  finish (and ack); those still running then are nacked explicitly
  (``ModifyAckDeadline`` 0) so they are redelivered at once instead of after
  their lease expires. A late ack of such a message is harmless: the result
  upsert is idempotent.
"""

from __future__ import annotations

import concurrent.futures
import enum
import logging
import threading
import time

from google.api_core import exceptions as api_exceptions
from google.cloud import pubsub_v1
from google.cloud.pubsub_v1.subscriber.message import Message
from google.cloud.pubsub_v1.subscriber.scheduler import ThreadScheduler

from extractor import metrics
from extractor.handler import Handled, NotificationHandler
from extractor.outcomes import Outcome, is_transient
from pipeline_core.log import request_context

log = logging.getLogger(__name__)



class WorkerState(str, enum.Enum):
    """Lifecycle of a ``PullWorker``."""

    NEW = "new"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    #: the stream ended by itself with a non-retryable error (e.g. subscription not found).
    FAILED = "failed"


class PullWorker:
    """Pulls ``subscription_path`` and hands each message to ``handler``.

    Args:
        subscription_path: ``projects/<p>/subscriptions/<id>``.
        handler: the per-message logic.
        max_messages: ``FlowControl.max_messages`` and the callback thread count.
        max_bytes: ``FlowControl.max_bytes`` (bytes of leased messages).
        max_lease_seconds: ``FlowControl.max_lease_duration``.
        lease_extension_seconds: ``FlowControl.max_duration_per_lease_extension``
            (10..600): each lease is extended by at most this much, so the
            messages of a worker that died without nacking are redelivered
            within this many seconds.
        subscriber: a ``pubsub_v1.SubscriberClient`` (default: a new one,
            honouring ``PUBSUB_EMULATOR_HOST``); closed by ``stop``.
        max_delivery_attempts: the subscription's dead-letter policy
            ``maxDeliveryAttempts``; a nack on that attempt sends the message
            to the dead-letter topic, so it is counted
            (``extractor_dead_lettered_total``) and logged at ERROR. None: unknown.
    """

    def __init__(
        self,
        *,
        subscription_path: str,
        handler: NotificationHandler,
        max_messages: int,
        max_bytes: int,
        max_lease_seconds: float,
        lease_extension_seconds: float,
        subscriber: pubsub_v1.SubscriberClient | None = None,
        max_delivery_attempts: int | None = None,
    ) -> None:
        self.subscription_path = subscription_path
        self._max_delivery_attempts = max_delivery_attempts
        self._handler = handler
        self._flow_control = pubsub_v1.types.FlowControl(
            max_messages=max_messages,
            max_bytes=max_bytes,
            max_lease_duration=max_lease_seconds,
            max_duration_per_lease_extension=lease_extension_seconds,
        )
        self._threads = max_messages
        self._subscriber = subscriber
        self._future: pubsub_v1.subscriber.futures.StreamingPullFuture | None = None
        self._lock = threading.Lock()
        self._in_flight: dict[str, Message] = {}
        self._stopping = threading.Event()
        self._state = WorkerState.NEW
        self._failure: BaseException | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Open the streaming pull (returns at once; messages are handled on background threads).

        Raises:
            RuntimeError: the worker was already started.
        """
        with self._lock:
            if self._state is not WorkerState.NEW:
                raise RuntimeError(f"PullWorker.start() called in state {self._state.value}")
            if self._subscriber is None:
                self._subscriber = pubsub_v1.SubscriberClient()
            scheduler = ThreadScheduler(
                executor=concurrent.futures.ThreadPoolExecutor(
                    max_workers=self._threads, thread_name_prefix="extractor-message"
                )
            )
            self._future = self._subscriber.subscribe(
                self.subscription_path,
                callback=self._on_message,
                flow_control=self._flow_control,
                scheduler=scheduler,
                await_callbacks_on_shutdown=True,
            )
            self._future.add_done_callback(self._on_stream_done)
            self._state = WorkerState.RUNNING
        log.info(
            "pulling %s (max %d messages / %d bytes leased)",
            self.subscription_path, self._flow_control.max_messages, self._flow_control.max_bytes,
        )

    def stop(self, timeout: float) -> bool:
        """Stop pulling and drain: wait up to ``timeout`` seconds for running messages, nack the rest.

        Idempotent. Returns True when every running message finished in
        time, False when some were nacked (they will be redelivered).
        """
        with self._lock:
            if self._state in (WorkerState.NEW, WorkerState.STOPPED):
                self._state = WorkerState.STOPPED
                return True
            if self._state is WorkerState.RUNNING:
                self._state = WorkerState.STOPPING
            future = self._future
        self._stopping.set()
        assert future is not None
        deadline = time.monotonic() + timeout
        log.info("stopping: no new messages; draining %d in flight for up to %.1fs", self.in_flight, timeout)
        future.cancel()  # non-blocking; nacks leased-but-unstarted messages
        drained = True
        try:
            future.result(timeout=max(0.0, deadline - time.monotonic()))
        except concurrent.futures.TimeoutError:
            drained = False
        except Exception:  # noqa: BLE001 - the stream had already failed; it is logged in _on_stream_done
            pass
        leftovers = self._take_in_flight()
        if leftovers:
            drained = False
            self._nack_now(leftovers)
        if self._subscriber is not None:
            try:
                self._subscriber.close()
            except Exception:  # noqa: BLE001 - closing a channel must not mask the drain result
                log.warning("closing the subscriber client failed", exc_info=True)
        with self._lock:
            if self._state is not WorkerState.FAILED:
                self._state = WorkerState.STOPPED
        log.info("stopped (%s)", "drained" if drained else f"{len(leftovers)} message(s) nacked unfinished")
        return drained

    @property
    def state(self) -> WorkerState:
        """The current ``WorkerState``."""
        return self._state

    @property
    def failure(self) -> BaseException | None:
        """The error that ended the stream when ``state`` is ``FAILED``."""
        return self._failure

    @property
    def in_flight(self) -> int:
        """How many message callbacks are running now."""
        with self._lock:
            return len(self._in_flight)

    # -- internals ---------------------------------------------------------------------------

    def _on_stream_done(self, future: concurrent.futures.Future) -> None:
        if self._stopping.is_set():
            return
        error = future.exception()
        with self._lock:
            self._failure = error
            self._state = WorkerState.FAILED
        log.error("the streaming pull of %s ended: %r", self.subscription_path, error, exc_info=error)

    def _take_in_flight(self) -> list[Message]:
        with self._lock:
            messages = list(self._in_flight.values())
            self._in_flight.clear()
        return messages

    def _nack_now(self, messages: list[Message]) -> None:
        """Nack messages whose callbacks outlived the drain timeout: a unary ``ModifyAckDeadline(0)``.

        The stream is closed by now, so the client's own ``Message.nack()``
        (which goes through the stream's dispatcher) is not used. If this
        call fails, the messages come back when their lease runs out: at
        most ``lease_extension_seconds`` later, as no one extends it.
        """
        assert self._subscriber is not None
        ack_ids = [m.ack_id for m in messages]
        try:
            self._subscriber.modify_ack_deadline(
                request={"subscription": self.subscription_path, "ack_ids": ack_ids, "ack_deadline_seconds": 0},
                timeout=5.0,
            )
            log.warning("drain timeout: nacked %d unfinished message(s) for redelivery", len(ack_ids),
                        extra={"message_ids": [m.message_id for m in messages]})
        except api_exceptions.GoogleAPICallError:
            log.warning("drain timeout: the nack of %d message(s) may be lost; they are redelivered when their "
                        "lease expires", len(ack_ids), exc_info=True)

    def _on_message(self, message: Message) -> None:
        """The subscriber callback: handle, then ack or nack; never raises."""
        if self._stopping.is_set():
            message.nack()  # draining: start nothing new
            metrics.MESSAGES.labels(outcome=Outcome.RETRY.value).inc()
            return
        with self._lock:
            self._in_flight[message.ack_id] = message
        metrics.IN_FLIGHT.inc()
        started = time.monotonic()
        outcome = Outcome.RETRY
        try:
            with request_context(request_id=message.message_id):
                outcome = self._handle(message)
        finally:
            with self._lock:
                still_ours = self._in_flight.pop(message.ack_id, None) is not None
            metrics.IN_FLIGHT.dec()
            metrics.MESSAGES.labels(outcome=outcome.value).inc()
            metrics.PROCESSING_SECONDS.labels(outcome=outcome.value).observe(time.monotonic() - started)
            if not still_ours:
                log.info("message finished after the drain timeout; it was already nacked")

    def _handle(self, message: Message) -> Outcome:
        fields = {
            "pubsub_message_id": message.message_id,
            "delivery_attempt": message.delivery_attempt,
        }
        try:
            handled: Handled = self._handler.handle(message.attributes, message.data, message.delivery_attempt)
        except Exception as exc:  # noqa: BLE001 - every fault nacks; nothing escapes to the client library
            message.nack()
            attempt = message.delivery_attempt
            if self._max_delivery_attempts and attempt and attempt >= self._max_delivery_attempts:
                metrics.DEAD_LETTERED.inc()
                log.error("nacked on its last delivery attempt (%d of %d): Pub/Sub forwards it to the dead-letter "
                          "topic; re-drive it once fixed (make redrive / the extractor-redrive Job): %s: %s",
                          attempt, self._max_delivery_attempts, type(exc).__name__, exc, extra=fields)
            elif is_transient(exc):
                log.warning("transient fault, nacked for redelivery: %s: %s", type(exc).__name__, exc, extra=fields)
            else:
                log.error("unexpected error, nacked for redelivery", exc_info=True, extra=fields)
            return Outcome.RETRY
        # Ack only now: the result (if any) is committed, so a lost ack costs a harmless duplicate.
        message.ack()
        level = logging.WARNING if handled.outcome is Outcome.INVALID else logging.INFO
        log.log(
            level, "%s %s: %s", handled.outcome.value, handled.ref or "message", handled.detail,
            extra={**fields, "outcome": handled.outcome.value, "object": str(handled.ref) if handled.ref else None},
        )
        return handled.outcome
