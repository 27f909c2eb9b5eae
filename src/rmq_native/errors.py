"""The exception hierarchy of rmq_native.

Every failure of the native library arrives as a status code plus a
message; :func:`error_for_code` maps the code to one of these classes.
"""

from __future__ import annotations

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
    """The operation did not complete within its timeout."""

    default_code = RocketMQError.code_timeout
    retriable_default = True


class UnreachableError(RocketMQError, ConnectionError):
    """The name server or the broker could not be reached."""

    default_code = RocketMQError.code_unreachable
    retriable_default = True


class BrokerError(RocketMQError):
    """The broker rejected the request."""

    default_code = RocketMQError.code_broker
    retriable_default = True


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
    )
}


def error_for_code(code: int, message: str) -> RocketMQError:
    """The exception for a library status code."""
    cls = _BY_CODE.get(code, RocketMQError)
    return cls(message or f"rmq_native: error code {code}", code=code)
