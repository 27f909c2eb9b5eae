"""The ``rmq-native`` command line (also ``python -m rmq_native``).

    rmq-native send TOPIC [BODY]        (no BODY: one message per stdin line)
    rmq-native consume TOPIC --group G
    rmq-native topic create|delete TOPIC
    rmq-native devbroker start|stop|status

The name server comes from ``--name-server``, else ``RMQ_NAMESRV``, else
``127.0.0.1:9876``. Exit codes: 0 success, 1 RocketMQ error, 2 usage error,
3 fewer messages than ``--count`` arrived in time, 130 interrupted.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
from typing import Iterator, Sequence

from ._version import __version__
from .errors import RocketMQError

EXIT_ERROR, EXIT_USAGE, EXIT_INCOMPLETE, EXIT_INTERRUPTED = 1, 2, 3, 130


def _name_server(args: argparse.Namespace) -> str:
    return str(args.name_server or os.environ.get("RMQ_NAMESRV") or "127.0.0.1:9876")


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


def cmd_consume(args: argparse.Namespace) -> int:
    from .consumer import Consumer

    got = 0
    with Consumer(_name_server(args), args.group, args.topic, args.expression, selector=args.selector,
                  from_where=args.from_where) as consumer:
        for msg in consumer.messages(timeout=args.timeout):
            if args.json:
                record: dict[str, object] = {
                    "topic": msg.topic, "tags": msg.tags, "keys": msg.keys, "properties": dict(msg.properties),
                    "msg_id": msg.msg_id, "queue_id": msg.queue_id, "queue_offset": msg.queue_offset,
                    "reconsume_times": msg.reconsume_times, "born_timestamp": msg.born_timestamp,
                    "store_timestamp": msg.store_timestamp,
                }
                try:
                    record["body"] = msg.body.decode("utf-8")
                except UnicodeDecodeError:
                    record["body_base64"] = base64.b64encode(msg.body).decode()
                print(json.dumps(record, ensure_ascii=False), flush=True)
            else:
                print(_body_text(msg.body), flush=True)
            got += 1
            if args.count and got >= args.count:
                msg.ack()  # printed: leaving the loop would give it back
                break
    if args.count and got < args.count:
        print(f"rmq-native: only {got} of {args.count} messages arrived within {args.timeout} s", file=sys.stderr)
        return EXIT_INCOMPLETE
    return 0


def cmd_topic(args: argparse.Namespace) -> int:
    from .admin import Admin

    with Admin(_name_server(args)) as admin:
        if args.action == "create":
            admin.create_topic(args.topic, queues=args.queues)
            print(f"created topic {args.topic} ({args.queues} queues)", file=sys.stderr)
        else:
            admin.delete_topic(args.topic)
            print(f"deleted topic {args.topic}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-n", "--name-server", help="name server host:port (default: $RMQ_NAMESRV or 127.0.0.1:9876)")

    parser = argparse.ArgumentParser(prog="rmq-native", description="Send and receive RocketMQ messages.")
    parser.add_argument("--version", action="version", version=f"rmq-native {__version__}")
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

    p = sub.add_parser("topic", parents=[common], help="create or delete a topic")
    p.add_argument("action", choices=["create", "delete"])
    p.add_argument("topic")
    p.add_argument("--queues", type=int, default=4, help="read/write queues (default 4)")
    p.set_defaults(func=cmd_topic)

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
