"""The cheapest relay we can write: for measuring the load generator's own ceiling.

An asyncio Protocol that writes every chunk it reads, unparsed, to every other
connection (one write per recipient per read). It does almost no work per message,
so with one sender the deliveries/s the load generator reaches against it is what
the load generator itself can count on this machine. Only single-sender workloads
are meaningful against it: with several senders, chunks interleave mid-line.

Run: python bench/trivial_relay.py --port 9000. Stop it with SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import ClassVar


class Relay(asyncio.Protocol):
    peers: ClassVar[dict[Relay, asyncio.Transport]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        Relay.peers[self] = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        for peer, transport in Relay.peers.items():
            if peer is not self:
                transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        Relay.peers.pop(self, None)


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Relay, host, port, backlog=1024, reuse_address=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
