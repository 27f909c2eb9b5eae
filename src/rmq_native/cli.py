"""The ``rmq-native`` command line (also ``python -m rmq_native``).

    rmq-native send TOPIC [BODY]        (no BODY: one message per stdin line)
    rmq-native consume TOPIC --group G
    rmq-native topic create|delete|stats TOPIC, rmq-native topic list
    rmq-native group lag GROUP [--topic T] [--watch SECONDS]
    rmq-native group reset GROUP TOPIC --to first|last|ISO-TIME
    rmq-native message find TOPIC --key K | --id ID
    rmq-native read TOPIC [--from first|last|ISO-TIME] [--to last|ISO-TIME]
    rmq-native devbroker start|stop|status

The name server comes from ``-n/--name-server`` (before or after the
command), else ``RMQ_NAMESRV``, else ``127.0.0.1:9876``. ``--json`` gives
one JSON document (or one object a line) for scripts. Exit codes: 0 success, 1 RocketMQ error, 2 usage error,
3 fewer messages than ``--count`` arrived in time, 130 interrupted.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import datetime as _dt
import json
import os
import sys
import time
from typing import Any, Iterator, Sequence

from ._version import __version__
from .errors import RocketMQError

EXIT_ERROR, EXIT_USAGE, EXIT_INCOMPLETE, EXIT_INTERRUPTED = 1, 2, 3, 130


def _name_server(args: argparse.Namespace) -> str:
    return str(getattr(args, "name_server", None) or getattr(args, "global_name_server", None)
               or os.environ.get("RMQ_NAMESRV") or "127.0.0.1:9876")


def _property(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _bodies(args: argparse.Namespace) -> Iterator[str]:
    if args.body is not None:
        for _ in range(args.count):
            yield args.body
    else:
        for line in sys.stdin:
            line = line.rstrip("\r\n")
            if line:
                yield line


def cmd_send(args: argparse.Namespace) -> int:
    from .producer import Producer

    keys = [k for item in args.keys for k in item.split(",") if k] or None
    properties = dict(args.property) or None
    progress = args.count > 1 and sys.stderr.isatty()
    sent = 0
    with Producer(_name_server(args), args.group, send_timeout=args.timeout) as producer:
        for body in _bodies(args):
            result = producer.send(args.topic, body, tags=args.tags, keys=keys, properties=properties)
            sent += 1
            if progress:
                width = 30
                done = width * sent // args.count
                print(f"\r[{'#' * done}{'.' * (width - done)}] {sent}/{args.count}", end="", file=sys.stderr)
            elif args.verbose:
                print(f"{result.msg_id} queue={result.queue_id} offset={result.queue_offset}", file=sys.stderr)
    if progress:
        print(file=sys.stderr)
    print(f"sent {sent} message{'s' if sent != 1 else ''} to {args.topic}", file=sys.stderr)
    return 0


def _body_text(body: bytes) -> str:
    return body.decode("utf-8", "backslashreplace")


def _print_message(msg: Any, as_json: bool) -> None:
    if as_json:
        record: dict[str, object] = {
            "topic": msg.topic, "tags": msg.tags, "keys": msg.keys, "properties": dict(msg.properties),
            "msg_id": msg.msg_id, "queue_id": msg.queue_id, "queue_offset": msg.queue_offset,
            "reconsume_times": msg.reconsume_times, "born_timestamp": msg.born_timestamp,
            "store_timestamp": msg.store_timestamp, "offset_msg_id": msg.offset_msg_id,
            "broker_name": msg.broker_name,
        }
        try:
            record["body"] = msg.body.decode("utf-8")
        except UnicodeDecodeError:
            record["body_base64"] = base64.b64encode(msg.body).decode()
        print(json.dumps(record, ensure_ascii=False), flush=True)
    else:
        print(_body_text(msg.body), flush=True)


def cmd_consume(args: argparse.Namespace) -> int:
    from .consumer import Consumer

    got = 0
    with Consumer(_name_server(args), args.group, args.topic, args.expression, selector=args.selector,
                  from_where=args.from_where) as consumer:
        for msg in consumer.messages(timeout=args.timeout):
            _print_message(msg, args.json)
            got += 1
            if args.count and got >= args.count:
                msg.ack()  # printed: leaving the loop would give it back
                break
    if args.count and got < args.count:
        print(f"rmq-native: only {got} of {args.count} messages arrived within {args.timeout} s", file=sys.stderr)
        return EXIT_INCOMPLETE
    return 0


def _when(text: str) -> str | _dt.datetime:
    """first, last or an ISO 8601 time (naive = local time)."""
    if text in ("first", "last"):
        return text
    try:
        return _dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected first, last or an ISO time like 2026-01-31T12:00:00, got {text!r}") from None


def _jsonable(value: Any) -> Any:
    if isinstance(value, _dt.datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Columns aligned for people: text left, numbers right."""
    cells = [[("-" if c is None else c.isoformat(sep=" ", timespec="seconds") if isinstance(c, _dt.datetime)
               else str(c)) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    numeric = [bool(rows) and all(isinstance(r[i], int) for r in rows) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    print(line(headers))
    for r in cells:
        print(line(r))


def _offsets_table(offsets: dict[tuple[str, int], int], as_json: bool) -> None:
    if as_json:
        print(json.dumps([{"broker_name": b, "queue_id": q, "offset": o} for (b, q), o in sorted(offsets.items())]))
    else:
        _print_table(["BROKER", "QUEUE", "OFFSET"], [[b, q, o] for (b, q), o in sorted(offsets.items())])


def cmd_topic(args: argparse.Namespace) -> int:
    from .admin import Admin

    with Admin(_name_server(args)) as admin:
        if args.action == "create":
            admin.create_topic(args.topic, queues=args.queues)
            print(f"created topic {args.topic} ({args.queues} queues)", file=sys.stderr)
        elif args.action == "delete":
            admin.delete_topic(args.topic)
            print(f"deleted topic {args.topic}", file=sys.stderr)
        elif args.action == "list":
            topics = admin.list_topics(include_system=args.all)
            print(json.dumps(topics) if args.json else "\n".join(topics))
        else:
            stats = admin.topic_stats(args.topic)
            if args.json:
                print(json.dumps(_jsonable(stats)))
            else:
                _print_table(["BROKER", "QUEUE", "MIN_OFFSET", "MAX_OFFSET", "MESSAGES", "LAST_UPDATE"],
                             [[s.broker_name, s.queue_id, s.min_offset, s.max_offset, s.max_offset - s.min_offset,
                               s.last_update] for s in stats])
    return 0


def cmd_group(args: argparse.Namespace) -> int:
    from .admin import Admin

    with Admin(_name_server(args)) as admin:
        if args.action == "reset":
            offsets = admin.reset_offset(args.group, args.topic, args.to)
            print(f"reset group {args.group} on {args.topic} to {args.to}", file=sys.stderr)
            _offsets_table(offsets, args.json)
            return 0
        while True:
            lags = admin.consumer_lag(args.group, args.topic)
            total = sum(q.lag for q in lags)
            if args.json:
                print(json.dumps({"group": args.group, "total_lag": total, "queues": _jsonable(lags)}), flush=True)
            else:
                if args.watch:
                    print(_dt.datetime.now().isoformat(sep=" ", timespec="seconds"))
                _print_table(["TOPIC", "BROKER", "QUEUE", "BROKER_OFFSET", "CONSUMER_OFFSET", "LAG"],
                             [[q.topic, q.broker_name, q.queue_id, q.broker_offset, q.consumer_offset, q.lag]
                              for q in lags])
                print(f"total lag: {total}", flush=True)
            if not args.watch:
                return 0
            time.sleep(args.watch)
            if not args.json:
                print()


def cmd_message(args: argparse.Namespace) -> int:
    from .admin import Admin

    with Admin(_name_server(args)) as admin:
        found = admin.find_messages(args.topic, key=args.key, msg_id=args.id, limit=args.limit)
    for msg in found:
        if args.json:
            _print_message(msg, True)
        else:
            stored = _dt.datetime.fromtimestamp(msg.store_timestamp / 1000).isoformat(sep=" ", timespec="milliseconds")
            print(f"{msg.msg_id}  {msg.broker_name} queue={msg.queue_id} offset={msg.queue_offset}  stored {stored}"
                  f"  tags={msg.tags or '-'} keys={','.join(msg.keys) or '-'}")
            print(f"  {_body_text(msg.body)}", flush=True)
    if not found:
        print("rmq-native: no message found", file=sys.stderr)
        return EXIT_ERROR
    return 0


def cmd_read(args: argparse.Namespace) -> int:
    from .reader import Reader

    end = None if args.follow else args.to
    with Reader(_name_server(args), args.topic, start=args.start, end=end, expression=args.expression,
                selector=args.selector) as reader:
        for msg in reader.messages(timeout=args.timeout):
            _print_message(msg, args.json)
    return 0


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-n", "--name-server", help="name server host:port (default: $RMQ_NAMESRV or 127.0.0.1:9876)")

    parser = argparse.ArgumentParser(prog="rmq-native", description="Send, receive and inspect RocketMQ messages.")
    parser.add_argument("--version", action="version", version=f"rmq-native {__version__}")
    parser.add_argument("-n", "--name-server", dest="global_name_server",
                        help="name server host:port (also accepted after the command)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("send", parents=[common], help="send messages",
                       description="Send BODY, or one message per line of standard input.")
    p.add_argument("topic")
    p.add_argument("body", nargs="?", help="the message body (default: read lines from stdin)")
    p.add_argument("--tags", help="the message tag")
    p.add_argument("--keys", action="append", default=[], help="message keys (comma-separated, repeatable)")
    p.add_argument("--property", action="append", default=[], type=_property, metavar="KEY=VALUE",
                   help="a user property (repeatable)")
    p.add_argument("--count", type=int, default=1, help="send BODY this many times (default 1)")
    p.add_argument("--group", default="rmq_native_cli", help="producer group")
    p.add_argument("--timeout", type=float, default=3.0, help="send timeout in seconds (default 3)")
    p.add_argument("-v", "--verbose", action="store_true", help="print each message id")
    p.set_defaults(func=cmd_send)

    p = sub.add_parser("consume", parents=[common], help="receive messages",
                       description="Print received messages, one a line (acknowledged once printed).")
    p.add_argument("topic")
    p.add_argument("--group", required=True, help="consumer group")
    p.add_argument("--expression", default="*", help='tag expression, e.g. "a || b" (default "*")')
    p.add_argument("--sql", dest="selector", action="store_const", const="sql92", default="tag",
                   help="the expression is SQL92 over properties")
    p.add_argument("--from-where", choices=["first", "last"], default="first",
                   help="where a new group starts (default first)")
    p.add_argument("--count", type=int, default=0, help="stop after this many messages")
    p.add_argument("--timeout", type=float, default=None,
                   help="stop after this many seconds without a message (default: never)")
    p.add_argument("--json", action="store_true", help="one JSON object a line")
    p.set_defaults(func=cmd_consume)

    p = sub.add_parser("topic", help="create, delete, list or inspect topics")
    acts = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = acts.add_parser("create", parents=[common], help="create (or update) a topic on every master broker")
    a.add_argument("topic")
    a.add_argument("--queues", type=int, default=4, help="read/write queues (default 4)")
    a = acts.add_parser("delete", parents=[common], help="delete a topic")
    a.add_argument("topic")
    a = acts.add_parser("list", parents=[common], help="list the topics")
    a.add_argument("--all", action="store_true", help="also the broker's own topics")
    a.add_argument("--json", action="store_true", help="a JSON array")
    a = acts.add_parser("stats", parents=[common], help="the queues of a topic with their offsets")
    a.add_argument("topic")
    a.add_argument("--json", action="store_true", help="a JSON array")
    p.set_defaults(func=cmd_topic)

    p = sub.add_parser("group", help="consumer group lag and offset reset")
    acts = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = acts.add_parser("lag", parents=[common], help="how far a group is behind, per queue")
    a.add_argument("group")
    a.add_argument("--topic", help="only this topic (default: every topic of the group)")
    a.add_argument("--watch", type=float, default=0, metavar="SECONDS", help="repeat every SECONDS until Ctrl+C")
    a.add_argument("--json", action="store_true", help="one JSON object (a line per --watch round)")
    a = acts.add_parser("reset", parents=[common], help="move a group's offsets (stop its consumers first)")
    a.add_argument("group")
    a.add_argument("topic")
    a.add_argument("--to", type=_when, required=True, metavar="first|last|ISO-TIME",
                   help="the first or last message, or the first stored at or after a time (naive = local)")
    a.add_argument("--json", action="store_true", help="the new offsets as a JSON array")
    p.set_defaults(func=cmd_group)

    p = sub.add_parser("message", help="look messages up")
    acts = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = acts.add_parser("find", parents=[common], help="find messages by key or id (exit 1 when none)")
    a.add_argument("topic")
    how = a.add_mutually_exclusive_group(required=True)
    how.add_argument("--key", help="a message key")
    how.add_argument("--id", help="a message id (msg_id or offset_msg_id)")
    a.add_argument("--limit", type=int, default=32, help="at most this many (default 32)")
    a.add_argument("--json", action="store_true", help="one JSON object a line")
    p.set_defaults(func=cmd_message)

    p = sub.add_parser("read", parents=[common], help="replay a topic without a consumer group",
                       description="Print the messages of a topic between two times; commits nothing.")
    p.add_argument("topic")
    p.add_argument("--from", dest="start", type=_when, default="first", metavar="first|last|ISO-TIME",
                   help="where to start (default first)")
    p.add_argument("--to", type=_when, default="last", metavar="last|ISO-TIME",
                   help="stop before messages stored at or after this time (default: the end as of now)")
    p.add_argument("--follow", action="store_true", help="keep printing new messages (ignores --to)")
    p.add_argument("--expression", default="*", help='tag expression, e.g. "a || b" (default "*")')
    p.add_argument("--sql", dest="selector", action="store_const", const="sql92", default="tag",
                   help="the expression is SQL92 over properties")
    p.add_argument("--timeout", type=float, default=None,
                   help="stop after this many seconds without a message (default: never)")
    p.add_argument("--json", action="store_true", help="one JSON object a line")
    p.set_defaults(func=cmd_read)

    p = sub.add_parser("devbroker", help="a local RocketMQ for development (start|stop|status)", add_help=False)
    p.add_argument("args", nargs=argparse.REMAINDER)
    p.set_defaults(func=None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["devbroker"]:
        from . import devbroker

        return devbroker.main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "count", 0) < 0:
        parser.error("--count must be >= 0")
    try:
        return int(args.func(args))
    except RocketMQError as e:
        print(f"rmq-native: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except (TypeError, ValueError) as e:
        print(f"rmq-native: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("rmq-native: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0
