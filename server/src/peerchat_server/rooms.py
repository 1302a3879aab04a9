"""Every room: the :class:`RoomBook` holds the rooms, the message ids and what all the
logs may keep together (in memory, and in a store that outlives the process), and
answers what a newcomer or a returning peer is owed.
"""

from __future__ import annotations

import dataclasses
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic

from peerchat_protocol import DEFAULT_ROOM, Message, RoomInfo, fold
from peerchat_protocol.limits import MAX_ROOM_ENTRIES

from .room import M, Room
from .store import MemoryStore, Saved, Store

#: Rooms that ended whose last message id is remembered (for peers coming back).
ENDED_ROOMS_KEPT = 10_000


@dataclasses.dataclass(frozen=True, slots=True)
class Keep:
    """How much the rooms' logs keep: what a newcomer sees (``history_*``), what a
    returning peer may catch up on (``catch_up_*``), and all rooms together."""

    history_messages: int
    history_bytes: int
    catch_up_messages: int
    catch_up_bytes: int
    total_bytes: int = 0  # 0: no cap across rooms


class RoomBook(Generic[M]):
    """Every room by folded name, the message ids, and the logs' bounds.

    The lobby always exists; other rooms are made when someone enters and go when the
    last member leaves: with their history in memory (``--store memory``), or keeping
    it, dormant, with a store that outlives the process. Message ids increase through
    an epoch (one run, or every run with the same store); a room that ended leaves its
    last id behind, so that a peer coming back to it can be told whether it missed
    anything. The ``store`` hears of every message a log keeps.
    """

    def __init__(
        self, keep: Keep, clock: Callable[[], float] = time.time, store: Store | None = None
    ) -> None:
        self.keep = keep
        self._clock = clock
        self.store: Store = store if store is not None else MemoryStore()
        #: Rooms nobody is in that keep their history (durable stores), quietest first.
        self._dormant: OrderedDict[str, Room[M]] = OrderedDict()
        #: After a run that did not stop cleanly: the last id (and the time) up to which
        #: messages may have been said and lost; any room may have missed them.
        self._lost = (0, 0)
        self.lobby: Room[M] = Room(DEFAULT_ROOM, made_ts=self.now())
        # Where peers wait until they give the password: a room nobody broadcasts to.
        self.vestibule: Room[M] = Room(DEFAULT_ROOM)
        self._rooms: dict[str, Room[M]] = {fold(DEFAULT_ROOM): self.lobby}
        # fold(name) -> (id, time) of the last message of a room that ended
        self._ended: OrderedDict[str, tuple[int, int]] = OrderedDict()
        self._ended_forgot = False  # some were forgotten: assume the worst
        self._next_id = 1
        # A room's log serves both new members (history) and returning ones (catch-up).
        self._keep_messages = max(keep.history_messages, keep.catch_up_messages)
        self._keep_bytes = max(keep.history_bytes, keep.catch_up_bytes)
        #: What every room's log holds (bytes of text in memory), and the rooms with a
        #: log, the one that spoke least lately first.
        self.log_bytes = 0
        self._by_activity: OrderedDict[Room[M], None] = OrderedDict()

    # --- ids and time -------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._rooms)

    def new_id(self) -> int:
        """The id of the next message (ids increase through one run of the server)."""
        self._next_id += 1
        return self._next_id - 1

    def adopt(self, message_id: int) -> None:
        """``message_id`` was given elsewhere (by Redis, to a room's message): the ids
        given here go on from above it."""
        self._next_id = max(self._next_id, message_id + 1)

    @property
    def last_id(self) -> int:
        """The newest id given so far (0: none)."""
        return self._next_id - 1

    def now(self) -> int:
        """Now, as messages carry it: Unix time in milliseconds."""
        return int(self._clock() * 1000)

    # --- which rooms there are ----------------------------------------------------------

    def get(self, name: str) -> Room[M] | None:
        return self._rooms.get(fold(name))

    def get_or_make(self, name: str) -> Room[M]:
        return self._rooms.get(fold(name)) or self._make(name)

    def _make(self, name: str) -> Room[M]:
        # What the room said in an earlier life may be unknown to a returning peer: the
        # id of its last message then, or (forgotten) everything up to now.
        dormant = self._dormant.pop(fold(name), None)
        if dormant is not None:  # (a durable store: it kept its history)
            dormant.name, dormant.made_ts = name, self.now()
            self._rooms[fold(name)] = dormant
            return dormant
        ended = self._ended.pop(fold(name), None)
        if ended is None:
            said_before, said_at = (self.last_id, self.now()) if self._ended_forgot else self._lost
        else:  # (and what a crash may have lost)
            said_before, said_at = max(ended[0], self._lost[0]), max(ended[1], self._lost[1])
        room: Room[M] = Room(name, born_after=said_before, born_ts=said_at, made_ts=self.now())
        self._rooms[fold(name)] = room
        return room

    def drop_if_empty(self, room: Room[M]) -> None:
        """An empty room goes, with its history (the lobby and the vestibule stay)."""
        if room.count() or room is self.lobby or room is self.vestibule:
            return
        del self._rooms[fold(room.name)]
        if self.store.durable and room.log:
            self._dormant[fold(room.name)] = room
            self._cap_dormant()
            return
        self._end(room)

    def _cap_dormant(self) -> None:
        """At most ENDED_ROOMS_KEPT rooms nobody is in keep their history: the quietest go."""
        while len(self._dormant) > ENDED_ROOMS_KEPT:
            oldest = next(iter(self._dormant.values()))
            self.store.forgot_room(oldest.name, self._end(oldest))

    def _end(self, room: Room[M]) -> tuple[int, int]:
        """``room`` and its history go; its last id and time are remembered (returned)."""
        self._dormant.pop(fold(room.name), None)
        self.log_bytes -= room.log_bytes
        self._by_activity.pop(room, None)
        if room.log:
            last = (room.log[-1][0].id, room.log[-1][0].ts)
        else:
            last = (max(room.evicted_upto, room.born_after), max(room.evicted_ts, room.born_ts))
        self._ended[fold(room.name)] = last
        self._ended.move_to_end(fold(room.name))
        while len(self._ended) > ENDED_ROOMS_KEPT:
            self._ended.popitem(last=False)
            self._ended_forgot = True
        return last

    def listing(self) -> tuple[RoomInfo, ...]:
        """The busiest rooms first (as many as a listing may hold)."""
        busiest = sorted(self._rooms.values(), key=lambda r: (-r.count(), fold(r.name)))
        return tuple(RoomInfo(r.name, r.count()) for r in busiest[:MAX_ROOM_ENTRIES])

    # --- what was said ------------------------------------------------------------------

    def remember(self, room: Room[M], message: Message, origin: str) -> None:
        """Keep ``message`` in ``room``'s log, within the room's bounds and, for all the
        rooms together, within ``--catch-up-total-bytes``: past it, the room that spoke
        least lately loses its oldest messages first (a peer coming back is told of the
        gap). Without a total, 10,000 rooms of one peer each could hold 2.5 GiB."""
        self.store.kept(room.name, message, origin)
        self._keep(room, message, origin)

    def _keep(self, room: Room[M], message: Message, origin: str) -> None:
        before = room.log_bytes
        room.remember(message, self._keep_messages, self._keep_bytes, origin)
        self.log_bytes += room.log_bytes - before
        if room.log:
            self._by_activity[room] = None
            self._by_activity.move_to_end(room)
        cap = self.keep.total_bytes
        while cap and self.log_bytes > cap and self._by_activity:
            quietest = next(iter(self._by_activity))
            self.log_bytes -= quietest.forget_oldest()
            if not quietest.log:
                self._emptied(quietest)

    def _emptied(self, room: Room[M]) -> None:
        """``room``'s log let go of its last message (to a bound, or to age)."""
        del self._by_activity[room]
        if fold(room.name) in self._dormant:  # a dormant room with nothing left goes
            self.store.forgot_room(room.name, self._end(room))

    def prune(self, before_ts: int) -> int:
        """Let go of every message said before ``before_ts`` (``--retention``); returns
        how many went."""
        gone = 0
        for room in list(self._by_activity):
            while room.log and room.log[0][0].ts < before_ts:
                self.log_bytes -= room.forget_oldest()
                gone += 1
            if not room.log:
                self._emptied(room)
        return gone

    def restore(self, saved: Saved) -> None:
        """What a store kept from the runs before: ids, and the rooms' logs (dormant,
        but for the lobby) as they were, within this run's bounds."""
        self._next_id = max(self._next_id, saved.next_id)
        self._lost = saved.lost  # (what a run that did not stop cleanly may have lost)
        self._ended_forgot = self._ended_forgot or saved.ended_forgot
        lobby = self.lobby
        ended = dict(saved.ended)
        mark = ended.pop(fold(DEFAULT_ROOM), (0, 0))  # (the lobby never ends: its mark)
        lobby.evicted_upto, lobby.evicted_ts = mark
        for key, last in ended.items():
            self._ended[key] = last
        for kept in saved.rooms:  # (the quietest first)
            is_lobby = fold(kept.name) == fold(DEFAULT_ROOM)
            room = self.lobby if is_lobby else Room(kept.name, made_ts=self.now())
            room.evicted_upto = max(room.evicted_upto, kept.forgot_id)
            room.evicted_ts = max(room.evicted_ts, kept.forgot_ts)
            for message, origin in kept.messages:
                self._keep(room, message, origin)
            room.evicted_upto = max(room.evicted_upto, self._lost[0])
            room.evicted_ts = max(room.evicted_ts, self._lost[1])
            if not is_lobby and room.log:
                self._dormant[fold(room.name)] = room
            elif not is_lobby:  # (nothing fits this run's bounds)
                self._ended[fold(room.name)] = (room.evicted_upto, room.evicted_ts)
        self.lobby.evicted_upto = max(self.lobby.evicted_upto, self._lost[0])
        self.lobby.evicted_ts = max(self.lobby.evicted_ts, self._lost[1])
        self._cap_dormant()

    def history(self, room: Room[M], limit: int | None = None) -> list[Message]:
        """What was said in ``room`` before, marked as history, oldest first: what a
        newcomer gets, or (``limit``: /history) up to ``limit`` of all that is kept."""
        if limit is None:
            recent = room.recent(self.keep.history_messages, self.keep.history_bytes)
        else:
            recent = room.recent(min(limit, self._keep_messages), self._keep_bytes)
        return [dataclasses.replace(m, history=True) for m in recent]

    def missed(
        self,
        room: Room[M],
        since: tuple[int | None, int | None],
        origin: str,
        *,
        floor: int | None,
    ) -> tuple[list[Message], bool]:
        """What a returning peer missed in ``room``, marked as history, and whether more
        was said than is given: after the id ``since[0]`` if it has one from this run,
        else after the time ``since[1]``.

        ``floor``: for a peer that proved it was in the room (it gave back the secret of
        a session there), the newest message id here when it came in: it gets what was
        said since, never before, whatever it claims. Anyone else (``floor`` None) gets
        no more than ``--history`` would show a newcomer: the catch-up log must not undo
        ``--history``."""
        last_id, last_ts = since
        if last_id is not None:
            messages, gap = room.since(max(last_id, floor or 0), origin)
        else:
            messages, gap = room.since_ts(last_ts or 0, origin)
            if floor:  # ids, not times: exact even within one millisecond
                messages = [m for m in messages if m.id > floor]
        if floor is None:
            allowed = {id(m) for m in room.recent(self.keep.history_messages,
                                                  self.keep.history_bytes)}  # fmt: skip
            kept = [m for m in messages if id(m) in allowed]
            gap = gap or len(kept) < len(messages)
            messages = kept
        return [dataclasses.replace(m, history=True) for m in messages], gap
