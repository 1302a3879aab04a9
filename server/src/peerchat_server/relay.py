"""The relay: peers come in, move between rooms, speak and leave; everyone concerned hears.

A thin layer over four parts, each in its own module: the registry (who is connected,
names, sessions, addresses), the room book (rooms, message ids, history and catch-up),
the outbox (fan-out and one write per peer per loop pass) and the replication (what
other replicas are told; a do-nothing stand-in without ``--bus``). The relay decides
*who hears what*; the parts keep the state. See docs/architecture.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable

from peerchat_protocol import (
    Bye,
    Entered,
    Info,
    Joined,
    Left,
    Message,
    PeerInfo,
    Renamed,
    Rooms,
    Roster,
    Say,
    fold,
)

from .config import ServerConfig
from .console import Console
from .frames import Frames, Said
from .outbox import Outbox
from .peer import Peer
from .registry import Registry
from .replicas import RemotePeer
from .replication import Alone, Done, Replication
from .resume import Resumable
from .room import Room
from .rooms import Keep, RoomBook
from .stats import Stats
from .store import MemoryStore, Store

#: Longest message text echoed on the server console; the rest is summarised.
LOG_TEXT_LIMIT = 300
#: How often a room that waits for slow readers looks whether they still read.
WATCH_SLOW_EVERY = 0.05


class Relay:
    """Who hears what: membership, rooms, chat lines and notices (one loop, no locks)."""

    def __init__(
        self,
        config: ServerConfig,
        console: Console,
        clock: Callable[[], float] = time.time,
        replication: Callable[[Relay], Replication] | None = None,
        store: Callable[[Relay], Store] | None = None,
    ) -> None:
        self.config = config
        self.console = console
        self.stats = Stats()  # what /metrics reports (stats.py)
        #: What outlives the process (``--store``; persistence.py opens it at start).
        self.store: Store = store(self) if store else MemoryStore()
        self.registry = Registry(config)
        keep = Keep(config.history_messages, config.history_bytes, config.catch_up_messages,
                    config.catch_up_bytes, config.catch_up_total_bytes)  # fmt: skip
        self.rooms: RoomBook[Peer] = RoomBook(keep, clock, self.store)
        self.outbox = Outbox(config.replay_limit, self.stats)
        #: Names the run (or the runs sharing a store): ids compare only within one epoch.
        self.epoch = secrets.token_hex(6)
        self.closing = False
        #: The other replicas (``--bus``), or nobody: built last, it may look at the rest.
        self.replication: Replication = replication(self) if replication else Alone()

    # --- coming and going ---------------------------------------------------------------

    def register(self, peer: Peer) -> None:
        """A new connection: known by its address name, in the default room."""
        self.outbox.drain()  # what was said before it came is not for it
        self.registry.add(peer)
        if peer.authenticated:
            peer.room = self.rooms.lobby
            self.rooms.lobby.members[peer] = None
            self.replication.present(self.rooms.lobby)
        else:
            peer.room = self.rooms.vestibule  # hears nothing, says nothing

    def admit(self, peer: Peer) -> None:
        """A peer that gave the password comes into the default room."""
        self.outbox.drain()
        self.rooms.vestibule.remove(peer)
        peer.room = self.rooms.lobby
        self.rooms.lobby.members[peer] = None
        self.replication.present(self.rooms.lobby)

    def unregister(self, peer: Peer, reason: str) -> None:
        """Forget ``peer`` and tell its room, if it had been announced."""
        if peer not in self.registry:
            return
        self.outbox.drain()
        self.registry.remove(peer)
        room = peer.room
        room.remove(peer)
        self.pace(room)
        self.replication.present(room)
        self.rooms.drop_if_empty(room)
        if not peer.announced or self.closing:  # when closing, one "bye" says it all
            return
        if self.notices_in(room):
            self.outbox.broadcast(Left(peer.name, room.count(), reason or None, room.name), room)
        self.replication.left(peer.name, room.name, reason or None)

    def move(self, peer: Peer, name: str) -> Room[Peer]:
        """Take ``peer`` to room ``name`` (created if new); tell both rooms."""
        self.outbox.drain()  # what the old room heard before the move reaches it there
        old = peer.room
        room = self.rooms.get_or_make(name)
        old.remove(peer)
        self.pace(old)
        self.replication.present(old)
        self.rooms.drop_if_empty(old)
        if peer.announced and self.notices_in(old):
            left = Left(peer.name, old.count(), f"went to #{room.name}", old.name)
            self.outbox.broadcast(left, old)
        peer.room = room
        room.members[peer] = None
        self.replication.present(room)
        self.pace(room)
        peer.read_on()  # if it waited for the old room
        if peer.announced and self.notices_in(room):
            self.outbox.broadcast(Joined(peer.name, room.count(), room.name), room, peer)
        if peer.announced:
            self.replication.left(peer.name, old.name, f"went to #{room.name}")
            self.replication.joined(peer, room)
        if peer.resumable is not None:
            self.came_in(peer.resumable)
        return room

    # --- a room read at its readers' pace -------------------------------------------------

    def wait_for(self, peer: Peer) -> None:
        """``peer``'s output backs up: its room waits for it while it reads (pace)."""
        room = peer.room
        if peer not in room.members or peer in room.slow:
            return  # (one that is leaving, or not in yet; or waited for already)
        if not peer.address.waits.take():
            return  # its address had its share of waits: it is waited for no more
        room.slow[peer] = None
        self.pace(room)

    def caught_up(self, peer: Peer) -> None:
        """``peer``'s output is down to the low-water mark again."""
        peer.room.slow.pop(peer, None)
        self.pace(peer.room)

    def pace(self, room: Room[Peer]) -> None:
        """Read from nobody in ``room`` while a member reads slower than they send: the
        room goes at its readers' pace, its senders waiting in TCP, instead of dropping
        slow readers. One that stopped (Peer.keeps_up) is dropped at the send buffer."""
        if not room.held and room.waiting:
            waiting, room.waiting = room.waiting, []
            for member in waiting:  # (the members that sent while it was held)
                member.read_on()
        if room.held and not room.watched:
            room.watched = True
            asyncio.get_running_loop().call_later(WATCH_SLOW_EVERY, self._watch_slow, room)

    def _watch_slow(self, room: Room[Peer]) -> None:
        """While ``room`` waits: let go of members that stopped reading."""
        room.watched = False
        now = self.loop_time()
        for member in list(room.slow):
            try:
                kept = member.keeps_up(now)
            except Exception:
                kept = False
                member.fail()  # that peer's problem: the room goes on without it
            if not kept:
                room.slow.pop(member, None)
        self.pace(room)

    def came_in(self, record: Resumable[Peer]) -> None:
        """``record``'s session came into its room now: its catch-up there starts here."""
        record.entered_id = self.rooms.last_id
        record.seen_ts = record.seen_id = 0  # (what it had was of the room it came back to)
        self.registry.book.changed(record)

    def announce_join(self, peer: Peer) -> None:
        room = peer.room
        if self.notices_in(room):
            self.outbox.broadcast(Joined(peer.name, room.count(), room.name), room, peer)
        self.replication.joined(peer, room)

    def announce_rename(self, peer: Peer, old: str, exclude: Peer | None = None) -> None:
        """``peer``'s room hears that it is now called what it is (in rooms up to the
        size that hears joins, like them); other rooms are not told: one peer renaming
        must not cost every peer on the server a line."""
        room = peer.room
        self.replication.renamed(peer.name, old, room.name)
        if self.notices_in(room):
            self.outbox.broadcast(Renamed(old, peer.name), room, exclude)
        elif exclude is not peer:
            peer.deliver(Frames(Renamed(old, peer.name)))  # the crowd is not told

    def notices_in(self, room: Room[Peer]) -> bool:
        """Joins and leaves are announced in rooms up to the configured size only: in a
        crowd they cost every member a line per arrival (10,000 arrivals would be 50
        million lines) and tell nobody anything."""
        return room.count() <= self.config.join_notices_up_to

    # --- what a peer is told about rooms ------------------------------------------------

    def entered(self, room: Room[Peer]) -> Entered:
        return Entered(room.name, room.count(), room.peers())

    def roster(self, room: Room[Peer]) -> Roster:
        return Roster(room.count(), room.peers(), room.name)

    def room_list(self) -> Rooms:
        return Rooms(self.rooms.listing())

    def history(self, room: Room[Peer]) -> list[Message]:
        """What was said in ``room`` before, marked as history, oldest first."""
        return self.rooms.history(room)

    def missed(
        self, room: Room[Peer], epoch: str | None, last_id: int | None, last_ts: int | None,
        origin: str, *, floor: int | None,
    ) -> tuple[list[Message], bool] | None:  # fmt: skip
        """What a returning peer missed in ``room`` (RoomBook.missed): after ``last_id``
        if it was here in this ``epoch``, else after the time ``last_ts``; ``None`` for a
        peer with neither (it gets the ordinary history)."""
        if epoch == self.epoch and last_id is not None:
            return self.rooms.missed(room, (last_id, None), origin, floor=floor)
        if epoch is not None and last_ts is not None:
            return self.rooms.missed(room, (None, last_ts), origin, floor=floor)
        return None

    # --- traffic ------------------------------------------------------------------------

    def say(self, sender: Peer, say: Say, done: Done | None = None) -> int | None:
        """Relay a chat line from ``sender`` to everyone else in its room; returns its id
        (None if the replicas' bus numbers it, Replication.takes: ``done`` then)."""
        room, rooms = sender.room, self.rooms
        self._count(sender, [say.text], say.action)
        taken = self.replication.takes(room.name)
        message = Message.relay(0 if taken else rooms.new_id(), say, sender.name, rooms.now(),
                                room.name)  # fmt: skip
        if taken:
            self.replication.said(room.name, message, sender.origin, sender, done)
            return None
        self.outbox.broadcast(message, room, sender)
        rooms.remember(room, message, sender.origin)
        self.replication.said(room.name, message, sender.origin)
        return message.id

    def say_lines(self, sender: Peer, texts: list[str]) -> None:
        """Chat lines ``sender`` said together (one read of a plain-text peer): each as
        :meth:`say` relays it, in one broadcast (frames.Said)."""
        room, rooms, replication = sender.room, self.rooms, self.replication
        nick, where, origin = sender.name, room.name, sender.origin
        ts = rooms.now()  # they came together
        self._count(sender, texts, False)
        taken = replication.takes(where)
        messages = []
        for text in texts:
            message = Message.said(0 if taken else rooms.new_id(), text, nick, ts, where)
            if not taken:
                rooms.remember(room, message, origin)
            replication.said(where, message, origin, sender if taken else None)
            messages.append(message)
        if not taken:
            self.outbox.broadcast_said(Said(nick, texts, messages), room, sender)

    def _count(self, sender: Peer, texts: list[str], action: bool) -> None:
        """Counted as said, and shown on the console if it shows traffic."""
        room = sender.room
        self.stats.messages += len(texts)
        room.intake += sum(map(len, texts))
        for text in texts if self.console.traffic else ():
            shown = text if len(text) <= LOG_TEXT_LIMIT else f"{text[:LOG_TEXT_LIMIT]}..."
            shown = f"* {sender.name} {shown}" if action else shown
            self.console.said(
                f"From {sender.label}{self.where(room)}", shown, len(text), who=sender
            )

    def where(self, room: Room[Peer]) -> str:
        """`` in #room`` for the console, or nothing for the lobby."""
        return "" if room is self.rooms.lobby else f" in #{room.name}"

    def whisper(self, sender: Peer, target: Peer, say: Say) -> None:
        """A private message: to ``target`` alone. Its text is not logged."""
        message = Message.relay(0, say, sender.name, self.rooms.now(), None, target.name)

        def deliver() -> None:  # (numbered when it goes: ids increase as they arrive)
            target.deliver(Frames(message.renumbered(self.rooms.new_id())))

        if not self.replication.after(sender, deliver):  # after its room lines, if waiting
            deliver()
        if self.console.traffic:
            self.console.line("PRIVATE", f"From {sender.label} to {target.label}.",
                              who=sender, to=target.name)  # fmt: skip

    def whisper_remote(self, sender: Peer, target: RemotePeer, say: Say) -> None:
        """A private message for a peer on another replica."""
        rooms = self.rooms
        message = Message.relay(rooms.new_id(), say, sender.name, rooms.now(), None, target.nick)
        self.replication.whispered(target, message)
        if self.console.traffic:
            self.console.line("PRIVATE", f"From {sender.label} to {target.nick} (elsewhere).",
                              who=sender, to=target.nick)  # fmt: skip

    def tell_everyone(self, text: str) -> None:
        """A notice for every peer that is in (the ones still at the password wait not)."""
        for peer in self.registry:
            if peer.authenticated:
                peer.send(Info(text))

    # --- peers of other replicas in our rooms -------------------------------------------

    def add_remote(self, peer: RemotePeer, *, notify: bool) -> None:
        """A peer of another replica is in room ``peer.room``: count it there."""
        if peer.since is None:
            peer.since = self.rooms.last_id
        previous = self.registry.remote.add(peer)
        if previous is not None:
            self.remove_remote(previous, notify=False)
        room = self.rooms.get_or_make(peer.room)
        room.remote[fold(peer.nick)] = PeerInfo(peer.nick, peer.addr)
        if notify and self.notices_in(room):
            self.outbox.broadcast(Joined(peer.nick, room.count(), room.name), room)

    def remove_remote(self, peer: RemotePeer, *, notify: bool, reason: str | None = None) -> None:
        """A peer of another replica left its room (or is forgotten)."""
        room = self.rooms.get(peer.room)
        if room is None:
            return
        room.remote.pop(fold(peer.nick), None)
        if notify and self.notices_in(room):
            self.outbox.broadcast(Left(peer.nick, room.count(), reason, room.name), room)
        self.rooms.drop_if_empty(room)

    # --- the server's heartbeat and end -------------------------------------------------

    @staticmethod
    def loop_time() -> float:
        return asyncio.get_running_loop().time()

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
        registry = self.registry
        while not self.closing:  # ends with the server (stop() cancels it too)
            await asyncio.sleep(period)
            now = loop.time()
            registry.book.expire(now)
            registry.addresses.sweep(lambda text: self.console.line("REFUSED", text))
            for peer in registry:
                try:
                    peer.check_liveness(now)
                except Exception:
                    peer.fail()

    def stop_reading(self) -> None:
        """Read nothing more from any peer (the server is about to stop)."""
        for peer in self.registry:
            peer.pause_reading()

    async def shutdown(self, reason: str, grace: float) -> int:
        """Say goodbye to everyone, close, and wait up to ``grace`` seconds for them to go.

        Returns how many connections had to be cut off at the deadline.
        """
        self.closing = True
        bye = Bye(reason, code="shutdown")
        for peer in self.registry:
            # Lingering: the goodbye must arrive even if the peer was still sending (a
            # plain close with unread input makes the kernel reset the connection, and
            # the goodbye with it); a client that got it knows its unconfirmed lines
            # were not relayed and sends them again after reconnecting.
            try:
                peer.close(bye, log_reason="server shutting down", linger=True)
            except Exception:
                peer.abort()  # that one only: everyone else still gets the goodbye
        if not len(self.registry):
            return 0
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.registry.all_gone.wait(), grace)
        stragglers = list(self.registry)
        for peer in stragglers:
            peer.abort()
        return len(stragglers)
