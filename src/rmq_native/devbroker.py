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

This module deliberately uses only the standard library and imports nothing else from
``rmq_native``, so it works before the native library is built.  Python API::

    from rmq_native import devbroker
    addr = devbroker.start()        # "127.0.0.1:9876"; reuses a running dev broker
    devbroker.status()              # dict or None
    devbroker.stop()
    devbroker.start(brokers=2, acl=True, home=..., namesrv_port=59876, broker_port=60911)
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
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

__all__ = [
    "ROCKETMQ_VERSION",
    "DEFAULT_NAMESRV_PORT",
    "DEFAULT_BROKER_PORT",
    "DevBrokerError",
    "ACL_ACCESS_KEY",
    "ACL_SECRET_KEY",
    "start",
    "stop",
    "status",
    "start_broker",
    "stop_broker",
    "broker_names",
    "state_dir",
    "cache_dir",
    "ensure_jars",
    "remoting_request",
    "get_route_info",
    "get_cluster_info",
    "main",
]

#: RocketMQ server version (latest 5.3.x whose full dependency tree resolves from Maven Central).
ROCKETMQ_VERSION = "5.3.3"
#: ``MQVersion.Version.V5_3_3.ordinal()`` -- sent as the remoting protocol "version".
_REMOTING_VERSION = 479

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

_STATE_FILE = "devbroker.json"
_MARKER_PROP = "-Drmq_native.devbroker.home="
_ROLE_PROP = "-Drmq_native.devbroker.role="
_NAMESRV_MAIN = "org.apache.rocketmq.namesrv.NamesrvStartup"
_BROKER_MAIN = "org.apache.rocketmq.broker.BrokerStartup"

# Remoting request codes (org.apache.rocketmq.remoting.protocol.RequestCode).
CODE_GET_MAX_OFFSET = 30
CODE_GET_ROUTEINFO_BY_TOPIC = 105
CODE_GET_BROKER_CLUSTER_INFO = 106
CODE_SUCCESS = 0
CODE_TOPIC_NOT_EXIST = 17
_PERM_WRITE = 0x2
_DEFAULT_TOPIC = "TBW102"

_JDK9_FLAGS = [
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-exports=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
]

_IS_WINDOWS = os.name == "nt"
_IS_LINUX = sys.platform.startswith("linux")


class DevBrokerError(RuntimeError):
    """Raised when the dev broker cannot be prepared, started or stopped."""


def _info(msg: str) -> None:
    print(f"[devbroker] {msg}", file=sys.stderr, flush=True)


def _quiet(msg: str) -> None:  # noqa: ARG001 - sink for quiet=True
    pass


# --------------------------------------------------------------------------- paths


def cache_dir() -> Path:
    """Root of the download cache (``RMQ_NATIVE_CACHE`` or ``~/.cache/rmq_native``)."""
    env = os.environ.get("RMQ_NATIVE_CACHE")
    if env:
        return Path(env).expanduser().resolve()
    return (Path.home() / ".cache" / "rmq_native").resolve()


def state_dir(home: str | os.PathLike[str] | None = None) -> Path:
    """Dev broker state directory (``RMQ_NATIVE_DEVBROKER_HOME`` or ``~/.cache/rmq_native/devbroker``)."""
    if home is not None:
        return Path(home).expanduser().resolve()
    env = os.environ.get("RMQ_NATIVE_DEVBROKER_HOME")
    if env:
        return Path(env).expanduser().resolve()
    return (Path.home() / ".cache" / "rmq_native" / "devbroker").resolve()


def _version_dir(version: str) -> Path:
    return cache_dir() / f"rocketmq-{version}"


# --------------------------------------------------------------------------- locking


@contextlib.contextmanager
def _file_lock(path: Path, timeout: float = 600.0) -> Iterator[None]:
    """Inter-process exclusive lock (serialises concurrent start/stop/downloads)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a+b")
    try:
        deadline = time.monotonic() + timeout
        if sys.platform == "win32":
            import msvcrt

            while True:
                try:
                    fh.seek(0)
                    msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise DevBrokerError(f"timed out waiting for lock {path}") from None
                    time.sleep(0.2)
            try:
                yield
            finally:
                fh.seek(0)
                with contextlib.suppress(OSError):
                    msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            while True:
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise DevBrokerError(f"timed out waiting for lock {path}") from None
                    time.sleep(0.2)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    finally:
        fh.close()


# --------------------------------------------------------------------------- tools


def _find_java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        cand = Path(java_home) / "bin" / ("java.exe" if _IS_WINDOWS else "java")
        if cand.is_file():
            return str(cand)
    found = shutil.which("java")
    if not found:
        raise DevBrokerError(
            "`java` was not found: install a JDK (17 recommended; RocketMQ 5.3 needs Java 8+) "
            "and put it on PATH or set JAVA_HOME"
        )
    return found


def _find_javac(java: str) -> Optional[str]:
    exe = "javac.exe" if _IS_WINDOWS else "javac"
    sibling = Path(os.path.realpath(java)).parent / exe
    if sibling.is_file():
        return str(sibling)
    return shutil.which("javac")


def _find_mvn() -> str:
    found = shutil.which("mvn")
    if not found:
        raise DevBrokerError(
            "`mvn` (Apache Maven) was not found on PATH; it is needed once to download the "
            f"RocketMQ {ROCKETMQ_VERSION} server jars. Install Maven 3.x, or pre-populate "
            f"{_version_dir(ROCKETMQ_VERSION) / 'lib'} (see RMQ_NATIVE_CACHE)"
        )
    return found


def _java_major(java: str) -> int:
    try:
        out = subprocess.run(
            [java, "-version"], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise DevBrokerError(f"cannot run {java} -version: {exc}") from exc
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not m:
        return 17
    major = int(m.group(1))
    if major == 1 and m.group(2):
        major = int(m.group(2))
    return major


# --------------------------------------------------------------------------- jars

_POM_TEMPLATE = """<?xml version="1.0" encoding="UTF-8"?>
<!-- generated by rmq_native.devbroker: fetches the RocketMQ server jars -->
<project>
  <modelVersion>4.0.0</modelVersion>
  <groupId>rmq-native</groupId>
  <artifactId>devbroker-deps</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.rocketmq</groupId>
      <artifactId>rocketmq-namesrv</artifactId>
      <version>{version}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.rocketmq</groupId>
      <artifactId>rocketmq-broker</artifactId>
      <version>{version}</version>
    </dependency>
  </dependencies>
</project>
"""


def ensure_jars(version: str = ROCKETMQ_VERSION, log: Callable[[str], None] = _info) -> Path:
    """Return the directory holding the RocketMQ server jars, downloading them once with mvn."""
    vdir = _version_dir(version)
    lib = vdir / "lib"
    marker = vdir / ".complete"
    if marker.is_file() and lib.is_dir():
        return lib
    vdir.mkdir(parents=True, exist_ok=True)
    with _file_lock(vdir / ".lock"):
        if marker.is_file() and lib.is_dir():  # another process finished meanwhile
            return lib
        mvn = _find_mvn()
        log(f"downloading RocketMQ {version} server jars with Maven into {lib} (one time) ...")
        pom = vdir / "pom.xml"
        pom.write_text(_POM_TEMPLATE.format(version=version), encoding="utf-8")
        tmp = vdir / f"lib.partial-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        cmd = [
            mvn, "-B", "-q", "-f", str(pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={tmp}",
            "-DincludeScope=runtime",
        ]
        t0 = time.monotonic()
        try:
            proc = subprocess.run(
                cmd, cwd=str(vdir), stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
            )
        except OSError as exc:
            raise DevBrokerError(f"cannot run mvn: {exc}") from exc
        jars = sorted(tmp.glob("*.jar")) if tmp.is_dir() else []
        names = {j.name for j in jars}
        needed = [f"rocketmq-namesrv-{version}.jar", f"rocketmq-broker-{version}.jar"]
        if proc.returncode != 0 or not all(n in names for n in needed):
            shutil.rmtree(tmp, ignore_errors=True)
            tail = "\n".join(proc.stdout.splitlines()[-30:])
            raise DevBrokerError(
                f"mvn failed to fetch RocketMQ {version} (exit {proc.returncode}):\n{tail}"
            )
        shutil.rmtree(lib, ignore_errors=True)
        os.replace(tmp, lib)
        marker.write_text(
            json.dumps({"version": version, "jars": len(jars), "time": time.time()}), encoding="utf-8"
        )
        log(f"fetched {len(jars)} jars in {time.monotonic() - t0:.1f}s")
    return lib


# A tiny HAService that binds the broker's HA listener (listenPort+1) to 127.0.0.1
# instead of the wildcard address (DefaultHAService has no bind-address option).
# It is loaded by RocketMQ's ServiceProvider from META-INF/service/.
_HA_CLASS = "rmqnative.devbroker.LoopbackHAService"
_HA_SOURCE = """\
package rmqnative.devbroker;

import java.io.IOException;
import java.lang.reflect.Field;
import java.net.InetSocketAddress;
import org.apache.rocketmq.store.DefaultMessageStore;
import org.apache.rocketmq.store.ha.DefaultHAService;

/** DefaultHAService whose accept socket binds to a fixed address (generated by rmq_native.devbroker). */
public class LoopbackHAService extends DefaultHAService {
    @Override
    public void init(DefaultMessageStore store) throws IOException {
        super.init(store);
        String host = System.getProperty("rmq_native.devbroker.haBindAddress", "127.0.0.1");
        int port = store.getMessageStoreConfig().getHaListenPort();
        Object svc = this.acceptSocketService;
        for (Class<?> c = svc.getClass(); c != null; c = c.getSuperclass()) {
            try {
                Field f = c.getDeclaredField("socketAddressListen");
                f.setAccessible(true);
                f.set(svc, new InetSocketAddress(host, port));
                return;
            } catch (NoSuchFieldException e) {
                // keep looking in the superclass
            } catch (ReflectiveOperationException | RuntimeException e) {
                throw new IOException("cannot bind HA service to " + host, e);
            }
        }
        throw new IOException("socketAddressListen not found; cannot bind HA service to " + host);
    }
}
"""


def _ensure_ha_ext(lib: Path, java: str, log: Callable[[str], None]) -> Optional[Path]:
    """Compile (once) the loopback HA service; None if javac is unavailable or it fails."""
    vdir = lib.parent
    out = vdir / "devbroker-ext"
    marker = out / ".complete"
    if marker.is_file():
        return out / "classes"
    javac = _find_javac(java)
    if not javac:
        log("warning: javac not found; the broker HA port will listen on all interfaces")
        return None
    with _file_lock(vdir / ".lock"):
        if marker.is_file():
            return out / "classes"
        shutil.rmtree(out, ignore_errors=True)
        src = out / "src" / "rmqnative" / "devbroker" / "LoopbackHAService.java"
        classes = out / "classes"
        src.parent.mkdir(parents=True, exist_ok=True)
        classes.mkdir(parents=True, exist_ok=True)
        src.write_text(_HA_SOURCE, encoding="utf-8")
        cp = os.pathsep.join([str(lib / "*")])
        proc = subprocess.run(
            [javac, "-nowarn", "-encoding", "UTF-8", "-cp", cp, "-d", str(classes), str(src)],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace",
        )
        if proc.returncode != 0:
            log("warning: could not compile the loopback HA helper; the broker HA port will "
                "listen on all interfaces:\n" + (proc.stderr or proc.stdout)[-2000:])
            return None
        svc = classes / "META-INF" / "service" / "org.apache.rocketmq.store.ha.HAService"
        svc.parent.mkdir(parents=True, exist_ok=True)
        svc.write_text(_HA_CLASS + "\n", encoding="utf-8")
        marker.write_text("ok", encoding="utf-8")
    return classes


# --------------------------------------------------------------------------- remoting protocol

_opaque = itertools.count(1)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
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
            (total,) = struct.unpack(">i", _recv_exact(sock, 4))
            if total < 4 or total > 64 * 1024 * 1024:
                raise ConnectionError(f"bad frame length {total}")
            data = _recv_exact(sock, total)
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


def _fastjson_loads(data: bytes) -> Any:
    """Parse fastjson output, which may use bare integer map keys (``{0:"a"}``)."""
    text = data.decode("utf-8")
    try:
        return json.loads(text)
    except ValueError:
        pass
    out: List[str] = []
    i, n, in_str = 0, len(text), False
    expect_key = False
    while i < n:
        ch = text[i]
        if in_str:
            out.append(ch)
            if ch == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if ch == '"':
                in_str = False
            i += 1
            continue
        if ch == '"':
            in_str, expect_key = True, False
        elif ch in "{,":
            expect_key = True
        elif expect_key and (ch.isdigit() or ch == "-"):
            j = i + 1
            while j < n and text[j].isdigit():
                j += 1
            k = j
            while k < n and text[k].isspace():
                k += 1
            if k < n and text[k] == ":":
                out.append('"' + text[i:j] + '"')
                i, expect_key = j, False
                continue
            expect_key = False
        elif not ch.isspace():
            expect_key = False
        out.append(ch)
        i += 1
    return json.loads("".join(out))


def get_route_info(namesrv_addr: str, topic: str = _DEFAULT_TOPIC, timeout: float = 3.0) -> Optional[Dict[str, Any]]:
    """GET_ROUTEINFO_BY_TOPIC; returns the TopicRouteData dict, or None if the topic has no route."""
    header, body = remoting_request(
        namesrv_addr, CODE_GET_ROUTEINFO_BY_TOPIC,
        {"topic": topic, "acceptStandardJsonOnly": "true"}, timeout=timeout,
    )
    if header.get("code") == CODE_TOPIC_NOT_EXIST:
        return None
    if header.get("code") != CODE_SUCCESS:
        raise ConnectionError(f"GET_ROUTEINFO_BY_TOPIC failed: {header.get('code')} {header.get('remark')}")
    return _fastjson_loads(body) if body else None


def get_cluster_info(namesrv_addr: str, timeout: float = 3.0) -> Dict[str, Any]:
    """GET_BROKER_CLUSTER_INFO; returns the ClusterInfo dict."""
    header, body = remoting_request(namesrv_addr, CODE_GET_BROKER_CLUSTER_INFO, timeout=timeout)
    if header.get("code") != CODE_SUCCESS:
        raise ConnectionError(f"GET_BROKER_CLUSTER_INFO failed: {header.get('code')} {header.get('remark')}")
    return _fastjson_loads(body) if body else {}


def _route_ready(
    namesrv_addr: str, broker_addr: str, credentials: Optional[Tuple[str, str]] = None
) -> Tuple[bool, str]:
    try:
        route = get_route_info(namesrv_addr, _DEFAULT_TOPIC, timeout=2.0)
    except (OSError, ValueError) as exc:
        return False, f"name server not answering ({exc})"
    if not route:
        return False, "broker not registered yet"
    names = {
        bd.get("brokerName")
        for bd in route.get("brokerDatas") or []
        if broker_addr in (bd.get("brokerAddrs") or {}).values()
    }
    if not names:
        return False, f"broker {broker_addr} not in route"
    for qd in route.get("queueDatas") or []:
        if qd.get("brokerName") in names and qd.get("perm", 0) & _PERM_WRITE and qd.get("writeQueueNums", 0) > 0:
            break
    else:
        return False, "route has no writable queues yet"
    try:
        # cheap request that goes through the broker's topic config and message store
        header, _ = remoting_request(
            broker_addr, CODE_GET_MAX_OFFSET, {"topic": _DEFAULT_TOPIC, "queueId": "0"}, timeout=2.0,
            credentials=credentials,
        )
    except (OSError, ValueError) as exc:
        return False, f"broker port not answering ({exc})"
    if header.get("code") != CODE_SUCCESS:
        return False, f"broker answered code {header.get('code')}"
    return True, "ready"


def _namesrv_answers(namesrv_addr: str, timeout: float = 2.0) -> bool:
    try:
        get_cluster_info(namesrv_addr, timeout=timeout)
        return True
    except (OSError, ValueError):
        return False


# --------------------------------------------------------------------------- processes


def _reap(pid: int) -> None:
    if _IS_WINDOWS:
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if _IS_WINDOWS:
        try:
            out = subprocess.run(
                ["tasklist", "/FI", f"PID eq {pid}", "/NH", "/FO", "CSV"],
                capture_output=True, text=True, stdin=subprocess.DEVNULL,
            ).stdout
        except OSError:
            return False
        return f'"{pid}"' in out
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if _IS_LINUX:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            if stat[stat.rindex(")") + 2 :].startswith(("Z", "X")):
                return False
        except (OSError, ValueError):
            return False
    return True


def _cmdline(pid: int) -> Optional[List[str]]:
    if _IS_LINUX:
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        return [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]
    if not _IS_WINDOWS:
        try:
            out = subprocess.run(
                ["ps", "-ww", "-p", str(pid), "-o", "command="],
                capture_output=True, text=True, stdin=subprocess.DEVNULL,
            )
        except OSError:
            return None
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip().split(" ")
    return None


def _is_ours(pid: int, marker: str, role: str) -> bool:
    """True if ``pid`` is alive and is the ``role`` java process started for this state dir."""
    if not _pid_alive(pid):
        return False
    args = _cmdline(pid)
    if args is None:
        # No way to read the command line (Windows, exotic OS): trust the recorded pid.
        return not _IS_LINUX
    role_arg = f"{_ROLE_PROP}{role}"
    if marker in args and role_arg in args:  # exact argv elements (/proc on Linux)
        return True
    # `ps` output is split on spaces, so a state dir containing spaces needs a joined match
    joined = f" {' '.join(args)} "
    return f" {marker} " in joined and f" {role_arg} " in joined


def _send_term(pid: int) -> None:
    if _IS_WINDOWS:
        subprocess.run(["taskkill", "/PID", str(pid), "/T"], capture_output=True, stdin=subprocess.DEVNULL)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


def _send_kill(pid: int) -> None:
    if _IS_WINDOWS:
        subprocess.run(["taskkill", "/PID", str(pid), "/T", "/F"], capture_output=True, stdin=subprocess.DEVNULL)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _terminate_all(pids: List[int], timeout: float) -> None:
    """Graceful stop in order: SIGTERM the first pid, give it a moment (the broker unregisters
    from the name server right at the start of its shutdown hook), SIGTERM the rest, wait for
    all up to ``timeout`` seconds, then SIGKILL whatever is left."""
    deadline = time.monotonic() + timeout
    for i, pid in enumerate(pids):
        _send_term(pid)
        if i == 0 and len(pids) > 1:
            _wait_dead(pid, min(2.0, timeout))
    for pid in pids:
        if not _wait_dead(pid, max(0.0, deadline - time.monotonic())):
            _send_kill(pid)
            _wait_dead(pid, 10.0)
        proc = _CHILDREN.pop(pid, None)
        if proc is not None:
            with contextlib.suppress(Exception):
                proc.wait(timeout=5)


def _wait_dead(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return True
        time.sleep(0.1)
    return not _pid_alive(pid)


def _port_in_use(port: int) -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if _IS_WINDOWS:
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


def _wait_ports_free(ports: List[int], timeout: float) -> List[int]:
    deadline = time.monotonic() + timeout
    busy = [p for p in ports if _port_in_use(p)]
    while busy and time.monotonic() < deadline:
        time.sleep(0.2)
        busy = [p for p in busy if _port_in_use(p)]
    return busy


def _broker_ports(broker_port: int) -> List[int]:
    # listenPort (clients), listenPort-2 ("fast"/VIP channel), listenPort+1 (HA)
    return [broker_port, broker_port - 2, broker_port + 1]


# --------------------------------------------------------------------------- state


def _read_state(sd: Path) -> Optional[Dict[str, Any]]:
    try:
        state: Dict[str, Any] = json.loads((sd / _STATE_FILE).read_text(encoding="utf-8"))
        return state
    except (OSError, ValueError):
        return None


def _write_state(sd: Path, state: Dict[str, Any]) -> None:
    path = sd / _STATE_FILE
    fd, tmp = tempfile.mkstemp(dir=str(sd), prefix=".devbroker-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(state, fh, indent=2)
    os.replace(tmp, path)


def _remove_state(sd: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (sd / _STATE_FILE).unlink()


def _marker(sd: Path) -> str:
    return f"{_MARKER_PROP}{sd}"


def broker_names(count: int) -> List[str]:
    """Names of the brokers of a dev cluster with ``count`` brokers: broker-a, broker-b, ..."""
    if not 1 <= count <= 26:
        raise DevBrokerError(f"brokers must be 1..26, not {count}")
    return [f"broker-{chr(ord('a') + i)}" for i in range(count)]


def _role(name: str) -> str:
    """Process role (and state key) of a broker: "broker" for broker-a (as before), else its name."""
    return "broker" if name == BROKER_NAME else name


def _state_brokers(state: Dict[str, Any]) -> List[str]:
    return list(state.get("brokers") or [BROKER_NAME])


def _state_roles(state: Dict[str, Any]) -> List[str]:
    return ["namesrv", *(_role(n) for n in _state_brokers(state))]


def _credentials(state: Dict[str, Any]) -> Optional[Tuple[str, str]]:
    return (ACL_ACCESS_KEY, ACL_SECRET_KEY) if state.get("acl") else None


def _alive_procs(sd: Path, state: Dict[str, Any]) -> Dict[str, int]:
    marker = _marker(sd)  # derived from the state dir, never trusted from the file
    alive = {}
    for role in _state_roles(state):
        pid = int((state.get(role) or {}).get("pid") or 0)
        if pid and _is_ours(pid, marker, role):
            alive[role] = pid
    return alive


def _log_tail(sd: Path, lines: int = 25) -> str:
    logs = sd / "logs"
    parts = []
    for rel in ("namesrv.out", "broker.out", "rocketmqlogs/namesrv.log", "rocketmqlogs/broker.log"):
        p = logs / rel
        try:
            content = p.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        if content:
            parts.append(f"--- {p} (last {min(lines, len(content))} lines) ---")
            parts.extend(content[-lines:])
    return "\n".join(parts) if parts else f"(no logs found under {logs})"


# --------------------------------------------------------------------------- configs


def _props(values: Dict[str, Any]) -> str:
    lines = ["# generated by rmq_native.devbroker -- rewritten on every start"]
    for k, v in values.items():
        if isinstance(v, bool):
            v = "true" if v else "false"
        lines.append(f"{k}={v}")
    return "\n".join(lines) + "\n"


def _write_configs(
    sd: Path, namesrv_port: int, broker_port: int, name: str = BROKER_NAME, acl: bool = False,
    idle_timeout: int = 10,
) -> Tuple[Path, Path]:
    conf = sd / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    home = sd.as_posix()  # forward slashes: safe inside .properties files on Windows too
    store = (sd / "store").as_posix()
    namesrv_conf = conf / "namesrv.properties"
    namesrv_conf.write_text(
        _props({
            "listenPort": namesrv_port,
            "bindAddress": HOST,
            "rocketmqHome": home,
            "kvConfigPath": f"{home}/namesrv/kvConfig.json",
            "enableControllerInNamesrv": False,
            # close idle client connections after 10 s (RocketMQ's default
            # 120 s): the Go SDK never closes a shut-down client's name server
            # connection (the library does; leak tests use 120 s)
            "serverChannelMaxIdleTimeSeconds": idle_timeout,
        }),
        encoding="utf-8",
    )
    broker_conf = conf / ("broker.conf" if name == BROKER_NAME else f"{name}.conf")
    if name != BROKER_NAME:
        store = (sd / f"store-{name}").as_posix()
    auth: Dict[str, Any] = {}
    if acl:
        # RocketMQ 5.3 ACL 2.0; the init user is a super user (no policies needed)
        auth = {
            "authenticationEnabled": True,
            "authenticationProvider":
                "org.apache.rocketmq.auth.authentication.provider.DefaultAuthenticationProvider",
            "authenticationMetadataProvider":
                "org.apache.rocketmq.auth.authentication.provider.LocalAuthenticationMetadataProvider",
            "initAuthenticationUser": json.dumps({"username": ACL_ACCESS_KEY, "password": ACL_SECRET_KEY}),
            "innerClientAuthenticationCredentials":
                json.dumps({"accessKey": ACL_ACCESS_KEY, "secretKey": ACL_SECRET_KEY}),
            "authorizationEnabled": True,
            "authorizationProvider":
                "org.apache.rocketmq.auth.authorization.provider.DefaultAuthorizationProvider",
            "authorizationMetadataProvider":
                "org.apache.rocketmq.auth.authorization.provider.LocalAuthorizationMetadataProvider",
        }
    broker_conf.write_text(
        _props({
            "brokerClusterName": CLUSTER_NAME,
            "brokerName": name,
            "brokerId": 0,
            "brokerRole": "ASYNC_MASTER",
            "flushDiskType": "ASYNC_FLUSH",
            # network: everything on loopback, no address server / DNS lookups
            "brokerIP1": HOST,
            "brokerIP2": HOST,
            "bindAddress": HOST,
            "listenPort": broker_port,
            "haListenPort": broker_port + 1,
            "namesrvAddr": f"{HOST}:{namesrv_port}",
            "fetchNamesrvAddrByAddressServer": False,
            "fetchNameSrvAddrByDnsLookup": False,
            "enableControllerMode": False,
            "rocketmqHome": home,
            # features the client tests rely on
            "autoCreateTopicEnable": True,
            "autoCreateSubscriptionGroup": True,
            "enablePropertyFilter": True,
            "traceTopicEnable": False,
            "maxMessageSize": MAX_MESSAGE_SIZE,
            # small on-disk footprint
            "storePathRootDir": store,
            "storePathCommitLog": f"{store}/commitlog",
            "mappedFileSizeCommitLog": 64 * 1024 * 1024,
            "mappedFileSizeConsumeQueue": 60000 * 20,
            "diskMaxUsedSpaceRatio": 95,
            "deleteWhen": "04",
            "fileReservedTime": 48,
            # be tolerant of slow CI machines ("system busy" rejections)
            "waitTimeMillsInSendQueue": 1000,
            "osPageCacheBusyTimeOutMills": 5000,
            # ask producers about UNKNOWN transactions after 3 s, every 3 s
            "transactionTimeOut": 3000,
            "transactionCheckInterval": 3000,
            **auth,
        }),
        encoding="utf-8",
    )
    return namesrv_conf, broker_conf


def _java_cmd(
    java: str, major: int, lib: Path, ext: Optional[Path], sd: Path, role: str,
    main_class: str, heap: List[str], extra: List[str], args: List[str],
    user_home: Optional[Path] = None,
) -> List[str]:
    cp = [str(lib / "*")]
    if ext is not None:
        cp.append(str(ext))
    cmd = [java, _marker(sd), f"{_ROLE_PROP}{role}", "-server", *heap]
    cmd += ["-XX:+UseG1GC", "-XX:-OmitStackTraceInFastThrow", "-XX:+PerfDisableSharedMem"]
    if major >= 9:
        cmd += _JDK9_FLAGS
    cmd += [
        "-Djava.net.preferIPv4Stack=true",
        f"-Drocketmq.home.dir={sd}",
        f"-Duser.home={user_home or sd}",
        # RocketMQ's shaded logback, using the component's own config from its jar; it writes
        # to ${user.home}/logs/rocketmqlogs (= <state dir>/logs/rocketmqlogs)
        f"-Drmq.logback.configurationFile=rmq.{role}.logback.xml",
        # don't dump logback's own configuration status (a deprecation warning) to stdout
        "-Dlogback.statusListenerClass=org.apache.rocketmq.logging.ch.qos.logback.core.status.NopStatusListener",
        "-Dfile.encoding=UTF-8",
        *extra,
        "-cp", os.pathsep.join(cp),
        main_class, *args,
    ]
    return cmd


def _spawn(cmd: List[str], sd: Path, log_name: str) -> subprocess.Popen[bytes]:
    logs = sd / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["ROCKETMQ_HOME"] = str(sd)
    env.pop("NAMESRV_ADDR", None)
    kwargs: Dict[str, Any] = {}
    if _IS_WINDOWS:
        kwargs["creationflags"] = (
            getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0x200) | getattr(subprocess, "DETACHED_PROCESS", 0x8)
        )
    else:
        kwargs["start_new_session"] = True
    with open(logs / log_name, "ab") as out:
        out.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            cmd, cwd=str(sd), env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, **kwargs
        )
    _CHILDREN[proc.pid] = proc  # keep a reference so it can be reaped by stop()
    return proc


_CHILDREN: Dict[int, subprocess.Popen[bytes]] = {}


# --------------------------------------------------------------------------- public API


def status(home: str | os.PathLike[str] | None = None) -> Optional[Dict[str, Any]]:
    """Return info about the running dev broker of this state dir, or None if it is not up.

    "Up" means the recorded name server and at least one recorded broker are alive, are
    ours, and the name server answers (with one broker: both processes).  ``brokers``
    maps every broker name to its address, port, pid (None when stopped) and ``up``.
    """
    sd = state_dir(home)
    state = _read_state(sd)
    if not state:
        return None
    alive = _alive_procs(sd, state)
    names = _state_brokers(state)
    if "namesrv" not in alive or not any(_role(n) in alive for n in names):
        return None
    addr = state["namesrv_addr"]
    if not _namesrv_answers(addr):
        return None
    brokers = {}
    for n in names:
        port = state[_role(n)]["port"]
        pid = alive.get(_role(n))
        brokers[n] = {"addr": f"{HOST}:{port}", "port": port, "pid": pid, "up": pid is not None}
    return {
        "namesrv_addr": addr,
        "broker_addr": state["broker_addr"],
        "namesrv_port": state["namesrv"]["port"],
        "broker_port": state["broker"]["port"],
        "namesrv_pid": alive["namesrv"],
        "broker_pid": alive.get("broker"),
        "brokers": brokers,
        "acl": bool(state.get("acl")),
        "state_dir": str(sd),
        "rocketmq_version": state.get("rocketmq_version"),
        "started_at": state.get("started_at"),
    }


def start(
    namesrv_port: Optional[int] = None,
    broker_port: Optional[int] = None,
    timeout: float = DEFAULT_TIMEOUT,
    clean: bool = False,
    home: str | os.PathLike[str] | None = None,
    quiet: bool = False,
    brokers: Optional[int] = None,
    acl: Optional[bool] = None,
    namesrv_idle_timeout: int = 10,
) -> str:
    """Start (or reuse) the dev broker and return the name server address ``127.0.0.1:PORT``.

    Blocks until every broker is registered at the name server with a writable route for
    ``TBW102`` and answers on its own port.  Raises :class:`DevBrokerError` on failure
    (processes started by this call are killed again).

    ``brokers``: how many brokers (broker-a, broker-b, ...; default 1, or what the running
    dev broker of this state dir has); broker *i* uses ``broker_port + 10*i``.
    ``acl``: enable authentication/authorization with the test account
    ``ACL_ACCESS_KEY``/``ACL_SECRET_KEY`` (default off, or as running).
    ``namesrv_idle_timeout``: seconds after which the name server closes an idle client
    connection (RocketMQ's default is 120; applies when this call starts the name server).
    """
    log = _quiet if quiet else _info
    sd = state_dir(home)
    sd.mkdir(parents=True, exist_ok=True)
    with _file_lock(sd / ".lock"):
        state = _read_state(sd)
        if state:
            # restarting (clean / unhealthy / leftovers): keep the recorded ports unless told otherwise
            namesrv_port = namesrv_port or state["namesrv"]["port"]
            broker_port = broker_port or state["broker"]["port"]
            if brokers is None:
                brokers = len(_state_brokers(state))
            if acl is None:
                acl = bool(state.get("acl"))
            alive = _alive_procs(sd, state)
            roles = _state_roles(state)
            if set(alive) == set(roles):
                if (namesrv_port, broker_port, brokers, acl) != (
                    state["namesrv"]["port"], state["broker"]["port"], len(roles) - 1, bool(state.get("acl"))
                ):
                    raise DevBrokerError(
                        f"a dev broker from {sd} is already running on name server port "
                        f"{state['namesrv']['port']} / broker port {state['broker']['port']} "
                        f"({len(roles) - 1} broker(s), acl {'on' if state.get('acl') else 'off'}); "
                        "stop it first to use other ports or settings"
                    )
                if clean:
                    log("restarting the running dev broker with a clean store")
                else:
                    ok, why = True, "ready"
                    for n in _state_brokers(state):
                        ok, why = _wait_ready(state["namesrv_addr"], f"{HOST}:{state[_role(n)]['port']}", alive,
                                              min(timeout, 30.0), _credentials(state))
                        if not ok:
                            break
                    if ok:
                        log(f"dev broker already running (pids {', '.join(str(alive[r]) for r in roles)})")
                        return str(state["namesrv_addr"])
                    log(f"running dev broker is not healthy ({why}); restarting it")
            elif alive:
                log("found a partially running dev broker; stopping its leftovers")
            _terminate_all([alive[r] for r in [*roles[1:], "namesrv"] if r in alive], DEFAULT_STOP_TIMEOUT)
            if alive:
                ports = [state["namesrv"]["port"]]
                for r in roles[1:]:
                    ports += _broker_ports(state[r]["port"])
                _wait_ports_free(ports, 15.0)
            _remove_state(sd)

        names = broker_names(int(brokers or 1))
        acl = bool(acl)
        n_port = int(namesrv_port or DEFAULT_NAMESRV_PORT)
        b_port = int(broker_port or DEFAULT_BROKER_PORT)
        b_ports = {n: b_port + BROKER_PORT_STEP * i for i, n in enumerate(names)}
        for p in b_ports.values():
            _check_ports(n_port, p)
        all_ports = [n_port]
        for p in b_ports.values():
            all_ports += _broker_ports(p)
        busy = [p for p in all_ports if _port_in_use(p)]
        if busy:
            raise DevBrokerError(
                f"port(s) {', '.join(map(str, busy))} on {HOST} already in use by another process "
                f"(not a dev broker of {sd}); stop it or choose other ports with "
                "--namesrv-port/--broker-port"
            )

        java = _find_java()
        major = _java_major(java)
        lib = ensure_jars(ROCKETMQ_VERSION, log=log)
        ext = _ensure_ha_ext(lib, java, log)

        if clean:
            for n in names:
                store = _broker_store(sd, n)
                log(f"wiping store {store}")
                shutil.rmtree(store, ignore_errors=True)
        namesrv_conf = None
        for n in names:
            _broker_store(sd, n).mkdir(parents=True, exist_ok=True)
            namesrv_conf, _ = _write_configs(sd, n_port, b_ports[n], n, acl, namesrv_idle_timeout)
        assert namesrv_conf is not None
        namesrv_addr = f"{HOST}:{n_port}"
        broker_addr = f"{HOST}:{b_port}"

        state = {
            "format": 1,
            "rocketmq_version": ROCKETMQ_VERSION,
            "state_dir": str(sd),
            "marker": _marker(sd),
            "namesrv_addr": namesrv_addr,
            "broker_addr": broker_addr,
            "started_at": time.time(),
            "namesrv": {"pid": 0, "port": n_port},
            "brokers": names,
            "acl": acl,
        }
        for n in names:
            state[_role(n)] = {"pid": 0, "port": b_ports[n]}
        started: Dict[str, int] = {}
        t0 = time.monotonic()
        deadline = t0 + timeout
        try:
            heap = ["-Xms256m", "-Xmx512m"]
            ncmd = _java_cmd(java, major, lib, None, sd, "namesrv", _NAMESRV_MAIN, heap,
                             ["-XX:MaxDirectMemorySize=256m"], ["-c", str(namesrv_conf)])
            log(f"starting name server on {namesrv_addr} (RocketMQ {ROCKETMQ_VERSION}, state {sd})")
            nproc = _spawn(ncmd, sd, "namesrv.out")
            started["namesrv"] = nproc.pid
            state["namesrv"]["pid"] = nproc.pid
            _write_state(sd, state)
            while not _namesrv_answers(namesrv_addr, timeout=1.0):
                if nproc.poll() is not None:
                    raise DevBrokerError(f"name server exited with code {nproc.returncode}")
                if time.monotonic() > deadline:
                    raise DevBrokerError(f"name server not answering on {namesrv_addr} after {timeout:.0f}s")
                time.sleep(0.2)
            for n in names:
                log(f"name server up after {time.monotonic() - t0:.1f}s; starting {n} on {HOST}:{b_ports[n]}"
                    + (" (ACL on)" if acl else ""))
                pid = _spawn_broker(java, major, lib, ext, sd, n, b_ports[n], namesrv_addr)
                started[_role(n)] = pid
                state[_role(n)]["pid"] = pid
                _write_state(sd, state)
            for n in names:
                ok, why = _wait_ready(namesrv_addr, f"{HOST}:{b_ports[n]}", started, deadline - time.monotonic(),
                                      _credentials(state))
                if not ok:
                    raise DevBrokerError(f"dev broker {n} not ready after {timeout:.0f}s: {why}")
        except BaseException as exc:
            _terminate_all([started[r] for r in [*started][1:] + ["namesrv"] if r in started], 10.0)
            _remove_state(sd)
            if isinstance(exc, DevBrokerError):
                raise DevBrokerError(f"{exc}\n{_log_tail(sd)}") from None
            raise
        log(f"dev broker ready in {time.monotonic() - t0:.1f}s (name server pid {started['namesrv']}, "
            + ", ".join(f"{n} pid {started[_role(n)]}" for n in names) + f"); logs in {sd / 'logs'}")
        return namesrv_addr


def _broker_store(sd: Path, name: str) -> Path:
    return sd / "store" if name == BROKER_NAME else sd / f"store-{name}"


def _spawn_broker(
    java: str, major: int, lib: Path, ext: Optional[Path], sd: Path, name: str, port: int, namesrv_addr: str
) -> int:
    conf = sd / "conf" / ("broker.conf" if name == BROKER_NAME else f"{name}.conf")
    # broker-a logs to <state>/logs/rocketmqlogs (as before); others to <state>/<name>/logs/rocketmqlogs
    user_home = None if name == BROKER_NAME else sd / name
    heap = ["-Xms256m", "-Xmx512m"]
    bextra = ["-XX:MaxDirectMemorySize=1g", f"-Drmq_native.devbroker.haBindAddress={HOST}"]
    bcmd = _java_cmd(java, major, lib, ext, sd, _role(name), _BROKER_MAIN, heap, bextra,
                     ["-c", str(conf), "-n", namesrv_addr], user_home=user_home)
    log_name = "broker.out" if name == BROKER_NAME else f"{name}.out"
    return _spawn(bcmd, sd, log_name).pid


def _broker_state(sd: Path, name: str) -> Dict[str, Any]:
    state = _read_state(sd)
    if not state:
        raise DevBrokerError(f"no dev broker recorded in {sd}; start it first")
    if name != "namesrv" and name not in _state_brokers(state):
        raise DevBrokerError(f"unknown broker {name!r}; this dev broker has {', '.join(_state_brokers(state))} "
                             "(and namesrv)")
    return state


def stop_broker(
    name: str,
    home: str | os.PathLike[str] | None = None,
    kill: bool = False,
    timeout: float = DEFAULT_STOP_TIMEOUT,
    quiet: bool = False,
) -> bool:
    """Stop one broker (``"broker-a"``, ``"broker-b"`` ...) of the running dev broker; the name
    server and the other brokers keep running.  ``kill=True`` sends SIGKILL at once (a crash:
    the broker does not unregister, the name server drops it after its broker channel
    closes); otherwise SIGTERM (a graceful shutdown), SIGKILL after ``timeout``.
    Returns True if it was running."""
    log = _quiet if quiet else _info
    sd = state_dir(home)
    with _file_lock(sd / ".lock"):
        state = _broker_state(sd, name)
        role = _role(name)
        pid = _alive_procs(sd, state).get(role)
        if pid is None:
            log(f"{name} is not running")
            return False
        log(f"{'killing' if kill else 'stopping'} {name} (pid {pid})")
        if kill:
            _send_kill(pid)
            _wait_dead(pid, 10.0)
            proc = _CHILDREN.pop(pid, None)
            if proc is not None:
                with contextlib.suppress(Exception):
                    proc.wait(timeout=5)
        else:
            _terminate_all([pid], timeout)
        busy = _wait_ports_free([state[role]["port"]] if name == "namesrv" else _broker_ports(state[role]["port"]),
                                15.0)
        if busy:
            log(f"warning: port(s) {busy} still in use after stopping {name}")
        state[role]["pid"] = 0
        _write_state(sd, state)
        log(f"{name} stopped")
        return True


def start_broker(
    name: str,
    home: str | os.PathLike[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    quiet: bool = False,
) -> str:
    """Start one broker of the dev broker again (after :func:`stop_broker`), with its store
    and configuration; returns its address once it is registered and writable.  The name
    server must be running.  ``name="namesrv"`` starts the name server again instead and
    returns its address once every running broker has registered again (brokers register
    every 30 s)."""
    log = _quiet if quiet else _info
    sd = state_dir(home)
    with _file_lock(sd / ".lock"):
        state = _broker_state(sd, name)
        role = _role(name)
        port = state[role]["port"]
        addr = f"{HOST}:{port}"
        alive = _alive_procs(sd, state)
        if name == "namesrv":
            return _restart_namesrv(sd, state, alive, timeout, log)
        if "namesrv" not in alive:
            raise DevBrokerError(f"the name server of {sd} is not running; use start() instead")
        if role in alive:
            log(f"{name} already running (pid {alive[role]})")
            return addr
        busy = [p for p in _broker_ports(port) if _port_in_use(p)]
        if busy:
            raise DevBrokerError(f"port(s) {', '.join(map(str, busy))} on {HOST} already in use")
        java = _find_java()
        major = _java_major(java)
        lib = ensure_jars(ROCKETMQ_VERSION, log=log)
        ext = _ensure_ha_ext(lib, java, log)
        t0 = time.monotonic()
        log(f"starting {name} on {addr}")
        pid = _spawn_broker(java, major, lib, ext, sd, name, port, state["namesrv_addr"])
        state[role]["pid"] = pid
        _write_state(sd, state)
        ok, why = _wait_ready(state["namesrv_addr"], addr, {role: pid}, timeout, _credentials(state))
        if not ok:
            _terminate_all([pid], 10.0)
            state[role]["pid"] = 0
            _write_state(sd, state)
            raise DevBrokerError(f"{name} not ready after {timeout:.0f}s: {why}\n{_log_tail(sd)}")
        log(f"{name} ready in {time.monotonic() - t0:.1f}s (pid {pid})")
        return addr


def _restart_namesrv(
    sd: Path, state: Dict[str, Any], alive: Dict[str, int], timeout: float, log: Callable[[str], None]
) -> str:
    addr = str(state["namesrv_addr"])
    if "namesrv" in alive:
        log(f"name server already running (pid {alive['namesrv']})")
        return addr
    if _port_in_use(state["namesrv"]["port"]):
        raise DevBrokerError(f"port {state['namesrv']['port']} on {HOST} already in use")
    java = _find_java()
    major = _java_major(java)
    lib = ensure_jars(ROCKETMQ_VERSION, log=log)
    t0 = time.monotonic()
    deadline = t0 + timeout
    ncmd = _java_cmd(java, major, lib, None, sd, "namesrv", _NAMESRV_MAIN, ["-Xms256m", "-Xmx512m"],
                     ["-XX:MaxDirectMemorySize=256m"], ["-c", str(sd / "conf" / "namesrv.properties")])
    log(f"starting name server on {addr}")
    nproc = _spawn(ncmd, sd, "namesrv.out")
    state["namesrv"]["pid"] = nproc.pid
    _write_state(sd, state)
    for n in _state_brokers(state):
        role = _role(n)
        if role not in alive:
            continue
        ok, why = _wait_ready(addr, f"{HOST}:{state[role]['port']}", {"namesrv": nproc.pid, role: alive[role]},
                              deadline - time.monotonic(), _credentials(state))
        if not ok:
            raise DevBrokerError(f"name server restarted, but {n} did not register again: {why}")
    log(f"name server ready in {time.monotonic() - t0:.1f}s (pid {nproc.pid})")
    return addr


def _check_ports(n_port: int, b_port: int) -> None:
    if not (1 <= n_port <= 65535):
        raise DevBrokerError(f"invalid name server port {n_port}")
    if not (3 <= b_port <= 65534):
        raise DevBrokerError(f"invalid broker port {b_port} (needs port-2 and port+1 too)")
    if n_port in _broker_ports(b_port):
        raise DevBrokerError(
            f"name server port {n_port} clashes with broker ports {_broker_ports(b_port)} "
            "(the broker uses PORT, PORT-2 and PORT+1)"
        )


def _wait_ready(
    namesrv_addr: str, broker_addr: str, pids: Dict[str, int], timeout: float,
    credentials: Optional[Tuple[str, str]] = None,
) -> Tuple[bool, str]:
    deadline = time.monotonic() + max(timeout, 0.0)
    why = "timed out"
    while True:
        for role, pid in pids.items():
            proc = _CHILDREN.get(pid)
            if proc is not None and proc.poll() is not None:
                return False, f"{role} exited with code {proc.returncode}"
            if proc is None and not _pid_alive(pid):
                return False, f"{role} (pid {pid}) is not running"
        ok, why = _route_ready(namesrv_addr, broker_addr, credentials)
        if ok:
            return True, why
        if time.monotonic() >= deadline:
            return False, why
        time.sleep(0.25)


def stop(
    home: str | os.PathLike[str] | None = None,
    clean: bool = False,
    timeout: float = DEFAULT_STOP_TIMEOUT,
    quiet: bool = False,
) -> bool:
    """Stop the dev broker processes recorded in the state dir. Returns True if any were stopped.

    Only processes whose pid *and* command line match this state dir are signalled
    (SIGTERM, then SIGKILL after ``timeout``).  ``clean=True`` also deletes the store.
    """
    log = _quiet if quiet else _info
    sd = state_dir(home)
    if not sd.is_dir():
        log("dev broker is not running")
        return False
    with _file_lock(sd / ".lock"):
        state = _read_state(sd)
        stopped = False
        if state:
            alive = _alive_procs(sd, state)
            roles = _state_roles(state)
            order = [r for r in [*roles[1:], "namesrv"] if r in alive]  # brokers first: they unregister
            if order:
                log("stopping " + ", ".join(f"{r} (pid {alive[r]})" for r in order))
                _terminate_all([alive[r] for r in order], timeout)
                stopped = True
            ports = [state["namesrv"]["port"]]
            for r in roles[1:]:
                ports += _broker_ports(state[r]["port"])
            if stopped:
                busy = _wait_ports_free(ports, 15.0)
                if busy:
                    log(f"warning: port(s) {busy} still in use after stopping")
            _remove_state(sd)
        log("dev broker stopped" if stopped else "dev broker is not running")
        if clean:
            for store in [sd / "store", *sorted(sd.glob("store-broker-*"))]:
                log(f"deleting store {store}")
                shutil.rmtree(store, ignore_errors=True)
        return stopped


# --------------------------------------------------------------------------- CLI


def main(argv: Optional[List[str]] = None) -> int:
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
                         home=args.home, quiet=args.quiet, brokers=args.brokers, acl=args.acl)
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


if __name__ == "__main__":
    sys.exit(main())
