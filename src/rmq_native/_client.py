"""Shared plumbing of the client classes: argument checks, configuration,
and the handle lifecycle (a closed client raises ClosedError)."""

from __future__ import annotations

import json
import re
import threading
import weakref
from typing import Any, Callable, Iterable, Mapping

from . import _ffi, _logging
from .errors import ClosedError, InvalidArgumentError

_TOPIC_RE = re.compile(r"^[%|a-zA-Z0-9_-]{1,127}$")
MAX_MESSAGE_SIZE = 4 * 1024 * 1024


def check_type(name: str, value: Any, types: type | tuple[type, ...], what: str) -> None:
    """Raise TypeError unless value is one of types (bools are not numbers)."""
    if not isinstance(value, types) or (isinstance(value, bool) and types is not bool):
        raise TypeError(f"{name} must be {what}, not {type(value).__name__}")


def check_topic(topic: Any, name: str = "topic") -> str:
    """A topic or group name as the broker accepts it (the library checks it too)."""
    check_type(name, topic, str, "a str")
    if not _TOPIC_RE.match(topic):
        raise InvalidArgumentError(
            f"invalid {name} {topic!r}: 1 to 127 characters from letters, digits, '%', '|', '_' and '-'"
        )
    return str(topic)


def check_text(name: str, value: Any) -> str:
    """A text field: no \\x00-\\x02 (they corrupt RocketMQ's property encoding), valid Unicode."""
    check_type(name, value, str, "a str")
    if any(c in value for c in "\x00\x01\x02"):
        raise InvalidArgumentError(f"{name} must not contain the control characters \\x00, \\x01 or \\x02: {value!r}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgumentError(f"{name} is not valid Unicode text (lone surrogates?): {value!r}") from None
    return str(value)


def check_name_server(name_server: Any) -> str:
    """``host:port`` addresses separated by ``;`` or ``,``; returns them joined by ``;``."""
    check_type("name_server", name_server, str, 'a str like "127.0.0.1:9876"')
    parts = [p.strip() for p in re.split(r"[;,]", name_server) if p.strip()]
    if not parts:
        raise InvalidArgumentError('name_server is required, like "127.0.0.1:9876"')
    for p in parts:
        host, sep, port = p.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise InvalidArgumentError(f"invalid name server address {p!r}: expected host:port")
    return ";".join(parts)


def check_timeout(name: str, value: Any, *, allow_none: bool = False) -> float | None:
    """A number of seconds >= 0 (None when allowed) as a float."""
    if value is None and allow_none:
        return None
    check_type(name, value, (int, float), "a number of seconds")
    if value != value or value < 0:
        raise InvalidArgumentError(f"{name} must be >= 0 seconds, not {value!r}")
    return float(value)


def to_ms(seconds: float) -> int:
    """Seconds as the library's int32 milliseconds: at least 1, at most ~24 days."""
    return max(1, min(2**31 - 1, int(min(seconds, 2**31 / 1000) * 1000)))


def to_body(body: Any) -> bytes:
    """A message body as bytes (``str`` as UTF-8)."""
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body)
    raise TypeError(f"body must be bytes or str, not {type(body).__name__}")


def encode_keys(keys: str | Iterable[str] | None) -> bytes:
    """Message keys in the layout of rmq_message.keys: separated by spaces."""
    if keys is None:
        return b""
    items = [keys] if isinstance(keys, str) else list(keys)
    for k in items:
        check_text("each key", k)
        if not k or " " in k:
            raise InvalidArgumentError(f"message keys must be non-empty and contain no spaces: {k!r}")
    return " ".join(items).encode("utf-8")


def encode_properties(properties: Mapping[str, str] | None) -> bytes:
    """User properties in the layout of rmq_message.properties: ``k\\0v\\0...``."""
    if properties is None:
        return b""
    if not isinstance(properties, Mapping):
        raise TypeError(f"properties must be a mapping of str to str, not {type(properties).__name__}")
    out = []
    for k, v in properties.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError(f"properties must map str to str; got {k!r}: {type(v).__name__}")
        check_text("property name", k)
        check_text(f"property {k!r}", v)
        if not k:
            raise InvalidArgumentError("property names must not be empty")
        out.append(k.encode("utf-8") + b"\0" + v.encode("utf-8") + b"\0")
    return b"".join(out)


def config_json(**items: Any) -> bytes:
    """The JSON configuration of a ``*_new`` function, without the items that are None."""
    return json.dumps({k: v for k, v in items.items() if v is not None}).encode("utf-8")


class NativeClient:
    """Owns one library handle: created by ``new_fn``, released by
    ``close_fn`` exactly once (on close(), garbage collection or exit)."""

    _kind = "client"

    def __init__(self, new_fn: str, close_fn: str, config: bytes) -> None:
        lib = _ffi.lib()
        _logging.ensure_started()
        out = _ffi.ffi.new("uint64_t *")
        _ffi.check(getattr(lib, new_fn)(config, len(config), out))
        self._handle: int = out[0]
        self._close_lock = threading.Lock()
        self._finalizer: weakref.finalize[..., Any] = weakref.finalize(self, _release, close_fn, self._handle)

    def _h(self) -> int:
        h = self._handle
        if not h:
            raise ClosedError(f"rmq_native: {self._kind} is closed")
        return h

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return not self._handle

    def _release_handle(self) -> None:
        with self._close_lock:
            if self._handle:
                self._handle = 0
                self._finalizer()


def _release(close_fn: str, handle: int) -> None:
    try:
        getattr(_ffi.lib(), close_fn)(handle)
    except Exception:  # pragma: no cover - the process may be shutting down
        pass


def call_in_slices(fn: Callable[[int], bool], timeout: float | None, slice_ms: int = 200) -> bool:
    """Call ``fn(ms)`` with at most ``slice_ms`` until it returns True or
    ``timeout`` seconds pass (None: forever). Between slices Python can
    handle signals, so Ctrl+C interrupts a long wait."""
    import time

    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        if deadline is None:
            ms = slice_ms
        else:
            left = deadline - time.monotonic()
            ms = slice_ms if left * 1000 >= slice_ms else max(0, int(left * 1000))
        if fn(ms):
            return True
        if deadline is not None and time.monotonic() >= deadline:
            return False
