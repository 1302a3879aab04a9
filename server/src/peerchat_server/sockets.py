"""Small socket matters: how an address is printed, TCP keepalive, bytes not yet sent."""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

try:  # Unix: the kernel's send queue of a socket
    import fcntl
    import termios
except ImportError:  # elsewhere: the transport's buffer alone
    fcntl = termios = None  # type: ignore[assignment]

from . import config as defaults


def format_addr(peername: Any) -> str:
    """``host:port`` as the seed prints it; IPv6 hosts in brackets."""
    if isinstance(peername, tuple) and len(peername) >= 2:
        host, port = peername[0], peername[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(peername or "unknown")


def enable_keepalive(sock: socket.socket | None) -> None:
    """Let the kernel find peers that vanished without a FIN or RST (half-open)."""
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (
            ("TCP_KEEPIDLE", defaults.KEEPALIVE_IDLE),
            ("TCP_KEEPINTVL", defaults.KEEPALIVE_INTERVAL),
            ("TCP_KEEPCNT", defaults.KEEPALIVE_COUNT),
        ):
            if hasattr(socket, name):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)
    except OSError:
        pass  # not a TCP socket (tests may use others); keepalive is best effort


def unsent(transport: asyncio.WriteTransport) -> int:
    """Bytes written to ``transport`` that the peer has not taken yet: the transport's
    buffer and the kernel's send queue (``TIOCOUTQ``; without it, the buffer only).
    The kernel's part tells a peer that reads from one that does not long before the
    transport's buffer moves: a kernel queue of megabytes must half empty first."""
    size = transport.get_write_buffer_size()
    sock = transport.get_extra_info("socket")
    if sock is None or fcntl is None or termios is None:
        return size
    try:
        queued = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    except (OSError, ValueError):
        return size
    return size + int(struct.unpack("i", queued)[0])
