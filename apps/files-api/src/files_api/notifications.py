"""Is the notification path intact? The readiness check behind ``/readyz``'s ``notifications``.

An upload answered 201 is only half the job: the bucket must tell the
extractor (a Cloud Storage notification to the uploads topic). files-api
cannot see a message get lost, but it can see the path itself broken, and
then it says so instead of reporting ready:

- in the cloud: the uploads bucket has a notification configuration that
  sends ``OBJECT_FINALIZE`` (or every event) as ``JSON_API_V1`` to
  ``projects/<project>/topics/<UPLOADS_TOPIC>``
  (https://cloud.google.com/storage/docs/json_api/v1/notifications/list; needs
  ``storage.buckets.get`` on the bucket, infra/iam.py grants files-api
  ``roles/storage.legacyBucketReader`` there);
- on the local platform (``PUBSUB_EMULATOR_HOST`` set; fake-gcs-server has no
  notification configurations, it publishes to the topic it was started with):
  the topic exists on the Pub/Sub emulator, which forgets its topics when it
  restarts.

A success is remembered for ``cache_seconds`` (readiness probes come every few
seconds; the path rarely changes); a failure is not, so recovery shows at once.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from typing import Any

#: The payload format and event the extractor needs (docs/seams.md, "GCS notification").
JSON_API_V1 = "JSON_API_V1"
OBJECT_FINALIZE = "OBJECT_FINALIZE"


class NotificationPathBroken(RuntimeError):
    """Uploads would not reach the extractor; the message says which part is missing."""


class NotificationPath:
    """Checks bucket -> topic for ``/readyz``.

    Args:
        client: a ``google.cloud.storage.Client`` (cloud check).
        bucket: the uploads bucket name.
        project: the project of the topic.
        topic: the uploads topic id (short form, ``UPLOADS_TOPIC``).
        emulator_host: ``PUBSUB_EMULATOR_HOST`` (``host:port``), or None in the cloud.
        cache_seconds: how long a success is trusted.
    """

    def __init__(self, client: Any, bucket: str, project: str, topic: str, emulator_host: str | None = None,
                 *, cache_seconds: float = 30.0) -> None:
        self.client = client
        self.bucket = bucket
        self.project = project
        self.topic = topic
        self.emulator_host = emulator_host
        self.cache_seconds = cache_seconds
        self._ok_until = 0.0
        self._lock = threading.Lock()

    def check(self, timeout: float) -> None:
        """Return when the path is intact; raise ``NotificationPathBroken`` (or the client's error) when not."""
        with self._lock:
            if time.monotonic() < self._ok_until:
                return
        if self.emulator_host:
            self._check_emulator_topic(timeout)
        else:
            self._check_bucket_notification(timeout)
        with self._lock:
            self._ok_until = time.monotonic() + self.cache_seconds

    def _check_emulator_topic(self, timeout: float) -> None:
        url = f"http://{self.emulator_host}/v1/projects/{self.project}/topics/{self.topic}"
        try:
            with urllib.request.urlopen(url, timeout=timeout):
                return
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise NotificationPathBroken(f"topic {self.topic!r} does not exist on the Pub/Sub emulator") from None
            raise NotificationPathBroken(f"the Pub/Sub emulator answered {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise NotificationPathBroken(f"the Pub/Sub emulator does not answer: {exc}") from None

    def _check_bucket_notification(self, timeout: float) -> None:
        configs = list(self.client.bucket(self.bucket).list_notifications(timeout=timeout))
        for config in configs:
            if (config.topic_name == self.topic and (config.topic_project or self.project) == self.project
                    and config.payload_format == JSON_API_V1
                    and (not config.event_types or OBJECT_FINALIZE in config.event_types)):
                return
        raise NotificationPathBroken(
            f"bucket {self.bucket!r} has no {OBJECT_FINALIZE}/{JSON_API_V1} notification to topic "
            f"projects/{self.project}/topics/{self.topic} ({len(configs)} other configuration(s))")
