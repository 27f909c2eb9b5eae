"""What every dev broker module shares: versions, addresses, names, the error class, progress output."""

from __future__ import annotations

import os
import sys

#: RocketMQ server version (latest 5.3.x whose full dependency tree resolves from Maven Central).
ROCKETMQ_VERSION = "5.3.3"

HOST = "127.0.0.1"
DEFAULT_NAMESRV_PORT = 9876
DEFAULT_BROKER_PORT = 10911
DEFAULT_TIMEOUT = 120.0
DEFAULT_STOP_TIMEOUT = 30.0
CLUSTER_NAME = "DefaultCluster"
BROKER_NAME = "broker-a"
MAX_MESSAGE_SIZE = 4 * 1024 * 1024
#: Port distance between the brokers of a multi-broker dev cluster.
BROKER_PORT_STEP = 10
#: The test account of a dev broker started with ``acl=True`` (a super user; local tests only).
ACL_ACCESS_KEY = "rmq_native_test"
ACL_SECRET_KEY = "rmq_native_test_secret"

IS_WINDOWS = os.name == "nt"
IS_LINUX = sys.platform.startswith("linux")


class DevBrokerError(RuntimeError):
    """Raised when the dev broker cannot be prepared, started or stopped."""


DevBrokerError.__module__ = "rmq_native.devbroker"  # its public name, as before the package split


def progress(msg: str) -> None:
    """Print a progress message to stderr (the default ``log`` of the dev broker functions)."""
    print(f"[devbroker] {msg}", file=sys.stderr, flush=True)


def silent(msg: str) -> None:
    """Drop a progress message (the ``log`` of ``quiet=True``)."""
