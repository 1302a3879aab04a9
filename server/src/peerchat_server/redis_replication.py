"""Sharing the chat with other replicas through Redis: everything bus-specific.

What happens to this replica's peers is published as notes (notes.py) through the bus
(bus.py): a room's messages on its channel, private ones on the inbox of the target's
replica, the rest on the control channel; what the other replicas publish is applied
here, one small handler per kind of note (``_APPLY``). Which rooms' channels this
replica hears is following.py's. The relay only ever calls the
:class:`~.replication.Replication` interface; this module calls the relay, never the
other way round.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from peerchat_protocol import Info, Message, Renamed, fold

from .bus import Listener
from .following import RoomFollowing
from .notes import CONTROL, FORGET_AFTER, HEARTBEAT, Note, inbox, room_channel
from .ownlines import WAIT_AT_MOST
from .peer import Peer
from .relay import Relay
from .replicas import RemotePeer
from .replication import Done
from .room import Room
from .roomlines import RoomLines
from .tokens import digest


class Bus(Protocol):
    """What the replication needs of its bus (bus.RedisBus; a stub in tests)."""

    replica: str
    connected: bool
    rooms: set[str]
    clock: int
    epoch: str

    def publish(self, note: Note, channel: str = CONTROL) -> bool: ...

    def follow(self, room: str, *, backfill: bool) -> None: ...

    def unfollow(self, room: str) -> None: ...

    def hears(self, room: str) -> bool: ...

    async def start(self, listener: Listener) -> None: ...

    async def stop(self, farewell: Note | None = None) -> None: ...


def _digest_of(peer: Peer) -> str:
    """The digest of ``peer``'s secret, for the bus ("" for a peer without one)."""
    return peer.resumable.digest if peer.resumable is not None else ""


class RedisReplication:
    """This replica's side of the shared chat: publishes, applies, vouches, beats."""

    def __init__(self, relay: Relay, bus: Bus, *, description: str = "") -> None:
        self.relay = relay
        self.bus = bus
        self._description = description  # where the bus is, for the start line
        self._split = False
        # Digests of remote sessions that may come back here, until when (see vouched).
        self._vouched: OrderedDict[str, tuple[float, str, int]] = OrderedDict()
        self._watcher: asyncio.Task[None] | None = None
        self.following = RoomFollowing(relay, bus)
        self.lines = RoomLines(relay, bus.replica, self.following)

    # --- the Replication interface --------------------------------------------------------

    async def start(self) -> None:
        await self.bus.start(self)
        self._watcher = asyncio.create_task(self._watch())
        if self._description:
            self.relay.console.line(
                "INFO", f"Sharing the chat with other replicas through {self._description}."
            )

    async def stop(self) -> None:
        # Nothing more is read from peers; what they said goes out to the other replicas,
        # then our goodbye (so that they free our peers' names before those peers
        # reconnect through them), and only then are the peers told (Relay.shutdown).
        if self._watcher is not None:
            self._watcher.cancel()
        self.relay.stop_reading()
        await self.bus.stop(farewell=Note("bye", self.bus.replica))
        self.lines.own.flush()  # what Redis did not hand back in time: here, at least

    def present(self, room: Room[Peer]) -> None:
        self.following.present(room)
        if not room.members and room is not self.relay.rooms.vestibule:
            self.lines.own.unheard(room.name)  # not heard here now: its lines are the others

    def joined(self, peer: Peer, room: Room[Peer]) -> None:
        self.bus.publish(
            Note(
                "join", self.bus.replica, room=room.name, nick=peer.name, addr=peer.addr,
                digest=_digest_of(peer),
            )
        )  # fmt: skip

    def left(self, nick: str, room: str, reason: str | None) -> None:
        self.bus.publish(Note("leave", self.bus.replica, room=room, nick=nick, reason=reason))

    def renamed(self, nick: str, old: str, room: str) -> None:
        self.bus.publish(Note("rename", self.bus.replica, nick=nick, old=old, room=room))

    def takes(self, room: str) -> bool:
        return self.bus.hears(room.lower())

    def said(
        self, room: str, message: Message, origin: str, sender: Peer | None = None,
        done: Done | None = None,
    ) -> None:  # fmt: skip
        if sender is not None:  # delivered here too, once Redis numbered it (ownlines.py)
            message = self.lines.own.sent(room, message, origin, sender, done)
        # The sender's digest goes along, so no replica replays the line to its sender.
        note = Note("message", self.bus.replica, room=room, message=message, digest=origin)
        if not self.bus.publish(note, room_channel(room)) and sender is not None:
            self.lines.own.refused(room)  # Redis will not hand it back: here alone

    def after(self, sender: Peer, action: Callable[[], None]) -> bool:
        return self.lines.own.after(sender, action)

    def whispered(self, target: RemotePeer, message: Message) -> None:
        note = Note("message", self.bus.replica, to=target.nick, message=message)
        self.bus.publish(note, inbox(target.replica))

    def vouched(self, secret: str | None) -> tuple[str, int] | None:
        """The room a session with ``secret`` is known to be in on another replica (now,
        or lately: its connection there was lost, or that replica went), and the newest
        message id here when this replica learned so. Such a peer may catch up on that
        room from then on, as one resuming here; a stranger may not."""
        if not secret:
            return None
        wanted = digest(secret)
        peer = self.relay.registry.remote.with_session(wanted)
        if peer is not None:
            return peer.room, peer.since or 0
        now = self.relay.loop_time()
        while self._vouched and next(iter(self._vouched.values()))[0] < now:
            self._vouched.popitem(last=False)  # past the resume window
        found = self._vouched.get(wanted)
        return None if found is None else (found[1], found[2])

    def claim_from_elsewhere(self, nick: str, secret: str | None) -> bool:
        """A hello resuming a session this replica does not know: if another replica
        has ``nick`` with that very session, the person moved here (its server died,
        or the balancer sent it elsewhere): free the name for it. True if so."""
        remote = self.relay.registry.remote
        peer = remote.find(nick)
        if peer is None or not secret or peer.digest != digest(secret):
            return False
        self._vouch(peer)  # what it may catch up on here: see vouched
        remote.remove(peer.nick, peer.replica)
        self.relay.remove_remote(peer, notify=False)
        return True

    # --- what the bus tells us (bus.Listener) ---------------------------------------------

    def on_note(self, note: Note) -> None:
        """Something another replica published (or, a room's line, this one, numbered by
        Redis): apply it here. Never raises."""
        try:
            if note.origin == self.bus.replica:
                self.lines.on_message(note)
            else:
                self._apply(note)
        except Exception as exc:  # a note we cannot apply must not stop the bus
            self.relay.console.line("BUS", f"Could not apply a {note.kind!r} note: {exc!r}.")

    def _apply(self, note: Note) -> None:
        remote = self.relay.registry.remote
        if not remote.known(note.origin) and note.kind not in ("roster", "bye", "sync"):
            # A replica we do not know (new, or forgotten after a silence): ask everyone
            # for their peers, so that its peers are known here again.
            self.bus.publish(Note("sync", self.bus.replica))
        remote.heard(note.origin, self.relay.loop_time())
        handler = _APPLY.get(note.kind)
        if handler is not None:
            handler(self, note)

    def on_own(self, room: str, first: int, count: int) -> bool:
        """Lines this replica published in ``room`` are back, numbered (bus.Listener)."""
        try:
            return self.lines.on_own(room, first, count)
        except Exception as exc:  # as for on_note: the bus goes on
            self.relay.console.line("BUS", f"Could not deliver lines of #{room}: {exc!r}.")
            return True

    def on_backfill(self, room: str, notes: list[Note]) -> None:
        """What ``room``'s log in Redis holds, now that this replica follows it."""
        try:
            self.following.backfilled(
                room, notes, accept=self.lines.take, late=self.lines.late,
                settle=self.lines.settle_found,
            )  # fmt: skip
        except Exception as exc:  # as for on_note: the bus goes on
            self.relay.console.line("BUS", f"Could not apply the log of #{room}: {exc!r}.")

    def on_split(self, why: str) -> None:
        """The bus is down: chat goes on here alone, and everyone here is told."""
        self._split = True
        self.following.split(self.lines.take)
        self.lines.own.flush()
        for peer in self.relay.registry.remote.clear():
            self._vouch(peer)
            self.relay.remove_remote(peer, notify=False)
        self.relay.tell_everyone(
            "The link to the other chat servers is down: until it is back, only people on "
            "this server get your messages."
        )

    def on_joined(self) -> None:
        """The bus is up (again): ask the others who they have, and say who we have."""
        # Every replica numbers a room's messages alike (Redis does): one epoch for all
        # (a client welcomed before, with this one's own, is caught up by time). Ids
        # given here (private messages, a split) go on from Redis's clock: above any a
        # client saw from a replica before, and not ahead of the rooms' ids.
        self.relay.epoch = self.bus.epoch or self.relay.epoch
        self.relay.rooms.adopt(self.bus.clock)
        self.bus.publish(Note("sync", self.bus.replica))
        self.bus.publish(self._roster_note())
        if self._split:
            self._split = False
            self.relay.tell_everyone(
                "The link to the other chat servers is back: the chat is whole."
            )

    # --- one handler per kind of note -----------------------------------------------------

    def _on_join(self, note: Note) -> None:
        if not (note.nick and note.room):
            return
        here = self.relay.registry.find(note.nick)
        if here is not None and note.digest and _digest_of(here) == note.digest:
            # The same person came back through another replica (this connection of
            # theirs is dead, or soon will be): it goes, without a leave notice, and
            # its session lives on over there.
            if here.resumable is not None:
                self.relay.registry.book.forget(here.resumable)
            here.replaced()
        elif here is not None:
            self._settle_clash(here, note.origin)
        peer = RemotePeer(note.nick, note.addr or "elsewhere", note.room, note.origin)
        peer.digest = note.digest or ""
        self.relay.add_remote(peer, notify=True)

    def _on_leave(self, note: Note) -> None:
        if not note.nick:
            return
        remote = self.relay.registry.remote
        now = remote.find(note.nick)
        if now is not None and note.room and fold(now.room) != fold(note.room):
            return  # a leave that waited with its room's lines: the peer is elsewhere now
        gone = remote.remove(note.nick, note.origin)
        if gone is not None:
            self._vouch(gone)  # its connection there was lost: it may come here
            self.relay.remove_remote(gone, notify=True, reason=note.reason)

    def _on_rename(self, note: Note) -> None:
        if not (note.nick and note.old):
            return
        relay = self.relay
        here = relay.registry.find(note.nick)
        if here is not None:
            self._settle_clash(here, note.origin)
        renamed = relay.registry.remote.remove(note.old, note.origin)
        if renamed is not None:
            relay.remove_remote(renamed, notify=False)
            renamed.nick = note.nick
            relay.add_remote(renamed, notify=False)
        room = relay.rooms.get(note.room or (renamed.room if renamed is not None else ""))
        if room is not None and relay.notices_in(room):
            relay.outbox.broadcast(Renamed(note.old, note.nick), room)

    def _on_sync(self, _: Note) -> None:
        self.bus.publish(self._roster_note())

    def _on_roster(self, note: Note) -> None:
        relay = self.relay
        remote = relay.registry.remote
        for peer in remote.drop_replica(note.origin):
            relay.remove_remote(peer, notify=False)
        remote.heard(note.origin, relay.loop_time())
        for room, nick, addr, secret_digest in note.peers:
            relay.add_remote(RemotePeer(nick, addr, room, note.origin, secret_digest), notify=False)
        relay.console.line(
            "BUS", f"Replica {note.origin} has {len(note.peers)} peers.", level=logging.INFO
        )

    def _on_bye(self, note: Note) -> None:
        self._forget_replica(note.origin, "its server stopped")

    # --- helpers --------------------------------------------------------------------------

    def _roster_note(self) -> Note:
        peers = tuple(
            (p.room.name, p.name, p.addr, _digest_of(p))
            for p in self.relay.registry
            if p.announced and p.authenticated
        )
        return Note("roster", self.bus.replica, peers=peers)

    def _vouch(self, peer: RemotePeer) -> None:
        """Remember a remote session that may come back here (for the resume window)."""
        cfg = self.relay.config
        if not peer.digest or cfg.resume_window <= 0:
            return
        expiry = self.relay.loop_time() + cfg.resume_window
        self._vouched[peer.digest] = (expiry, peer.room, peer.since or 0)
        self._vouched.move_to_end(peer.digest)
        while len(self._vouched) > (cfg.max_connections or 10_000):
            self._vouched.popitem(last=False)

    def _settle_clash(self, here: Peer, other: str) -> None:
        """Two replicas gave the same name away at the same moment (each checked what
        it knew). The replica with the lower id keeps it; the other renames its peer
        to the next free name and tells it why, so names stay unique everywhere."""
        if self.bus.replica < other:
            return  # ours stays; the other replica renames its peer
        registry = self.relay.registry
        taken = here.name
        registry.rename(here, registry.free_variant(taken))
        here.send(
            Info(
                f"Another server gave the name {taken!r} to someone else at the same moment, "
                f"so you are now {here.name!r}; /nick NAME picks another."
            )
        )
        self.relay.announce_rename(here, taken)

    def _forget_replica(self, replica: str, reason: str) -> None:
        gone = self.relay.registry.remote.drop_replica(replica)
        for peer in gone:
            self._vouch(peer)  # its peers may come back here
            self.relay.remove_remote(peer, notify=True, reason=reason)
        if gone:
            self.relay.console.line(
                "BUS", f"Replica {replica} is gone ({reason}); {len(gone)} peers with it."
            )

    async def _watch(self) -> None:
        """Beat, and forget replicas that stopped beating (killed without a goodbye)."""
        relay = self.relay
        while not relay.closing:  # ends with the server (stop() cancels it too)
            await asyncio.sleep(HEARTBEAT)
            if self.bus.connected:
                self.bus.publish(Note("beat", self.bus.replica))
            try:
                waited = self.lines.own.flush(older_than=relay.loop_time() - WAIT_AT_MOST)
            except Exception as exc:  # (a bug there must not stop the heartbeat)
                relay.console.line("BUS", f"Could not deliver the lines that waited: {exc!r}.")
                waited = 0
            if waited:
                relay.console.line(
                    "BUS", f"Redis did not hand back {waited} lines said here within "
                    f"{WAIT_AT_MOST:g} s: delivered here without it."
                )  # fmt: skip
            for replica in relay.registry.remote.silent(relay.loop_time(), FORGET_AFTER):
                self._forget_replica(replica, "its server is unreachable")


#: What each kind of note does here ("beat" only tells that its replica is alive).
_APPLY: dict[str, Callable[[RedisReplication, Note], None]] = {
    "message": lambda replication, note: replication.lines.on_message(note),
    "join": RedisReplication._on_join,
    "leave": RedisReplication._on_leave,
    "rename": RedisReplication._on_rename,
    "sync": RedisReplication._on_sync,
    "roster": RedisReplication._on_roster,
    "bye": RedisReplication._on_bye,
}
