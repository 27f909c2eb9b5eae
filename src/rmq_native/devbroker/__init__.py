"""Local Apache RocketMQ dev broker (name server + one broker) for development and tests.

Usage::

    python -m rmq_native.devbroker start [--namesrv-port 9876] [--broker-port 10911] [--timeout 120] [--clean]
    python -m rmq_native.devbroker status [--json]
    python -m rmq_native.devbroker stop [--clean]
    python -m rmq_native.devbroker start --brokers 2 [--acl]   # broker-a + broker-b, one cluster
    python -m rmq_native.devbroker stop-broker broker-b [--kill]
    python -m rmq_native.devbroker start-broker broker-b

On success ``start`` prints the name server address (``127.0.0.1:9876``) as the last
line of stdout; progress goes to stderr.  Everything listens on 127.0.0.1 only.

The RocketMQ server jars are fetched once with Maven (``mvn dependency:copy-dependencies``)
into ``~/.cache/rmq_native/rocketmq-<version>/lib`` (root overridable with the
``RMQ_NATIVE_CACHE`` environment variable).  Runtime state (configs, pid file, logs,
message store) lives in ``~/.cache/rmq_native/devbroker`` (``RMQ_NATIVE_DEVBROKER_HOME``).

This package deliberately uses only the standard library and imports nothing else from
``rmq_native``, so it works before the native library is built; ``import rmq_native``
does not import it.  Python API::

    from rmq_native import devbroker
    addr = devbroker.start()        # "127.0.0.1:9876"; reuses a running dev broker
    devbroker.status()              # dict or None
    devbroker.stop()
    devbroker.start(brokers=2, acl=True, home=..., namesrv_port=27876, broker_port=28911)
    devbroker.stop_broker("broker-b", kill=True)   # SIGKILL; kill=False: graceful shutdown
    devbroker.start_broker("broker-b")             # returns its address once it is writable again

Several brokers: ``brokers=N`` starts ``broker-a``, ``broker-b`` ... in cluster
``DefaultCluster``; broker *i* (0-based) listens on ``broker_port + 10*i`` (and that
port -2 / +1) with its own store (``store`` for broker-a, ``store-<name>`` for the
others).  ``status()`` counts the dev broker as up while the name server and at least
one broker run; ``status()["brokers"]`` tells which.

ACL: ``acl=True`` enables RocketMQ 5.3's authentication and authorization (ACL 2.0;
the 1.0 ``plain_acl.yml``/``aclEnable`` mechanism no longer exists in 5.3 brokers).  Its
remoting signature is the same HMAC-SHA1 over the sorted request fields that the Go SDK
(and ACL 1.0 clients) send, so ``access_key``/``secret_key`` clients work.  The test
account is the super user ``ACL_ACCESS_KEY`` / ``ACL_SECRET_KEY``
(``rmq_native_test`` / ``rmq_native_test_secret``) -- for local tests only.  The name
server itself does not check credentials (as in RocketMQ).

Modules, one concern each: ``common`` (constants, :class:`DevBrokerError`), ``lock``
(inter-process file lock), ``jars`` (Maven download), ``java`` (java/javac, the JVM
command line), ``config`` (the .properties/.conf files), ``process`` (spawning and
signalling), ``ports``, ``state`` (the state directory), ``remoting`` and ``fastjson``
(the name server's protocol), ``ready`` (readiness checks), ``lifecycle``
(start/stop/status), ``brokers`` (one broker or the name server), ``cli``;
see docs/architecture.md.
"""

from __future__ import annotations

from .brokers import start_broker, stop_broker
from .cli import main
from .common import (
    ACL_ACCESS_KEY,
    ACL_SECRET_KEY,
    BROKER_NAME,
    BROKER_PORT_STEP,
    CLUSTER_NAME,
    DEFAULT_BROKER_PORT,
    DEFAULT_NAMESRV_PORT,
    DEFAULT_STOP_TIMEOUT,
    DEFAULT_TIMEOUT,
    HOST,
    MAX_MESSAGE_SIZE,
    ROCKETMQ_VERSION,
    DevBrokerError,
)
from .fastjson import loads as fastjson_loads
from .jars import cache_dir, ensure_jars
from .lifecycle import start, status, stop
from .lock import file_lock
from .ports import port_in_use
from .process import pid_alive
from .remoting import (
    CODE_GET_BROKER_CLUSTER_INFO,
    CODE_GET_MAX_OFFSET,
    CODE_GET_ROUTEINFO_BY_TOPIC,
    CODE_SUCCESS,
    CODE_TOPIC_NOT_EXIST,
    get_cluster_info,
    get_route_info,
    recv_exact,
    remoting_request,
)
from .state import STATE_FILE, broker_names, state_dir

__all__ = [
    "ROCKETMQ_VERSION",
    "DEFAULT_NAMESRV_PORT",
    "DEFAULT_BROKER_PORT",
    "DEFAULT_TIMEOUT",
    "DEFAULT_STOP_TIMEOUT",
    "HOST",
    "CLUSTER_NAME",
    "BROKER_NAME",
    "BROKER_PORT_STEP",
    "MAX_MESSAGE_SIZE",
    "DevBrokerError",
    "ACL_ACCESS_KEY",
    "ACL_SECRET_KEY",
    "CODE_GET_MAX_OFFSET",
    "CODE_GET_ROUTEINFO_BY_TOPIC",
    "CODE_GET_BROKER_CLUSTER_INFO",
    "CODE_SUCCESS",
    "CODE_TOPIC_NOT_EXIST",
    "STATE_FILE",
    "start",
    "stop",
    "status",
    "start_broker",
    "stop_broker",
    "broker_names",
    "state_dir",
    "cache_dir",
    "ensure_jars",
    "file_lock",
    "pid_alive",
    "port_in_use",
    "remoting_request",
    "recv_exact",
    "fastjson_loads",
    "get_route_info",
    "get_cluster_info",
    "main",
]

# The private names of the single-module devbroker.py that tests used; new code uses the public ones.
_STATE_FILE = STATE_FILE
_file_lock = file_lock
_pid_alive = pid_alive
_port_in_use = port_in_use
_recv_exact = recv_exact
_fastjson_loads = fastjson_loads
