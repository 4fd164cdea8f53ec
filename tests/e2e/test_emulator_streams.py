"""The emulator workaround of ``tools.localdev.emulator_streams`` against the real Pub/Sub emulator.

Without ``drop_stale_streams``, a message published after a subscriber closed
its streaming pull (and before the next one starts) goes to that dead stream
and only comes back after the ack deadline (60 s here); with it, the next
subscriber gets it at once, and the subscription is a pull subscription again.
"""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Iterator

import pytest
import requests

from tools.devstack import PubSubEmulator
from tools.localdev.emulator_streams import drop_stale_streams

pytestmark = pytest.mark.slow

PROJECT = "streams-test"
ACK_DEADLINE = 60


@pytest.fixture(scope="module")
def emulator() -> Iterator[PubSubEmulator]:
    """A private emulator with topic ``topic-1`` and pull subscription ``sub-1`` (60 s ack deadline)."""
    with PubSubEmulator(project=PROJECT) as ps:
        ps.create_topic("topic-1")
        ps.create_subscription("topic-1", "sub-1", ack_deadline_seconds=ACK_DEADLINE)
        yield ps


def _subscribe(emulator: PubSubEmulator, received: queue.Queue):
    from google.cloud import pubsub_v1

    os.environ["PUBSUB_EMULATOR_HOST"] = emulator.emulator_host
    client = pubsub_v1.SubscriberClient()

    def callback(message) -> None:
        received.put(message.data.decode())
        message.ack()

    future = client.subscribe(f"projects/{PROJECT}/subscriptions/sub-1", callback,
                              flow_control=pubsub_v1.types.FlowControl(max_messages=4))
    return client, future


def _publish(emulator: PubSubEmulator, *data: str) -> None:
    import base64

    resp = requests.post(f"http://{emulator.emulator_host}/v1/projects/{PROJECT}/topics/topic-1:publish", timeout=10,
                         json={"messages": [{"data": base64.b64encode(d.encode()).decode()} for d in data]})
    resp.raise_for_status()


def _drain(received: queue.Queue, count: int, timeout: float) -> list[str]:
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        try:
            got.append(received.get(timeout=max(0.1, deadline - time.monotonic())))
        except queue.Empty:
            break
    return got


def test_a_restarted_subscriber_gets_new_messages_at_once(emulator: PubSubEmulator) -> None:
    saved = os.environ.get("PUBSUB_EMULATOR_HOST")
    received: queue.Queue = queue.Queue()
    try:
        first, future = _subscribe(emulator, received)
        _publish(emulator, "warm-up")
        assert _drain(received, 1, 20) == ["warm-up"]
        future.cancel()
        future.result(timeout=10)
        first.close()  # the subscriber stopped; the emulator keeps serving its stream

        drop_stale_streams(emulator.emulator_host, f"projects/{PROJECT}/subscriptions/sub-1")

        _publish(emulator, "a", "b", "c", "d")  # while no subscriber runs, as during a restart
        time.sleep(1)
        started = time.monotonic()
        second, future = _subscribe(emulator, received)
        got = _drain(received, 4, ACK_DEADLINE / 3)
        assert sorted(got) == ["a", "b", "c", "d"], (
            f"after the reset only {got} arrived within {ACK_DEADLINE / 3:g}s; a dead stream still takes messages")
        assert time.monotonic() - started < ACK_DEADLINE / 3
        future.cancel()
        future.result(timeout=10)
        second.close()
    finally:
        if saved is None:
            os.environ.pop("PUBSUB_EMULATOR_HOST", None)
        else:
            os.environ["PUBSUB_EMULATOR_HOST"] = saved
    sub = requests.get(f"http://{emulator.emulator_host}/v1/projects/{PROJECT}/subscriptions/sub-1", timeout=10).json()
    assert not sub.get("pushConfig", {}).get("pushEndpoint"), "the subscription must be a pull subscription again"
