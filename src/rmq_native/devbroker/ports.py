"""The TCP ports of a dev broker on 127.0.0.1: which a broker uses, which are free."""

from __future__ import annotations

import socket
import time
from typing import List

from .common import HOST, IS_WINDOWS, DevBrokerError


def port_in_use(port: int) -> bool:
    """True if ``port`` on 127.0.0.1 cannot be bound (something listens on it)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if IS_WINDOWS:
            s.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_EXCLUSIVEADDRUSE", socket.SO_REUSEADDR), 1)
        else:
            # Ignore TIME_WAIT leftovers (the JVM servers set SO_REUSEADDR too); a LISTEN socket still conflicts.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((HOST, port))
        return False
    except OSError:
        return True
    finally:
        s.close()


def wait_ports_free(ports: List[int], timeout: float) -> List[int]:
    """Wait up to ``timeout`` seconds for ``ports`` to be free; returns those still in use."""
    deadline = time.monotonic() + timeout
    busy = [p for p in ports if port_in_use(p)]
    while busy and time.monotonic() < deadline:
        time.sleep(0.2)
        busy = [p for p in busy if port_in_use(p)]
    return busy


def broker_ports(broker_port: int) -> List[int]:
    """The ports of the broker listening on ``broker_port``: listenPort (clients),
    listenPort-2 ("fast"/VIP channel), listenPort+1 (HA)."""
    return [broker_port, broker_port - 2, broker_port + 1]


def check_ports(n_port: int, b_port: int) -> None:
    """Raise :class:`DevBrokerError` if the name server or broker port is invalid or they clash."""
    if not (1 <= n_port <= 65535):
        raise DevBrokerError(f"invalid name server port {n_port}")
    if not (3 <= b_port <= 65534):
        raise DevBrokerError(f"invalid broker port {b_port} (needs port-2 and port+1 too)")
    if n_port in broker_ports(b_port):
        raise DevBrokerError(
            f"name server port {n_port} clashes with broker ports {broker_ports(b_port)} "
            "(the broker uses PORT, PORT-2 and PORT+1)"
        )
