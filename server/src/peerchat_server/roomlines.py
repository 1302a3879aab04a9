"""A room's messages as they come off the bus (redis_replication.py hands them
here): checked, held while their room's log is read (following.py), then into the
room's log under the id Redis gave them and to its members here. This replica's own
lines come back too, numbered, and go to every member but their sender (ownlines.py).
"""

from __future__ import annotations

import dataclasses

from peerchat_protocol import Message

from .following import RoomFollowing
from .frames import Frames, Said
from .notes import Note
from .ownlines import OwnLines, Waiting
from .peer import Peer
from .relay import LOG_TEXT_LIMIT, Relay
from .room import Room


class RoomLines:
    """The message notes of the rooms followed: to the logs and members here."""

    def __init__(self, relay: Relay, replica: str, following: RoomFollowing) -> None:
        self.relay = relay
        self.replica = replica  # this replica's id: its own notes come back too
        self.following = following
        self.own = OwnLines(relay, heard=lambda name: not following.filling(name))
        # This replica's own lines found in a room's log: settled once its members were
        # told (RoomFollowing.backfilled), with the ids they got.
        self._found: list[tuple[Waiting, int | None]] = []

    def on_message(self, note: Note) -> None:
        """A message note: a room's (live, or held until its room's log is read) or a
        private one."""
        if note.message is None or not self._fits(note.message, note.origin):
            return
        relay = self.relay
        if self.following.holds(note):  # (held while its room's log is read)
            return
        if note.to is not None:
            relay.stats.bus_lag = max(0.0, (relay.rooms.now() - note.message.ts) / 1000)
            target = relay.registry.find(note.to)
            if target is not None:
                target.deliver(Frames(note.message.renumbered(relay.rooms.new_id())))
            return
        self._hear(note)

    def _fits(self, message: Message, origin: str) -> bool:
        """Whether ``message`` is within the line limit. No peer of a replica like this
        one could have said a longer one: as for a peer's line, too long is refused (the
        note was already checked for the rest, as a peer's input is)."""
        text, limit = message.text, self.relay.config.max_line_bytes
        # UTF-8 takes at most 4 bytes a character: only a long text is worth measuring.
        if len(text) * 4 > limit and (size := len(text.encode())) > limit:
            self.relay.console.line(
                "BUS", f"Ignored a message of {size} bytes from replica {origin}: "
                f"over the line limit ({limit})."
            )  # fmt: skip
            return False
        return True

    def take(self, note: Note) -> tuple[Room[Peer], Message] | None:
        """A note that was held while its room's log was read: applied now."""
        if note.message is not None and note.to is None and self._fits(note.message, note.origin):
            self._hear(note, held=True)
        else:
            self.on_message(note)
        return None

    def _hear(self, note: Note, *, held: bool = False) -> tuple[Room[Peer], Message] | None:
        """A room's message, live: into the room's log and to its members here (this
        replica's own line to all of them but its sender). One ``held`` while the room's
        log was read keeps its id, the room's; if ids given here since are not below it,
        it goes as history (a client drops a live message whose id it has passed)."""
        behind = held and (note.shared or 0) <= self.relay.rooms.last_id
        line = self.own.back(note) if note.origin == self.replica else None
        if note.origin == self.replica and line is None:
            return None  # (delivered here alone already)
        taken = self._accept(note, live=not held)
        if taken is not None and behind:
            taken = (taken[0], dataclasses.replace(taken[1], history=True))
        if line is not None:
            if taken is not None:
                self.relay.outbox.broadcast(taken[1], taken[0], line.recipient_to_skip())
            self.own.delivered(line, taken[1].id if taken is not None else None)
            return taken
        if taken is None:
            return None
        room, message = taken
        relay = self.relay
        # How far behind the bus runs: the sender's time (its replica's clock) to now.
        relay.stats.bus_lag = max(0.0, (relay.rooms.now() - message.ts) / 1000)
        relay.outbox.broadcast(message, room)
        if relay.console.traffic:
            relay.console.said(
                f"From {message.nick} (elsewhere){relay.where(room)}",
                message.text[:LOG_TEXT_LIMIT], len(message.text),
                nick=message.nick, room=room.name, replica=note.origin,
            )  # fmt: skip
        return taken

    def late(self, note: Note) -> tuple[Room[Peer], Message] | None:
        """A message of a room's log in Redis, as this replica starts following it, into
        the room's log here (RoomFollowing tells the members, in the log's order): this
        replica's own lines too, unless delivered here alone already; one that waited is
        settled once the members were told (:meth:`settle_found`)."""
        if note.origin == self.replica and self.own.went_alone(note):
            return None
        line = self.own.back(note) if note.origin == self.replica else None
        taken = self._accept(note, live=False)
        if line is not None:
            self._found.append((line, taken[1].id if taken is not None else None))
        return taken

    def settle_found(self) -> None:
        """What waited for the own lines a room's log held: acknowledgements, and what
        their senders said after them elsewhere."""
        found, self._found = self._found, []
        for line, message_id in found:
            self.own.delivered(line, message_id)

    def _accept(self, note: Note, *, live: bool) -> tuple[Room[Peer], Message] | None:
        """A room's message into its log here, under the id Redis gave it; None if
        nobody here is in that room nor knows of it, or its log has it.

        The ids a replica's peers see increase (PROTOCOL.md §3): a message delivered
        live whose id is not above every id given here (this replica's own ids, for a
        private message or a split, run a little ahead of Redis's clock) is given the
        next id here instead; one of a log, not above the room's newest, likewise."""
        if note.message is None or note.shared is None:
            return None
        if not self._fits(note.message, note.origin):
            return None  # (a room's log in Redis is checked like the channel)
        room = self.relay.rooms.get(note.room or "")
        origin = note.digest or f"replica:{note.origin}"
        return self._keep(room, note.message, note.shared, origin, live=live)

    def _keep(
        self, room: Room[Peer] | None, message: Message, shared: int, origin: str, *, live: bool
    ) -> tuple[Room[Peer], Message] | None:
        """:meth:`_accept`, once the message is known to be good."""
        rooms = self.relay.rooms
        if room is None or not self.following.mark(room, shared):
            return None
        newest = rooms.last_id if live else (room.log[-1][0].id if room.log else 0)
        message_id = shared if shared > newest else rooms.new_id()
        rooms.adopt(message_id)
        message = message.renumbered(message_id)
        rooms.remember(room, message, origin)
        return room, message

    def on_own(self, room: str, first: int, count: int) -> bool:
        """``count`` lines this replica published in ``room`` are back, numbered from
        ``first``: each to the room's members here but its sender, without reading the
        publication (the lines wait here as they were said). False if they must be read
        (the room's log is being read, or some of its lines went alone meanwhile)."""
        if self.following.filling(room):
            return False
        lines = self.own.next_back(room, count)
        if lines is None:
            return False
        here = self.relay.rooms.get(room)
        run: list[tuple[Waiting, Message]] = []  # one sender's plain lines, in a row
        for shared, line in enumerate(lines, start=first):
            taken = self._keep(here, line.message, shared, line.origin, live=True)
            if taken is None:
                self._send_run(run)
                self.own.delivered(line, None)
                continue
            message = taken[1]
            if run and not (run[0][0].sender is line.sender and _plain(message, run[0][1])):
                self._send_run(run)
            run.append((line, message))
        self._send_run(run)
        return True

    def _send_run(self, run: list[tuple[Waiting, Message]]) -> None:
        """Lines one sender said in a row, to the members here but it: in one broadcast
        (frames.Said, as Relay.say_lines does), then each acknowledged."""
        if not run:
            return
        first, message = run[0]
        room = self.relay.rooms.get(first.room)
        if room is not None and len(run) == 1:
            self.relay.outbox.broadcast(message, room, first.recipient_to_skip())
        elif room is not None:
            messages = [m for _, m in run]
            said = Said(message.nick, [m.text for m in messages], messages)
            self.relay.outbox.broadcast_said(said, room, first.recipient_to_skip())
        for line, message in run:
            self.own.delivered(line, message.id)
        run.clear()


def _plain(message: Message, like: Message) -> bool:
    """Whether ``message`` can go in one Said with ``like``: plain room lines of one
    name (not actions)."""
    return not (message.action or like.action) and message.nick == like.nick
