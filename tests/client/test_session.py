"""Session behaviour against a scripted server built from the protocol's server role.

For what the real server does not do on demand: pings, garbage lines, silence,
refusing a hello.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from peerchat_client import session as session_module
from peerchat_client.dial import connect
from peerchat_client.errors import ServerGone, ServerUnavailable
from peerchat_protocol import (
    NEED_DATA,
    Bye,
    Connection,
    Error,
    Event,
    Message,
    Ping,
    Pong,
    Role,
    Welcome,
)

from .harness import WAIT, free_port, run

Script = Callable[[Connection, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _next_event(conn: Connection, reader: asyncio.StreamReader) -> Event:
    while True:  # bounded by the callers' deadlines
        event = conn.next_event()
        if isinstance(event, Event):
            return event
        assert event is NEED_DATA
        conn.receive_data(await reader.read(65536))


async def _with_server(script: Script, body: Callable[[int], Awaitable[None]]) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = Connection(Role.SERVER)
        writer.write(b"Welcome to a scripted server\r\n")  # banner, as the real one
        try:
            await script(conn, reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        await body(server.sockets[0].getsockname()[1])
    finally:
        server.close()


async def _greet(
    conn: Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    await _next_event(conn, reader)  # the hello
    writer.write(conn.send(Welcome(1, "me", "127.0.0.1:1", 1)))


def test_pings_are_answered_and_bad_lines_reported() -> None:
    pong = asyncio.Event()

    async def script(
        conn: Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await _greet(conn, reader, writer)
        writer.write(conn.send(Ping("t1")))
        assert await _next_event(conn, reader) == Pong("t1")
        pong.set()
        writer.write(b'{"type": "message", "id": "not a number"}\n')
        writer.write(conn.send(Message(1, "bob", "after the bad line", 0)))
        writer.write(conn.send(Bye("done here")))
        await writer.drain()

    async def body(port: int) -> None:
        session = await connect("127.0.0.1", port)
        welcome = await session.handshake("me")
        assert welcome.nick == "me"
        bad = await asyncio.wait_for(session.receive(), WAIT)
        assert isinstance(bad, Error)
        assert bad.message.startswith("A line from the server was discarded")
        assert pong.is_set()
        assert await session.receive() == Message(1, "bob", "after the bad line", 0)
        assert await session.receive() == Bye("done here")
        with pytest.raises(ServerGone):
            await session.receive()
        await session.close()

    run(_with_server(script, body))


def test_a_silent_server_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session_module, "HANDSHAKE_TIMEOUT", 0.2)

    async def script(
        conn: Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await reader.read(65536)  # takes the hello, never answers
        await asyncio.sleep(WAIT)

    async def body(port: int) -> None:
        session = await connect("127.0.0.1", port)
        with pytest.raises(ServerGone, match=r"No welcome from 127\.0\.0\.1:\d+ within 0\.2 s"):
            await session.handshake(None)
        await session.close()

    run(_with_server(script, body))


def test_a_refused_hello_is_reported() -> None:
    async def script(
        conn: Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await _next_event(conn, reader)
        writer.write(conn.send(Bye("the room is full", code="full")))
        await writer.drain()

    async def body(port: int) -> None:
        session = await connect("127.0.0.1", port)
        with pytest.raises(ServerGone, match="refused the connection: the room is full"):
            await session.handshake(None)
        await session.close()

    run(_with_server(script, body))


def test_connect_gives_up_after_wait() -> None:
    async def body() -> None:
        port = free_port()
        retries: list[str] = []
        started = asyncio.get_running_loop().time()
        with pytest.raises(ServerUnavailable, match=r"after 0.3 s \(connection refused\)"):
            await connect("127.0.0.1", port, wait=0.3, on_retry=retries.append)
        elapsed = asyncio.get_running_loop().time() - started
        assert 0.3 <= elapsed < 0.3 + WAIT
        assert retries == ["connection refused"]  # told once, not per attempt

    run(body())
