"""The exception hierarchy of rmq_native.

Every failure of the native library arrives as a status code plus a
message; :func:`error_for_code` maps the code to one of these classes.
"""

from __future__ import annotations

import re

__all__ = [
    "RocketMQError",
    "InvalidArgumentError",
    "ClosedError",
    "TimeoutError",
    "UnreachableError",
    "BrokerError",
    "InternalError",
    "NoRouteError",
    "ClientStateError",
    "AuthenticationError",
    "ForbiddenError",
    "MessageRejectedError",
    "SendUnknownError",
    "LibraryError",
    "error_for_code",
]


class RocketMQError(Exception):
    """Base class of every rmq_native error.

    Attributes:
        code: the library's status code (see ``rmq_native.h``).
        retriable: whether repeating the same operation later may succeed.
    """

    code_invalid_argument = 1
    code_closed = 2
    code_timeout = 3
    code_unreachable = 4
    code_broker = 5
    code_internal = 6
    code_no_route = 7
    code_state = 8
    code_auth = 9
    code_forbidden = 10
    code_rejected = 11
    code_send_unknown = 12

    default_code = 8
    retriable_default = False

    def __init__(self, message: str, *, code: int | None = None, retriable: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = self.default_code if code is None else code
        self.retriable = self.retriable_default if retriable is None else retriable


class InvalidArgumentError(RocketMQError, ValueError):
    """An argument was rejected before anything was sent."""

    default_code = RocketMQError.code_invalid_argument


class ClosedError(RocketMQError):
    """The client was used after ``close()``."""

    default_code = RocketMQError.code_closed


class TimeoutError(RocketMQError):  # noqa: A001 - deliberately mirrors the builtin name
    """The operation did not complete within its timeout. For a send: the
    message was not sent (no attempt reached the broker); when it may have
    been, the send raises the subclass :class:`SendUnknownError`."""

    default_code = RocketMQError.code_timeout
    retriable_default = True


_MSG_ID_RE = re.compile(r"\bmsg_id ([0-9A-Fa-f,]+)")


class SendUnknownError(TimeoutError):
    """A send's outcome is unknown: the request was written to the broker
    but no answer came before the deadline, so the message may or may not
    be stored. Sending it again may store a duplicate; every attempt of one
    send carries the same id, so consumers can deduplicate by
    :attr:`msg_id` (``Message.msg_id``).

    Attributes:
        msg_id: the id the message has if it was stored (a batch: the ids,
            comma-separated).
    """

    default_code = RocketMQError.code_send_unknown

    def __init__(self, message: str, *, code: int | None = None, retriable: bool | None = None,
                 msg_id: str | None = None) -> None:
        super().__init__(message, code=code, retriable=retriable)
        m = _MSG_ID_RE.search(message)
        self.msg_id: str = msg_id or (m.group(1) if m else "")


class UnreachableError(RocketMQError, ConnectionError):
    """The name server or the broker could not be reached."""

    default_code = RocketMQError.code_unreachable
    retriable_default = True


class BrokerError(RocketMQError):
    """The broker rejected the request (busy, flush timeout, system error);
    a later attempt may succeed."""

    default_code = RocketMQError.code_broker
    retriable_default = True


class MessageRejectedError(BrokerError):
    """The broker refused the request for good: the same request fails
    again (response code 13 "message illegal", e.g. a body over the broker's
    ``maxMessageSize``; 3 request not supported; 15 version not supported).
    ``retriable`` is False."""

    default_code = RocketMQError.code_rejected
    retriable_default = False


class InternalError(RocketMQError):
    """A bug inside the library (a recovered panic). The process is safe."""

    default_code = RocketMQError.code_internal


class NoRouteError(RocketMQError):
    """The topic has no route: it does not exist, or has no writable queue."""

    default_code = RocketMQError.code_no_route
    retriable_default = True


class ClientStateError(RocketMQError):
    """The client could not start, or is in the wrong state for the call."""

    default_code = RocketMQError.code_state


class AuthenticationError(RocketMQError, PermissionError):
    """The broker refused the credentials (ACL: unknown access key, wrong
    secret key, or no permission for the operation)."""

    default_code = RocketMQError.code_auth


class ForbiddenError(RocketMQError, PermissionError):
    """The broker does not take this request now, whoever asks: it is
    read-only (``brokerPermission``, e.g. drained for maintenance) or the
    topic's permission forbids it (response code 16 "... sending message is
    forbidden"). Not a credentials problem (that is
    :class:`AuthenticationError`). Retriable: the permission may come back,
    or another broker may take the message."""

    default_code = RocketMQError.code_forbidden
    retriable_default = True


class LibraryError(RocketMQError, ImportError):
    """The native library is missing, cannot be loaded, or has another version."""

    default_code = RocketMQError.code_state


_BY_CODE: dict[int, type[RocketMQError]] = {
    cls.default_code: cls
    for cls in (
        InvalidArgumentError,
        ClosedError,
        TimeoutError,
        UnreachableError,
        BrokerError,
        InternalError,
        NoRouteError,
        ClientStateError,
        AuthenticationError,
        ForbiddenError,
        MessageRejectedError,
        SendUnknownError,
    )
}


def error_for_code(code: int, message: str) -> RocketMQError:
    """The exception for a library status code."""
    cls = _BY_CODE.get(code, RocketMQError)
    return cls(message or f"rmq_native: error code {code}", code=code)
