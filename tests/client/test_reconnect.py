"""Reconnecting: a real client process through server restarts, resets and a dead network."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

from peerchat_server.server import ChatServer

from .harness import WAIT, ClientProcess, RawPeer, free_port, run, running_server

COMMON = ("--json", "--reconnect", "--linger", "0", "--wait", "5")


def messages(client: ClientProcess) -> list[tuple[str, str]]:
    """(nick, text) of every message the client printed, in order."""
    return [
        (e["nick"], e["text"])
        for e in map(json.loads, client.stdout.lines)
        if e["type"] == "message"
    ]


def session_of(server: ChatServer, nick: str) -> object:
    """The server's session for ``nick`` (white box: to cut its connection)."""
    found = server.relay.registry.find(nick)
    assert found is not None, nick
    return found


def test_a_reset_connection_resumes_with_the_same_name_and_nothing_lost_or_twice() -> None:
    async def scenario() -> None:
        async with running_server() as server:
            nc = await RawPeer.connect(server.port)
            async with await ClientProcess.start(
                "--port", str(server.port), "--nick", "alice", *COMMON
            ) as alice:
                await alice.stdout.wait_text('"welcome"')
                await nc.lines.wait_text("alice joined")
                await nc.say("one")
                await alice.stdout.wait_text('"text": "one"')
                session_of(server, "alice").abort()  # type: ignore[attr-defined]
                await nc.say("two")  # while alice is away, or just back: either way once
                await alice.stderr.wait_text("[DISCONNECTED]")
                await alice.stderr.wait_text("[RECONNECTED]")
                await alice.stderr.wait_text("you are alice")
                await nc.say("three")
                await alice.stdout.wait_text('"text": "three"')
                assert [text for _, text in messages(alice)] == ["one", "two", "three"]
                await alice.send("I am back")
                await nc.lines.wait_text("I am back")
                # The server saw the connection go, so the room saw alice leave and return.
                await nc.lines.wait_text("alice left")
                assert len([line for line in nc.lines.lines if "alice joined" in line]) == 2
                alice.close_stdin()
                assert await alice.wait() == 0

    run(scenario())


def test_a_server_restart_is_survived_and_lines_typed_meanwhile_are_sent() -> None:
    async def scenario() -> None:
        port = free_port()
        async with contextlib.AsyncExitStack() as stack:
            first = await stack.enter_async_context(_server_on(port))
            alice = await stack.enter_async_context(
                await ClientProcess.start("--port", str(port), "--nick", "alice", *COMMON)
            )
            await alice.stdout.wait_text('"welcome"')
            await first.stop()  # as `docker compose restart server` does: a goodbye, then gone
            await alice.stderr.wait_text("[DISCONNECTED] The server closed the connection")
            await alice.send("typed while the server was down")
            await alice.stderr.wait_text("will be sent once reconnected")
            async with running_server(port=port) as second:
                nc = await RawPeer.connect(second.port)
                await alice.stderr.wait_text("[RECONNECTED]")
                await alice.stderr.wait_text("The server restarted, or you reached another one")
                await nc.lines.wait_text("<alice> typed while the server was down")
                await alice.stderr.wait_text("[SENT]")
                assert second.relay.registry.find("alice") is not None  # its name back
                alice.close_stdin()
                assert await alice.wait() == 0
                await nc.close()

    run(scenario(), timeout=90)


@contextlib.asynccontextmanager
async def _server_on(port: int) -> AsyncIterator[ChatServer]:
    async with running_server(port=port) as server:
        yield server


class Blackhole:
    """A TCP forwarder to a server whose existing connections can be frozen: bytes in
    either direction are then swallowed, as by a cut cable (no reset, no FIN). New
    connections are forwarded normally."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.frozen: set[asyncio.StreamWriter] = set()
        self._live: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    def freeze(self) -> int:
        """Cut every connection open now; returns how many."""
        for a, b in self._live:
            self.frozen.update((a, b))
        return len(self._live)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        self._live.append((writer, up_writer))
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(src, dst))
            self._tasks.add(task)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while True:  # one turn per chunk; ends at end of stream
                data = await src.read(65536)
                if not data:
                    break
                if dst in self.frozen:
                    continue
                dst.write(data)
                await dst.drain()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for a, b in self._live:
            a.close()
            b.close()
        if self._server is not None:
            self._server.close()


def test_a_dead_network_is_noticed_by_keepalive_and_the_half_open_session_replaced() -> None:
    async def scenario() -> None:
        async with running_server() as server:
            hole = Blackhole(server.port)
            port = await hole.start()
            try:
                nc = await RawPeer.connect(server.port)
                async with await ClientProcess.start(
                    "--port", str(port), "--nick", "alice", "--keepalive", "0.5", *COMMON
                ) as alice:
                    await alice.stdout.wait_text('"welcome"')
                    await nc.lines.wait_text("alice joined")
                    assert hole.freeze() == 1
                    await nc.say("said into the void")
                    await alice.stderr.wait_text("[DISCONNECTED] No answer from")
                    await alice.stderr.wait_text("[RECONNECTED]")
                    await alice.stderr.wait_text("1 message you missed follows")
                    await alice.stdout.wait_text('"text": "said into the void"')
                    await nc.say("after")
                    await alice.stdout.wait_text('"text": "after"')
                    texts = [text for _, text in messages(alice)]
                    assert texts == ["said into the void", "after"]
                    assert server.relay.registry.find("alice") is not None
                    assert not [line for line in nc.lines.lines if "alice left" in line]
                    alice.close_stdin()
                    assert await asyncio.wait_for(alice.wait(), WAIT) == 0
                await nc.close()
            finally:
                await hole.close()

    run(scenario())


def test_quitting_while_disconnected_names_the_lines_never_sent() -> None:
    async def scenario() -> None:
        port = free_port()
        async with running_server(port=port) as server:
            alice = await ClientProcess.start("--port", str(port), "--nick", "alice", *COMMON)
            async with alice:
                await alice.stdout.wait_text('"welcome"')
                await server.stop()
                await alice.stderr.wait_text("[DISCONNECTED]")
                await alice.send("lost line", "/quit")
                await alice.stderr.wait_text("1 of your lines were never sent: 'lost line'")
                assert await alice.wait() == 0

    run(scenario())
