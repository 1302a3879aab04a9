"""Rooms: who is in each (here and on other replicas) and what it said lately.

No server imports but frames (a leaf module). A room holds its members, whatever kind
of peer they are (``M``: the relay's peer type), its log of recent messages (the
catch-up for peers that come back, whose tail is the history new members get) and
the broadcasts waiting for this pass's fan-out.
"""

from __future__ import annotations

import dataclasses
import sys
from collections import deque
from typing import Generic, Protocol, TypeVar

from peerchat_protocol import MAX_ROSTER_ENTRIES, Message, PeerInfo

from .frames import Frames


class Member(Protocol):
    """What a room needs of a member: its name and address, for rosters."""

    name: str
    addr: str


M = TypeVar("M", bound=Member)


@dataclasses.dataclass(eq=False)
class Room(Generic[M]):
    """A room: its members (in arrival order) and its recent messages."""

    name: str
    members: dict[M, None] = dataclasses.field(default_factory=dict)
    #: Recent messages, oldest first, with their text's size in memory and who sent them
    #: (a key, see Session.origin, not the session: a log must not keep closed sessions
    #: alive): the catch-up for peers that reconnect (minus their own), whose tail is the
    #: history new members get.
    log: deque[tuple[Message, int, str]] = dataclasses.field(default_factory=deque)
    log_bytes: int = 0
    #: The newest message id that left the log (0: none did), and the newest id the
    #: server had given when the room was made: a peer that saw an id below either may
    #: have missed messages the log no longer holds.
    evicted_upto: int = 0
    born_after: int = 0
    #: The same two, as times (Unix ms), for peers coming from another epoch.
    evicted_ts: int = 0
    born_ts: int = 0
    #: Broadcasts waiting for this pass's fan-out, each with the member it skips.
    outbox: list[tuple[Frames, M | None]] = dataclasses.field(default_factory=list)
    #: Members on other replicas (``--bus``), by folded nickname.
    remote: dict[str, PeerInfo] = dataclasses.field(default_factory=dict)

    def count(self) -> int:
        """Everyone in the room, here and on other replicas."""
        return len(self.members) + len(self.remote)

    def remember(
        self, message: Message, max_messages: int, max_bytes: int, origin: str = ""
    ) -> None:
        """Keep ``message`` from ``origin``: the last ``max_messages``, in ``max_bytes``."""
        if max_messages <= 0:
            self.evicted_upto, self.evicted_ts = message.id, message.ts
            return
        # What the text costs in memory, not in UTF-8: Python keeps a string at 1, 2 or
        # 4 bytes a character, so one emoji makes a line of ASCII take four times more.
        size = sys.getsizeof(message.text)
        self.log.append((message, size, origin))
        self.log_bytes += size
        while len(self.log) > max_messages or (self.log_bytes > max_bytes and len(self.log) > 1):
            self.forget_oldest()

    def forget_oldest(self) -> int:
        """Let the oldest message of the log go; returns the bytes that freed."""
        evicted, evicted_size, _ = self.log.popleft()
        self.log_bytes -= evicted_size
        self.evicted_upto, self.evicted_ts = evicted.id, evicted.ts
        return evicted_size

    def recent(self, max_messages: int, max_bytes: int) -> list[Message]:
        """The newest messages, up to ``max_messages`` and ``max_bytes``, oldest first."""
        picked: list[Message] = []
        size = 0
        for message, message_size, _ in reversed(self.log):
            if len(picked) == max_messages or (picked and size + message_size > max_bytes):
                break
            picked.append(message)
            size += message_size
        picked.reverse()
        return picked

    def since(self, last_id: int, origin: str) -> tuple[list[Message], bool]:
        """The messages after id ``last_id`` not sent by ``origin``, and whether some
        of them are no longer kept."""
        missed = [m for m, _, sender in self.log if m.id > last_id and sender != origin]
        return missed, max(self.evicted_upto, self.born_after) > last_id

    def since_ts(self, last_ts: int, origin: str) -> tuple[list[Message], bool]:
        """As :meth:`since`, by time: for a peer whose ids came from another epoch."""
        missed = [m for m, _, sender in self.log if m.ts > last_ts and sender != origin]
        return missed, max(self.evicted_ts, self.born_ts) > last_ts

    def peers(self) -> tuple[PeerInfo, ...]:
        infos: list[PeerInfo] = []
        for session in self.members:
            if len(infos) == MAX_ROSTER_ENTRIES:
                break
            infos.append(PeerInfo(session.name, session.addr))
        for info in self.remote.values():
            if len(infos) == MAX_ROSTER_ENTRIES:
                break
            infos.append(info)
        return tuple(infos)
