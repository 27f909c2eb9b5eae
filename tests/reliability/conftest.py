"""The reliability suite: ``pytest -m reliability`` runs it; a plain
``pytest`` deselects it (not skipped). It starts its own dev brokers on
127.0.0.1 (name servers 27876/27886, brokers 28911, 28941/28951) in
separate state dirs and stops them at the end."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from rmq_native import devbroker

ROOT = Path(tempfile.gettempdir()) / f"rmq_native_reliability_{os.getuid() if hasattr(os, 'getuid') else 0}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "reliability" in (config.getoption("markexpr", "") or ""):
        return
    here = Path(__file__).resolve().parent
    keep, drop = [], []
    for item in items:
        (drop if item.get_closest_marker("reliability") and here in Path(str(item.fspath)).parents else keep).append(
            item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def single_cluster() -> Iterator[dict[str, str]]:
    """Name server 27876 + broker-a 28911 (own state dir)."""
    home = ROOT / "single"
    addr = devbroker.start(namesrv_port=27876, broker_port=28911, home=home, brokers=1, acl=False, quiet=True)
    try:
        yield {"ns": addr, "home": str(home)}
    finally:
        devbroker.stop(home=home, clean=True, quiet=True)


@pytest.fixture(scope="session")
def acl_cluster() -> Iterator[dict[str, str]]:
    """Name server 59886 + broker-a 60941 + broker-b 60951, ACL on (test account)."""
    home = ROOT / "dual-acl"
    addr = devbroker.start(namesrv_port=27886, broker_port=28941, home=home, brokers=2, acl=True, quiet=True)
    try:
        yield {"ns": addr, "home": str(home)}
    finally:
        devbroker.stop(home=home, clean=True, quiet=True)
