"""Load and checking peers for the fault tests, run inside the client image.

Stdlib only, so it runs as ``python3 -u -c "$(cat probe.py)" MODE ...`` in the client
container with nothing else installed. Plain-text peers (what ``nc`` would be):

- ``flood NAME COUNT SIZE [RATE]``: take the nick NAME, send COUNT numbered lines
  ``NAME#n`` padded to SIZE bytes (RATE lines a second, 0: flat out), print
  ``[FLOOD] NAME sent COUNT``, then stay connected (reading) until stdin closes.
- ``count NAME...``: count the numbered lines from each NAME, checking order and
  duplicates; prints ``[COUNT] {"NAME": [received, duplicates, skipped], ...}``
  whenever asked by a line on stdin, and at the end of the stream.

Every loop is bounded by its count, by the stream, or by stdin.
"""

from __future__ import annotations

import json
import re
import socket
import sys
import threading
import time

HOST, PORT = "server", 8080
LINE = re.compile(r"^<([^>]+)> (\S+)#(\d+)")


def connect() -> socket.socket:
    for _ in range(100):  # the server may still be starting: up to ~10 s
        try:
            return socket.create_connection((HOST, PORT), timeout=5)
        except OSError:
            time.sleep(0.1)
    raise SystemExit("[PROBE] no server")


def flood(name: str, count: int, size: int, rate: float) -> None:
    sock = connect()
    sock.settimeout(None)
    sock.sendall(f"/nick {name}\n".encode())
    threading.Thread(target=lambda: [None for _ in sock.makefile("rb")], daemon=True).start()
    started = time.monotonic()
    for n in range(1, count + 1):
        head = f"{name}#{n} "
        sock.sendall((head + "x" * max(0, size - len(head)) + "\n").encode())
        if rate > 0:
            delay = started + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    print(f"[FLOOD] {name} sent {count} in {time.monotonic() - started:.2f} s", flush=True)
    sys.stdin.read()  # stay until told to go (stdin closed)
    sock.close()


def count(names: list[str]) -> None:
    sock = connect()
    sock.settimeout(None)
    tally = {name: [0, 0, 0] for name in names}  # received, duplicates, skipped
    last = dict.fromkeys(names, 0)
    lock = threading.Lock()

    def report() -> None:
        with lock:
            print("[COUNT] " + json.dumps(tally, sort_keys=True), flush=True)

    def on_request() -> None:
        for _ in sys.stdin:
            report()

    threading.Thread(target=on_request, daemon=True).start()
    print("[PROBE] counting", flush=True)
    for raw in sock.makefile("rb"):
        match = LINE.match(raw.decode(errors="replace"))
        if not match or match.group(2) not in tally:
            continue
        name, n = match.group(2), int(match.group(3))
        with lock:
            entry = tally[name]
            if n <= last[name]:
                entry[1] += 1
            else:
                entry[0] += 1
                if n != last[name] + 1:
                    entry[2] += 1
                last[name] = n
    report()
    print("[EOF]", flush=True)


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "flood":
        flood(args[0], int(args[1]), int(args[2]), float(args[3]) if len(args) > 3 else 0.0)
    elif mode == "count":
        count(args)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
