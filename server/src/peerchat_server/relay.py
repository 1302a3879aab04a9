"""The rooms: who is connected, what they are called, where they are, and fan-out.

Fan-out never waits for anyone. A broadcast is encoded at most once per form
(JSON per protocol version, plain text with or without timestamps) and the same
bytes are queued for every recipient; all queues are flushed together once per
event-loop pass, so a burst of messages costs each recipient one write, not one
per message. A recipient whose unsent backlog passes the send-buffer limit is
dropped (see Peer.flush).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator

from peerchat_protocol import (
    DEFAULT_ROOM,
    Bye,
    Entered,
    Event,
    Info,
    Joined,
    Left,
    Message,
    PeerInfo,
    Renamed,
    RoomInfo,
    Rooms,
    Roster,
    Say,
    fold,
)
from peerchat_protocol.limits import MAX_ROOM_ENTRIES

from .addresses import AddressBook
from .bus import FORGET_AFTER, HEARTBEAT, Note, RedisBus
from .config import ServerConfig
from .console import Console
from .frames import Frames, form_of
from .names import Names
from .peer import Peer
from .replicas import RemotePeer, Replicas
from .resume import Resumable, ResumeBook
from .rooms import Room
from .tokens import digest

#: Rooms that ended whose last message id is remembered (for peers coming back).
ENDED_ROOMS_KEPT = 10_000

#: Longest message text echoed on the server console; the rest is summarised.
LOG_TEXT_LIMIT = 300


def _digest_of(session: Peer) -> str:
    """The digest of ``session``'s secret, for the bus ("" for a peer without one)."""
    return session.resumable.digest if session.resumable is not None else ""


class Relay:
    """Registry of sessions and rooms, and the fan-out between them (one loop, no locks)."""

    def __init__(
        self,
        config: ServerConfig,
        console: Console,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.console = console
        self._clock = clock
        self._sessions: dict[Peer, None] = {}  # insertion-ordered set
        self.addresses = AddressBook(config)  # budgets per address, across connections
        #: Names held by connected peers and by sessions waiting to be resumed.
        self.names: Names[Peer | Resumable[Peer]] = Names()
        #: Names this run of the server: message ids compare only within one epoch.
        self.epoch = secrets.token_hex(6)
        self.book = ResumeBook(
            config.resume_window,
            config.max_connections or 10_000,
            config.max_sessions_per_address,
            on_release=self._release_name,
        )
        #: The other replicas' peers, and the bus to them (``--bus``; None: alone).
        self.replicas = Replicas()
        self.bus: RedisBus | None = None
        self._split = False
        self.lobby: Room[Peer] = Room(DEFAULT_ROOM)
        # Where peers wait until they give the password: a room nobody broadcasts to.
        self.vestibule: Room[Peer] = Room(DEFAULT_ROOM)
        self._rooms: dict[str, Room[Peer]] = {fold(DEFAULT_ROOM): self.lobby}
        # fold(name) -> (id, time) of the last message of a room that ended
        self._ended_rooms: OrderedDict[str, tuple[int, int]] = OrderedDict()
        self._ended_rooms_forgot = False  # some were forgotten: assume the worst
        # Digests of remote sessions that may come back here, until when (see vouched).
        self._vouched: OrderedDict[str, tuple[float, str, int]] = OrderedDict()
        self._dirty: list[Peer] = []
        self._busy_rooms: list[Room[Peer]] = []  # rooms with an outbox to fan out
        self._flush_handle: asyncio.Handle | None = None
        self._next_id = 1
        self._connections = 0
        # A room's log serves both new members (history) and returning ones (catch-up).
        self._keep_messages = max(config.history_messages, config.catch_up_messages)
        self._keep_bytes = max(config.history_bytes, config.catch_up_bytes)
        #: What every room's log holds (bytes of text in memory), and the rooms with a
        #: log, the one that spoke least lately first.
        self.log_bytes = 0
        self._by_activity: OrderedDict[Room[Peer], None] = OrderedDict()
        self.closing = False
        self._all_gone = asyncio.Event()

    # --- membership ---------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._sessions)

    def __contains__(self, session: object) -> bool:
        return session in self._sessions

    def __iter__(self) -> Iterator[Peer]:
        return iter(list(self._sessions))

    def refusal(self, session: Peer) -> str | None:
        """Why a new connection may not come in, or ``None`` if it may."""
        cfg = self.config
        if cfg.max_connections and len(self._sessions) >= cfg.max_connections:
            return f"the server is full ({cfg.max_connections} connections); try again in a while"
        return self.addresses.refusal(session.address)

    def register(self, session: Peer) -> None:
        """A new connection: known by its address name, in the default room."""
        self.drain()  # what was said before it came is not for it
        session.address.connections += 1
        self._sessions[session] = None
        self.names.claim(session.name, session)
        self._all_gone.clear()
        if session.authenticated:
            session.room = self.lobby
            self.lobby.members[session] = None
        else:
            session.room = self.vestibule  # hears nothing, says nothing

    def admit(self, session: Peer) -> None:
        """A peer that gave the password comes into the default room."""
        self.drain()
        self.vestibule.members.pop(session, None)
        session.room = self.lobby
        self.lobby.members[session] = None

    def unregister(self, session: Peer, reason: str) -> None:
        """Forget ``session`` and tell its room, if it had been announced."""
        if session not in self._sessions:
            return
        self.drain()
        del self._sessions[session]
        session.address.connections -= 1
        self.names.release(session.name, session)
        record = session.resumable
        if record is not None and self.book.waiting(record):
            # Its name waits with its session: nobody else takes it meanwhile.
            self.names.claim(session.name, record)
        room = session.room
        self._remove_from(room, session)
        if session.announced and not self.closing and self._notices_in(room):
            self.broadcast(Left(session.name, room.count(), reason or None, room.name), room)
        if session.announced and not self.closing:  # when closing, one "bye" says it all
            self._publish_leave(session.name, room.name, reason or None)
        if not self._sessions:
            self._all_gone.set()

    def _remove_from(self, room: Room[Peer], session: Peer) -> None:
        room.members.pop(session, None)
        if not room.count() and room is not self.lobby and room is not self.vestibule:
            self._drop_room(room)

    def _drop_room(self, room: Room[Peer]) -> None:
        """An empty room goes, with its history; the id of its last message is kept, so
        that a peer coming back to it can be told whether it missed anything."""
        del self._rooms[fold(room.name)]
        self.log_bytes -= room.log_bytes
        self._by_activity.pop(room, None)
        if room.log:
            last = (room.log[-1][0].id, room.log[-1][0].ts)
        else:
            last = (max(room.evicted_upto, room.born_after), max(room.evicted_ts, room.born_ts))
        self._ended_rooms[fold(room.name)] = last
        self._ended_rooms.move_to_end(fold(room.name))
        while len(self._ended_rooms) > ENDED_ROOMS_KEPT:
            self._ended_rooms.popitem(last=False)
            self._ended_rooms_forgot = True

    def _new_room(self, name: str) -> Room[Peer]:
        # What the room said in an earlier life may be unknown to a returning peer: the
        # id of its last message then, or (forgotten) everything up to now.
        unknown = (self._next_id - 1, self._now()) if self._ended_rooms_forgot else (0, 0)
        said_before, said_at = self._ended_rooms.pop(fold(name), unknown)
        room = self._rooms[fold(name)] = Room(name, born_after=said_before, born_ts=said_at)
        return room

    def find(self, name: str) -> Peer | None:
        """The connected peer called ``name`` (in any case; never a look-alike)."""
        holder = self.names.exact(name)
        return holder if not isinstance(holder, Resumable) else None

    def waiting_as(self, name: str) -> Resumable[Peer] | None:
        """The session waiting to be resumed that holds ``name``, if any."""
        holder = self.names.exact(name)
        return holder if isinstance(holder, Resumable) else None

    def why_taken(self, name: str) -> str:
        """Why ``name`` cannot be had, for the message that says so."""
        holder = self.names.clash(name)
        if isinstance(holder, Resumable):
            left = max(1, round(self.book.window - (self.loop_time() - holder.gone_at)))
            return (
                f"is held for {holder.nick}, who lost their connection and may be back "
                f"(free again in {left} s if not)"
            )
        owner = holder.name if holder is not None else None
        if owner is None and (remote := self.replicas.clash(name)) is not None:
            owner = remote.nick
        if owner is not None and fold(owner) != fold(name):
            return f"looks too much like {owner!r}, who is here"
        return "is taken"

    def name_taken(self, name: str, by: Peer | None = None) -> bool:
        """Whether ``name``, or a name like it, is someone else's: a peer's here or on
        another replica, or held for a session that may be resumed."""
        holder = self.names.clash(name)
        if holder is None:
            return self.replicas.clash(name) is not None  # someone on another replica
        return holder is not by

    def rename(self, session: Peer, new: str) -> str:
        """Give ``session`` the name ``new`` (caller checked it is free); returns the old."""
        old = session.name
        self.names.release(old, session)
        session.name = new
        self.names.claim(new, session)
        return old

    def _release_name(self, record: Resumable[Peer]) -> None:
        """A session stopped waiting to be resumed: the name it held is free again."""
        self.names.release(record.nick, record)

    def free_variant(self, nick: str) -> str:
        """``nick`` if free, else the first free ``nick_2``, ``nick_3``..."""
        if not self.name_taken(nick):
            return nick
        for n in range(2, len(self._sessions) + len(self.replicas) + 3):
            suffix = f"_{n}"
            candidate = nick[: 32 - len(suffix)] + suffix
            if not self.name_taken(candidate):
                return candidate
        raise AssertionError("unreachable: more candidates than sessions")

    # --- rooms --------------------------------------------------------------------------

    def move(self, session: Peer, name: str) -> Room[Peer]:
        """Take ``session`` to room ``name`` (created if new); tell both rooms."""
        self.drain()  # what the old room heard before the move reaches it there
        old = session.room
        room = self._room_for(name)
        self._remove_from(old, session)
        if session.announced and self._notices_in(old):
            left = Left(session.name, old.count(), f"went to #{room.name}", old.name)
            self.broadcast(left, old)
        session.room = room
        room.members[session] = None
        if session.announced and self._notices_in(room):
            self.broadcast(Joined(session.name, room.count(), room.name), room, session)
        if session.announced:
            self._publish_leave(session.name, old.name, f"went to #{room.name}")
            self._publish_join(session, room)
        if session.resumable is not None:
            self.came_in(session.resumable)
        return room

    def entered(self, room: Room[Peer]) -> Entered:
        return Entered(room.name, room.count(), room.peers())

    def roster(self, room: Room[Peer]) -> Roster:
        return Roster(room.count(), room.peers(), room.name)

    def rooms(self) -> Rooms:
        busiest = sorted(self._rooms.values(), key=lambda r: (-r.count(), fold(r.name)))
        return Rooms(tuple(RoomInfo(r.name, r.count()) for r in busiest[:MAX_ROOM_ENTRIES]))

    def history(self, room: Room[Peer]) -> list[Message]:
        """What was said in ``room`` before, marked as history, oldest first."""
        cfg = self.config
        recent = room.recent(cfg.history_messages, cfg.history_bytes)
        return [dataclasses.replace(m, history=True) for m in recent]

    def missed(
        self,
        room: Room[Peer],
        epoch: str | None,
        last_id: int | None,
        last_ts: int | None,
        origin: str,
        *,
        floor: int | None,
    ) -> tuple[list[Message], bool] | None:
        """What a returning peer missed in ``room``, marked as history, and whether more
        was said than is given: after ``last_id`` if it was here in this ``epoch``, else
        after the time ``last_ts``; ``None`` for a peer with neither (ordinary history).

        ``floor``: for a peer that proved it was in the room (it gave back the secret of
        a session there), the newest message id here when it came in: it gets what was
        said since, never before, whatever it claims. Anyone else (``floor`` None) gets
        no more than ``--history`` would show a newcomer: the catch-up log must not undo
        ``--history``."""
        if epoch == self.epoch and last_id is not None:
            messages, gap = room.since(max(last_id, floor or 0), origin)
        elif epoch is not None and last_ts is not None:
            messages, gap = room.since_ts(last_ts, origin)
            if floor:  # ids, not times: exact even within one millisecond
                messages = [m for m in messages if m.id > floor]
        else:
            return None
        if floor is None:
            cfg = self.config
            allowed = {id(m) for m in room.recent(cfg.history_messages, cfg.history_bytes)}
            kept = [m for m in messages if id(m) in allowed]
            gap = gap or len(kept) < len(messages)
            messages = kept
        return [dataclasses.replace(m, history=True) for m in messages], gap

    def came_in(self, record: Resumable[Peer]) -> None:
        """``record``'s session came into its room now: what it may catch up on there
        starts here (see :meth:`missed`)."""
        record.entered_id = self._next_id - 1

    def _remember(self, room: Room[Peer], message: Message, origin: str) -> None:
        """Keep ``message`` in ``room``'s log, within the room's bounds and, for all the
        rooms together, within ``--catch-up-total-bytes``: past it, the room that spoke
        least lately loses its oldest messages first (a peer coming back is told of the
        gap). Without a total, 10,000 rooms of one peer each could hold 2.5 GiB."""
        before = room.log_bytes
        room.remember(message, self._keep_messages, self._keep_bytes, origin)
        self.log_bytes += room.log_bytes - before
        if room.log:
            self._by_activity[room] = None
            self._by_activity.move_to_end(room)
        cap = self.config.catch_up_total_bytes
        while cap and self.log_bytes > cap and self._by_activity:
            quietest = next(iter(self._by_activity))
            self.log_bytes -= quietest.forget_oldest()
            if not quietest.log:
                del self._by_activity[quietest]

    # --- traffic ------------------------------------------------------------------------

    def say(self, sender: Peer, say: Say) -> int:
        """Relay a chat line from ``sender`` to everyone else in its room; returns its id."""
        room = sender.room
        message = Message.relay(self._new_id(), say, sender.name, self._now(), room.name)
        text, action = say.text, say.action
        self.broadcast(message, room, sender)
        self._remember(room, message, sender.origin)
        if self.bus is not None:
            self.bus.publish(
                Note(
                    "message", self.bus.replica, room=room.name, message=message,
                    digest=sender.origin,  # so no replica replays it to its sender
                )
            )  # fmt: skip
        if not self.console.quiet:
            where = "" if room is self.lobby else f" in #{room.name}"
            shown = text if len(text) <= LOG_TEXT_LIMIT else f"{text[:LOG_TEXT_LIMIT]}..."
            if action:
                shown = f"* {sender.name} {shown}"
            self.console.line("RECEIVED", f"From {sender.label}{where}: {shown}")
        return message.id

    def whisper(self, sender: Peer, target: Peer, say: Say) -> None:
        """A private message: to ``target`` alone. Its text is not logged."""
        message = Message.relay(self._new_id(), say, sender.name, self._now(), None, target.name)
        target.deliver(Frames(message))
        if not self.console.quiet:
            self.console.line("PRIVATE", f"From {sender.label} to {target.label}.")

    def claim_from_elsewhere(self, nick: str, secret: str | None) -> bool:
        """A hello resuming a session this replica does not know: if another replica
        has ``nick`` with that very session, the person moved here (its server died,
        or the balancer sent it elsewhere): free the name for it. True if so."""
        peer = self.replicas.find(nick)
        if peer is None or not secret or peer.digest != digest(secret):
            return False
        self._vouch(peer)  # what it may catch up on here: see vouched
        self.replicas.remove(peer.nick, peer.replica)
        self._remove_remote(peer, notify=False)
        return True

    def whisper_remote(self, sender: Peer, target: RemotePeer, say: Say) -> None:
        """A private message for a peer on another replica: through the bus."""
        assert self.bus is not None
        message = Message.relay(self._new_id(), say, sender.name, self._now(), None, target.nick)
        self.bus.publish(Note("message", self.bus.replica, to=target.nick, message=message))
        if not self.console.quiet:
            self.console.line("PRIVATE", f"From {sender.label} to {target.nick} (elsewhere).")

    def announce_join(self, session: Peer) -> None:
        room = session.room
        if self._notices_in(room):
            self.broadcast(Joined(session.name, room.count(), room.name), room, session)
        self._publish_join(session, room)

    def _notices_in(self, room: Room[Peer]) -> bool:
        """Joins and leaves are announced in rooms up to the configured size only: in a
        crowd they cost every member a line per arrival (10,000 arrivals would be 50
        million lines) and tell nobody anything."""
        return room.count() <= self.config.join_notices_up_to

    def announce_rename(self, session: Peer, old: str, exclude: Peer | None = None) -> None:
        """``session``'s room hears that it is now called what it is (in rooms up to the
        size that hears joins, like them); other rooms are not told: one peer renaming
        must not cost every peer on the server a line."""
        room = session.room
        if self.bus is not None:
            self.bus.publish(
                Note("rename", self.bus.replica, nick=session.name, old=old, room=room.name)
            )
        if self._notices_in(room):
            self.broadcast(Renamed(old, session.name), room, exclude)
        elif exclude is not session:
            session.deliver(Frames(Renamed(old, session.name)))  # the crowd is not told

    def _tell_rename(self, room_name: str, old: str, new: str) -> None:
        room = self._rooms.get(fold(room_name))
        if room is not None and self._notices_in(room):
            self.broadcast(Renamed(old, new), room)

    def broadcast(self, event: Event, room: Room[Peer], exclude: Peer | None = None) -> None:
        """Send ``event`` to everyone in ``room`` but ``exclude``, at this pass's fan-out."""
        if not room.members:
            return
        if not room.outbox:
            self._busy_rooms.append(room)
        room.outbox.append((Frames(event), exclude))
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
                self._fan_out(room)

    def _fan_out(self, room: Room[Peer]) -> None:
        """Every waiting broadcast of ``room``, as one write per member.

        The bytes a member gets depend only on its form and on whether it sent one of
        the broadcasts (senders skip their own), so each such blob is joined once and
        the same bytes object is queued for every member that shares it.
        """
        items, room.outbox = room.outbox, []
        senders = {skip for _, skip in items if skip is not None}
        blobs: dict[tuple[object, Peer | None], bytes] = {}
        for member in room.members:
            if member.wants_each_event:
                for frames, skip in items:
                    if skip is not member:
                        member.deliver_now(frames)
                continue
            form = form_of(member.conn)
            key = (form, member if member in senders else None)
            blob = blobs.get(key)
            if blob is None:
                blob = blobs[key] = b"".join(
                    frames.for_form(form) for frames, skip in items if skip is not member
                )
            if blob:
                member.queue_bytes(blob)

    def next_connection(self) -> int:
        self._connections += 1
        return self._connections

    @staticmethod
    def loop_time() -> float:
        return asyncio.get_running_loop().time()

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    def _now(self) -> int:
        return int(self._clock() * 1000)

    # --- output batching ----------------------------------------------------------------

    def mark_dirty(self, session: Peer) -> None:
        """``session`` has queued output: flush it at the end of this loop pass."""
        self._dirty.append(session)
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Once per loop pass: fan out the rooms' broadcasts, then write every queue."""
        self.drain()  # (the flush is still scheduled: queuing here does not schedule another)
        self._flush_handle = None
        dirty, self._dirty = self._dirty, []
        for session in dirty:
            try:
                session.flush()
            except Exception:
                session.fail()  # that session's problem only: the others still get theirs

    # --- dead and idle peers -----------------------------------------------------------

    async def watch(self) -> None:
        """Ping quiet rich peers, drop those that do not answer, reap idle plain ones;
        forget expired sessions and addresses with nothing left to count (every second).

        One sweep over everyone a few times per shortest limit, instead of a timer per
        peer: with 10,000 peers that is cheaper and keeps the loop's timer heap small.
        """
        cfg = self.config
        timers = (cfg.ping_after, cfg.ping_timeout, cfg.idle_timeout, cfg.resume_window, 4.0)
        period = max(0.05, min(1.0, min(t for t in timers if t > 0) / 4))
        loop = asyncio.get_running_loop()
        while not self.closing:  # ends with the server (stop() cancels it too)
            await asyncio.sleep(period)
            now = loop.time()
            self.book.expire(now)
            self.addresses.sweep(lambda text: self.console.line("REFUSED", text))
            for session in self:
                try:
                    session.check_liveness(now)
                except Exception:
                    session.fail()

    # --- other replicas (--bus) --------------------------------------------------------

    def _publish_join(self, session: Peer, room: Room[Peer]) -> None:
        if self.bus is not None:
            self.bus.publish(
                Note(
                    "join", self.bus.replica, room=room.name, nick=session.name,
                    addr=session.addr, digest=_digest_of(session),
                )
            )  # fmt: skip

    def _publish_leave(self, nick: str, room: str, reason: str | None) -> None:
        if self.bus is not None:
            self.bus.publish(Note("leave", self.bus.replica, room=room, nick=nick, reason=reason))

    def vouched(self, secret: str | None) -> tuple[str, int] | None:
        """The room a session with ``secret`` is known to be in on another replica (now,
        or lately: its connection there was lost, or that replica went), and the newest
        message id here when this replica learned so. Such a peer may catch up on that
        room from then on, as one resuming here; a stranger may not."""
        if not secret:
            return None
        wanted = digest(secret)
        peer = self.replicas.with_session(wanted)
        if peer is not None:
            return peer.room, peer.since or 0
        now = self.loop_time()
        while self._vouched and next(iter(self._vouched.values()))[0] < now:
            self._vouched.popitem(last=False)  # past the resume window
        found = self._vouched.get(wanted)
        return None if found is None else (found[1], found[2])

    def _vouch(self, peer: RemotePeer) -> None:
        """Remember a remote session that may come back here (for the resume window)."""
        if not peer.digest or self.config.resume_window <= 0:
            return
        expiry = self.loop_time() + self.config.resume_window
        self._vouched[peer.digest] = (expiry, peer.room, peer.since or 0)
        self._vouched.move_to_end(peer.digest)
        while len(self._vouched) > (self.config.max_connections or 10_000):
            self._vouched.popitem(last=False)

    def _roster_note(self) -> Note:
        assert self.bus is not None
        peers = tuple(
            (s.room.name, s.name, s.addr, _digest_of(s))
            for s in self._sessions
            if s.announced and s.authenticated
        )
        return Note("roster", self.bus.replica, peers=peers)

    def _room_for(self, name: str) -> Room[Peer]:
        return self._rooms.get(fold(name)) or self._new_room(name)

    def _add_remote(self, peer: RemotePeer, *, notify: bool) -> None:
        if peer.since is None:
            peer.since = self._next_id - 1
        previous = self.replicas.add(peer)
        if previous is not None:
            self._remove_remote(previous, notify=False)
        room = self._room_for(peer.room)
        room.remote[fold(peer.nick)] = PeerInfo(peer.nick, peer.addr)
        if notify and self._notices_in(room):
            self.broadcast(Joined(peer.nick, room.count(), room.name), room)

    def _remove_remote(self, peer: RemotePeer, *, notify: bool, reason: str | None = None) -> None:
        room = self._rooms.get(fold(peer.room))
        if room is None:
            return
        room.remote.pop(fold(peer.nick), None)
        if notify and self._notices_in(room):
            self.broadcast(Left(peer.nick, room.count(), reason, room.name), room)
        if not room.count() and room is not self.lobby:
            self._drop_room(room)

    def on_note(self, note: Note) -> None:
        """Something another replica published: apply it here. Never raises."""
        try:
            self._apply(note)
        except Exception as exc:  # a note we cannot apply must not stop the bus
            self.console.line("BUS", f"Could not apply a {note.kind!r} note: {exc!r}.")

    def _apply(self, note: Note) -> None:
        bus = self.bus
        assert bus is not None
        kind = note.kind
        if not self.replicas.known(note.origin) and kind not in ("roster", "bye", "sync"):
            # A replica we do not know (new, or forgotten after a silence): ask everyone
            # for their peers, so that its peers are known here again.
            bus.publish(Note("sync", bus.replica))
        self.replicas.heard(note.origin, self.loop_time())
        if kind == "message" and note.message is not None:
            self._remote_message(note)
        elif kind == "join" and note.nick and note.room:
            here = self.find(note.nick)
            if here is not None and note.digest and _digest_of(here) == note.digest:
                # The same person came back through another replica (this connection of
                # theirs is dead, or soon will be): it goes, without a leave notice, and
                # its session lives on over there.
                if here.resumable is not None:
                    self.book.forget(here.resumable)
                here.replaced()
            elif here is not None:
                self._settle_clash(here, note.origin)
            peer = RemotePeer(note.nick, note.addr or "elsewhere", note.room, note.origin)
            peer.digest = note.digest or ""
            self._add_remote(peer, notify=True)
        elif kind == "leave" and note.nick:
            gone = self.replicas.remove(note.nick, note.origin)
            if gone is not None:
                self._vouch(gone)  # its connection there was lost: it may come here
                self._remove_remote(gone, notify=True, reason=note.reason)
        elif kind == "rename" and note.nick and note.old:
            here = self.find(note.nick)
            if here is not None:
                self._settle_clash(here, note.origin)
            renamed = self.replicas.remove(note.old, note.origin)
            if renamed is not None:
                self._remove_remote(renamed, notify=False)
                renamed.nick = note.nick
                self._add_remote(renamed, notify=False)
            room = note.room or (renamed.room if renamed is not None else "")
            self._tell_rename(room, note.old, note.nick)
        elif kind == "sync":
            bus.publish(self._roster_note())
        elif kind == "roster":
            for peer in self.replicas.drop_replica(note.origin):
                self._remove_remote(peer, notify=False)
            self.replicas.heard(note.origin, self.loop_time())
            for room, nick, addr, secret_digest in note.peers:
                peer = RemotePeer(nick, addr, room, note.origin, secret_digest)
                self._add_remote(peer, notify=False)
            self.console.line("BUS", f"Replica {note.origin} has {len(note.peers)} peers.")
        elif kind == "bye":
            self._forget_replica(note.origin, "its server stopped")

    def _remote_message(self, note: Note) -> None:
        assert note.message is not None
        text, limit = note.message.text, self.config.max_line_bytes
        # UTF-8 takes at most 4 bytes a character: only a long text is worth measuring.
        if len(text) * 4 > limit and (size := len(text.encode())) > limit:
            # No peer of a replica like this one could have said it: as for a peer's
            # line, too long is refused (the note was already checked for the rest).
            self.console.line(
                "BUS", f"Ignored a message of {size} bytes from replica {note.origin}: "
                f"over the line limit ({limit})."
            )  # fmt: skip
            return
        message = note.message.renumbered(self._new_id())  # ids increase per replica
        if note.to is not None:
            target = self.find(note.to)
            if target is not None:
                target.deliver(Frames(message))
            return
        room = self._rooms.get(fold(note.room or ""))
        if room is None:
            return  # nobody here is in that room, nor knows of it
        self.broadcast(message, room)
        origin = note.digest or f"replica:{note.origin}"
        self._remember(room, message, origin)
        if not self.console.quiet:
            where = "" if room is self.lobby else f" in #{room.name}"
            self.console.line(
                "RECEIVED",
                f"From {message.nick} (elsewhere){where}: {message.text[:LOG_TEXT_LIMIT]}",
            )

    def _settle_clash(self, here: Peer, other: str) -> None:
        """Two replicas gave the same name away at the same moment (each checked what
        it knew). The replica with the lower id keeps it; the other renames its peer
        to the next free name and tells it why, so names stay unique everywhere."""
        assert self.bus is not None
        if self.bus.replica < other:
            return  # ours stays; the other replica renames its peer
        taken = here.name
        self.rename(here, self.free_variant(taken))
        here.send(
            Info(
                f"Another server gave the name {taken!r} to someone else at the same moment, "
                f"so you are now {here.name!r}; /nick NAME picks another."
            )
        )
        self.announce_rename(here, taken)

    def _forget_replica(self, replica: str, reason: str) -> None:
        gone = self.replicas.drop_replica(replica)
        for peer in gone:
            self._vouch(peer)  # its peers may come back here
            self._remove_remote(peer, notify=True, reason=reason)
        if gone:
            self.console.line(
                "BUS", f"Replica {replica} is gone ({reason}); {len(gone)} peers with it."
            )

    def _tell_everyone(self, text: str) -> None:
        for session in self:
            if session.authenticated:
                session.send(Info(text))

    def on_split(self, why: str) -> None:
        """The bus is down: chat goes on here alone, and everyone here is told."""
        self._split = True
        for peer in self.replicas.clear():
            self._vouch(peer)
            self._remove_remote(peer, notify=False)
        self._tell_everyone(
            "The link to the other chat servers is down: until it is back, only people on "
            "this server get your messages."
        )

    def on_joined(self) -> None:
        """The bus is up (again): ask the others who they have, and say who we have."""
        assert self.bus is not None
        self.bus.publish(Note("sync", self.bus.replica))
        self.bus.publish(self._roster_note())
        if self._split:
            self._split = False
            self._tell_everyone("The link to the other chat servers is back: the chat is whole.")

    async def watch_replicas(self) -> None:
        """Beat, and forget replicas that stopped beating (killed without a goodbye)."""
        assert self.bus is not None
        while not self.closing:  # ends with the server (stop() cancels it too)
            await asyncio.sleep(HEARTBEAT)
            if self.bus.connected:
                self.bus.publish(Note("beat", self.bus.replica))
            for replica in self.replicas.silent(self.loop_time(), FORGET_AFTER):
                self._forget_replica(replica, "its server is unreachable")

    # --- shutdown -----------------------------------------------------------------------

    def stop_reading(self) -> None:
        """Read nothing more from any peer (the server is about to stop)."""
        for session in self:
            session.pause_reading()

    async def shutdown(self, reason: str, grace: float) -> int:
        """Say goodbye to everyone, close, and wait up to ``grace`` seconds for them to go.

        Returns how many connections had to be cut off at the deadline.
        """
        self.closing = True
        bye = Bye(reason, code="shutdown")
        for session in self:
            # Lingering: the goodbye must arrive even if the peer was still sending (a
            # plain close with unread input makes the kernel reset the connection, and
            # the goodbye with it); a client that got it knows its unconfirmed lines
            # were not relayed and sends them again after reconnecting.
            session.close(bye, log_reason="server shutting down", linger=True)
        if not self._sessions:
            return 0
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._all_gone.wait(), grace)
        stragglers = list(self._sessions)
        for session in stragglers:
            session.abort()
        return len(stragglers)
