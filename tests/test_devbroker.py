"""Tests of the local RocketMQ dev broker launcher (rmq_native.devbroker) and its pytest plugin.

The start/stop cycle uses its own state dir and ports 19876/20911 (+20909, 20912) so it
never touches a dev broker on the default ports used by the rest of the test session.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from rmq_native import devbroker

SRC_DIR = Path(devbroker.__file__).resolve().parents[2]  # src/rmq_native/devbroker/__init__.py
NAMESRV_PORT = 19876
BROKER_PORT = 20911
ALL_PORTS = {NAMESRV_PORT, BROKER_PORT, BROKER_PORT - 2, BROKER_PORT + 1}


def _env(home: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC_DIR), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["RMQ_NATIVE_DEVBROKER_HOME"] = str(home)
    return env


def _cli(home: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rmq_native.devbroker", *args],
        env=_env(home), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
    )


def _last_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def _listen_addrs(pid: int) -> set:
    """(ip, port) of the TCP sockets in LISTEN state owned by ``pid`` (Linux /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if cols[3] != "0A" or cols[9] not in inodes:  # 0A == LISTEN
                continue
            hexip, hexport = cols[1].split(":")
            raw = bytes.fromhex(hexip)
            if v6:
                raw = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                ip = socket.inet_ntop(socket.AF_INET6, raw)
            else:
                ip = socket.inet_ntop(socket.AF_INET, raw[::-1])
            found.add((ip, int(hexport, 16)))
    return found


# ----------------------------------------------------------------------------- no broker needed


def test_fastjson_bare_integer_keys():
    data = b'{"brokerAddrs":{0:"127.0.0.1:10911",1:"x,2:y"},"s":"{3:\\"q\\"}","n":-1,"l":[1,2]}'
    assert devbroker.fastjson_loads(data) == {
        "brokerAddrs": {"0": "127.0.0.1:10911", "1": "x,2:y"},
        "s": '{3:"q"}',
        "n": -1,
        "l": [1, 2],
    }


def test_remoting_request_frame_format():
    """The client speaks the RocketMQ remoting frame format (checked against a fake server)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    import threading

    seen = {}

    def serve():
        conn, _ = srv.accept()
        with conn:
            total, mark = struct.unpack(">ii", devbroker.recv_exact(conn, 8))
            header = json.loads(devbroker.recv_exact(conn, mark & 0xFFFFFF))
            seen.update(total=total, serialize=mark >> 24, header=header)
            body = b'{"k":{0:"v"}}'
            rh = json.dumps({"code": 0, "flag": 1, "opaque": header["opaque"], "language": "JAVA"}).encode()
            conn.sendall(struct.pack(">ii", 4 + len(rh) + len(body), len(rh)) + rh + body)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        header, body = devbroker.remoting_request(f"127.0.0.1:{port}", 105, {"topic": "TBW102"})
    finally:
        t.join(5)
        srv.close()
    assert header["code"] == 0 and devbroker.fastjson_loads(body) == {"k": {"0": "v"}}
    assert seen["serialize"] == 0  # JSON
    h = seen["header"]
    assert h["code"] == 105 and h["language"] == "PYTHON" and h["flag"] == 0
    assert h["extFields"] == {"topic": "TBW102"}
    assert seen["total"] == 4 + len(json.dumps(h, separators=(",", ":")).encode())


def test_status_and_stop_when_never_started(tmp_path):
    home = tmp_path / "nothing"
    assert devbroker.status(home=home) is None
    r = _cli(home, "status")
    assert r.returncode == 1 and "down" in r.stdout
    r = _cli(home, "stop")
    assert r.returncode == 0 and "not running" in r.stderr
    assert not (home / devbroker.STATE_FILE).exists()


def test_cli_help():
    r = subprocess.run(
        [sys.executable, "-m", "rmq_native.devbroker", "start", "--help"],
        env=_env(Path("/nonexistent")), capture_output=True, text=True, timeout=60,
    )
    assert r.returncode == 0
    for opt in ("--namesrv-port", "--broker-port", "--timeout", "--clean"):
        assert opt in r.stdout


def test_fixture_uses_rmq_namesrv_env(tmp_path):
    """With RMQ_NAMESRV set, the plugin fixture returns it and starts nothing."""
    (tmp_path / "test_inner.py").write_text(
        textwrap.dedent(
            """
            def test_addr(rocketmq_namesrv):
                assert rocketmq_namesrv == "10.11.12.13:9876"
            """
        )
    )
    env = _env(tmp_path / "unused-home")
    env["RMQ_NAMESRV"] = "10.11.12.13:9876"
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "rmq_native.testing", "-p", "no:cacheprovider",
         str(tmp_path / "test_inner.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert not (tmp_path / "unused-home").exists()


def test_import_rmq_native_does_not_import_devbroker(tmp_path):
    code = "import rmq_native, sys; print([m for m in sys.modules if m.startswith('rmq_native.devbroker')])"
    r = subprocess.run([sys.executable, "-c", code], env=_env(tmp_path / "home"), cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_plugin_costs_nothing_unless_its_fixture_is_used(tmp_path):
    """A session with the plugin whose tests do not use rocketmq_namesrv imports no dev
    broker module and creates no state dir (RMQ_NAMESRV unset)."""
    (tmp_path / "test_inner.py").write_text(
        textwrap.dedent(
            """
            import sys

            def test_no_broker():
                assert "rmq_native.testing" in sys.modules  # the plugin is loaded
                assert [m for m in sys.modules if m.startswith("rmq_native.devbroker")] == []
            """
        )
    )
    home = tmp_path / "unused-home"
    env = _env(home)
    env.pop("RMQ_NAMESRV", None)
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "rmq_native.testing", "-p", "no:cacheprovider",
         str(tmp_path / "test_inner.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 passed" in r.stdout
    assert not home.exists()


# ----------------------------------------------------------------------------- real broker


@pytest.fixture(scope="module")
def separate_home(tmp_path_factory):
    busy = [p for p in sorted(ALL_PORTS) if devbroker.port_in_use(p)]
    if busy:
        pytest.skip(f"test ports {busy} are in use on 127.0.0.1")
    home = tmp_path_factory.mktemp("devbroker") / "home-long"
    home.mkdir()
    yield home
    devbroker.stop(home=home, clean=True, quiet=True)


def test_start_status_idempotent_stop(separate_home, tmp_path):
    home = separate_home
    default_before = devbroker.status()  # a broker on the default ports must not be disturbed

    # --- start (CLI exits; the broker must survive it)
    t0 = time.monotonic()
    r = _cli(home, "start", "--namesrv-port", str(NAMESRV_PORT), "--broker-port", str(BROKER_PORT), "--clean")
    assert r.returncode == 0, r.stdout + r.stderr
    addr = f"127.0.0.1:{NAMESRV_PORT}"
    assert _last_line(r.stdout) == addr
    first_start = time.monotonic() - t0

    info = devbroker.status(home=home)
    assert info is not None
    assert info["namesrv_addr"] == addr and info["broker_addr"] == f"127.0.0.1:{BROKER_PORT}"
    pids = (info["namesrv_pid"], info["broker_pid"])

    r = _cli(home, "status")
    assert r.returncode == 0 and addr in r.stdout
    r = _cli(home, "status", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["up"] is True

    # --- second start: same address as the last line, same processes, fast
    t0 = time.monotonic()
    r = _cli(home, "start", "--namesrv-port", str(NAMESRV_PORT), "--broker-port", str(BROKER_PORT))
    assert r.returncode == 0, r.stderr
    assert _last_line(r.stdout) == addr
    assert time.monotonic() - t0 < max(10.0, first_start)
    r = _cli(home, "start")  # no ports given: reuses the running one
    assert r.returncode == 0 and _last_line(r.stdout) == addr
    info2 = devbroker.status(home=home)
    assert (info2["namesrv_pid"], info2["broker_pid"]) == pids

    # --- other ports requested while running -> clear error
    r = _cli(home, "start", "--namesrv-port", str(NAMESRV_PORT + 1), "--broker-port", str(BROKER_PORT))
    assert r.returncode != 0 and "already running" in r.stderr

    # --- another state dir on the same ports -> "in use" error, nothing started
    r = _cli(tmp_path / "other-home", "start", "--namesrv-port", str(NAMESRV_PORT),
             "--broker-port", str(BROKER_PORT))
    assert r.returncode != 0 and "already in use" in r.stderr

    # --- the name server speaks the remoting protocol
    cluster = devbroker.get_cluster_info(addr)
    assert cluster["clusterAddrTable"][devbroker.CLUSTER_NAME] == [devbroker.BROKER_NAME]
    assert cluster["brokerAddrTable"][devbroker.BROKER_NAME]["brokerAddrs"] == {"0": f"127.0.0.1:{BROKER_PORT}"}
    route = devbroker.get_route_info(addr, "TBW102")
    assert route["brokerDatas"][0]["brokerAddrs"]["0"] == f"127.0.0.1:{BROKER_PORT}"
    assert any(q["perm"] & 2 and q["writeQueueNums"] > 0 for q in route["queueDatas"])
    assert devbroker.get_route_info(addr, "no-such-topic-for-devbroker-test") is None
    header, _ = devbroker.remoting_request(
        f"127.0.0.1:{BROKER_PORT}", devbroker.CODE_GET_MAX_OFFSET, {"topic": "TBW102", "queueId": "0"}
    )
    assert header["code"] == 0 and header["language"] == "JAVA"

    # --- every listener is on 127.0.0.1 only
    if sys.platform.startswith("linux"):
        assert _listen_addrs(pids[0]) == {("127.0.0.1", NAMESRV_PORT)}
        broker_listens = _listen_addrs(pids[1])
        assert {ip for ip, _ in broker_listens} == {"127.0.0.1"}
        assert {BROKER_PORT, BROKER_PORT - 2} <= {p for _, p in broker_listens} <= ALL_PORTS

    # --- logs go to files in the state dir
    assert (home / "logs" / "broker.out").is_file()
    assert (home / "logs" / "rocketmqlogs" / "broker.log").is_file()
    assert (home / "store" / "commitlog").is_dir()

    # --- stop must not kill a process that merely reuses a recorded pid
    decoy = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        state = json.loads((home / devbroker.STATE_FILE).read_text())
        fake = dict(state, namesrv={"pid": decoy.pid, "port": NAMESRV_PORT},
                    broker={"pid": pids[1], "port": BROKER_PORT})  # real broker, but not this home's
        fake_home = home.parent / "home"  # its marker is a string prefix of the real one
        fake_home.mkdir()
        (fake_home / devbroker.STATE_FILE).write_text(json.dumps(fake))
        assert devbroker.stop(home=fake_home, quiet=True) is False
        assert decoy.poll() is None
        assert devbroker.pid_alive(pids[1])
    finally:
        decoy.kill()
        decoy.wait()

    # --- stop: exactly our two processes, ports free, status down
    r = _cli(home, "stop", "--clean")
    assert r.returncode == 0, r.stderr
    for pid in pids:
        assert not devbroker.pid_alive(pid)
    assert not any(devbroker.port_in_use(p) for p in ALL_PORTS)
    assert not (home / devbroker.STATE_FILE).exists()
    assert not (home / "store").exists()
    assert devbroker.status(home=home) is None
    r = _cli(home, "status")
    assert r.returncode == 1
    r = _cli(home, "stop")
    assert r.returncode == 0 and "not running" in r.stderr

    # --- a broker on the default ports (e.g. the session one) was left alone
    if default_before is not None:
        after = devbroker.status()
        assert after is not None
        assert (after["namesrv_pid"], after["broker_pid"]) == (
            default_before["namesrv_pid"], default_before["broker_pid"])
