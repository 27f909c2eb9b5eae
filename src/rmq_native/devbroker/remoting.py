"""A minimal RocketMQ remoting client (JSON headers): one request, one answer;
the name server's route and cluster queries."""

from __future__ import annotations

import itertools
import json
import socket
import struct
from typing import Any, Dict, Optional, Tuple

from . import fastjson

#: ``MQVersion.Version.V5_3_3.ordinal()`` -- sent as the remoting protocol "version".
_REMOTING_VERSION = 479

# Remoting request codes (org.apache.rocketmq.remoting.protocol.RequestCode).
CODE_GET_MAX_OFFSET = 30
CODE_GET_ROUTEINFO_BY_TOPIC = 105
CODE_GET_BROKER_CLUSTER_INFO = 106
CODE_SUCCESS = 0
CODE_TOPIC_NOT_EXIST = 17

#: The topic every broker serves (its route tells whether a broker is registered and writable).
DEFAULT_TOPIC = "TBW102"

_opaque = itertools.count(1)


def recv_exact(sock: socket.socket, n: int) -> bytes:
    """Read exactly ``n`` bytes; ConnectionError if the peer closes first."""
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by peer")
        buf += chunk
    return bytes(buf)


def remoting_request(
    addr: str,
    code: int,
    ext_fields: Optional[Dict[str, str]] = None,
    body: bytes = b"",
    timeout: float = 3.0,
    credentials: Optional[Tuple[str, str]] = None,
) -> Tuple[Dict[str, Any], bytes]:
    """Send one RocketMQ remoting request (JSON header) to ``host:port``; return (header, body).

    Frame: int32 total length (excluding itself) | int32 (serialize type << 24 | header length)
    | JSON header | body.  All integers are big-endian.  ``credentials=(access_key,
    secret_key)`` signs the request like RocketMQ's ACL clients.
    """
    host, _, port = addr.rpartition(":")
    opaque = next(_opaque)
    fields = {k: str(v) for k, v in (ext_fields or {}).items()}
    if credentials:
        fields["AccessKey"] = credentials[0]
        fields["Signature"] = _sign(fields, body, credentials[1])
    header = {
        "code": code,
        "language": "PYTHON",
        "version": _REMOTING_VERSION,
        "opaque": opaque,
        "flag": 0,
        "extFields": fields,
    }
    hbytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    frame = struct.pack(">ii", 4 + len(hbytes) + len(body), len(hbytes) & 0xFFFFFF) + hbytes + body
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(frame)
        while True:
            (total,) = struct.unpack(">i", recv_exact(sock, 4))
            if total < 4 or total > 64 * 1024 * 1024:
                raise ConnectionError(f"bad frame length {total}")
            data = recv_exact(sock, total)
            (mark,) = struct.unpack(">i", data[:4])
            ser_type, hlen = (mark >> 24) & 0xFF, mark & 0xFFFFFF
            if ser_type != 0:
                raise ConnectionError(f"unsupported serialize type {ser_type}")
            rheader = json.loads(data[4 : 4 + hlen].decode("utf-8"))
            rbody = data[4 + hlen :]
            if rheader.get("opaque") == opaque and (rheader.get("flag", 0) & 1):
                return rheader, rbody


def _sign(fields: Dict[str, str], body: bytes, secret_key: str) -> str:
    """RocketMQ's remoting signature: base64(HMAC-SHA1(secret, sorted field values + body))."""
    import base64
    import hashlib
    import hmac

    content = "".join(v for k, v in sorted(fields.items()) if k != "Signature").encode("utf-8") + body
    return base64.b64encode(hmac.new(secret_key.encode("utf-8"), content, hashlib.sha1).digest()).decode()


def get_route_info(namesrv_addr: str, topic: str = DEFAULT_TOPIC, timeout: float = 3.0) -> Optional[Dict[str, Any]]:
    """GET_ROUTEINFO_BY_TOPIC; returns the TopicRouteData dict, or None if the topic has no route."""
    header, body = remoting_request(
        namesrv_addr, CODE_GET_ROUTEINFO_BY_TOPIC,
        {"topic": topic, "acceptStandardJsonOnly": "true"}, timeout=timeout,
    )
    if header.get("code") == CODE_TOPIC_NOT_EXIST:
        return None
    if header.get("code") != CODE_SUCCESS:
        raise ConnectionError(f"GET_ROUTEINFO_BY_TOPIC failed: {header.get('code')} {header.get('remark')}")
    return fastjson.loads(body) if body else None


def get_cluster_info(namesrv_addr: str, timeout: float = 3.0) -> Dict[str, Any]:
    """GET_BROKER_CLUSTER_INFO; returns the ClusterInfo dict."""
    header, body = remoting_request(namesrv_addr, CODE_GET_BROKER_CLUSTER_INFO, timeout=timeout)
    if header.get("code") != CODE_SUCCESS:
        raise ConnectionError(f"GET_BROKER_CLUSTER_INFO failed: {header.get('code')} {header.get('remark')}")
    return fastjson.loads(body) if body else {}
