"""pytest plugin providing a RocketMQ name server for integration tests.

Enable it with ``pytest_plugins = ["rmq_native.testing"]`` in a top-level ``conftest.py``
(or through the ``pytest11`` entry point).  It provides:

``rocketmq_namesrv`` (session fixture)
    The name server address ``"host:port"``.  If the ``RMQ_NAMESRV`` environment variable
    is set, its value is returned and nothing is started.  Otherwise the local dev broker
    (:mod:`rmq_native.devbroker`, default state dir, ports 9876/10911) is used: a dev
    broker that is already running (e.g. ``python -m rmq_native.devbroker start``) is
    reused and left running; if the fixture had to start it, it is stopped again when
    the last pytest session using it (several with pytest-xdist) finishes, unless
    ``--rmq-keep-devbroker`` is given.

The ``pytest11`` entry point has the module's own name, so enabling the
plugin both ways registers it once. This module imports neither the native
library nor the dev broker: the fixture imports :mod:`rmq_native.devbroker`
when a test uses it, so a session that does not costs nothing.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

ENV_NAMESRV = "RMQ_NAMESRV"

_USERS_DIR = "fixture-users"
_STARTED_FLAG = "fixture-started"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rmq_native", "rmq_native RocketMQ dev broker")
    group.addoption(
        "--rmq-keep-devbroker",
        action="store_true",
        default=False,
        help="leave a dev broker started by the rocketmq_namesrv fixture running after the session",
    )
    group.addoption(
        "--rmq-devbroker-timeout",
        type=float,
        default=None,
        help="seconds to wait for the dev broker to become ready (default: rmq_native.devbroker.DEFAULT_TIMEOUT)",
    )


def _register_user(sd: Path) -> Path:
    users = sd / _USERS_DIR
    users.mkdir(parents=True, exist_ok=True)
    me = users / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    me.write_text(str(time.time()), encoding="utf-8")
    return me


def _live_users(sd: Path) -> list[Path]:
    from .devbroker import pid_alive

    users = sd / _USERS_DIR
    live = []
    for f in users.glob("*") if users.is_dir() else []:
        try:
            pid = int(f.name.split("-", 1)[0])
        except ValueError:
            continue
        if pid == os.getpid() or pid_alive(pid):
            live.append(f)
        else:
            f.unlink(missing_ok=True)  # a crashed session
    return live


@pytest.fixture(scope="session")
def rocketmq_namesrv(request: pytest.FixtureRequest) -> Iterator[str]:
    """Address ("host:port") of a RocketMQ name server with a writable broker behind it."""
    env = os.environ.get(ENV_NAMESRV, "").strip()
    if env:
        yield env
        return

    from . import devbroker

    timeout = request.config.getoption("--rmq-devbroker-timeout", default=None)
    if timeout is None:
        timeout = devbroker.DEFAULT_TIMEOUT
    keep = request.config.getoption("--rmq-keep-devbroker", default=False)
    sd = devbroker.state_dir()
    sd.mkdir(parents=True, exist_ok=True)
    with devbroker.file_lock(sd / ".lock.fixture"):
        running = devbroker.status() is not None
        try:
            addr = devbroker.start(timeout=timeout)
        except devbroker.DevBrokerError as exc:
            pytest.fail(
                f"could not start the RocketMQ dev broker ({exc}).\n"
                f"Set {ENV_NAMESRV}=host:port to use an existing name server instead.",
                pytrace=False,
            )
        if not running:
            (sd / _STARTED_FLAG).write_text(str(os.getpid()), encoding="utf-8")
        me = _register_user(sd)

    try:
        yield addr
    finally:
        with devbroker.file_lock(sd / ".lock.fixture"):
            me.unlink(missing_ok=True)
            flag = sd / _STARTED_FLAG
            if flag.exists() and not _live_users(sd) and not keep:
                devbroker.stop(quiet=True)
                flag.unlink(missing_ok=True)
