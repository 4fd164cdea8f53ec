"""extractor.notification: parsing GCS Pub/Sub notifications (pure, no servers)."""

from __future__ import annotations

import json

import pytest

from extractor.notification import (
    Finalize,
    NotificationError,
    ObjectRef,
    OtherEvent,
    original_filename,
    parse_notification,
)

BUCKET = "uploads-dev"
NAME = "files/6f1c0a4e-0000-4000-8000-000000000001/benchy.gcode"


def attrs(**overrides: str | None) -> dict[str, str]:
    """Attributes as Cloud Storage sends them for a finalize (docs: pubsub-notifications)."""
    base = {
        "notificationConfig": f"projects/_/buckets/{BUCKET}/notificationConfigs/1",
        "eventType": "OBJECT_FINALIZE",
        "payloadFormat": "JSON_API_V1",
        "bucketId": BUCKET,
        "objectId": NAME,
        "objectGeneration": "1700000000123456",
        "eventTime": "2026-11-21T07:00:00.000000Z",
    }
    for key, value in overrides.items():
        if value is None:
            base.pop(key, None)
        else:
            base[key] = value
    return base


def payload(**overrides: object) -> bytes:
    resource = {
        "kind": "storage#object",
        "bucket": BUCKET,
        "name": NAME,
        "generation": "1700000000123456",
        "size": "881737",
        "contentType": "text/x.gcode",
    }
    resource.update(overrides)
    return json.dumps(resource).encode()


def test_finalize_parsed_with_exact_generation_and_size():
    event = parse_notification(attrs(), payload())
    assert event == Finalize(
        ref=ObjectRef(BUCKET, NAME, 1700000000123456), size=881737, content_type="text/x.gcode"
    )
    assert str(event.ref) == f"gs://{BUCKET}/{NAME}#1700000000123456"


def test_payload_without_size_is_accepted():
    data = json.loads(payload())
    del data["size"], data["contentType"]
    event = parse_notification(attrs(), json.dumps(data).encode())
    assert isinstance(event, Finalize) and event.size is None and event.content_type is None


@pytest.mark.parametrize("event_type", ["OBJECT_DELETE", "OBJECT_ARCHIVE", "OBJECT_METADATA_UPDATE"])
def test_other_event_types_are_recognised_not_processed(event_type):
    event = parse_notification(attrs(eventType=event_type), b"")
    assert isinstance(event, OtherEvent)
    assert event.event_type == event_type
    assert event.ref == ObjectRef(BUCKET, NAME, 1700000000123456)


def test_other_event_with_incomplete_attributes_still_parses():
    event = parse_notification(attrs(eventType="OBJECT_DELETE", objectGeneration=None), b"")
    assert event == OtherEvent("OBJECT_DELETE", None)


@pytest.mark.parametrize(
    ("overrides", "data", "message"),
    [
        ({"eventType": None}, payload(), "'eventType' is missing"),
        ({"eventType": "OBJECT_EXPLODE"}, payload(), "'OBJECT_EXPLODE' is not a Cloud Storage event type"),
        ({"payloadFormat": "NONE"}, b"", "payloadFormat 'NONE' is not 'JSON_API_V1'"),
        ({"payloadFormat": None}, payload(), "'payloadFormat' is missing"),
        ({"bucketId": None}, payload(), "'bucketId' is missing"),
        ({"objectId": ""}, payload(), "'objectId' is missing or empty"),
        ({"objectGeneration": None}, payload(), "'objectGeneration' is missing"),
        ({"objectGeneration": "12abc"}, payload(), "objectGeneration '12abc' is not a decimal integer"),
        ({"objectGeneration": "0"}, payload(), "objectGeneration '0' is not a positive generation"),
        ({}, b"\xff\xfe", "data is not UTF-8 JSON"),
        ({}, b"{not json", "data is not UTF-8 JSON"),
        ({}, b"[1, 2]", "data must be a JSON object"),
        ({}, b"", "data must be a JSON object"),
        ({}, payload(bucket="elsewhere"), "data.bucket 'elsewhere' contradicts"),
        ({}, payload(name="files/x/other.stl"), "data.name 'files/x/other.stl' contradicts"),
        ({}, payload(generation="5"), "data.generation '5' contradicts objectGeneration"),
        ({}, payload(size="big"), "data.size 'big' is not a decimal integer"),
        ({}, payload(size="-1"), "data.size '-1' is negative"),
    ],
)
def test_malformed_notifications_say_what_is_wrong(overrides, data, message):
    with pytest.raises(NotificationError) as excinfo:
        parse_notification(attrs(**overrides), data)
    assert message in str(excinfo.value)


def test_missing_attribute_error_lists_what_is_present():
    with pytest.raises(NotificationError, match=r"attributes present: .*bucketId.*eventType"):
        parse_notification(attrs(objectId=None), payload())


def test_original_filename_is_last_segment():
    assert original_filename(NAME) == "benchy.gcode"
    assert original_filename("plain.stl") == "plain.stl"
    with pytest.raises(NotificationError, match="ends in '/'"):
        original_filename("files/abc/")
