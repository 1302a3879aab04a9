"""The baseline peerchat replaces: a thread per client, forwarding raw recv(1024) chunks.

This is the seed's design, kept only as a benchmark baseline. Every client gets a
thread that reads up to 1024 bytes and sends that chunk, as read, to every other
client, one after the other, from the reading thread. Nothing is framed: when two
senders' chunks arrive at a receiver, lines from different senders can interleave
mid-line. A receiver that stops reading blocks the sending thread in sendall(),
which stalls every other client behind it.

(The seed's exact send call is not preserved; ``sendall`` is the charitable reading —
a plain ``send`` would also drop the unsent tail of a chunk when a buffer is full.)

Run: python bench/naive_relay.py --port 9000 [--host 127.0.0.1]. Stop it with SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import threading

clients: list[socket.socket] = []
clients_lock = threading.Lock()


def handle(conn: socket.socket) -> None:
    with clients_lock:
        clients.append(conn)
    try:
        while True:
            try:
                data = conn.recv(1024)
            except OSError:
                break
            if not data:
                break
            with clients_lock:
                others = [c for c in clients if c is not conn]
            for other in others:
                # on error, the other client's own thread notices and removes it
                with contextlib.suppress(OSError):
                    other.sendall(data)
    finally:
        with clients_lock:
            if conn in clients:
                clients.remove(conn)
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((args.host, args.port))
    server.listen(1024)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
