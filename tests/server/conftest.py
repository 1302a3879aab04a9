"""Fixtures of the in-process server tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .replicaset import Cluster, Redis


@pytest.fixture
def redis() -> Iterator[Redis]:
    server = Redis()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A Redis Cluster of three shards on loopback, for the sharded bus."""
    shards = Cluster()
    try:
        shards.start()
        yield shards
    finally:
        shards.stop()
