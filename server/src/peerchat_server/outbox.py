"""Fan-out and write batching: what every peer gets, written once per loop pass.

Fan-out never waits for anyone. A broadcast is encoded at most once per form (JSON per
protocol version, plain text with or without timestamps: see frames.py) and the same
bytes are queued for every recipient; all queues are flushed together once per
event-loop pass, so a burst of messages costs each recipient one write, not one per
message. A recipient whose unsent backlog passes the send-buffer limit is dropped
(see Peer.flush).

The one rule that keeps every peer's stream in the order things happened: **drain
before queueing**. Anything queued for one peer alone (a reply, a private message), and
anyone joining or leaving a room, first fans out the broadcasts waiting in the room
outboxes (:meth:`Outbox.drain`). Peers and the relay call ``drain`` for that; nothing
else needs to know.
"""

from __future__ import annotations

import asyncio
from itertools import accumulate
from typing import Protocol

from peerchat_protocol import Event

from .frames import Broadcast, Form, Frames, Said
from .peer import Peer
from .room import Room
from .stats import Stats


class Flushable(Protocol):
    """What has output to write at the end of the loop pass (a peer)."""

    def flush(self) -> None: ...

    def fail(self) -> None: ...


class Outbox:
    """The rooms with broadcasts waiting, the peers with output waiting, and the one
    flush per loop pass that sends them all (one loop, no locks)."""

    __slots__ = ("_busy_rooms", "_dirty", "_flush_handle", "_replay_limit", "_stats")

    def __init__(self, replay_limit: int, stats: Stats | None = None) -> None:
        self._replay_limit = replay_limit  # broadcasts a late hello may get again
        self._stats = stats if stats is not None else Stats()
        self._dirty: list[Flushable] = []
        self._busy_rooms: list[Room[Peer]] = []  # rooms with an outbox to fan out
        self._flush_handle: asyncio.Handle | None = None

    def broadcast(self, event: Event, room: Room[Peer], exclude: Peer | None = None) -> None:
        """Send ``event`` to everyone in ``room`` but ``exclude``, at this pass's fan-out."""
        self._enqueue(Frames(event), room, exclude)

    def broadcast_said(self, said: Said, room: Room[Peer], sender: Peer) -> None:
        """Send chat lines ``sender`` said together to everyone else in ``room``."""
        self._enqueue(said, room, sender)

    def _enqueue(self, item: Broadcast, room: Room[Peer], exclude: Peer | None) -> None:
        if not room.members:
            return
        if not room.outbox:
            self._busy_rooms.append(room)
        room.outbox.append((item, exclude))
        self._schedule_flush()

    def drain(self) -> None:
        """Fan out every broadcast waiting in a room outbox, now.

        Called before anything else is queued for a peer (a reply, a private message)
        and before anyone joins or leaves a room, so each peer's stream keeps the order
        in which things happened, and a newcomer neither gets what was said before it
        came nor gets it twice (live and as history).
        """
        while self._busy_rooms:
            rooms, self._busy_rooms = self._busy_rooms, []
            for room in rooms:
                self._stats.deliveries += _fan_out(room, self._replay_limit)

    def mark_dirty(self, peer: Flushable) -> None:
        """``peer`` has queued output: flush it at the end of this loop pass."""
        self._dirty.append(peer)
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Once per loop pass: fan out the rooms' broadcasts, then write every queue."""
        self.drain()  # (the flush is still scheduled: queuing here does not schedule another)
        self._flush_handle = None
        dirty, self._dirty = self._dirty, []
        for peer in dirty:
            try:
                peer.flush()
            except Exception:
                peer.fail()  # that peer's problem only: the others still get theirs


def _fan_out(room: Room[Peer], replay_limit: int) -> int:
    """Every waiting broadcast of ``room``, as one write per member.

    The bytes a member gets depend only on its form and on which of the broadcasts it
    sent (senders skip their own). So each form's broadcasts are encoded and joined
    once, the same bytes object is queued for every member of that form, and a sender
    gets that blob with its own lines cut out by offset (a copy of bytes, not a second
    pass over the broadcasts: with many senders in one pass, each is one). Members that
    have not said what they are yet get the same bytes, and the room keeps the
    broadcasts once for all of them, should a hello ask for them again (Room.keep).
    """
    items, room.outbox = room.outbox, []
    room.intake = 0
    if room.waiters:
        room.keep([frames for frames, _ in items], replay_limit)
    own = _own_runs(items)
    delivered = _count(items, len(room.members), own)
    joined: dict[object, tuple[bytes, list[int]]] = {}
    for member in room.members:
        form = member.form
        whole = joined.get(form)
        if whole is None:
            whole = joined[form] = _join(items, form)
        runs = own.get(member) if own else None
        blob = whole[0] if runs is None else _cut(whole, runs)
        if blob:
            member.queue_bytes(blob)
    return delivered


def _count(
    items: list[tuple[Broadcast, Peer | None]],
    members: int,
    own: dict[Peer, list[list[int]]],
) -> int:
    """Deliveries of this fan-out: each event to each of ``members``, but a sender's own."""
    sizes = [len(item.messages) if isinstance(item, Said) else 1 for item, _ in items]
    total = sum(sizes) * members
    for runs in own.values():
        total -= sum(sum(sizes[start:end]) for start, end in runs)
    return total


def _own_runs(items: list[tuple[Broadcast, Peer | None]]) -> dict[Peer, list[list[int]]]:
    """For each sender, where its broadcasts are: runs ``[start, end)`` of item indexes
    (a sender's lines of one read are consecutive, so there are few runs)."""
    runs: dict[Peer, list[list[int]]] = {}
    for index, (_, sender) in enumerate(items):
        if sender is None:
            continue
        mine = runs.get(sender)
        if mine is None:
            runs[sender] = [[index, index + 1]]
        elif mine[-1][1] == index:
            mine[-1][1] = index + 1
        else:
            mine.append([index, index + 1])
    return runs


def _join(items: list[tuple[Broadcast, Peer | None]], form: Form) -> tuple[bytes, list[int]]:
    """All the broadcasts in ``form``, joined, with the byte offset where each starts
    (and, last, the total length)."""
    parts = [frames.for_form(form) for frames, _ in items]
    return b"".join(parts), list(accumulate(map(len, parts), initial=0))


def _cut(whole: tuple[bytes, list[int]], runs: list[list[int]]) -> bytes:
    """The joined broadcasts without the items in ``runs`` (a sender's own)."""
    data, offsets = whole
    kept, at = [], 0
    for start, end in runs:
        kept.append(data[at : offsets[start]])
        at = offsets[end]
    kept.append(data[at:])
    return b"".join(kept)
