"""What the server knows of a connected peer: two small interfaces, whatever its kind.

The relay (rooms, names, fan-out, replication) talks to peers through :class:`Peer`
only, and the chat commands (commands.py, admission.py) through :class:`ChatPeer`, so
neither imports the asyncio session that implements them: imports go one way, from the
session to the commands to the relay. A new kind of peer (WebSocket, IRC) is another
class with these members; its :attr:`Peer.form` says how it gets events (frames.py).
"""

from __future__ import annotations

from typing import Protocol

from peerchat_protocol import Bye, Event

from .addresses import Address
from .frames import Form, Frames
from .resume import Resumable
from .room import Room


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
    #: How it gets events: the bytes of one event for it (frames.py).
    form: Form

    @property
    def label(self) -> str:
        """How the console names it."""
        ...

    @property
    def origin(self) -> str:
        """Who sent a line, for a room's log (its session's digest, or the connection)."""
        ...

    def send(self, event: Event) -> None:
        """Queue one event for it alone."""
        ...

    def deliver(self, frames: Frames) -> None:
        """Queue an event already encoded for others."""
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

    def keeps_up(self, now: float) -> bool:
        """Whether its room should still wait for it: behind, yet reading."""
        ...

    def read_on(self) -> None:
        """Its room takes chat again (Relay.pace): go on reading from it, if it was
        paused for its room (flood control may still keep it paused)."""
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


class ChatPeer(Peer, Protocol):
    """A peer whose chat commands the server handles: what the commands need of it."""

    #: Whether it was sent its room's history (at connection, or when it came in).
    history_sent: bool
    #: Bad lines it sent so far.
    errors: int

    @property
    def version(self) -> int | None:
        """The JSON protocol version it speaks (None: plain text, or not known yet)."""
        ...

    @property
    def max_line(self) -> int:
        """The longest line it may send, in bytes."""
        ...

    def set_timestamps(self, on: bool) -> None:
        """Put a timestamp on every line it is sent as plain text, or stop."""
        ...

    def acknowledge(self, seq: int, message_id: int | None = None) -> None:
        """Its line ``seq`` is handled (relayed as ``message_id``, if it was)."""
        ...

    def hold_ack(self, seq: int) -> None:
        """Its line ``seq`` waits for the bus: no ``ack`` reaches it (nor any later line)
        until :meth:`acknowledge_late`."""
        ...

    def acknowledge_late(self, seq: int, message_id: int | None) -> None:
        """Its line ``seq``, held, was relayed (as ``message_id`` here, if it was)."""
        ...

    def announce(self) -> None:
        """Tell its room it is here (once)."""
        ...

    def authenticate(self) -> None:
        """It gave the password: the deadline for it is off."""
        ...

    def drop_replay(self) -> None:
        """Nothing sent before its hello needs sending again."""
        ...

    def flush_replay(self) -> None:
        """Its hello came: what was sent before it, again in its form."""
        ...

    def leave(self, reason: str, bye: Bye) -> None:
        """It leaves on purpose (``reason`` for the others): say ``bye`` and close."""
        ...
