"""The producer."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from . import _ffi
from ._client import (
    MAX_MESSAGE_SIZE,
    NativeClient,
    check_name_server,
    check_text,
    check_timeout,
    check_topic,
    check_type,
    config_json,
    encode_keys,
    encode_properties,
    to_body,
)
from .errors import InvalidArgumentError
from .message import SendResult, SendStatus

__all__ = ["Producer"]


class Producer(NativeClient):
    """Sends messages. Safe to share between threads.

    Args:
        name_server: ``"host:port"`` of the name server (several separated by ``;``).
        group: the producer group.
        send_timeout: seconds one send may take, retries included.
        retries: how many times a failed send is retried (on another broker if any).
        namespace: prefix isolating topics and groups.
        access_key, secret_key: ACL credentials.
        instance_name: the client instance name; unique per producer by default.
        compress_over: bodies of at least this many bytes are compressed when that
            makes them smaller (0: never).
        compress_level: zlib level 1-9.
        max_message_size: larger bodies are rejected before sending.

    Use as a context manager, or call :meth:`close` (idempotent).
    """

    _kind = "producer"

    def __init__(
        self,
        name_server: str,
        group: str = "rmq_native_producer",
        *,
        send_timeout: float = 3.0,
        retries: int = 2,
        namespace: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        instance_name: str | None = None,
        compress_over: int = 4096,
        compress_level: int = 5,
        max_message_size: int = MAX_MESSAGE_SIZE,
    ) -> None:
        self._handle = 0
        name_server = check_name_server(name_server)
        check_topic(group, "group")
        timeout = check_timeout("send_timeout", send_timeout)
        if not timeout:
            raise InvalidArgumentError("send_timeout must be > 0 seconds")
        for n, v in (("retries", retries), ("compress_over", compress_over), ("compress_level", compress_level),
                     ("max_message_size", max_message_size)):
            check_type(n, v, int, "an int")
            if v < 0:
                raise InvalidArgumentError(f"{n} must be >= 0, not {v}")
        if not 1 <= compress_level <= 9:
            raise InvalidArgumentError(f"compress_level must be 1..9, not {compress_level}")
        for n, s in (("namespace", namespace), ("access_key", access_key), ("secret_key", secret_key),
                     ("instance_name", instance_name)):
            if s is not None:
                check_text(n, s)
        self._send_timeout = timeout
        self._max_message_size = max_message_size or MAX_MESSAGE_SIZE
        self.name_server = name_server
        self.group = group
        super().__init__(
            "rmq_producer_new",
            "rmq_producer_close",
            config_json(
                name_server=name_server,
                group=group,
                send_timeout_ms=max(1, int(timeout * 1000)),
                retries=retries,
                namespace=namespace,
                access_key=access_key,
                secret_key=secret_key,
                instance_name=instance_name,
                compress_over=compress_over,
                compress_level=compress_level,
                max_message_size=self._max_message_size,
            ),
        )

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<rmq_native.Producer group={self.group!r} name_server={self.name_server!r} {state}>"

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Shut the producer down. Idempotent."""
        self._release_handle()

    def _message(self, topic: str, body: Any, tags: str | None, keys: str | Iterable[str] | None,
                 properties: Mapping[str, str] | None, delay_level: int | None) -> tuple[Any, list[Any]]:
        """Validate and build an ``rmq_message``; returns it with the
        buffers that must stay alive while it is used."""
        topic_b = check_topic(topic).encode("utf-8")
        body_b = to_body(body)
        if not body_b:
            raise InvalidArgumentError("message body must not be empty")
        if len(body_b) > self._max_message_size:
            raise InvalidArgumentError(
                f"message body of {len(body_b)} bytes exceeds the maximum message size of "
                f"{self._max_message_size} bytes"
            )
        tags_b = b"" if tags is None else check_text("tags", tags).encode("utf-8")
        keys_b = encode_keys(keys)
        props_b = encode_properties(properties)
        if delay_level is not None:
            check_type("delay_level", delay_level, int, "an int")
            if not 0 <= delay_level <= 18:
                raise InvalidArgumentError(f"delay_level must be 1..18, not {delay_level}")
        ffi = _ffi.ffi
        keep = [ffi.from_buffer(b) for b in (topic_b, body_b, tags_b, keys_b, props_b)]
        m = ffi.new("rmq_message *")
        m.topic, m.topic_len = keep[0], len(topic_b)
        m.body, m.body_len = keep[1], len(body_b)
        m.tags, m.tags_len = keep[2], len(tags_b)
        m.keys, m.keys_len = keep[3], len(keys_b)
        m.properties, m.properties_len = keep[4], len(props_b)
        m.delay_level = delay_level or 0
        return m, keep

    def send(
        self,
        topic: str,
        body: bytes | str,
        *,
        tags: str | None = None,
        keys: str | Iterable[str] | None = None,
        properties: Mapping[str, str] | None = None,
        delay_level: int | None = None,
        timeout: float | None = None,
    ) -> SendResult:
        """Send one message and wait for the broker to store it.

        Args:
            topic: the topic.
            body: the payload; ``str`` is sent as UTF-8.
            tags: one tag, used by consumers' tag expressions.
            keys: one key or several (no spaces), indexed by the broker.
            properties: user properties (str to str).
            delay_level: the broker's delay level, 1-18 (1 s ... 2 h).
            timeout: seconds for this send (default: the producer's send_timeout).

        Raises:
            InvalidArgumentError: bad topic, empty or oversized body, bad tags/keys/properties.
            TypeError: an argument of the wrong type.
            TimeoutError, UnreachableError, NoRouteError, BrokerError: the send failed.
            ClosedError: the producer is closed.
        """
        m, keep = self._message(topic, body, tags, keys, properties, delay_level)
        t = self._send_timeout if timeout is None else check_timeout("timeout", timeout)
        ffi = _ffi.ffi
        out = ffi.new("rmq_send_result *")
        _ffi.check(_ffi.lib().rmq_producer_send(self._h(), m, max(1, int((t or 0) * 1000)), out))
        return SendResult(
            topic=topic,
            msg_id=ffi.string(out.msg_id).decode(),
            queue_id=out.queue_id,
            queue_offset=out.queue_offset,
            status=SendStatus(out.status),
            offset_msg_id=ffi.string(out.offset_msg_id).decode(),
            broker_name=ffi.string(out.broker_name).decode("utf-8", "replace"),
            transaction_id=ffi.string(out.transaction_id).decode(),
        )
