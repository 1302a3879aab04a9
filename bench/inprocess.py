"""The server's own costs, in one process, without the noise of a load generator.

Three figures that a change to the core should not make worse:

- **fan-out**: nanoseconds of CPU per delivery for chat lines said through the relay to
  a room of 200 peers (half JSON, half plain text), 5 lines per loop pass;
- **W1-like**: the same per delivery, the sender's bytes included (50 JSON lines per
  read, each parsed, flood-checked, acknowledged), to 100 JSON peers;
- **cold fan-out**: as fan-out, to 200 peers that have not sent a line yet (a
  listening ``nc``, a client whose hello is in flight: they may still turn out to want
  JSON, so the server keeps what they are sent until they say);
- **idle**: bytes of Python heap per idle connection (tracemalloc), 2,000 real
  connections on loopback.

The peers of the first two have stand-in transports that count bytes: no socket, no
kernel, so the figures repeat within a few percent (best of 7 rounds each). To
compare two builds, run this file against each with ``PYTHONPATH`` pointing at the
other build's sources::

    python -m bench.inprocess
    PYTHONPATH=/tmp/old/server/src:/tmp/old/protocol/src python -m bench.inprocess

Every loop here is bounded by a count (rounds, passes, connections).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import io
import json
import socket
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from peerchat_protocol import Say
from peerchat_server.config import ServerConfig
from peerchat_server.console import Console
from peerchat_server.server import ChatServer
from peerchat_server.session import Session

ROUNDS = 7
#: What any build needs to serve these shapes without its abuse limits in the way.
UNLIMITED: dict[str, Any] = {
    "flood_rate": 0, "address_flood_rate": 0, "connect_rate": 0, "max_per_address": 0,
    "max_connections": 0, "join_notices_up_to": 0, "address_wait_rate": 0,
}  # fmt: skip


class CountingTransport:
    """Stands in for a socket: takes every write, never pushes back."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.written = 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 10_000 + self.n) if name == "peername" else default

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def can_write_eof(self) -> bool:
        return True

    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def abort(self) -> None: ...
    def close(self) -> None: ...


def silent() -> Console:
    """A console that keeps its lines to itself (the figures are what is printed)."""
    return Console(io.StringIO(), color=False, quiet=True)


def flush_of(relay: Any) -> Callable[[], None]:
    """The once-per-pass flush, wherever this build keeps it."""
    return relay.outbox.flush if hasattr(relay, "outbox") else relay.flush  # type: ignore[no-any-return]


async def room_of(
    members: int, *, plain_every: int, cold: bool = False
) -> tuple[Any, list[Session]]:
    """A relay with ``members`` peers in the lobby; every ``plain_every``-th is plain.
    ``cold``: all but the first have sent nothing yet, and the rounds run before the
    loop turns again, so they stay that way (none is announced, none said its kind)."""
    relay = ChatServer(ServerConfig(**UNLIMITED), silent()).relay
    peers = []
    for n in range(members):
        peer = Session(relay)
        peer.connection_made(CountingTransport(n))  # type: ignore[arg-type]
        if cold and n:
            pass  # silent so far
        elif plain_every and n % plain_every == 0:
            peer.data_received(b"/nick p%d\n" % n)
        else:
            hello = {"type": "hello", "version": 3, "nick": f"u{n}"}
            peer.data_received(json.dumps(hello).encode() + b"\n")
        peers.append(peer)
    if not cold:
        await asyncio.sleep(0.7)  # past the announce delay: everyone is in
    flush_of(relay)()
    return relay, peers


def best_of(rounds: int, deliveries: int, one_round: Callable[[], None]) -> float:
    """The fastest of ``rounds`` rounds, in nanoseconds per delivery."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        one_round()
        best = min(best, (time.perf_counter() - started) / deliveries * 1e9)
    return best


async def fan_out(
    members: int = 200, passes: int = 300, per_pass: int = 5, *, cold: bool = False
) -> float:
    relay, peers = await room_of(members, plain_every=2, cold=cold)
    flush, sender, say = flush_of(relay), peers[0 if cold else 1], Say("x" * 100)

    def one_round() -> None:
        for _ in range(passes):
            for _ in range(per_pass):
                relay.say(sender, say)
            flush()

    return best_of(ROUNDS, passes * per_pass * (members - 1), one_round)


async def w1_like(members: int = 100, passes: int = 200, per_read: int = 50) -> float:
    relay, peers = await room_of(members + 1, plain_every=0)
    flush, sender = flush_of(relay), peers[0]
    seq = 0

    def one_round() -> None:
        nonlocal seq
        for _ in range(passes):
            lines = []
            for _ in range(per_read):
                seq += 1
                lines.append(b'{"type":"say","text":"%s","seq":%d}\n' % (b"x" * 100, seq))
            sender.data_received(b"".join(lines))
            flush()

    return best_of(ROUNDS, passes * per_read * members, one_round)


async def idle(connections: int = 2_000) -> float:
    server = ChatServer(ServerConfig(host="127.0.0.1", port=0, **UNLIMITED), silent())
    await server.start()
    registry: Any = getattr(server.relay, "registry", server.relay)  # (older builds: relay)
    clients = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(50)]
    try:
        await asyncio.sleep(1.0)  # the first connections warm up what is made once
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for n in range(connections):
            clients.append(socket.create_connection(("127.0.0.1", server.port)))
            if n % 100 == 0:
                await asyncio.sleep(0)  # let the server accept
        for _ in range(600):  # at most 30 s
            if len(registry) >= connections + 50:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.5)  # past the announce delay: silent peers keep no replay
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        return grown / connections
    finally:
        for client in clients:
            client.close()
        await server.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.parse_args()
    import peerchat_server

    print(f"peerchat_server from {peerchat_server.__file__}")
    print(f"fan-out:  {await fan_out():6.1f} ns per delivery (200 peers, 5 lines a pass)")
    print(f"W1-like:  {await w1_like():6.1f} ns per delivery (reading 50 lines, to 100)")
    cold = await fan_out(cold=True)
    print(f"cold:     {cold:6.1f} ns per delivery (to 200 peers that have sent nothing yet)")
    print(f"idle:     {await idle():6.0f} bytes of Python heap per connection")


if __name__ == "__main__":
    asyncio.run(main())
