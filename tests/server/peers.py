"""Test peers and an in-process server: real sockets on 127.0.0.1, every wait bounded."""

from __future__ import annotations

import asyncio
import io
import logging
import re
import socket
import struct
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any, TypeVar

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from peerchat_protocol import (
    MAX_VERSION,
    NEED_DATA,
    Connection,
    Event,
    Hello,
    Joined,
    Left,
    Ping,
    Pong,
    RemoteProtocolError,
    Renamed,
    Role,
    Welcome,
)
from peerchat_server.bus import Listener
from peerchat_server.config import ServerConfig
from peerchat_server.console import LOGGER, TRAFFIC_TAGS, Console
from peerchat_server.notes import CONTROL, Note
from peerchat_server.server import ChatServer

#: Longest any single awaited thing may take before the test fails.
WAIT = 10.0

E = TypeVar("E", bound=Event)

#: What an ``expect`` may pass over: event types, or a predicate; lines: a substring or one.
Skip = type[Event] | tuple[type[Event], ...] | Callable[[Event], bool]
LineSkip = str | Callable[[str], bool] | None

#: What a plain peer sees of someone arriving: ``*** NAME joined (N online)``.
JOINS = " joined ("
#: Who came, went or changed name: for tests about something else.
MEMBERSHIP = (Joined, Left, Renamed)
_MEMBERSHIP_LINE = re.compile(r"\*\*\* \S+ (joined \(|left|is now known as )")


def membership_line(line: str) -> bool:
    """Whether a plain peer's ``line`` is a join, leave or rename notice."""
    return _MEMBERSHIP_LINE.match(line) is not None


def _matches(pattern: str | Callable[[str], bool], line: str) -> bool:
    """Whether ``line`` contains ``pattern`` (a substring) or satisfies it (a predicate)."""
    return (pattern in line) if isinstance(pattern, str) else pattern(line)


def _skipper(skip: Skip) -> Callable[[Event], bool]:
    if isinstance(skip, type | tuple):
        kinds = skip
        return lambda event: isinstance(event, kinds)
    return skip


class RecordingConsole(Console):
    """A console that keeps its lines and lets a test await one."""

    def __init__(self, quiet: bool = False) -> None:
        # A logger of its own: servers run side by side in one test process.
        own = logging.Logger(LOGGER)
        super().__init__(io.StringIO(), color=False, quiet=quiet, logger=own)
        self.lines: list[str] = []
        self._changed = asyncio.Event()

    def line(self, tag: str, text: str, /, **fields: Any) -> None:
        super().line(tag, text, **fields)
        if self.quiet and tag in TRAFFIC_TAGS:
            return
        self.lines.append(f"[{tag}] {text}")
        self._changed.set()

    async def wait_for(self, needle: str, count: int = 1) -> list[str]:
        """Wait until ``count`` lines contain ``needle``; returns them."""

        async def matching() -> list[str]:
            while True:
                found = [line for line in self.lines if needle in line]
                if len(found) >= count:
                    return found
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(matching(), WAIT)


@asynccontextmanager
async def running_server(**overrides: Any) -> AsyncIterator[ChatServer]:
    """A real ChatServer on 127.0.0.1 and a free port, stopped afterwards."""
    # Flood control is off unless a test turns it on: its own tests cover it, and the
    # relay's tests send bursts no person would.
    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "shutdown_timeout": 0.5,  # test peers rarely close on the goodbye: do not wait long
        "flood_rate": 0,
        "max_per_address": 0,
        # The same for the budgets per address: tests connect from one address, and
        # tests/server/test_abuse.py turns each on.
        "address_flood_rate": 0,
        "address_wait_rate": 0,
        "connect_rate": 0,
        "rename_rate": 0,
        "auth_failures": 0,
    }
    settings.update(overrides)
    quiet = settings.pop("quiet", False)
    server = ChatServer(ServerConfig(**settings), RecordingConsole(quiet=quiet))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def console_of(server: ChatServer) -> RecordingConsole:
    assert isinstance(server.console, RecordingConsole)
    return server.console


async def raw_reader(port: int, rcvbuf: int) -> socket.socket:
    """A bare non-blocking socket connected to the server, with a small receive buffer:
    a peer that reads only when (and as little as) a test says."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    return sock


class PlainPeer:
    """A peer speaking plain text over a raw socket, exactly as ``nc`` would."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.addr = "{}:{}".format(*writer.get_extra_info("sockname")[:2])

    @classmethod
    async def connect(cls, port: int, *, banner: bool = True, **kwargs: Any) -> PlainPeer:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20, **kwargs)
        peer = cls(reader, writer)
        if banner:  # the server has registered us once its banner arrives
            first = await peer.line()
            assert first.startswith("*** Welcome to peerchat!"), first
            assert (await peer.line()).startswith("*** Type a message")
        return peer

    async def send(self, data: bytes | str) -> None:
        self.writer.write(data.encode() if isinstance(data, str) else data)
        await self.writer.drain()

    async def say(self, text: str) -> None:
        await self.send(text + "\n")

    async def line(self) -> str:
        """The next line, without its CRLF; '' at EOF."""
        raw = await asyncio.wait_for(self.reader.readline(), WAIT)
        assert raw == b"" or raw.endswith(b"\r\n"), raw
        return raw.decode("utf-8").removesuffix("\r\n")

    async def expect(
        self, match: str | Callable[[str], bool], *, skip: LineSkip = None, limit: int = 1000
    ) -> str:
        """The next line, which must contain ``match`` (or satisfy it).

        Lines that ``skip`` matches (a substring, or a predicate) are passed over, at most
        ``limit`` of them; any other line fails the test: nothing is skipped by accident.
        """
        skipped: list[str] = []
        for _ in range(limit):
            text = await self.line()
            if _matches(match, text):
                return text
            if text == "" and self.reader.at_eof():
                raise AssertionError(f"end of stream before a line matching {match!r}")
            if skip is None or not _matches(skip, text):
                raise AssertionError(
                    f"expected a line matching {match!r}, got {text!r} (after skipping {skipped!r})"
                )
            skipped.append(text)
        raise AssertionError(f"no line matching {match!r} in {limit}; skipped {skipped[-20:]!r}")

    async def expect_none(self, *, skip: LineSkip = None) -> None:
        """Prove that nothing (but what ``skip`` matches) arrived: the next line must be
        the answer to a harmless command sent now, ``/timestamps off`` (which it turns off)."""
        await self.say("/timestamps off")
        await self.expect(lambda line: line == "*** Timestamps are off.", skip=skip)

    async def eof(self) -> list[str]:
        """Read to end of stream; returns the lines read on the way."""
        lines = []
        for _ in range(10_000):
            text = await self.line()
            if text == "" and self.reader.at_eof():
                return lines
            lines.append(text)
        raise AssertionError("no end of stream")

    def reset(self) -> None:
        """Close with a TCP RST instead of a FIN."""
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()

    async def close(self) -> None:
        self.writer.close()
        with suppress(ConnectionError, OSError):
            await asyncio.wait_for(self.writer.wait_closed(), WAIT)


class RichPeer:
    """A peer speaking JSON through the protocol package, as the real client does."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.conn = Connection(Role.CLIENT)
        self.welcome: Welcome | None = None

    @classmethod
    async def connect(
        cls,
        port: int,
        nick: str | None = None,
        *,
        version: int = MAX_VERSION,
        password: str | None = None,
        source: str | None = None,
    ) -> RichPeer:
        """A peer that said hello and got its welcome; ``source``: the local address to
        connect from (another 127.x address counts as another address for the limits)."""
        local = (source, 0) if source else None
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=local)
        peer = cls(reader, writer)
        await peer.send(Hello(version=version, nick=nick, client="tests", password=password))
        welcome = await peer.expect(Welcome)
        peer.welcome = welcome
        return peer

    @property
    def nick(self) -> str:
        assert self.welcome is not None
        return self.welcome.nick

    async def send(self, event: Event) -> None:
        self.writer.write(self.conn.send(event))
        await self.writer.drain()

    async def event(self) -> Event | None:
        """The next event; ``None`` at end of stream. Anything the protocol cannot read
        fails the test: a server must never send it."""
        for _ in range(100_000):
            try:
                event = self.conn.next_event()
            except RemoteProtocolError as exc:
                raise AssertionError(f"the server sent what the protocol rejects: {exc!r}") from exc
            if isinstance(event, Event):
                return event
            if event is not NEED_DATA:
                return None
            data = await asyncio.wait_for(self.reader.read(65536), WAIT)
            self.conn.receive_data(data)
        raise AssertionError("no event")

    async def expect(
        self, kind: type[E], where: Callable[[E], bool] = lambda e: True, *, skip: Skip = ()
    ) -> E:
        """The next event, which must be a ``kind`` that satisfies ``where``.

        Events that ``skip`` matches (event types, or a predicate) are passed over, at
        most 1000 of them; any other event fails the test, as does the end of the stream.
        """
        passes = _skipper(skip)
        skipped: list[Event] = []
        for _ in range(1000):
            event = await self.event()
            if event is None:
                raise AssertionError(
                    f"end of stream before a {kind.__name__}; skipped {skipped[-20:]!r}"
                )
            if isinstance(event, kind) and where(event):
                return event
            if not passes(event):
                raise AssertionError(
                    f"expected a {kind.__name__} matching, got {event!r} "
                    f"(after skipping {skipped[-20:]!r})"
                )
            skipped.append(event)
        raise AssertionError(
            f"no {kind.__name__} matching in 1000 events; skipped {skipped[-20:]!r}"
        )

    async def expect_none(self, *, skip: Skip = ()) -> None:
        """Prove that nothing (but what ``skip`` matches) arrived: the next event must be
        the answer to a ping sent now."""
        token = f"quiet-{id(self)}"
        await self.send(Ping(token))
        await self.expect(Pong, lambda pong: pong.token == token, skip=skip)

    async def close(self) -> None:
        self.writer.close()
        with suppress(ConnectionError, OSError):
            await asyncio.wait_for(self.writer.wait_closed(), WAIT)


class StubBus:
    """Stands in for RedisBus (with a RedisReplication): records what is published."""

    def __init__(self, replica: str) -> None:
        self.replica = replica
        self.connected = True
        self.published: list[Note] = []
        self.channels: list[str] = []  # each note's channel
        self.rooms: set[str] = set()
        self.listener: Listener | None = None

    def publish(self, note: Note, channel: str = CONTROL) -> bool:
        """Recorded; False: nothing comes back from it (as from a Redis away), so the
        replica delivers its own peers' lines itself."""
        self.published.append(note)
        self.channels.append(channel)
        return False

    def follow(self, room: str, *, backfill: bool) -> None:
        """Followed at once; the room's log in Redis is empty."""
        self.rooms.add(room)
        if backfill and self.listener is not None:
            self.listener.on_backfill(room, [])

    def unfollow(self, room: str) -> None:
        self.rooms.discard(room)

    def hears(self, room: str) -> bool:
        return self.connected and room in self.rooms

    async def start(self, listener: Listener) -> None:
        self.listener = listener

    async def stop(self, farewell: Note | None = None) -> None:
        self.connected = False


def stub_replication(relay: Any, replica: str = "m0000000") -> tuple[Any, StubBus]:
    """``relay`` as one replica of several, its bus a StubBus: (replication, bus)."""
    from peerchat_server.redis_replication import RedisReplication

    bus = StubBus(replica)
    relay.replication = bus.listener = RedisReplication(relay, bus)
    return relay.replication, bus


class WsPeer:
    """A WebSocket peer (a bot, or what a browser's page does): one JSON event per text
    frame, through the websockets library's own client and our protocol package."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.conn = Connection(Role.CLIENT)
        self.welcome: Welcome | None = None

    @staticmethod
    async def open(port: int, scheme: str = "ws", **kwargs: Any) -> ClientConnection:
        """A WebSocket to the server's /ws, and nothing sent yet."""
        return await asyncio.wait_for(
            ws_connect(f"{scheme}://127.0.0.1:{port}/ws", open_timeout=WAIT, **kwargs), WAIT
        )

    @classmethod
    async def connect(
        cls,
        port: int,
        nick: str | None = None,
        *,
        password: str | None = None,
        origin: str | None = None,
        scheme: str = "ws",
        **kwargs: Any,
    ) -> WsPeer:
        """A peer that said hello and got its welcome (``port``: the WebSocket port)."""
        peer = cls(await cls.open(port, scheme, origin=origin, **kwargs))
        await peer.send(Hello(version=MAX_VERSION, nick=nick, client="tests", password=password))
        peer.welcome = await peer.expect(Welcome)
        return peer

    @property
    def nick(self) -> str:
        assert self.welcome is not None
        return self.welcome.nick

    async def send(self, event: Event) -> None:
        line = self.conn.send(event)
        await self.ws.send(line[:-1].decode())  # one text frame, no newline

    async def event(self) -> Event | None:
        """The next event; ``None`` once the server closed. Every frame must be exactly
        one JSON object the protocol accepts."""
        for _ in range(1000):
            event = self.conn.next_event()
            if isinstance(event, Event):
                return event
            try:
                frame = await asyncio.wait_for(self.ws.recv(), WAIT)
            except ConnectionClosed:
                return None
            assert isinstance(frame, str), f"a binary frame from the server: {frame!r}"
            assert "\n" not in frame, f"more than one line in a frame: {frame!r}"
            self.conn.receive_data(frame.encode() + b"\n")
        raise AssertionError("no event")

    async def expect(
        self, kind: type[E], where: Callable[[E], bool] = lambda e: True, *, skip: Skip = ()
    ) -> E:
        """As :meth:`RichPeer.expect`."""
        passes = _skipper(skip)
        skipped: list[Event] = []
        for _ in range(1000):
            event = await self.event()
            if event is None:
                raise AssertionError(f"closed before a {kind.__name__}; skipped {skipped!r}")
            if isinstance(event, kind) and where(event):
                return event
            if not passes(event):
                raise AssertionError(f"expected a {kind.__name__}, got {event!r}")
            skipped.append(event)
        raise AssertionError(f"no {kind.__name__} in 1000 events")

    async def expect_none(self, *, skip: Skip = ()) -> None:
        """Nothing (but what ``skip`` matches) arrived: the next event answers a ping."""
        token = f"quiet-{id(self)}"
        await self.send(Ping(token))
        await self.expect(Pong, lambda pong: pong.token == token, skip=skip)

    async def closed(self) -> tuple[int | None, str | None]:
        """Wait for the server to close; the close code and reason it gave."""
        await asyncio.wait_for(self.ws.wait_closed(), WAIT)
        received = self.ws.protocol.close_rcvd
        return (received.code, received.reason) if received else (None, None)

    async def close(self) -> None:
        await asyncio.wait_for(self.ws.close(), WAIT)


def close_and_read(console: Console, stream: Any, read_end: int) -> bytes:
    """Close ``console`` (its writer thread empties its queue into the pipe whose
    write end is ``stream``) while a thread reads the pipe to its end: what was written."""
    import os
    import threading

    received: list[bytes] = []

    def read_to_the_end() -> None:
        for _ in range(1_000_000):  # bounded in reads
            chunk = os.read(read_end, 1 << 16)
            if not chunk:
                return
            received.append(chunk)

    reader = threading.Thread(target=read_to_the_end)
    reader.start()
    console.close(timeout=5)
    stream.close()
    reader.join(5)
    os.close(read_end)
    return b"".join(received)
