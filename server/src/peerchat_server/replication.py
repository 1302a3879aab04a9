"""What the relay tells other replicas, and asks of them: one small interface.

The relay is built with a :class:`Replication`. Alone (no ``--bus``) it is
:class:`Alone`, which does nothing: the relay never asks whether there is a bus. With
``--bus redis://…`` it is ``redis_replication.RedisReplication``, which publishes what
happens here and applies what the other replicas publish.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from peerchat_protocol import Message

from .peer import Peer
from .replicas import RemotePeer
from .room import Room

#: What to do once a line the bus numbers is delivered, with the id it got here (None:
#: delivered on other replicas only, nobody here hearing its room any more).
Done = Callable[[int | None], None]


class Replication(Protocol):
    """How the relay shares the chat with other replicas (see redis_replication.py)."""

    async def start(self) -> None:
        """Connect, and keep connected while the server runs."""
        ...

    async def stop(self) -> None:
        """Say goodbye after what is queued, and disconnect."""
        ...

    def present(self, room: Room[Peer]) -> None:
        """One of this server's peers came into ``room`` or left it (``room.members``
        says who is there now): hear what the other replicas say there, or stop."""
        ...

    def joined(self, peer: Peer, room: Room[Peer]) -> None:
        """``peer`` came into ``room`` (or was announced there)."""
        ...

    def left(self, nick: str, room: str, reason: str | None) -> None:
        """The peer called ``nick`` left ``room``."""
        ...

    def renamed(self, nick: str, old: str, room: str) -> None:
        """The peer called ``old`` in ``room`` is now called ``nick``."""
        ...

    def takes(self, room: str) -> bool:
        """Whether the bus numbers and delivers the lines said in ``room`` now: then
        the relay gives each to :meth:`said` with its sender, and nobody else."""
        ...

    def said(
        self, room: str, message: Message, origin: str, sender: Peer | None = None,
        done: Done | None = None,
    ) -> None:  # fmt: skip
        """``message`` was said in ``room`` by ``origin`` (its session's digest); with
        ``sender`` (see takes), to be numbered and delivered here too, not to it, and
        then ``done``."""
        ...

    def after(self, sender: Peer, action: Callable[[], None]) -> bool:
        """Do ``action`` once the lines ``sender`` said that wait for the bus now are
        delivered (its order kept); False if none waits (do it now)."""
        ...

    def whispered(self, target: RemotePeer, message: Message) -> None:
        """A private ``message`` for a peer of another replica."""
        ...

    def vouched(self, secret: str | None) -> tuple[str, int] | None:
        """The room a session with ``secret`` is known to be in on another replica, and
        the newest message id here when this replica learned so (see RedisReplication)."""
        ...

    def claim_from_elsewhere(self, nick: str, secret: str | None) -> bool:
        """A hello resumes a session of another replica's peer ``nick``: free the name
        here for it. True if it was one."""
        ...


class Alone:
    """No other replica: nothing to tell, nobody to vouch for anyone."""

    __slots__ = ()

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def present(self, room: Room[Peer]) -> None:
        pass

    def joined(self, peer: Peer, room: Room[Peer]) -> None:
        pass

    def left(self, nick: str, room: str, reason: str | None) -> None:
        pass

    def renamed(self, nick: str, old: str, room: str) -> None:
        pass

    def takes(self, room: str) -> bool:
        return False

    def said(
        self, room: str, message: Message, origin: str, sender: Peer | None = None,
        done: Done | None = None,
    ) -> None:  # fmt: skip
        pass

    def after(self, sender: Peer, action: Callable[[], None]) -> bool:
        return False

    def whispered(self, target: RemotePeer, message: Message) -> None:
        pass

    def vouched(self, secret: str | None) -> tuple[str, int] | None:
        return None

    def claim_from_elsewhere(self, nick: str, secret: str | None) -> bool:
        return False
