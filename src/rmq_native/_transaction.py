"""The transactional producer, and the answers to the broker's checks of
transactions left UNKNOWN (on the producer's check thread)."""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Iterable, Mapping

from . import _ffi, _pump, _wire
from ._client import MAX_MESSAGE_SIZE, encode_keys, to_body
from ._producer_base import ProducerBase, _result
from .message import Message, SendResult, TransactionState

__all__ = ["TransactionProducer"]

logger = logging.getLogger("rmq_native")


def answer_checks(producer: TransactionProducer, h: int, data: bytes, count: int) -> None:
    """Answer the broker's transaction checks with the producer's check(msg)."""
    for msg in _wire.messages(data, count, None):
        try:
            state = TransactionState(producer._check(msg))
        except Exception:
            logger.exception("rmq_native: transaction check failed; answering UNKNOWN")
            state = TransactionState.UNKNOWN
        _ffi.lib().rmq_tx_check_reply(h, msg._id, int(state))



class TransactionProducer(ProducerBase):
    """Sends transactional messages.

    ``check(msg) -> TransactionState`` answers the broker's questions about
    transactions that ended ``UNKNOWN`` (or whose producer died); it runs on
    the producer's check thread. Other options as for :class:`Producer`.
    """

    def __init__(
        self,
        name_server: str,
        group: str,
        check: Callable[[Message], TransactionState],
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
        trace: bool = False,
        trace_topic: str | None = None,
    ) -> None:
        if not callable(check):
            raise TypeError("check must be callable: check(msg) -> TransactionState")
        self._check = check
        super().__init__(
            "rmq_tx_producer_new", name_server, group, send_timeout=send_timeout, retries=retries,
            namespace=namespace, access_key=access_key, secret_key=secret_key, instance_name=instance_name,
            compress_over=compress_over, compress_level=compress_level, max_message_size=max_message_size,
            trace=trace, trace_topic=trace_topic,
        )
        _pump.start(self, "rmq_tx_poll_checks", 16, answer_checks, "rmq_native-tx-checks")

    def __enter__(self) -> TransactionProducer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Shut the producer down. Idempotent."""
        self._release_handle()

    def send_in_transaction(
        self,
        topic: str,
        body: bytes | str,
        *,
        execute: Callable[[Message], TransactionState],
        tags: str | None = None,
        keys: str | Iterable[str] | None = None,
        properties: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> SendResult:
        """Send a half message, run ``execute(msg)``, then commit or roll back.

        ``execute`` returns a :class:`TransactionState`: ``COMMIT`` delivers
        the message, ``ROLLBACK`` discards it, ``UNKNOWN`` lets the broker
        ask ``check`` later. An exception in ``execute`` rolls back and is
        re-raised.
        """
        if not callable(execute):
            raise TypeError("execute must be callable: execute(msg) -> TransactionState")
        op, properties = self._stats.begin(topic, properties, tags=tags, keys=keys, operation="send_in_transaction")
        try:
            m = self._message(topic, body, tags=tags, keys=keys, properties=properties)
            ffi = _ffi.ffi
            lib = _ffi.lib()
            out = ffi.new("rmq_send_result *")
            tx = ffi.new("uint64_t *")
            _ffi.check(lib.rmq_tx_send(self._h(), m, self._timeout_ms(timeout), out, tx))
        except BaseException as e:
            op.fail(e)
            raise
        msg = Message(topic=topic, body=to_body(body), tags=tags, keys=encode_keys(keys).decode().split(),
                      properties=dict(properties or {}), msg_id=ffi.string(out.msg_id).decode(), queue_id=0,
                      queue_offset=0, reconsume_times=0, born_timestamp=int(time.time() * 1000), store_timestamp=0)
        state = TransactionState.ROLLBACK
        try:
            try:
                verdict = execute(msg)
                if verdict not in (0, 1, 2):
                    raise TypeError(f"execute must return a TransactionState, not {verdict!r}")
                state = TransactionState(verdict)
            finally:
                _ffi.check(lib.rmq_tx_end(self._h(), tx[0], int(state), out))
        except BaseException as e:
            op.fail(e)
            raise
        result = _result(topic, out)
        op.done(result)
        return result
