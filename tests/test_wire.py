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
        assert set(vars(msg)) == {f.name for f in dataclasses.fields(Message)}


def test_message_records_end_where_the_buffer_ends() -> None:
    data, count, _ = _case("messages")
    with pytest.raises(Exception):  # noqa: B017 - struct.error: one record more than the data holds
        _wire.messages(data, count + 1, None)


def test_completion_records() -> None:
    data, count, records = _case("completions")
    got = list(_wire.completions(data, count))
    assert [c._asdict() for c in got] == records


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
