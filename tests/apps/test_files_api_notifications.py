"""files-api's readiness tells the truth about the notification path (``files_api.notifications``).

On the local platform the path is "the uploads topic exists on the Pub/Sub
emulator" (it forgets its topics when it restarts); in the cloud "the bucket
has an OBJECT_FINALIZE / JSON_API_V1 notification to the uploads topic".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from files_api.notifications import NotificationPath, NotificationPathBroken
from files_api.settings import DEFAULT_OPS_PORT

OPS = f"http://localhost:{DEFAULT_OPS_PORT}"  # /readyz is served on the cluster-only listener

pytestmark = pytest.mark.slow


def test_readyz_is_503_while_the_uploads_topic_is_missing_and_200_once_it_exists(
    make_files_api, pubsub_emulator, gcp_project
):
    import uuid

    topic = f"uploads-{uuid.uuid4().hex[:8]}"
    client = make_files_api(uploads_topic=topic, pubsub_emulator_host=pubsub_emulator.emulator_host).test_client()
    resp = client.get("/readyz", base_url=OPS)
    assert resp.status_code == 503
    body = resp.get_json()
    assert body["checks"]["database"] == "ok" and body["checks"]["bucket"] == "ok"
    assert body["checks"]["notifications"] == "failing"  # why (the topic does not exist) is only logged

    pubsub_emulator.create_topic(topic)
    resp = client.get("/readyz", base_url=OPS)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["checks"]["notifications"] == "ok"


def test_readyz_has_no_notification_check_without_uploads_topic(files_api):
    assert "notifications" not in files_api.get("/readyz", base_url=OPS).get_json()["checks"]


def test_unreachable_emulator_is_reported(gcp_project):
    from tools.devstack import free_port

    path = NotificationPath(None, "b", gcp_project, "t", f"127.0.0.1:{free_port()}")
    with pytest.raises(NotificationPathBroken, match="does not answer"):
        path.check(1.0)


@dataclass
class _Config:
    topic_name: str
    topic_project: str
    payload_format: str = "JSON_API_V1"
    event_types: list[str] | None = None


@dataclass
class _Client:
    configs: list[_Config] = field(default_factory=list)
    calls: int = 0

    def bucket(self, name):
        return self

    def list_notifications(self, timeout):
        self.calls += 1
        return list(self.configs)


@pytest.mark.parametrize("config, ok", [
    (_Config("uploads", "p"), True),
    (_Config("uploads", "p", event_types=["OBJECT_FINALIZE", "OBJECT_DELETE"]), True),
    (_Config("uploads", "p", event_types=["OBJECT_DELETE"]), False),
    (_Config("uploads", "p", payload_format="NONE"), False),
    (_Config("other", "p"), False),
    (_Config("uploads", "other-project"), False),
])
def test_cloud_check_needs_a_finalize_json_notification_to_the_topic(config, ok):
    path = NotificationPath(_Client([config]), "bucket", "p", "uploads", None)
    if ok:
        path.check(1.0)
    else:
        with pytest.raises(NotificationPathBroken, match="has no OBJECT_FINALIZE/JSON_API_V1 notification"):
            path.check(1.0)


def test_success_is_cached_failure_is_not():
    client = _Client([])
    path = NotificationPath(client, "bucket", "p", "uploads", None, cache_seconds=60)
    for _ in range(2):
        with pytest.raises(NotificationPathBroken):
            path.check(1.0)
    assert client.calls == 2
    client.configs.append(_Config("uploads", "p"))
    path.check(1.0)
    path.check(1.0)
    assert client.calls == 3
