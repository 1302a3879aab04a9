"""``python3 -m peerchat_server.health``: exit 0 when the server is listening.

A container health check that needs no extra tools and does not connect: a
connection would show up in the console as a peer arriving and leaving every few
seconds. Linux lists listening sockets in /proc/net/tcp{,6}; elsewhere, fall back
to a connection attempt.
"""

from __future__ import annotations

import os
import socket
import sys

LISTEN = "0A"  # TCP state code in /proc/net/tcp


TABLES = ("/proc/net/tcp", "/proc/net/tcp6")


def listening_ports(paths: tuple[str, ...] = TABLES) -> set[int] | None:
    """Ports with a socket in LISTEN state, or None when /proc cannot tell."""
    ports: set[int] = set()
    readable = False
    for path in paths:
        try:
            with open(path) as table:
                rows = table.read().splitlines()[1:]
        except OSError:
            continue
        readable = True
        for row in rows:
            fields = row.split()
            if len(fields) > 3 and fields[3] == LISTEN:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports if readable else None


def main() -> int:
    port = int(os.environ.get("PEERCHAT_PORT") or 8080)
    ports = listening_ports()
    if ports is not None:
        return 0 if port in ports else 1
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
