"""``python3 -m peerchat_server.health``: exit 0 when the server is healthy.

With ``PEERCHAT_METRICS_PORT`` set (compose sets it), healthy means ``/healthz``
answered within 2 s: the relay's own event loop answers it, so a stuck loop is
unhealthy. Without it, healthy means listening, checked without connecting (a
connection would show up in the console as a peer arriving and leaving every few
seconds): Linux lists listening sockets in /proc/net/tcp{,6}; elsewhere, fall back
to a connection attempt.
"""

from __future__ import annotations

import os
import socket
import sys
import urllib.request

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


def healthz(port: int, timeout: float = 2.0) -> bool:
    """Whether the server's /healthz answers 200 within ``timeout`` seconds."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=timeout) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def main() -> int:
    metrics = os.environ.get("PEERCHAT_METRICS_PORT")
    if metrics:
        return 0 if healthz(int(metrics)) else 1
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
