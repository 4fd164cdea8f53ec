"""Workaround for the Pub/Sub emulator's streams of stopped subscribers (local platform only).

The emulator (``cloud-pubsub-emulator`` 0.8.20, Google Cloud SDK 528) serves
each StreamingPull with a server-side loop that polls the subscription's
backlog every 50 ms and writes what it takes to the stream. When the client
goes away (the extractor stopped or restarted), that loop keeps running until
the stream's own deadline: it still takes messages - every message published
while no extractor runs, and about half of the redeliveries once a new one
runs - and writes them into the dead stream, where they wait for their ack
deadline and come back with a higher delivery attempt. Measured: after one
extractor restart, notifications needed 3 to 5 delivery attempts (minutes),
close to the dead-letter policy's 5. The real service drops a closed stream at
once; nothing in the services is wrong.

Every such loop checks the subscription on each round and ends when it has a
push endpoint (``FakePubsubServer$StreamingPullPusher.checkSubscription``).
``drop_stale_streams`` therefore sets a push endpoint for a moment and then
restores pull delivery: all streaming pulls of the subscription end. It is
run only right before the extractor starts (``start --service extractor``),
when the subscription has no live subscriber. Messages the dead streams held
come back after their ack deadline (at most one more attempt); what is
published during the moment is pushed to a closed local port, fails, and is
redelivered by pull after the retry backoff.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

#: Where the emulator pushes during the reset: the discard port on loopback, which refuses.
UNREACHABLE_ENDPOINT = "http://127.0.0.1:9/localdev-stream-reset"
#: How long push delivery stays on: several of the emulator's 50 ms polling rounds.
RESET_WINDOW_SECONDS = 0.5


class StreamResetError(RuntimeError):
    """The emulator refused ``modifyPushConfig``; the message has its answer."""


def _modify_push_config(emulator_host: str, subscription_path: str, push_config: dict[str, str]) -> None:
    req = urllib.request.Request(
        f"http://{emulator_host}/v1/{subscription_path}:modifyPushConfig",
        data=json.dumps({"pushConfig": push_config}).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10):
            return
    except (urllib.error.URLError, OSError) as exc:
        detail = exc.read()[:300] if isinstance(exc, urllib.error.HTTPError) else exc
        raise StreamResetError(f"modifyPushConfig on {subscription_path} at {emulator_host} failed: {detail!r}") from exc


def drop_stale_streams(emulator_host: str, subscription_path: str, *, window: float = RESET_WINDOW_SECONDS) -> None:
    """End every streaming pull of ``subscription_path`` on the emulator, then restore pull delivery.

    Args:
        emulator_host: ``PUBSUB_EMULATOR_HOST`` (``host:port``).
        subscription_path: ``projects/<project>/subscriptions/<id>``.
        window: seconds push delivery stays on.

    Raises:
        StreamResetError: the emulator refused either call (pull delivery is
            restored first if only the second one failed).
    """
    _modify_push_config(emulator_host, subscription_path, {"pushEndpoint": UNREACHABLE_ENDPOINT})
    try:
        time.sleep(window)
    finally:
        _modify_push_config(emulator_host, subscription_path, {})
