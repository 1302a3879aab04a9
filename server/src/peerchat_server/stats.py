"""What the server counts as it runs, for /metrics (metrics.py): plain integers.

A leaf. The relay and the peers add to these on their hot paths, so each is an int
attribute (one addition), never a prometheus object; metrics.py reads them when
Prometheus scrapes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Stats:
    """Counters since the server started."""

    messages: int = 0  # chat lines relayed (room messages)
    deliveries: int = 0  # events handed to a recipient by a room's fan-out
    bytes_out: int = 0  # bytes written to peers
    slow_consumers: int = 0  # peers dropped for not reading
    flood_slowdowns: int = 0  # times a peer was told it is being slowed down
    flood_kicks: int = 0  # peers disconnected for flooding
    password_failures: int = 0
    refused: int = 0  # connections turned away (limits, a full server)
    resumes: int = 0  # sessions resumed by a new connection
    store_written: int = 0  # messages the store (--store) has written to disk
    store_failures: int = 0  # store writes that failed (the chat went on from memory)
    store_dropped: int = 0  # messages not written: the store fell too far behind
    bus_notes: int = 0  # notes received from the replicas' bus (each replica's own too)
    #: Seconds between another replica's peer saying the last message that came over
    #: the bus and its arrival here (0 until one comes).
    bus_lag: float = 0.0
