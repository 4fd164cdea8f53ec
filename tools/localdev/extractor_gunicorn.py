"""gunicorn config of the extractor on the local platform: the image's config plus the emulator workaround.

Run: ``gunicorn -c python:tools.localdev.extractor_gunicorn`` (the Procfile's
``extractor`` line). Everything is ``extractor.gunicorn_conf`` (the file the
image runs); only ``post_fork`` is added: each time the gunicorn master forks
a worker - at start, and again when a worker died (kill -9, OOM) and is
replaced - the Pub/Sub emulator's streams of the dead subscriber are ended
(``tools.localdev.emulator_streams.drop_stale_streams``) before the new
worker opens its own. Without it the emulator keeps feeding the dead stream
and the notifications it takes wait there for their ack deadline, again and
again (measured: 37-48 of 300 files pending for good after one worker kill).
The real Pub/Sub service drops a closed stream at once, so the image needs no
such hook.
"""

from __future__ import annotations

import logging
import os

from extractor.gunicorn_conf import *  # noqa: F403 - the image's settings and hooks, unchanged
from tools.localdev.emulator_streams import StreamResetError, drop_stale_streams


def post_fork(server, worker) -> None:  # noqa: ARG001 - gunicorn's hook signature
    """In the new worker, before it pulls: end the emulator's streams of the subscription's dead subscribers.

    Reads ``PUBSUB_EMULATOR_HOST``, ``GOOGLE_CLOUD_PROJECT`` and
    ``UPLOADS_SUBSCRIPTION`` (the local platform sets all three). A failure is
    logged, not raised: the worker still starts (the reconciler re-drives what
    a stale stream keeps).
    """
    host = os.environ.get("PUBSUB_EMULATOR_HOST")
    if not host:
        return
    subscription = f"projects/{os.environ['GOOGLE_CLOUD_PROJECT']}/subscriptions/{os.environ['UPLOADS_SUBSCRIPTION']}"
    log = logging.getLogger("localdev.emulator_streams")
    try:
        drop_stale_streams(host, subscription)
    except StreamResetError as exc:
        log.warning("could not end the emulator's stale streams: %s", exc)
        return
    log.info("ended the emulator's streams of stopped subscribers of %s before worker %s pulls "
             "(emulator workaround, tools/localdev/emulator_streams.py)", subscription, os.getpid())
