"""Values checked on both sides of the C boundary, with one table of cases.

Owner: the library (Go) checks every value that crosses rmq_native.h,
because any C caller may pass it. Python checks again where it must act
before the call (types, a body's size before copying it, keys joined with
spaces, delay vs. deliver_at, timeouts in seconds) or where its message is
better. Each case runs through the public Python API and, bypassing every
Python check, straight through the C functions; both must agree (both
accept, or Python raises InvalidArgumentError where the library returns
RMQ_ERR_INVALID_ARGUMENT). The few values only Python checks are listed in
PYTHON_ONLY with the reason.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any, Iterator

import pytest
from conftest import unique

import rmq_native
from rmq_native import Consumer, InvalidArgumentError, Producer, _completions, _ffi
from rmq_native.message import Message

ffi = _ffi.ffi

# Values only the Python API checks (the C function accepts them), and why.
PYTHON_ONLY = {
    "keys with a space": "the Python API takes a list of keys and joins them with spaces",
    "send_timeout 0": "0 ms means the default in the C configuration; Python asks for a positive timeout",
    "name server port not a number": "Go's host:port split accepts any port text (the connection then fails)",
    "producer group with a space": "the library checks a producer group only for control characters",
}

# (case, keyword arguments of Producer.send, raw rmq_message fields, valid)
MESSAGE_CASES: list[tuple[str, dict[str, Any], dict[str, Any], bool]] = [
    ("plain", {}, {}, True),
    ("empty body", {"body": b""}, {"body": b""}, False),
    ("topic with a space", {"topic": "bad topic"}, {"topic": b"bad topic"}, False),
    ("topic of 128 characters", {"topic": "t" * 128}, {"topic": b"t" * 128}, False),
    ("empty topic", {"topic": ""}, {"topic": b""}, False),
    ("tags", {"tags": "a"}, {"tags": b"a"}, True),
    ("tags with \\x01", {"tags": "a\x01"}, {"tags": b"a\x01"}, False),
    ("keys", {"keys": ["k1", "k2"]}, {"keys": b"k1 k2"}, True),
    ("keys with \\x00", {"keys": "k\x00"}, {"keys": b"k\x00"}, False),
    ("keys with a space", {"keys": "k 1"}, {"keys": b"k 1"}, False),
    ("property", {"properties": {"k": "v"}}, {"properties": b"k\0v\0"}, True),
    ("empty property name", {"properties": {"": "v"}}, {"properties": b"\0v\0"}, False),
    ("property value with \\x01", {"properties": {"k": "v\x01"}}, {"properties": b"k\0v\x01\0"}, False),
    ("reserved property name", {"properties": {"TAGS": "x"}}, {"properties": b"TAGS\0x\0"}, False),
    ("sharding_key", {"sharding_key": "s"}, {"sharding_key": b"s"}, True),
    ("sharding_key with \\x02", {"sharding_key": "s\x02"}, {"sharding_key": b"s\x02"}, False),
    ("delay_level 0", {"delay_level": 0}, {"delay_level": 0}, True),
    ("delay_level 18", {"delay_level": 18}, {"delay_level": 18}, True),
    ("delay_level 19", {"delay_level": 19}, {"delay_level": 19}, False),
    ("delay_level -1", {"delay_level": -1}, {"delay_level": -1}, False),
    ("delay_level and a delivery time", {"delay_level": 2, "delay": 60.0},
     {"delay_level": 2, "deliver_at_ms": -1}, False),
]

# (case, Producer keyword arguments, producer configuration JSON items, valid)
CONFIG_CASES: list[tuple[str, dict[str, Any], dict[str, Any], bool]] = [
    ("defaults", {}, {}, True),
    ("producer group with \\x01", {"group": "g\x01"}, {"group": "g\x01"}, False),
    ("producer group with a space", {"group": "g 1"}, {"group": "g 1"}, False),
    ("retries -1", {"retries": -1}, {"retries": -1}, False),
    ("compress_level 10", {"compress_level": 10}, {"compress_level": 10}, False),
    ("compress_level 0", {"compress_level": 0}, {"compress_level": 0}, False),
    ("compress_over -1", {"compress_over": -1}, {"compress_over": -1}, False),
    ("instance_name with a space", {"instance_name": "a b"}, {"instance_name": "a b"}, False),
    ("access_key without secret_key", {"access_key": "ak"}, {"access_key": "ak"}, False),
    ("send_timeout 0", {"send_timeout": 0}, {"send_timeout_ms": 0}, False),
    ("name server without a port", {"name_server": "localhost"}, {"name_server": "localhost"}, False),
    ("name server port not a number", {"name_server": "127.0.0.1:x"}, {"name_server": "127.0.0.1:x"}, False),
]

DELAY_LEVELS = [(0, True), (1, True), (18, True), (19, False), (-1, False)]


def _python_accepts(fn: Any) -> bool:
    try:
        fn()
    except InvalidArgumentError:
        return False
    return True


def _rc(rc: int) -> bool:
    assert rc in (0, _ffi.lib().RMQ_ERR_INVALID_ARGUMENT), f"unexpected status {rc}: {_ffi.last_error()}"
    return rc == 0


def _raw_message(topic: bytes, fields: dict[str, Any]) -> tuple[Any, list[Any]]:
    """An rmq_message filled straight from bytes: no Python check."""
    m = ffi.new("rmq_message *")
    bufs = []
    for name in ("topic", "body", "tags", "keys", "properties", "sharding_key"):
        raw = fields.get(name, topic if name == "topic" else b"x" if name == "body" else b"")
        buf = ffi.from_buffer(raw)
        bufs.append(buf)
        setattr(m, name, buf)
        setattr(m, name + "_len", len(raw))
    m.delay_level = fields.get("delay_level", 0)
    deliver_at = fields.get("deliver_at_ms", 0)
    m.deliver_at_ms = int(time.time() * 1000) + 60_000 if deliver_at == -1 else deliver_at
    return m, bufs


@pytest.fixture(scope="module")
def sender(rocketmq_namesrv: str) -> Iterator[Producer]:
    with Producer(rocketmq_namesrv, unique("PV")) as p:
        yield p


@pytest.fixture(scope="module")
def valid_topic(make_topic_module: str) -> str:
    return make_topic_module


@pytest.fixture(scope="module")
def make_topic_module(rocketmq_namesrv: str) -> Iterator[str]:
    name = unique("TV")
    with rmq_native.Admin(rocketmq_namesrv) as a:
        a.create_topic(name, queues=2)
        yield name


@pytest.mark.parametrize("case,py_args,raw,valid", MESSAGE_CASES, ids=[c[0] for c in MESSAGE_CASES])
def test_message_values(sender: Producer, valid_topic: str, case: str, py_args: dict[str, Any],
                        raw: dict[str, Any], valid: bool) -> None:
    args = dict(py_args)
    topic = args.pop("topic", valid_topic)
    body = args.pop("body", b"x")
    python = _python_accepts(lambda: sender.send(topic, body, **args))
    m, bufs = _raw_message(valid_topic.encode(), raw)
    out = ffi.new("rmq_send_result *")
    library = _rc(_ffi.lib().rmq_producer_send(sender._h(), m, 10_000, out))
    del bufs
    assert python == valid, f"{case}: Python API {'accepts' if python else 'rejects'}"
    if case in PYTHON_ONLY:
        assert library, f"{case}: listed as checked by Python only, but the library rejects it"
    else:
        assert library == valid, f"{case}: the library {'accepts' if library else 'rejects'}"


@pytest.mark.parametrize("case,py_args,config,valid", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_config_values(rocketmq_namesrv: str, case: str, py_args: dict[str, Any], config: dict[str, Any],
                       valid: bool) -> None:
    args = {"name_server": rocketmq_namesrv, **py_args}

    def make() -> None:
        Producer(**args).close()

    python = _python_accepts(make)
    cfg = json.dumps({"name_server": rocketmq_namesrv, "group": unique("PV"), **config}).encode()
    handle = ffi.new("uint64_t *")
    rc = _ffi.lib().rmq_producer_new(cfg, len(cfg), handle)
    if rc == 0:
        _completions.discard(handle[0])
    elif rc == _ffi.lib().RMQ_ERR_UNREACHABLE and case in PYTHON_ONLY:
        rc = 0  # accepted as a value; the address then fails
    library = _rc(rc)
    assert python == valid, f"{case}: Python API {'accepts' if python else 'rejects'}"
    if case in PYTHON_ONLY:
        assert library, f"{case}: listed as checked by Python only, but the library rejects it"
    else:
        assert library == valid, f"{case}: the library {'accepts' if library else 'rejects'}"


def test_nack_delay_level(rocketmq_namesrv: str, valid_topic: str) -> None:
    lib = _ffi.lib()
    with Consumer(rocketmq_namesrv, unique("GV"), valid_topic) as c:
        for level, valid in DELAY_LEVELS:
            # an unknown delivery id: the library checks the values, then skips it
            msg = Message(topic=valid_topic, body=b"x", tags=None, keys=[], properties={}, msg_id="", queue_id=0,
                          queue_offset=0, reconsume_times=0, born_timestamp=0, store_timestamp=0,
                          _id=2**63 + level + 1, _settler=c)
            python = _python_accepts(lambda msg=msg, level=level: msg.nack(delay_level=level))  # type: ignore[misc]
            ids = ffi.new("uint64_t[]", [2**62 + level + 1])
            library = _rc(lib.rmq_consumer_ack(c._h(), ids, 1, lib.RMQ_NACK, level, ffi.new("int32_t *")))
            assert (python, library) == (valid, valid), f"delay_level {level}"


def test_delay_level_messages_agree(sender: Producer, valid_topic: str) -> None:
    """Both sides name the same range (0..18, 0 = the broker's schedule)."""
    with pytest.raises(InvalidArgumentError, match=r"delay_level must be 0\.\.18, not 19"):
        sender.send(valid_topic, b"x", delay_level=19)
    m, bufs = _raw_message(valid_topic.encode(), {"delay_level": 19})
    rc = _ffi.lib().rmq_producer_send(sender._h(), m, 1000, ffi.new("rmq_send_result *"))
    assert rc == _ffi.lib().RMQ_ERR_INVALID_ARGUMENT
    assert "delay_level must be 0..18, not 19" in _ffi.last_error()
    del bufs


@pytest.mark.parametrize("kwargs, error, words", [
    ({"max_pending": 0}, InvalidArgumentError, "max_pending must be >= 1, not 0"),
    ({"max_pending_bytes": -5}, InvalidArgumentError, "max_pending_bytes must be >= 1, not -5"),
    ({"max_pending": 2.5}, TypeError, "max_pending"),
    ({"max_pending_bytes": "1"}, TypeError, "max_pending_bytes"),
])
def test_producer_back_pressure_limits_are_checked(kwargs: dict[str, Any], error: type, words: str) -> None:
    with pytest.raises(error, match=re.escape(words)):
        Producer("127.0.0.1:9876", **kwargs)
