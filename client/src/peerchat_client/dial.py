"""Finding the server: the listen port, TLS, and connecting with backoff.

:func:`connect` looks for the server with capped exponential backoff until the
``--wait`` budget is spent, binding the local end to the chosen listen port, and
returns a :class:`~.session.Session` over the connection. The link dials through it
again (one attempt each time) when reconnecting.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from collections.abc import Callable

from peerchat_protocol import backoff

from .config import hostport
from .errors import ListenPortTaken, ServerUnavailable, describe_os_error
from .session import Session

#: Backoff between connection attempts: the first delay, doubled after each
#: refusal up to the cap. 0.1 s finds a server that binds a moment later; 2 s
#: keeps a waiting client from hammering a host that is still booting.
BACKOFF_FIRST = 0.1
BACKOFF_CAP = 2.0
#: Longest single connection attempt (a SYN to a host that drops packets).
CONNECT_TIMEOUT = 5.0

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
