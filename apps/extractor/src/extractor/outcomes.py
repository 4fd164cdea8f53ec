"""What happens to each message, and which faults are worth a retry.

Every message ends in exactly one ``Outcome``; each outcome either
acknowledges the message (final: a result row exists, or there is nothing to
do) or nacks it (Pub/Sub redelivers it with the subscription's retry policy
and, after ``max_delivery_attempts``, forwards it to the dead-letter topic).
So no message is dropped without an outcome.
"""

from __future__ import annotations

import enum
import socket

import requests
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions
from google.cloud.storage.exceptions import DataCorruption
from sqlalchemy import exc as sa_exc


class Outcome(str, enum.Enum):
    """The end of one delivery; the value is the ``outcome`` label of ``extractor_messages_total``."""

    #: metadata extracted, result upserted ``processed``.
    PROCESSED = "processed"
    #: the file cannot be parsed (or is too large): result upserted ``failed`` with a reason.
    FAILED = "failed"
    #: a ``processed`` result for this generation already exists: nothing changed.
    DUPLICATE = "duplicate"
    #: a notification of another event type, or for another bucket.
    IGNORED = "ignored"
    #: not a well-formed GCS notification: nothing can be done with it.
    INVALID = "invalid"
    #: the object generation no longer exists (deleted before it was processed).
    GONE = "gone"
    #: a transient fault (database, GCS 5xx, timeout...): nacked for redelivery.
    RETRY = "retry"

    @property
    def acks(self) -> bool:
        """True when the message is acknowledged, False when it is nacked for redelivery."""
        return self is not Outcome.RETRY


#: Google API errors that a later attempt may not hit: throttling, server
#: errors, timeouts (https://cloud.google.com/storage/docs/retry-strategy),
#: and auth/permission errors an operator can fix while the message waits
#: (it reaches the dead-letter topic if they don't).
_RETRYABLE_API_ERRORS: tuple[type[BaseException], ...] = (
    api_exceptions.TooManyRequests,  # 429
    api_exceptions.ServerError,  # 5xx
    api_exceptions.RequestRangeNotSatisfiable,  # 416: object changed under a ranged read
    api_exceptions.Unauthorized,  # 401
    api_exceptions.Forbidden,  # 403
    api_exceptions.RetryError,
    api_exceptions.DeadlineExceeded,
)

#: Network and database faults: the other side may be back on the next attempt.
_TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    *_RETRYABLE_API_ERRORS,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    DataCorruption,  # checksum mismatch: the bytes were damaged on the way
    auth_exceptions.TransportError,
    auth_exceptions.RefreshError,
    ConnectionError,
    TimeoutError,
    socket.timeout,
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,  # connection pool exhausted
)


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` (or an exception it was raised from) is a fault worth retrying.

    Covers database faults (SQLAlchemy ``OperationalError``/``InterfaceError``,
    pool timeouts, invalidated connections), GCS 429/5xx/timeouts, network
    errors, and credential refresh failures. The worker nacks on *any*
    unexpected exception; this only chooses the log level and wording
    ("transient" vs "unexpected").
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _TRANSIENT_ERRORS):
            return True
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        current = current.__cause__ or current.__context__
    return False
