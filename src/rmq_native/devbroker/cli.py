"""The command line: ``python -m rmq_native.devbroker start|stop|status|stop-broker|start-broker``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional

from .brokers import start_broker, stop_broker
from .common import (
    ACL_ACCESS_KEY,
    ACL_SECRET_KEY,
    BROKER_PORT_STEP,
    DEFAULT_BROKER_PORT,
    DEFAULT_NAMESRV_PORT,
    DEFAULT_STOP_TIMEOUT,
    DEFAULT_TIMEOUT,
    ROCKETMQ_VERSION,
    DevBrokerError,
)
from .lifecycle import start, status, stop
from .state import state_dir


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m rmq_native.devbroker",
        description=(
            f"Run a local Apache RocketMQ {ROCKETMQ_VERSION} name server + broker on 127.0.0.1 "
            "for development and tests."
        ),
        epilog=(
            "Environment: RMQ_NATIVE_DEVBROKER_HOME (state dir, default ~/.cache/rmq_native/devbroker), "
            "RMQ_NATIVE_CACHE (jar cache root, default ~/.cache/rmq_native), JAVA_HOME."
        ),
    )
    parser.add_argument("--home", help="state directory (overrides RMQ_NATIVE_DEVBROKER_HOME)")
    sub = parser.add_subparsers(dest="command", metavar="{start,stop,status,stop-broker,start-broker}")
    sub.required = True

    p_start = sub.add_parser("start", help="start (or reuse) the dev broker; prints the name server address last")
    p_start.add_argument("--namesrv-port", type=int, default=None,
                         help=f"name server port (default {DEFAULT_NAMESRV_PORT})")
    p_start.add_argument("--broker-port", type=int, default=None,
                         help=f"broker port; PORT-2 and PORT+1 are used too (default {DEFAULT_BROKER_PORT})")
    p_start.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                         help=f"seconds to wait until clients can send (default {DEFAULT_TIMEOUT:.0f})")
    p_start.add_argument("--clean", action="store_true", help="wipe the message store before starting")
    p_start.add_argument("--brokers", type=int, default=None,
                         help=f"number of brokers (broker-a, broker-b, ... on broker port + {BROKER_PORT_STEP}*i; "
                              "default 1)")
    p_start.add_argument("--acl", action="store_true", default=None,
                         help=f"enable authentication (test account {ACL_ACCESS_KEY} / {ACL_SECRET_KEY})")
    p_start.add_argument("--trace", action="store_true", default=None,
                         help="create the message trace topic RMQ_SYS_TRACE_TOPIC (for clients with trace=True)")
    p_start.add_argument("-q", "--quiet", action="store_true", help="no progress messages")

    p_stop = sub.add_parser("stop", help="stop the dev broker started from the state directory")
    p_stop.add_argument("--clean", action="store_true", help="also delete the message store")
    p_stop.add_argument("--timeout", type=float, default=DEFAULT_STOP_TIMEOUT,
                        help=f"seconds before SIGKILL (default {DEFAULT_STOP_TIMEOUT:.0f})")
    p_stop.add_argument("-q", "--quiet", action="store_true", help="no progress messages")

    p_sb = sub.add_parser("stop-broker", help="stop one broker (e.g. broker-b); the others keep running")
    p_sb.add_argument("name", help="broker name: broker-a, broker-b, ... (or namesrv: the name server)")
    p_sb.add_argument("--kill", action="store_true", help="SIGKILL at once (a crash) instead of a graceful stop")
    p_sb.add_argument("--timeout", type=float, default=DEFAULT_STOP_TIMEOUT,
                      help=f"seconds before SIGKILL (default {DEFAULT_STOP_TIMEOUT:.0f})")
    p_sb.add_argument("-q", "--quiet", action="store_true", help="no progress messages")

    p_rb = sub.add_parser("start-broker", help="start one stopped broker again; prints its address last")
    p_rb.add_argument("name", help="broker name: broker-a, broker-b, ... (or namesrv: the name server)")
    p_rb.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                      help=f"seconds to wait until it is writable (default {DEFAULT_TIMEOUT:.0f})")
    p_rb.add_argument("-q", "--quiet", action="store_true", help="no progress messages")

    p_status = sub.add_parser("status", help="exit 0 and print the address if up, exit 1 if not")
    p_status.add_argument("--json", action="store_true", help="print machine-readable JSON")

    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            addr = start(args.namesrv_port, args.broker_port, timeout=args.timeout, clean=args.clean,
                         home=args.home, quiet=args.quiet, brokers=args.brokers, acl=args.acl, trace=args.trace)
            print(addr, flush=True)
            return 0
        if args.command == "stop-broker":
            stop_broker(args.name, home=args.home, kill=args.kill, timeout=args.timeout, quiet=args.quiet)
            return 0
        if args.command == "start-broker":
            print(start_broker(args.name, home=args.home, timeout=args.timeout, quiet=args.quiet), flush=True)
            return 0
        if args.command == "stop":
            stop(home=args.home, clean=args.clean, timeout=args.timeout, quiet=args.quiet)
            return 0
        info = status(home=args.home)
        if args.json:
            print(json.dumps({"up": True, **info} if info else {"up": False, "state_dir": str(state_dir(args.home))},
                             indent=2))
        elif info and len(info["brokers"]) == 1:
            print(
                f"up: name server {info['namesrv_addr']} (pid {info['namesrv_pid']}), "
                f"broker {info['broker_addr']} (pid {info['broker_pid']}), state {info['state_dir']}"
            )
        elif info:
            brokers = ", ".join(
                f"{n} {b['addr']} (" + (f"pid {b['pid']})" if b["up"] else "stopped)")
                for n, b in info["brokers"].items()
            )
            print(f"up: name server {info['namesrv_addr']} (pid {info['namesrv_pid']}), {brokers}, "
                  f"state {info['state_dir']}")
        else:
            print(f"down (state {state_dir(args.home)})")
        return 0 if info else 1
    except DevBrokerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
