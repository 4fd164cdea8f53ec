"""Parse a Cloud Storage Pub/Sub notification into what the extractor acts on.

Format (Cloud Storage docs, "Pub/Sub notifications for Cloud Storage",
https://cloud.google.com/storage/docs/pubsub-notifications): the message
attributes carry ``notificationConfig``, ``eventType``, ``payloadFormat``,
``bucketId``, ``objectId``, ``objectGeneration`` (plus ``eventTime`` and
others); with ``payloadFormat=JSON_API_V1`` the data is the object resource
as JSON (https://cloud.google.com/storage/docs/json_api/v1/objects), whose
``size`` and ``generation`` are decimal strings. fake-gcs-server publishes
the same shape.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

#: eventType of a new object or a new generation of one (the only event acted on).
OBJECT_FINALIZE = "OBJECT_FINALIZE"
#: The other event types Cloud Storage may publish; acknowledged and ignored.
OTHER_EVENT_TYPES = frozenset({"OBJECT_DELETE", "OBJECT_ARCHIVE", "OBJECT_METADATA_UPDATE"})
#: The payload format the extractor requires (the object resource as JSON).
JSON_API_V1 = "JSON_API_V1"


class NotificationError(ValueError):
    """A message that is not a well-formed GCS notification; the message says which field and why.

    Retrying cannot fix it, so the worker acknowledges it (and counts it).
    """


@dataclass(frozen=True)
class ObjectRef:
    """One generation of one object: the key of an extraction result.

    ``generation`` is the object's generation number (a positive int64).
    """

    bucket: str
    name: str
    generation: int

    def __str__(self) -> str:
        return f"gs://{self.bucket}/{self.name}#{self.generation}"


@dataclass(frozen=True)
class Finalize:
    """An ``OBJECT_FINALIZE`` notification: ``ref`` was written.

    ``size`` is the object's size in bytes from the JSON payload, or None when
    the payload has none (the download enforces the size bound either way).
    """

    ref: ObjectRef
    size: int | None
    content_type: str | None


@dataclass(frozen=True)
class OtherEvent:
    """A well-formed notification of an event the extractor ignores (delete, archive, metadata update)."""

    event_type: str
    ref: ObjectRef | None


def _required(attributes: Mapping[str, str], key: str) -> str:
    value = attributes.get(key)
    if value is None or not str(value).strip():
        present = ", ".join(sorted(attributes)) or "none"
        raise NotificationError(f"attribute {key!r} is missing or empty (attributes present: {present})")
    return str(value)


def _generation(raw: str, where: str) -> int:
    try:
        generation = int(raw)
    except ValueError:
        raise NotificationError(f"{where} {raw!r} is not a decimal integer") from None
    if generation <= 0:
        raise NotificationError(f"{where} {raw!r} is not a positive generation number")
    return generation


def _payload(data: bytes) -> dict:
    try:
        payload = json.loads(data.decode("utf-8")) if data else None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotificationError(f"data is not UTF-8 JSON although payloadFormat is {JSON_API_V1}: {exc}") from None
    if not isinstance(payload, dict):
        raise NotificationError(
            f"data must be a JSON object (the object resource) for payloadFormat {JSON_API_V1}, "
            f"got {type(payload).__name__}"
        )
    return payload


def _optional_size(payload: dict) -> int | None:
    raw = payload.get("size")
    if raw is None:
        return None
    try:
        size = int(raw)
    except (TypeError, ValueError):
        raise NotificationError(f"data.size {raw!r} is not a decimal integer") from None
    if size < 0:
        raise NotificationError(f"data.size {raw!r} is negative")
    return size


def parse_notification(attributes: Mapping[str, str], data: bytes) -> Finalize | OtherEvent:
    """Parse one Pub/Sub message (``attributes``, raw ``data`` bytes) as a GCS notification.

    Returns:
        ``Finalize`` for ``OBJECT_FINALIZE``; ``OtherEvent`` for the other
        event types (its ``ref`` is None when the attributes are incomplete:
        nothing is done with it anyway).

    Raises:
        NotificationError: ``eventType`` missing or unknown, ``payloadFormat``
            not ``JSON_API_V1``, a required attribute missing, a generation
            that is not a positive integer, data that is not a JSON object, or
            data whose ``bucket``/``name``/``generation`` contradict the
            attributes.
    """
    event_type = _required(attributes, "eventType")
    if event_type != OBJECT_FINALIZE:
        if event_type not in OTHER_EVENT_TYPES:
            known = ", ".join(sorted(OTHER_EVENT_TYPES | {OBJECT_FINALIZE}))
            raise NotificationError(f"eventType {event_type!r} is not a Cloud Storage event type ({known})")
        try:
            ref = ObjectRef(
                _required(attributes, "bucketId"),
                _required(attributes, "objectId"),
                _generation(_required(attributes, "objectGeneration"), "objectGeneration"),
            )
        except NotificationError:
            ref = None
        return OtherEvent(event_type=event_type, ref=ref)

    payload_format = _required(attributes, "payloadFormat")
    if payload_format != JSON_API_V1:
        raise NotificationError(f"payloadFormat {payload_format!r} is not {JSON_API_V1!r}")
    bucket = _required(attributes, "bucketId")
    name = _required(attributes, "objectId")
    generation = _generation(_required(attributes, "objectGeneration"), "objectGeneration")
    payload = _payload(data)

    for key, expected in (("bucket", bucket), ("name", name)):
        if key in payload and payload[key] != expected:
            raise NotificationError(f"data.{key} {payload[key]!r} contradicts the attribute value {expected!r}")
    if "generation" in payload and _generation(str(payload["generation"]), "data.generation") != generation:
        raise NotificationError(
            f"data.generation {payload['generation']!r} contradicts objectGeneration {generation}"
        )
    content_type = payload.get("contentType")
    return Finalize(
        ref=ObjectRef(bucket=bucket, name=name, generation=generation),
        size=_optional_size(payload),
        content_type=content_type if isinstance(content_type, str) else None,
    )


def original_filename(object_name: str) -> str:
    """The upload's file name implied by an object name: its last ``/`` segment.

    Object names are ``files/<id>/<sanitised filename>`` (docs/seams.md); the
    ``files`` row's ``filename`` is preferred when there is one.

    Raises:
        NotificationError: the name ends in ``/`` (a "folder" placeholder, no file name).
    """
    last = object_name.rsplit("/", 1)[-1]
    if not last:
        raise NotificationError(f"object name {object_name!r} ends in '/': no file name to extract")
    return last
