"""Shared fixtures: a real broker (rmq_native.testing), unique topics and
groups, and clients that are always closed."""

from __future__ import annotations

import itertools
import os
import uuid
from typing import Callable, Iterator

import pytest

import rmq_native
from rmq_native import Admin, Producer

pytest_plugins = ["rmq_native.testing"]

_counter = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}_{os.getpid()}_{next(_counter)}_{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="session")
def admin(rocketmq_namesrv: str) -> Iterator[Admin]:
    with Admin(rocketmq_namesrv) as a:
        yield a


@pytest.fixture
def make_topic(admin: Admin) -> Iterator[Callable[..., str]]:
    """Create fresh topics (deleted at the end of the test)."""
    made: list[str] = []

    def make(queues: int = 4) -> str:
        t = unique("T")
        admin.create_topic(t, queues=queues)
        made.append(t)
        return t

    yield make
    for t in made:
        try:
            admin.delete_topic(t)
        except rmq_native.RocketMQError:
            pass


@pytest.fixture
def topic(make_topic: Callable[..., str]) -> str:
    return make_topic()


@pytest.fixture
def group() -> str:
    return unique("G")


@pytest.fixture
def producer(rocketmq_namesrv: str) -> Iterator[Producer]:
    with Producer(rocketmq_namesrv, unique("P")) as p:
        yield p
