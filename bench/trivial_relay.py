"""The cheapest relay we can write: for measuring the load generator's own ceiling.

It does nothing per message. It reads whatever a connection has sent (up to 4 MiB per
recv()) and queues those bytes, unparsed, for every other connection; it writes a
connection's queue in one sendmsg() as soon as it holds ``--flush-kib`` (64 KiB), and
everything queued at least every ``--flush-ms`` (5 ms); a connection that cannot take
it all gets the rest as soon as it can. So it makes few system calls however many
messages pass, and the load generator's receivers get as much per read as they can
take: the deliveries/s the load generator reaches against it is about the most it can
count on this machine (sharing the cores with the copying every TCP relay must do). A
server that comes near it is limited by the load generator. Only single-sender
workloads are meaningful against it: with several senders, chunks interleave mid-line.

Run: python bench/trivial_relay.py --port 9000. Stop it with SIGTERM.
"""

from __future__ import annotations

import argparse
import selectors
import socket
import time
from collections import deque

CHUNK = 4 * 1024 * 1024
PAUSE_ABOVE = 16 * 1024 * 1024  # stop reading while a connection has this much queued
GATHER = 64  # buffers per sendmsg()


class Peer:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.queue: deque[memoryview] = deque()
        self.queued = 0
        self.events = 0  # what the selector watches for it

    def flush(self) -> bool:
        """Write what it can of the queue; False if the connection failed."""
        for _ in range(1024):
            if not self.queue:
                return True
            bufs = [self.queue[i] for i in range(min(GATHER, len(self.queue)))]
            try:
                n = self.sock.sendmsg(bufs)
            except (BlockingIOError, InterruptedError):
                return True
            except OSError:
                return False
            self.queued -= n
            while n and self.queue:
                head = self.queue[0]
                if len(head) <= n:
                    n -= len(head)
                    self.queue.popleft()
                else:
                    self.queue[0] = head[n:]
                    n = 0
        return True


class Relay:
    """The listener and every connection, turned by :meth:`run` until SIGTERM.

    A class rather than one function so that accepting, reading and the timed flush
    read apart; the per-read path binds what it uses to locals, as the loop did.
    """

    def __init__(self, host: str, port: int, flush_s: float, flush_bytes: int) -> None:
        self.listener = socket.create_server((host, port), backlog=1024)
        self.listener.setblocking(False)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.listener, selectors.EVENT_READ)
        self.peers: dict[socket.socket, Peer] = {}
        self.fresh: set[Peer] = set()  # with bytes queued since the last flush
        self.paused = False
        self.next_flush = time.monotonic()
        self.flush_s = flush_s
        self.flush_bytes = flush_bytes

    def watch(self, peer: Peer) -> None:
        """Register ``peer`` for what it is waiting for now (reading unless paused;
        writing if it holds bytes the timed flush will not send)."""
        want = (0 if self.paused else selectors.EVENT_READ) | (
            selectors.EVENT_WRITE if peer.queue and peer not in self.fresh else 0
        )
        if want == peer.events:
            return
        if not want:
            self.sel.unregister(peer.sock)
        elif not peer.events:
            self.sel.register(peer.sock, want, peer)
        else:
            self.sel.modify(peer.sock, want, peer)
        peer.events = want

    def drop(self, peer: Peer) -> None:
        if self.peers.pop(peer.sock, None) is not None:
            self.fresh.discard(peer)
            if peer.events:
                self.sel.unregister(peer.sock)
            peer.sock.close()

    def accept(self) -> None:
        """Every pending connection, at most 1,024 a turn."""
        for _ in range(1024):
            try:
                sock, _ = self.listener.accept()
            except BlockingIOError:
                break
            sock.setblocking(False)
            peer = Peer(sock)
            self.peers[sock] = peer
            self.watch(peer)

    def run(self) -> None:
        """Serve until SIGTERM (the default action: the process ends)."""
        sel = self.sel
        while True:
            timeout = max(0.0, self.next_flush - time.monotonic()) if self.fresh else 1.0
            self.handle(sel.select(timeout))
            if self.fresh and time.monotonic() >= self.next_flush:
                self.flush_fresh()
            self.update_paused()

    def handle(self, ready: list[tuple[selectors.SelectorKey, int]]) -> None:
        """One turn's ready sockets: accept, write what waits, read and queue."""
        listener, peers, watch, drop = self.listener, self.peers, self.watch, self.drop
        for key, mask in ready:
            if key.fileobj is listener:
                self.accept()
                continue
            peer = key.data
            if peer.sock not in peers:
                continue  # dropped earlier in this turn
            if mask & selectors.EVENT_WRITE and not peer.flush():
                drop(peer)
                continue
            if mask & selectors.EVENT_READ:
                try:
                    data = peer.sock.recv(CHUNK)
                except (BlockingIOError, InterruptedError):
                    data = None
                except OSError:
                    data = b""
                if data == b"":
                    drop(peer)
                    continue
                if data:
                    self.fan_out(peer, data)
            watch(peer)

    def fan_out(self, peer: Peer, data: bytes) -> None:
        """Queue ``data`` for every other connection; one holding ``flush_bytes`` gets
        it at once, the others at the next timed flush."""
        view = memoryview(data)
        fresh, flush_bytes = self.fresh, self.flush_bytes
        for other in list(self.peers.values()):
            if other is not peer:
                other.queue.append(view)
                other.queued += len(view)
                if other.queued < flush_bytes or other.events & selectors.EVENT_WRITE:
                    fresh.add(other)
                elif other.flush():  # a full chunk: at once
                    fresh.discard(other)
                    self.watch(other)
                else:
                    self.drop(other)

    def flush_fresh(self) -> None:
        """The timed flush: write what every connection got since the last one."""
        batch, self.fresh = self.fresh, set()
        for peer in batch:
            if peer.flush():
                self.watch(peer)  # what it could not take: when it can
            else:
                self.drop(peer)
        self.next_flush = time.monotonic() + self.flush_s

    def update_paused(self) -> None:
        """Stop reading everyone while a connection has too much queued, and resume."""
        was = self.paused
        self.paused = any(p.queued > PAUSE_ABOVE for p in self.peers.values())
        if self.paused != was:
            for peer in list(self.peers.values()):
                self.watch(peer)


def serve(host: str, port: int, flush_s: float, flush_bytes: int) -> None:
    """Relay on ``host:port`` until SIGTERM."""
    Relay(host, port, flush_s, flush_bytes).run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--flush-ms", type=float, default=5.0, help="write what is queued at least this often"
    )
    parser.add_argument(
        "--flush-kib", type=int, default=64, help="and as soon as a connection has this much"
    )
    args = parser.parse_args()
    serve(args.host, args.port, args.flush_ms / 1000, args.flush_kib * 1024)


if __name__ == "__main__":
    main()
