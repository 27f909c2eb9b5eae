"""Bad input gets a clear exception: never a crash, a hang or lost data."""

from __future__ import annotations

import time

import pytest

import rmq_native
from rmq_native import Admin, Consumer, Producer


def test_unreachable_name_server_fails_within_timeout() -> None:
    t = time.monotonic()
    with pytest.raises(rmq_native.UnreachableError) as ei:
        Producer("127.0.0.1:1", send_timeout=2)
    assert time.monotonic() - t < 2.5
    assert ei.value.retriable and "127.0.0.1:1" in str(ei.value)
    t = time.monotonic()
    with pytest.raises(rmq_native.UnreachableError):
        Consumer("127.0.0.1:1", "g", "t")
    assert time.monotonic() - t < 3


@pytest.mark.parametrize("bad", ["", "has space", "a/b", "x" * 128, "ünï", "tab\t"])
def test_invalid_topic_names(producer: Producer, bad: str) -> None:
    with pytest.raises(rmq_native.InvalidArgumentError, match="invalid topic") as ei:
        producer.send(bad, b"x")
    assert isinstance(ei.value, ValueError) and ei.value.code == 1 and not ei.value.retriable


def test_invalid_topic_name_in_consumer(rocketmq_namesrv: str) -> None:
    with pytest.raises(rmq_native.InvalidArgumentError, match="invalid topic"):
        Consumer(rocketmq_namesrv, "g", "bad topic")


@pytest.mark.parametrize(
    "kwargs, exc",
    [
        ({"body": 123}, TypeError),
        ({"body": None}, TypeError),
        ({"body": b"x", "tags": 5}, TypeError),
        ({"body": b"x", "keys": [1]}, TypeError),
        ({"body": b"x", "keys": ["with space"]}, ValueError),
        ({"body": b"x", "properties": {"a": 1}}, TypeError),
        ({"body": b"x", "properties": ["a"]}, TypeError),
        ({"body": b"x", "properties": {"": "v"}}, ValueError),
        ({"body": b"x", "properties": {"a\x00": "v"}}, ValueError),
        ({"body": b"x", "tags": "a\x01b"}, ValueError),
        ({"body": b"x", "delay_level": 19}, ValueError),
        ({"body": b"x", "delay_level": "1"}, TypeError),
        ({"body": b"x", "timeout": -1}, ValueError),
        ({"body": b"x", "timeout": True}, TypeError),
    ],
)
def test_wrong_argument_types_and_values(producer: Producer, topic: str, kwargs: dict, exc: type) -> None:
    with pytest.raises(exc):
        producer.send(topic, **kwargs)


def test_reserved_property_names_are_rejected(producer: Producer, topic: str) -> None:
    with pytest.raises(rmq_native.InvalidArgumentError, match="reserved"):
        producer.send(topic, b"x", properties={"UNIQ_KEY": "mine"})


@pytest.mark.parametrize(
    "args, kwargs, exc",
    [
        ((123,), {}, TypeError),
        (("localhost",), {}, ValueError),
        (("127.0.0.1:99999",), {}, ValueError),
        (("127.0.0.1:9876",), {"send_timeout": 0}, ValueError),
        (("127.0.0.1:9876",), {"retries": -1}, ValueError),
        (("127.0.0.1:9876",), {"group": "bad group"}, ValueError),
    ],
)
def test_bad_producer_options(args: tuple, kwargs: dict, exc: type) -> None:
    with pytest.raises(exc):
        Producer(*args, **kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"model": "fanout"},
        {"from_where": "middle"},
        {"selector": "regex"},
        {"max_inflight": 0},
        {"max_prefetch_mib": 0},
        {"max_prefetch_mib": 1025},
        {"expression": "a\x00"},
    ],
)
def test_bad_consumer_options(rocketmq_namesrv: str, kwargs: dict) -> None:
    with pytest.raises(ValueError):
        Consumer(rocketmq_namesrv, "g", "t", **kwargs)


def test_consumer_needs_a_topic(rocketmq_namesrv: str) -> None:
    with pytest.raises(ValueError, match="topic"):
        Consumer(rocketmq_namesrv, "g")


def test_use_after_close(rocketmq_namesrv: str, topic: str, group: str) -> None:
    p = Producer(rocketmq_namesrv)
    p.close()
    p.close()  # idempotent
    with pytest.raises(rmq_native.ClosedError):
        p.send(topic, b"x")
    c = Consumer(rocketmq_namesrv, group, topic)
    c.close()
    c.close()
    with pytest.raises(rmq_native.ClosedError):
        c.receive(timeout=0)
    with pytest.raises(rmq_native.ClosedError):
        next(c.messages(timeout=0))
    a = Admin(rocketmq_namesrv)
    a.close()
    with pytest.raises(rmq_native.ClosedError):
        a.create_topic(topic)


def test_admin_rejects_bad_input(admin: Admin) -> None:
    with pytest.raises(rmq_native.InvalidArgumentError):
        admin.create_topic("bad topic")
    with pytest.raises(rmq_native.InvalidArgumentError):
        admin.create_topic("ok_topic", queues=0)
    with pytest.raises(TypeError):
        admin.create_topic("ok_topic", queues="4")  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["a:b", "a/b", "a\\b", "a b", 'a"b', "a*b"])
def test_instance_names_that_cannot_be_file_names_are_rejected(rocketmq_namesrv: str, bad: str) -> None:
    with pytest.raises(rmq_native.InvalidArgumentError, match="instance_name"):
        Producer(rocketmq_namesrv, instance_name=bad)
    with pytest.raises(rmq_native.InvalidArgumentError, match="instance_name"):
        Consumer(rocketmq_namesrv, "g", "t", instance_name=bad)


def test_every_status_code_has_its_own_exception_class() -> None:
    from rmq_native import _ffi
    from rmq_native.errors import error_for_code

    lib = _ffi.lib()
    codes = {name: getattr(lib, name) for name in dir(lib) if name.startswith("RMQ_ERR_")}
    assert len(codes) >= 12
    classes = {}
    for name, code in codes.items():
        exc = error_for_code(code, "x")
        assert type(exc) is not rmq_native.RocketMQError, f"{name} has no exception class"
        assert exc.code == code and type(exc).default_code == code, name
        classes[type(exc)] = name
    assert len(classes) == len(codes), "two status codes share an exception class"


def test_send_unknown_error_carries_the_msg_id() -> None:
    from rmq_native.errors import error_for_code

    e = error_for_code(rmq_native.RocketMQError.code_send_unknown,
                       "rmq_native: send to topic \"t\": no answer within 1ms, the message may have been stored "
                       "(msg_id 7F0000010001ABCD); sending it again may duplicate it: request timeout")
    assert isinstance(e, rmq_native.SendUnknownError) and isinstance(e, rmq_native.TimeoutError)
    assert e.msg_id == "7F0000010001ABCD" and e.retriable
