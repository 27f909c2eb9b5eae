"""The Python side of the wire fixtures: tests/wire_fixtures.json is
written by go/wire_test.go from the Go encoders (go test -run TestWire
-update); here the same bytes are decoded by rmq_native._wire and compared
with the same values, so the encoders and decoders cannot drift."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from rmq_native import _wire
from rmq_native.message import Message

FIXTURES = json.loads((Path(__file__).parent / "wire_fixtures.json").read_text(encoding="utf-8"))["cases"]


def _case(name: str) -> tuple[bytes, int, list[Any]]:
    (case,) = [c for c in FIXTURES if c["name"] == name]
    return bytes.fromhex(case["hex"]), case["count"], case["records"]


def _check_message(msg: Message, want: dict[str, Any]) -> None:
    assert msg._id == want["id"]
    assert msg.queue_id == want["queue_id"]
    assert msg.reconsume_times == want["reconsume_times"]
    assert msg.queue_offset == want["queue_offset"]
    assert msg.born_timestamp == want["born_timestamp"]
    assert msg.store_timestamp == want["store_timestamp"]
    assert msg.topic == want["topic"]
    assert msg.tags == (want["tags"] or None)
    assert msg.keys == want["keys"].split()
    assert msg.msg_id == want["msg_id"]
    assert msg.offset_msg_id == want["offset_msg_id"]
    assert msg.broker_name == want["broker_name"]
    assert dict(msg.properties) == want["properties"]
    assert msg.body == bytes.fromhex(want["body_hex"])


def test_every_layout_has_fixtures() -> None:
    assert {c["layout"] for c in FIXTURES} == {"message", "completion", "reply", "log"}


@pytest.mark.parametrize("name", ["messages", "transaction_check"])
def test_message_records(name: str) -> None:
    data, count, records = _case(name)
    settler = object()
    msgs = _wire.messages(data, count, settler)  # type: ignore[arg-type]
    assert len(msgs) == len(records) == count
    for msg, want in zip(msgs, records):
        _check_message(msg, want)
        assert msg._settler is settler and not msg.settled
        # the decoder sets the fields without __init__: every one of them
        # (the texts and properties once read, as _check_message did), and
        # the undecoded record they came from
        assert set(vars(msg)) == {f.name for f in dataclasses.fields(Message)} | {"_texts"}


def test_message_records_end_where_the_buffer_ends() -> None:
    data, count, _ = _case("messages")
    with pytest.raises(Exception):  # noqa: B017 - struct.error: one record more than the data holds
        _wire.messages(data, count + 1, None)


def test_completion_records() -> None:
    data, count, records = _case("completions")
    got = list(_wire.completions(data, count))
    decoded = [{**c._asdict(), **dict(zip(("msg_id", "offset_msg_id", "broker_name", "transaction_id"),
                                        _wire.result_texts(c.texts)))} for c in got]
    for d in decoded:
        del d["texts"]
    assert decoded == records
    assert [c.msg_id for c in got] == [r["msg_id"] for r in records]


def test_reply_records() -> None:
    data, count, records = _case("replies")
    got = list(_wire.replies(data, count))
    assert len(got) == len(records) == count
    for r, want in zip(got, records):
        assert (r.token, r.status, r.error) == (want["token"], want["status"], want["error"])
        if want["message"] is None:
            assert r.message is None
        else:
            assert r.message is not None
            _check_message(r.message, want["message"])
            assert r.message._settler is None


def test_log_records() -> None:
    data, count, records = _case("log_records")
    assert list(_wire.log_records(data, count)) == [(r["level"], r["text"]) for r in records]


def test_async_send_result_decodes_its_texts_when_read() -> None:
    import pickle

    from rmq_native import _completions
    from rmq_native.message import SendResult, SendStatus

    data, count, records = _case("completions")
    c = _wire.completions(data, count)[0]
    want = records[0]
    eager = SendResult(topic="orders", msg_id=want["msg_id"], queue_id=want["queue_id"],
                       queue_offset=want["queue_offset"], status=SendStatus(want["send_status"]),
                       offset_msg_id=want["offset_msg_id"], broker_name=want["broker_name"],
                       transaction_id=want["transaction_id"])
    lazy = _completions._send_result("orders", c)
    assert "_texts" in vars(lazy)
    assert pickle.loads(pickle.dumps(lazy)) == eager  # pickled undecoded, decoded after
    assert lazy == eager and hash(lazy) == hash(eager) and repr(lazy) == repr(eager)
    assert (lazy.msg_id, lazy.offset_msg_id, lazy.broker_name, lazy.transaction_id) == (
        want["msg_id"], want["offset_msg_id"], want["broker_name"], want["transaction_id"])
    # the first read decoded all four, once; the record stays (racing first reads take no lock)
    assert {"msg_id", "offset_msg_id", "broker_name", "transaction_id", "_texts"} <= set(vars(lazy))
    with pytest.raises(AttributeError):
        lazy.no_such_field  # noqa: B018
    fresh = _completions._send_result("orders", c)
    assert fresh.transaction_id == want["transaction_id"] and vars(fresh)["msg_id"] == want["msg_id"]
    bare = object.__new__(SendResult)
    with pytest.raises(AttributeError, match="'SendResult' object has no attribute 'msg_id'"):
        bare.msg_id  # noqa: B018
    made = SendResult(topic="t", msg_id="m", queue_id=0, queue_offset=0, status=SendStatus.SEND_OK)
    assert (made.msg_id, made.offset_msg_id, made.transaction_id) == ("m", "", "")


TEXTS = ("topic", "tags", "keys", "msg_id", "offset_msg_id", "broker_name")


def test_received_message_decodes_its_texts_and_properties_when_read() -> None:
    import pickle
    import threading

    data, count, records = _case("messages")
    want = next(r for r in records if r["properties"] and r["keys"] and r["tags"])
    index = records.index(want)

    def fresh() -> Message:
        return _wire.messages(data, count, None)[index]

    msg = fresh()
    undecoded = set(TEXTS) | {"properties"}
    assert "_texts" in vars(msg) and not undecoded & set(vars(msg))
    copy = pickle.loads(pickle.dumps(msg))  # pickled undecoded
    _check_message(copy, want)
    # the first text read decodes the six texts, not the properties
    assert msg.broker_name == want["broker_name"]
    assert set(TEXTS) <= set(vars(msg)) and "properties" not in vars(msg)
    assert msg.properties is msg.properties and "properties" in vars(msg)
    _check_message(msg, want)
    assert f"topic={want['topic']!r}" in repr(fresh()) and f"properties={want['properties']!r}" in repr(fresh())
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        msg.nope  # noqa: B018
    # threads reading a field first at the same time all get one object
    for name in ("keys", "properties"):
        for _ in range(25):
            msg = fresh()
            seen: list[object] = []
            start = threading.Barrier(4)

            def read(m: Message, start: threading.Barrier, seen: list[object], name: str) -> None:
                start.wait()
                seen.append(getattr(m, name))

            threads = [threading.Thread(target=read, args=(msg, start, seen, name)) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert len({id(v) for v in seen}) == 1 and seen[0] is getattr(msg, name)
    # a message made by its constructor has plain fields and their defaults
    made = Message(topic="t", body=b"b", tags=None, keys=[], properties={}, msg_id="m", queue_id=0,
                   queue_offset=0, reconsume_times=0, born_timestamp=0, store_timestamp=0)
    assert (made.topic, made.offset_msg_id, made.broker_name) == ("t", "", "")
    bare = object.__new__(Message)
    with pytest.raises(AttributeError, match="no attribute 'topic'"):
        bare.topic  # noqa: B018
    # a message with no properties (the fixtures have one) reads an empty dict
    empty = _wire.messages(data, count, None)[next(i for i, r in enumerate(records) if not r["properties"])]
    assert empty.properties == {}
