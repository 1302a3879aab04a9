"""Which rooms this replica hears from the others, and what a room it starts hearing
had said before: per-room channels without losing history or catch-up.

A replica follows a room's channel only while one of its own peers is in the room. When
it starts, what the others said there meanwhile is not in its log: it comes from the
room's log in Redis (bus.RedisBus.follow, ``backfill``), and until it has, what the
channel brings for that room is held, so the room's log and its members get everything
in order: first what was missed, then what follows.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from peerchat_protocol import Message

from .frames import Frames
from .notes import Note
from .peer import Peer
from .relay import Relay
from .room import Room


class FollowingBus(Protocol):
    """What the following needs of its bus (bus.RedisBus)."""

    replica: str
    rooms: set[str]

    def follow(self, room: str, *, backfill: bool) -> None: ...

    def unfollow(self, room: str) -> None: ...


#: Takes a message note in: the room it went into and the message as kept there (its
#: id renumbered here), or None if it was not for a room here (or was private).
Accept = Callable[[Note], tuple[Room[Peer], Message] | None]


#: Milliseconds before this replica learned of a room that its log may still bring back:
#: the news of a room (a join, on the control channel) can come after its first lines
#: (on the room's), and replicas' clocks differ a little.
LIFE_GRACE = 30_000


def _earlier_life(room: Room[Peer], message: Message) -> bool:
    """Whether ``message`` was said in an earlier life of ``room``: before its last one
    ended here, or well before this replica learned of the room."""
    return message.ts <= room.born_ts or message.ts < room.made_ts - LIFE_GRACE


class RoomFollowing:
    """The rooms followed, the notes held for the ones being filled, and which messages
    (by the id Redis gave them) each room's log holds already."""

    def __init__(self, relay: Relay, bus: FollowingBus) -> None:
        self.relay = relay
        self.bus = bus
        self._filling: dict[str, list[Note]] = {}
        self._since: dict[str, int] = {}  # room being filled -> when it was followed (ms)
        self._seen: dict[str, tuple[Room[Peer], OrderedDict[int, None]]] = {}

    def present(self, room: Room[Peer]) -> None:
        """Follow ``room`` while this replica's peers are in it (Replication.present)."""
        if room is self.relay.rooms.vestibule:
            return  # (where peers wait for the password: named like the lobby, not it)
        name = room.name.lower()
        if room.members and name not in self.bus.rooms:
            self._filling[name] = []
            self._since[name] = self.relay.rooms.now()
            self.bus.follow(name, backfill=True)
        elif not room.members and name in self.bus.rooms:
            self.bus.unfollow(name)
            self._filling.pop(name, None)
            self._since.pop(name, None)

    def holds(self, note: Note) -> bool:
        """Whether ``note`` waits for its room's backfill (it is kept until then): a
        room's message, or a private one for a member of that room (its sender's lines
        keep their order)."""
        room = note.room
        if note.to is not None:
            target = self.relay.registry.find(note.to)
            room = target.room.name if target is not None else None
        held = self._filling.get((room or "").lower())
        if held is None:
            return False
        held.append(note)
        return True

    def filling(self, name: str) -> bool:
        """Whether room ``name``'s log in Redis is being read (what it says is held)."""
        return name.lower() in self._filling

    def mark(self, room: Room[Peer], shared: int) -> bool:
        """Note that ``room``'s log has its message ``shared`` (the id Redis gave it);
        False if it had it already (from the room's log in Redis, and on its channel).
        A set, not the newest id: a Redis that restarted empty with its clock behind
        gives lower ids, which are new all the same."""
        name = room.name.lower()
        entry = self._seen.get(name)
        if entry is None or entry[0] is not room:  # (a new life of the room)
            rooms = self.relay.rooms
            for gone in [n for n, (r, _) in self._seen.items() if rooms.get(n) is not r]:
                del self._seen[gone]  # rooms that ended: their logs go with them
            entry = self._seen[name] = (room, OrderedDict())
        seen = entry[1]
        if shared in seen:
            return False
        seen[shared] = None
        while len(seen) > 2 * self.bus_keep:
            seen.popitem(last=False)
        return True

    @property
    def bus_keep(self) -> int:
        keep = self.relay.rooms.keep
        return max(keep.history_messages, keep.catch_up_messages, 1)

    def split(self, accept: Accept) -> None:
        """The bus is down: what was held goes in (its backfill will not come)."""
        filling, self._filling = self._filling, {}
        self._since.clear()
        for notes in filling.values():
            for note in notes:
                accept(note)

    def backfilled(
        self, name: str, notes: list[Note], accept: Accept, late: Accept,
        settle: Callable[[], None],
    ) -> None:  # fmt: skip
        """Room ``name``'s log in Redis said ``notes``: what of it this replica lacks
        goes in first (``late``: into the log, then to the members as history they may
        not have; ``settle`` once they have it), then what was held (``accept``)."""
        if name not in self._filling:
            return  # (not waited for: a split came between, or it was left)
        held = self._filling.pop(name)
        since = self._since.pop(name, 0)
        room = self.relay.rooms.get(name)
        if room is not None and room.members:
            # A member that came back with an id of the room's (seen_id) proved that the
            # room's life here goes back to it at least, however long ago that was.
            proved = [r.seen_id for m in room.members if (r := m.resumable) and r.seen_id]
            added: dict[int, str] = {}  # message id here -> its sender's session digest
            for note in notes:
                message = note.message
                if note.kind != "message" or message is None or note.to is not None:
                    continue
                if (note.room or "").lower() != name:
                    continue  # (another room's)
                if _earlier_life(room, message) and not (
                    proved and (note.shared or 0) > min(proved)
                ):
                    continue  # (said in an earlier life of this one)
                taken = late(note)  # (None for what the log has already)
                if taken is not None:
                    added[taken[1].id] = note.digest or ""
            if added:
                self._tell_members(room, added, since)
        settle()
        for note in held:
            accept(note)

    def _tell_members(self, room: Room[Peer], added: dict[int, str], since: int) -> None:
        """Each member that was sent the room's history already gets what came late:
        what was said since this replica followed the room; of what was said before, a
        newcomer gets the part its history would show, one that came back everything
        after what it said it had (by id, or else by time); never its own lines. All of
        it as history: its ids, the room's, may be below ids given here meanwhile."""
        newest = {m.id for m in self.relay.rooms.history(room)}
        late = [m for m, _, _ in room.log if m.id in added]
        for member in list(room.members):
            if not getattr(member, "history_sent", True):
                continue  # it gets the whole history, later, from the log
            record = member.resumable
            mine = member.origin  # (its lines were logged under it: Relay.say)
            seen_ts = record.seen_ts if record is not None else 0
            seen_id = record.seen_id if record is not None else 0
            for message in late:
                if added[message.id] == mine:
                    continue
                if seen_id:  # it came back with an id of the room's one sequence: exact
                    if message.id > seen_id:
                        member.deliver(Frames(dataclasses.replace(message, history=True)))
                elif message.ts <= seen_ts:
                    continue
                elif message.ts >= since or seen_ts or message.id in newest:
                    member.deliver(Frames(dataclasses.replace(message, history=True)))
