"""Replicas in-process: a real redis-server on loopback (or a Redis Cluster of three),
servers sharing it, and waits that read what the peers hear."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator
from typing import Any

import pytest

from peerchat_protocol import Event, Joined, Roster, Who
from peerchat_server.server import ChatServer

from .peers import WAIT, RichPeer, console_of, running_server

# --- a real Redis --------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Redis:
    """redis-server on 127.0.0.1, no persistence, stopped (and startable again) by PID."""

    def __init__(self) -> None:
        exe = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not shutil.which(exe):
            pytest.fail(
                "redis-server is needed for the replica tests: apt-get install redis-server "
                "(.ci/run does it)",
                pytrace=False,
            )
        self.exe = exe
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *options: str) -> None:
        self.proc = subprocess.Popen(
            [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--protected-mode", "no", *options],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for _ in range(200):  # up to 10 s for it to listen
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return
            if self.proc.poll() is not None:
                raise AssertionError("redis-server exited at start")
            subprocess.run(["sleep", "0.05"], check=True)
        raise AssertionError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None


class Cluster:
    """A Redis Cluster of three masters on 127.0.0.1 (redis-server --cluster-enabled,
    joined with redis-cli --cluster create), no persistence; each shard stoppable."""

    def __init__(self, shards: int = 3) -> None:
        self.shards = [Redis() for _ in range(shards)]
        self._dir = tempfile.TemporaryDirectory(prefix="peerchat-cluster-")

    @property
    def url(self) -> str:
        return "redis-cluster://" + ",".join(f"127.0.0.1:{r.port}" for r in self.shards)

    def start(self) -> None:
        self._options = [
            ("--cluster-enabled", "yes", "--cluster-config-file", f"{self._dir.name}/{n}.conf",
             "--cluster-port", str(_free_port()))
            for n in range(len(self.shards))
        ]  # fmt: skip
        for shard, options in zip(self.shards, self._options, strict=True):
            shard.start(*options)
        addresses = [f"127.0.0.1:{shard.port}" for shard in self.shards]
        created = subprocess.run(
            ["redis-cli", "--cluster", "create", *addresses, "--cluster-yes"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert created.returncode == 0, created.stdout + created.stderr
        for _ in range(200):  # up to 10 s for every node to say the cluster is whole
            states = [
                subprocess.run(["redis-cli", "-p", str(shard.port), "cluster", "info"],
                               capture_output=True, text=True, timeout=10).stdout
                for shard in self.shards
            ]  # fmt: skip
            if all("cluster_state:ok" in state for state in states):
                return
            subprocess.run(["sleep", "0.05"], check=True)
        raise AssertionError(f"the cluster did not come up: {states}")

    def restart_stopped(self, n: int) -> None:
        """Shard ``n``, stopped, starts again with its cluster configuration."""
        self.shards[n].start(*self._options[n])

    def stop(self) -> None:
        for shard in self.shards:
            shard.stop()
        self._dir.cleanup()


@contextlib.asynccontextmanager
async def replica_set(url: str, count: int, **overrides: Any) -> AsyncIterator[list[ChatServer]]:
    """``count`` servers sharing the bus at ``url``, each connected to it."""
    async with contextlib.AsyncExitStack() as stack:
        servers = [
            await stack.enter_async_context(running_server(bus=url, **overrides))
            for _ in range(count)
        ]
        for server in servers:
            await console_of(server).wait_for("[BUS] Connected to Redis")
        yield servers


@contextlib.asynccontextmanager
async def replicas(redis: Redis, **overrides: Any) -> AsyncIterator[tuple[ChatServer, ChatServer]]:
    async with (
        running_server(bus=redis.url, **overrides) as a,
        running_server(bus=redis.url, **overrides) as b,
    ):
        for server in (a, b):
            await console_of(server).wait_for("[BUS] Connected to Redis")
        yield a, b


async def joined_up(peer: RichPeer, nick: str) -> None:
    """Wait until ``peer`` hears that ``nick`` (on another replica) is in its room;
    others may be heard joining first."""
    await peer.expect(Joined, lambda j: j.nick == nick, skip=Joined)


async def knows(peer: RichPeer, *nicks: str) -> None:
    """Make sure ``peer``'s replica knows ``nicks`` (on another replica), and read past
    the notices of their arrival: one comes if that replica heard of someone after
    ``peer`` came."""

    def arrival(event: Event) -> bool:
        return isinstance(event, Joined) and event.nick in nicks

    await peer.send(Who())
    roster = await peer.expect(Roster, skip=arrival)
    missing = set(nicks) - {p.nick for p in roster.peers}
    for _ in range(len(missing)):
        joined = await peer.expect(Joined, lambda j: j.nick in missing)
        missing.discard(joined.nick)


async def ended(peer: RichPeer) -> bool:
    """Read what is left of ``peer``'s stream; True once it ends."""
    for _ in range(1000):
        if await asyncio.wait_for(peer.event(), WAIT) is None:
            return True
    return False


def run(coro: Any) -> None:
    asyncio.run(asyncio.wait_for(coro, 60))
