"""A room: who is in it (here and on other replicas) and what it said lately.

No server imports but frames (a leaf module). A :class:`Room` holds its members,
whatever kind of peer they are (``M``: the relay's peer type), its log of recent
messages (the catch-up for peers that come back, whose tail is the history new members
get) and the broadcasts waiting for this pass's fan-out. rooms.py holds every room.
"""

from __future__ import annotations

import dataclasses
import sys
from collections import deque
from typing import Generic, Protocol, TypeVar

from peerchat_protocol import MAX_ROSTER_ENTRIES, Message, PeerInfo

from .frames import Broadcast, Frames


class Member(Protocol):
    """What a room needs of a member: its name and address, for rosters, and whether
    the room was told it came."""

    name: str
    addr: str
    announced: bool


M = TypeVar("M", bound=Member)

#: Characters of chat a room takes in one loop pass, at most (about one 256 KiB read).
PASS_INTAKE = 256 * 1024


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
    #: When this server learned the room (Unix ms): what its replicas said in it before
    #: belongs to another life of the room (see RedisReplication.on_backfill).
    made_ts: int = 0
    #: Broadcasts waiting for this pass's fan-out, each with the member it skips.
    outbox: list[tuple[Broadcast, M | None]] = dataclasses.field(default_factory=list)
    #: Members on other replicas (``--bus``), by folded nickname.
    remote: dict[str, PeerInfo] = dataclasses.field(default_factory=dict)
    #: Members that have not sent a line yet (a listening ``nc``, or a client whose
    #: hello is in flight and may want what it was sent again, as JSON), each with the
    #: index of the first broadcast it may want again; the broadcasts kept for them,
    #: with their index; and how many were fanned out while any waited. One journal
    #: for the room instead of a copy per member: fan-out treats them like everyone.
    waiters: dict[M, int] = dataclasses.field(default_factory=dict)
    journal: deque[tuple[int, Frames]] = dataclasses.field(default_factory=deque)
    journaled: int = 0
    #: Members that read slower than the room is said to (their output backs up, yet
    #: they read), and whether the room is held for them: read from nobody until they
    #: catch up (Relay.pace).
    slow: dict[M, None] = dataclasses.field(default_factory=dict)
    watched: bool = False  # a look at them is due (Relay._watch_slow)
    #: Characters of chat said in the room this pass (see :attr:`busy`).
    intake: int = 0
    #: Members that have chat to say and wait for the room to be released (Relay.pace).
    waiting: list[M] = dataclasses.field(default_factory=list)

    def count(self) -> int:
        """Everyone in the room, here and on other replicas."""
        return len(self.members) + len(self.remote)

    @property
    def held(self) -> bool:
        """Whether nobody in the room is read until its slow members catch up."""
        return bool(self.slow)

    @property
    def busy(self) -> bool:
        """Whether the room takes no more chat now: it waits for slow readers, or this
        pass has said PASS_INTAKE already (the rest waits for the next pass: a pass
        of many senders must not queue more for each member at once than a reader can
        hold, ``--max-send-buffer``)."""
        return self.held or self.intake >= PASS_INTAKE

    def remove(self, member: M) -> None:
        """``member`` leaves the room."""
        self.members.pop(member, None)
        self.slow.pop(member, None)
        if self.waiting:
            self.waiting = [m for m in self.waiting if m is not member]
        self.stop_waiting(member, 0)

    # --- members that have not said what they are yet -----------------------------------

    def wait(self, member: M) -> None:
        """``member`` may want again what the room broadcasts from now on."""
        self.waiters[member] = self.journaled

    def keep(self, broadcasts: list[Broadcast], limit: int) -> None:
        """Fan-out: keep ``broadcasts`` for the waiters, one entry per event, as far as
        any may want them (each wants at most ``limit`` again); forget what none of them
        wants any more."""
        # Starts only grow with arrival, so the newest waiter's is the last, and the
        # oldest's the first.
        newest = next(reversed(self.waiters.values()))
        for broadcast in broadcasts:
            for frames in broadcast.parts:
                if self.journaled < newest + limit:
                    self.journal.append((self.journaled, frames))
                self.journaled += 1
        oldest = next(iter(self.waiters.values()))
        while self.journal and self.journal[0][0] < oldest:
            self.journal.popleft()

    def stop_waiting(self, member: M, limit: int) -> tuple[list[tuple[int, Frames]], int]:
        """``member`` said what it is, or is gone: the broadcasts kept for it (at most
        ``limit``, oldest first, with their index), and how many it was sent in all.
        (A member that has not sent a line is never the one a broadcast skips.)"""
        start = self.waiters.pop(member, None)
        if start is None:
            return [], 0
        kept = [(i, f) for i, f in self.journal if start <= i < start + limit] if limit else []
        if not self.waiters:
            self.journal.clear()
            self.waiters = {}  # a dict keeps its size: 10,000 arrivals would stay in it
        return kept, self.journaled - start

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

    def peers(self, me: object = None) -> tuple[PeerInfo, ...]:
        """Who is here, as a roster lists them: the members its room was told of (a
        connection that has not said what it is yet is not listed until its join is
        announced, so that a roster and the joins and leaves agree), and ``me``."""
        infos: list[PeerInfo] = []
        for session in self.members:
            if len(infos) == MAX_ROSTER_ENTRIES:
                break
            if session.announced or session is me:
                infos.append(PeerInfo(session.name, session.addr))
        for info in self.remote.values():
            if len(infos) == MAX_ROSTER_ENTRIES:
                break
            infos.append(info)
        return tuple(infos)
