"""What the relay knows of a connected peer: one small interface, whatever its kind.

The relay (rooms, names, fan-out, replication) talks to peers through this protocol
only, so it never imports the asyncio session that implements it: imports go one way,
from the session to the relay. A new kind of peer (WebSocket, IRC) is another class
with these members.
"""

from __future__ import annotations

from typing import Protocol

from peerchat_protocol import Bye, Connection, Event

from .addresses import Address
from .frames import Frames
from .resume import Resumable
from .rooms import Room


class Peer(Protocol):
    """A connected peer, as the relay sees it."""

    #: The name it goes by (its address until it picks one), and its address.
    name: str
    addr: str
    #: Its network address's budgets (addresses.py).
    address: Address
    #: The room it is in (the relay moves it), and whether that room was told it came.
    room: Room[Peer]
    announced: bool
    #: Whether it gave the password (or none is needed).
    authenticated: bool
    #: Its v3 session, if it has one.
    resumable: Resumable[Peer] | None
    #: Its end of the protocol: which form of an event it gets.
    conn: Connection

    @property
    def label(self) -> str:
        """How the console names it."""
        ...

    @property
    def origin(self) -> str:
        """Who sent a line, for a room's log (its session's digest, or the connection)."""
        ...

    @property
    def wants_each_event(self) -> bool:
        """Whether fan-out must hand it events one by one instead of bytes."""
        ...

    def send(self, event: Event) -> None:
        """Queue one event for it alone."""
        ...

    def deliver(self, frames: Frames) -> None:
        """Queue an event already encoded for others."""
        ...

    def deliver_now(self, frames: Frames) -> None:
        """The same, during a fan-out (no drain first)."""
        ...

    def queue_bytes(self, data: bytes) -> None:
        """Queue bytes the fan-out prepared for its form."""
        ...

    def flush(self) -> None:
        """Hand what is queued to the transport (once per loop pass)."""
        ...

    def check_liveness(self, now: float) -> None:
        """Ping it, drop it or reap it if due."""
        ...

    def pause_reading(self) -> None:
        """Read nothing more from it (the server is stopping)."""
        ...

    def close(self, bye: Bye | None = None, *, log_reason: str = "", linger: bool = False) -> None:
        """Say ``bye`` and close."""
        ...

    def replaced(self) -> None:
        """Its session was resumed by another connection: go at once, unannounced."""
        ...

    def abort(self) -> None:
        """Close at once, discarding unsent output."""
        ...

    def fail(self) -> None:
        """An unexpected error while serving it: log it and close it only."""
        ...
