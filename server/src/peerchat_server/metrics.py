"""``--metrics-port``: Prometheus metrics at ``/metrics`` and a health check at ``/healthz``.

Both are answered by the relay's own event loop (a small HTTP listener here, not
prometheus-client's thread), so a loop that is stuck answers neither: ``/healthz``
is a true liveness check, and the compose healthcheck uses it. The numbers come
from the relay at scrape time: :class:`~.stats.Stats` counters, who is connected
(by kind), the rooms, and the replicas' bus.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from .relay import Relay

#: The kinds of peer /metrics counts (each one a label value, even at 0).
KINDS = ("plain", "json", "websocket", "irc", "unknown")
#: Seconds a scrape's request may take to arrive; bytes it may have.
REQUEST_TIMEOUT = 5.0
REQUEST_BYTES = 8192

_COUNTERS = (
    ("messages_relayed", "messages", "Chat messages relayed to a room."),
    ("deliveries", "deliveries", "Events handed to a recipient by a room's fan-out."),
    ("bytes_out", "bytes_out", "Bytes written to peers."),
    ("slow_consumers_dropped", "slow_consumers", "Peers dropped for not reading."),
    ("flood_slowdowns", "flood_slowdowns", "Times a peer was told it is slowed down."),
    ("flood_kicks", "flood_kicks", "Peers disconnected for flooding."),
    ("password_failures", "password_failures", "Wrong or missing passwords."),
    ("refused_connections", "refused", "Connections turned away by the limits."),
    ("resumes", "resumes", "Sessions resumed by a new connection."),
    ("store_messages_written", "store_written", "Messages the store wrote to disk (--store)."),
    ("store_write_failures", "store_failures", "Store writes that failed (chat went on)."),
    ("store_messages_dropped", "store_dropped", "Messages not stored: the disk fell behind."),
)


class RelayCollector:
    """The relay's figures, read when Prometheus scrapes."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay

    def collect(self) -> Iterator[Metric]:
        relay = self.relay
        stats = relay.stats
        for name, attribute, text in _COUNTERS:
            yield CounterMetricFamily(f"peerchat_{name}", text, value=getattr(stats, attribute))
        kinds = Counter(getattr(peer, "peer_kind", "unknown") for peer in relay.registry)
        peers = GaugeMetricFamily("peerchat_peers", "Peers connected, by kind.", labels=["kind"])
        for kind in KINDS:
            peers.add_metric([kind], kinds.get(kind, 0))
        yield peers
        yield GaugeMetricFamily("peerchat_rooms", "Rooms that exist.", value=len(relay.rooms))
        bus = getattr(relay.replication, "bus", None)
        if bus is not None:
            up = 1 if getattr(bus, "connected", False) else 0
            yield GaugeMetricFamily(
                "peerchat_bus_up", "1 while linked to the other replicas through Redis.", value=up
            )
            yield GaugeMetricFamily(
                "peerchat_bus_lag_seconds",
                "From another replica's peer saying the last message that came over the bus "
                "to its arrival here.",
                value=stats.bus_lag,
            )
            yield CounterMetricFamily(
                "peerchat_bus_notes_received",
                "Notes read from the bus (this replica's own come back too): what following "
                "only the rooms its peers are in saves.",
                value=stats.bus_notes,
            )
            rooms = getattr(bus, "rooms", ())
            yield GaugeMetricFamily(
                "peerchat_bus_rooms_followed", "Rooms whose channel this replica follows.",
                value=len(rooms),
            )  # fmt: skip


class MetricsServer:
    """The HTTP listener of ``/metrics`` and ``/healthz``."""

    def __init__(self, relay: Relay) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(RelayCollector(relay))
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._serve, host, port, reuse_address=True)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    def close(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT)
            status, kind, body = self._answer(head[:REQUEST_BYTES])
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass  # a scraper that went away, or sent no request: nothing to answer
        finally:
            writer.close()

    def _answer(self, head: bytes) -> tuple[str, str, bytes]:
        words = head.split(b" ", 2)
        path = words[1].split(b"?", 1)[0] if len(words) > 2 else b""
        if words[0] != b"GET":
            return "405 Method Not Allowed", "text/plain", b"GET /metrics or /healthz\n"
        if path == b"/metrics":
            return "200 OK", CONTENT_TYPE_LATEST, generate_latest(self.registry)
        if path == b"/healthz":
            return "200 OK", "text/plain", b"ok: the relay's event loop answered\n"
        return "404 Not Found", "text/plain", b"Nothing here: /metrics or /healthz\n"
