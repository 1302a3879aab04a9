"""The connection to the server: finding it, binding our end, the handshake, events.

:func:`connect` looks for the server with capped exponential backoff until the
``--wait`` budget is spent, binding the local end to the chosen listen port;
:meth:`Session.handshake` sends the hello and waits for the welcome;
:meth:`Session.receive` turns bytes into protocol events (answering pings on
the way). Failures surface as :class:`ClientError` subclasses carrying the exit
status and a one-line reason, never as a traceback.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import ssl
from collections.abc import Callable

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
    backoff,
    encode_json,
    fold,
)

from . import __version__
from .config import hostport

CLIENT_NAME = f"peerchat-client/{__version__}"

#: Bytes asked of the socket per read.
READ_CHUNK = 64 * 1024
#: Backoff between connection attempts: the first delay, doubled after each
#: refusal up to the cap. 0.1 s finds a server that binds a moment later; 2 s
#: keeps a waiting client from hammering a host that is still booting.
BACKOFF_FIRST = 0.1
BACKOFF_CAP = 2.0
#: Longest single connection attempt (a SYN to a host that drops packets).
CONNECT_TIMEOUT = 5.0
#: How long the server has to answer our hello with a welcome.
HANDSHAKE_TIMEOUT = 10.0
#: How long a write may wait for the server to read before we call it gone.
SEND_TIMEOUT = 10.0
#: After sending quit, how long to wait for the server to close first (so the
#: TIME_WAIT state lands on the server, and a fixed listen port is free at once).
QUIT_TIMEOUT = 1.0

# Errors that mean "no server there (yet)": worth another try while --wait lasts.
_RETRYABLE_ERRNOS = {
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.ETIMEDOUT,
    errno.EHOSTDOWN,
}


class ClientError(Exception):
    """A failure that ends the run with one ``[ERROR]`` line and ``exit_code``."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ListenPortTaken(ClientError):
    """The chosen local port cannot be used (exit status 2, like a bad option)."""

    exit_code = 2


class ServerUnavailable(ClientError):
    """No server answered within the wait budget."""


class ServerGone(ClientError):
    """The connection ended: shutdown notice, reset, end of stream.

    ``code`` is the code of the server's ``bye`` or refusal, when it gave one.
    """

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


def _port_problem(exc: OSError, port: int) -> str:
    if exc.errno == errno.EACCES:
        return f"local port {port} needs privileges this user lacks: pick one above 1023"
    if exc.errno == errno.EADDRNOTAVAIL:
        return (
            f"local port {port} is still tied to a recent connection to this server "
            "(TIME_WAIT): wait a minute or pick another --listen-port"
        )
    return (
        f"local port {port} is already in use: pick another --listen-port, "
        "or 0 to let the system choose"
    )


def check_listen_port(port: int) -> None:
    """Raise :class:`ListenPortTaken` unless ``port`` can be bound locally.

    The probe uses SO_REUSEADDR, like the real connection: a port left in
    TIME_WAIT by our own previous run is reusable, while a port some other
    program listens on, or holds without SO_REUSEADDR, is reported as taken.
    """
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))
        except OSError as exc:
            raise ListenPortTaken(_port_problem(exc, port)) from None


def describe_os_error(exc: BaseException) -> str:
    """A short, lower-case reason for a failed connection attempt."""
    if isinstance(exc, TimeoutError):
        return "no answer (timed out)"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host name ({exc.strerror or exc})"
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno).lower()
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


def _retryable(exc: OSError) -> bool:
    # A host name that does not resolve yet is normal in compose before the
    # server's container starts; keep trying it too.
    return isinstance(exc, (socket.gaierror, TimeoutError)) or exc.errno in _RETRYABLE_ERRNOS


def tls_context(ca_file: str | None = None, *, insecure: bool = False) -> ssl.SSLContext:
    """How the client checks the server: the system's CAs or ``ca_file``; or not at all."""
    context = ssl.create_default_context(cafile=ca_file or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if insecure:  # a self-signed demo certificate: encrypted, but nobody is checked
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _tls_problem(exc: ssl.SSLError, label: str) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"TLS: the certificate of {label} could not be verified "
            f"({exc.verify_message or exc.reason}). Give its CA with --ca-file, or use "
            "--insecure for a demo with a self-signed certificate"
        )
    return (
        f"TLS with {label} failed ({exc.reason or exc}): is the server serving TLS on "
        "that port? (--tls talks only to a server started with --tls-cert)"
    )


async def _connect_once(
    host: str, port: int, listen_port: int, tls: ssl.SSLContext | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """One connection attempt to each address ``host`` resolves to, in order.

    The caller bounds the whole attempt in time.
    """
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    last: OSError | None = None
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        try:
            if listen_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                wildcard = "::" if family == socket.AF_INET6 else "0.0.0.0"
                try:
                    sock.bind((wildcard, listen_port))
                except OSError as exc:
                    raise ListenPortTaken(_port_problem(exc, listen_port)) from None
            sock.setblocking(False)
            await loop.sock_connect(sock, address)
        except ListenPortTaken:
            sock.close()
            raise
        except OSError as exc:  # TimeoutError is an OSError
            sock.close()
            if listen_port and exc.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL):
                raise ListenPortTaken(_port_problem(exc, listen_port)) from None
            last = exc
            continue
        except BaseException:
            sock.close()
            raise
        if tls is None:
            return await asyncio.open_connection(sock=sock)
        return await asyncio.open_connection(
            sock=sock, ssl=tls, server_hostname=host, ssl_handshake_timeout=CONNECT_TIMEOUT
        )
    raise last if last is not None else OSError(errno.EHOSTUNREACH, "no address to connect to")


async def connect(
    host: str,
    port: int,
    *,
    listen_port: int = 0,
    wait: float = 0.0,
    on_retry: Callable[[str], None] | None = None,
    tls: ssl.SSLContext | None = None,
) -> Session:
    """Connect to the server, retrying refusals with capped backoff for ``wait`` seconds.

    ``on_retry`` is told the reason of the first failed attempt (to print that
    we are waiting). Raises :class:`ServerUnavailable` when the budget is spent,
    :class:`ListenPortTaken` at once when the local port cannot be used.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(wait, 0.0)
    label = hostport(host, port)
    delays = backoff(BACKOFF_FIRST, BACKOFF_CAP)  # 0.1, 0.2, 0.4, ... 2, 2, ...
    # Every attempt but the last sleeps at least BACKOFF_FIRST, so the loop
    # ends by count as well as by time.
    max_attempts = int(max(wait, 0.0) / BACKOFF_FIRST) + 2
    reason = "no attempt made"
    for attempt in range(max_attempts):
        remaining = deadline - loop.time()
        try:
            async with asyncio.timeout(max(min(CONNECT_TIMEOUT, remaining), BACKOFF_FIRST)):
                reader, writer = await _connect_once(host, port, listen_port, tls)
        except ssl.SSLError as exc:  # not worth retrying: the same certificate comes back
            raise ServerUnavailable(_tls_problem(exc, label)) from None
        except OSError as exc:
            if not _retryable(exc):
                raise ServerUnavailable(
                    f"Cannot connect to {label}: {describe_os_error(exc)}"
                ) from None
            reason = describe_os_error(exc)
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            if attempt == 0 and on_retry is not None:
                on_retry(reason)
            await asyncio.sleep(min(next(delays), remaining))
            continue
        return Session(reader, writer, label)
    raise ServerUnavailable(
        f"No server at {label} after {wait:g} s ({reason}): check that it is running "
        "(peerchat-server, or make up / docker compose up server) and the host and port"
    )


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

        ``resume`` and the rest carry on an earlier session (see :mod:`.link`).
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
        while True:
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
            if not isinstance(event, Event):  # NEED_DATA
                self._conn.receive_data(await self._read())
                continue
            if isinstance(event, Ping):
                await self.send(Pong(event.token))
                continue
            if isinstance(event, Pong):
                continue
            if isinstance(event, Bye):
                self._ended = True
            elif isinstance(event, Renamed) and self.nick and fold(event.old) == fold(self.nick):
                self.nick = event.new
            elif isinstance(event, Entered):
                self.room = event.room
            return event

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
