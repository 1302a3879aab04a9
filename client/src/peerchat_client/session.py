"""One connection to the server: the handshake, then events both ways.

:meth:`Session.handshake` sends the hello and waits for the welcome;
:meth:`Session.receive` turns bytes into protocol events (answering pings on
the way); :meth:`Session.send` writes one, bounded in time. A lost connection
surfaces as :class:`~.errors.ServerGone`, never as a traceback. Finding the server
and connecting is :mod:`.dial`'s part.
"""

from __future__ import annotations

import asyncio

from peerchat_protocol import (
    CLOSED,
    Bye,
    Connection,
    Entered,
    Error,
    Event,
    Hello,
    Ping,
    Pong,
    Quit,
    RemoteProtocolError,
    Renamed,
    Role,
    Welcome,
    encode_json,
    fold,
)

from . import __version__
from .errors import ClientError, ServerGone, describe_os_error

CLIENT_NAME = f"peerchat-client/{__version__}"

#: Bytes asked of the socket per read.
READ_CHUNK = 64 * 1024
#: How long the server has to answer our hello with a welcome.
HANDSHAKE_TIMEOUT = 10.0
#: How long a write may wait for the server to read before we call it gone.
SEND_TIMEOUT = 10.0
#: After sending quit, how long to wait for the server to close first (so the
#: TIME_WAIT state lands on the server, and a fixed listen port is free at once).
QUIT_TIMEOUT = 1.0


class Session:
    """One connection to the server, speaking the rich (JSON) protocol."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, label: str
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._conn = Connection(Role.CLIENT)
        self.label = label
        self.welcome: Welcome | None = None
        #: Our nickname, kept current through renames.
        self.nick: str | None = None
        #: The room we are in, kept current through ``entered`` answers (``None``
        #: with a version 1 server, which has no rooms).
        self.room: str | None = None
        self._ended = False
        #: Loop time of the last bytes from the server (for keepalive).
        self.last_heard = asyncio.get_running_loop().time()

    @property
    def local_address(self) -> tuple[str, int]:
        sockname = self._writer.get_extra_info("sockname")
        return (str(sockname[0]), int(sockname[1]))

    # --- handshake ------------------------------------------------------------------

    async def handshake(
        self,
        nick: str | None,
        password: str | None = None,
        *,
        resume: str | None = None,
        room: str | None = None,
        epoch: str | None = None,
        last_id: int | None = None,
        last_ts: int | None = None,
    ) -> Welcome:
        """Send the hello; return the server's welcome (within HANDSHAKE_TIMEOUT).

        ``resume`` and the rest carry on an earlier session (see
        :meth:`.ledger.Ledger.comeback`).
        """
        timeout = HANDSHAKE_TIMEOUT
        hello = Hello(
            nick=nick,
            client=CLIENT_NAME,
            password=password,
            resume=resume,
            room=room,
            epoch=epoch,
            last_id=last_id,
            last_ts=last_ts,
        )
        await self.send(hello)
        try:
            async with asyncio.timeout(timeout):
                event = await self.receive()
        except TimeoutError:
            raise ServerGone(
                f"No welcome from {self.label} within {timeout:g} s: "
                "is a peerchat server listening there?"
            ) from None
        if isinstance(event, Welcome):
            self.welcome = event
            self.nick = event.nick
            self.room = event.room
            return event
        if isinstance(event, Bye):
            raise ServerGone(f"The server refused the connection: {event.reason}", event.code)
        if isinstance(event, Error):
            raise ServerGone(f"The server refused the connection: {event.message}", event.code)
        raise ServerGone(f"The server sent {event.TYPE!r} before its welcome")

    # --- receiving ------------------------------------------------------------------

    async def receive(self) -> Event:
        """The next event worth showing. Answers pings itself.

        A line the server got wrong is returned as a local :class:`Error` event
        (one bad line is not the end); a bye is returned, and the next call
        raises :class:`ServerGone`, as do end of stream and a reset.
        """
        while True:  # one turn per frame or read; ends with an event, or ServerGone
            event = self._next_event()
            if event is None:
                self._conn.receive_data(await self._read())
                continue
            if isinstance(event, Ping):
                await self.send(Pong(event.token))
                continue
            if isinstance(event, Pong):
                continue
            self._follow(event)
            return event

    def _next_event(self) -> Event | None:
        """The next event in what was read, or None when more bytes are needed."""
        if self._ended:
            raise ServerGone("The server closed the connection")
        try:
            event = self._conn.next_event()
        except RemoteProtocolError as exc:
            if exc.fatal:
                self._ended = True
                raise ServerGone(f"Protocol error from the server: {exc.message}") from None
            return Error(exc.code.value, f"A line from the server was discarded: {exc.message}")
        if event is CLOSED:
            self._ended = True
            raise ServerGone("The server closed the connection")
        return event if isinstance(event, Event) else None  # else NEED_DATA

    def _follow(self, event: Event) -> None:
        """Keep up with what ``event`` says of this connection: its end, our name, our room."""
        if isinstance(event, Bye):
            self._ended = True
        elif isinstance(event, Renamed) and self.nick and fold(event.old) == fold(self.nick):
            self.nick = event.new
        elif isinstance(event, Entered):
            self.room = event.room

    async def _read(self) -> bytes:
        try:
            data = await self._reader.read(READ_CHUNK)
            self.last_heard = asyncio.get_running_loop().time()
            return data
        except ConnectionResetError:
            self._ended = True
            raise ServerGone("The connection was reset by the server") from None
        except OSError as exc:
            self._ended = True
            raise ServerGone(f"Connection lost: {describe_os_error(exc)}") from None

    # --- sending --------------------------------------------------------------------

    def too_long(self, event: Event) -> str | None:
        """Why the server would refuse ``event`` for its size, or ``None``."""
        limit = self.welcome.max_line if self.welcome else 0
        if not limit:
            return None
        size = len(encode_json(event)) - 1
        if size <= limit:
            return None
        return f"message too long ({size} bytes encoded; the server takes {limit}): not sent"

    async def send(self, event: Event) -> None:
        data = self._conn.send(event)
        if self._writer.is_closing():
            raise ServerGone("The connection is closed")
        try:
            self._writer.write(data)
            async with asyncio.timeout(SEND_TIMEOUT):
                await self._writer.drain()
        except TimeoutError:
            raise ServerGone(
                f"The server stopped reading for {SEND_TIMEOUT:g} s: giving up"
            ) from None
        except OSError as exc:
            self._ended = True
            raise ServerGone(f"Connection lost: {describe_os_error(exc)}") from None

    # --- ending ---------------------------------------------------------------------

    async def quit(self, reason: str | None = None) -> None:
        """Say goodbye, give the server QUIT_TIMEOUT seconds to close first, then close."""
        try:
            if not self._ended:
                await self.send(Quit(reason))
                async with asyncio.timeout(QUIT_TIMEOUT):
                    while True:  # bounded by the timeout; ends at bye or end of stream
                        if isinstance(await self.receive(), Bye):
                            break
        except (ClientError, TimeoutError):
            pass
        finally:
            await self.close()

    def abort(self) -> None:
        """Drop the connection at once (it is dead or stuck): no goodbye, no waiting."""
        self._ended = True
        self._writer.transport.abort()

    async def close(self) -> None:
        self._ended = True
        self._writer.close()
        try:
            async with asyncio.timeout(QUIT_TIMEOUT):
                await self._writer.wait_closed()
        except (OSError, TimeoutError):
            pass
