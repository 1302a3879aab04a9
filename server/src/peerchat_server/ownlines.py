"""This replica's own room lines on their way through Redis.

With a bus, a line said here is not delivered here at once: Redis numbers it with the
room's next id (buslinks.NUMBER) and hands it back on the room's channel like anyone
else's, so every replica delivers a room's lines in one order and under one id each (a
client that moves to another replica catches up by id). Until it is back, it waits
here with its sender, who is left out when it is delivered, and whose ``ack`` waits
too (``done``), as does anything the sender said after it that goes elsewhere (a private
message: ``then``), so that its lines keep their order. If it cannot come back (the link
to Redis broke, the publication was refused, or 2 s passed while its room was heard),
it is delivered here alone, under an id of this replica's.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from peerchat_protocol import Message

from .notes import Note
from .peer import Peer
from .relay import Relay
from .replication import Done
from .resume import Resumable

#: Seconds a line may wait for Redis to hand it back before it is delivered here alone
#: (not while its room's log is being read: it comes back from there).
WAIT_AT_MOST = 2.0
#: Lines delivered here alone that are remembered, so that they are not delivered again
#: if Redis hands them back after all.
REMEMBER_ALONE = 10_000


@dataclass(slots=True)
class Waiting:
    """One line said here, waiting for Redis."""

    number: int  # this replica's number for it, until Redis gives the room's
    since: float  # loop time it was said
    room: str
    message: Message
    origin: str  # its sender's session digest (or connection name)
    sender: Peer
    record: Resumable[Peer] | None  # its sender's session, if it has one
    done: Done | None = None  # its acknowledgement, once delivered
    published: bool = True  # False: Redis refused it (it will not come back)
    then: list[Callable[[], None]] = field(default_factory=list)  # what followed it

    def recipient_to_skip(self) -> Peer:
        """Its sender's connection now (a new one may have taken its session over)."""
        record = self.record
        return record.session if record is not None and record.session else self.sender


class OwnLines:
    """The lines said here that wait for Redis, per room, in the order published."""

    def __init__(self, relay: Relay, heard: Callable[[str], bool]) -> None:
        self.relay = relay
        self._heard = heard  # whether a room's log is read, not waited for (following)
        self._numbers = 0
        self._waiting: dict[str, deque[Waiting]] = {}
        self._alone: OrderedDict[int, None] = OrderedDict()  # numbers delivered alone
        # Rooms where some lines went alone while their publications may still come
        # back: those are matched by number (back), not by place (next_back).
        self._unsure: set[str] = set()

    def sent(
        self, room: str, message: Message, origin: str, sender: Peer, done: Done | None
    ) -> Message:
        """``message`` goes to Redis: it waits, numbered (returned) so that it is known
        when it comes back."""
        self._numbers += 1
        message = message.renumbered(self._numbers)
        line = Waiting(self._numbers, self.relay.loop_time(), room, message, origin, sender,
                       sender.resumable, done)  # fmt: skip
        self._waiting.setdefault(room.lower(), deque()).append(line)
        return message

    def refused(self, room: str) -> None:
        """The line just :meth:`sent` to ``room`` was not published: it goes here alone,
        once the lines before it in its room are delivered."""
        queue = self._waiting[room.lower()]
        queue[-1].published = False
        self._settle(room.lower())

    def after(self, sender: Peer, action: Callable[[], None]) -> bool:
        """Do ``action`` once ``sender``'s lines that wait now are delivered; False (not
        kept) if none waits."""
        origin = sender.origin  # (its session's: a new connection of it may say more)
        last = max(
            (line for queue in self._waiting.values() for line in queue if line.origin == origin),
            key=lambda line: line.number, default=None,
        )  # fmt: skip
        if last is None:
            return False
        last.then.append(action)
        return True

    def went_alone(self, note: Note) -> bool:
        """Whether ``note`` (this replica's) is a line delivered here alone already."""
        return note.message is not None and note.message.id in self._alone

    def back(self, note: Note) -> Waiting | None:
        """``note``, this replica's, is back from Redis: its line (no longer waiting; the
        caller delivers it, then calls :meth:`delivered`), or None if it is not waited
        for. The lines of its room published before it that did not come back never
        will: they are delivered here alone first."""
        name = (note.room or "").lower()
        queue = self._waiting.get(name)
        number = note.message.id if note.message is not None else -1
        if not queue or not any(line.number == number for line in queue):
            return None
        while queue[0].number != number:
            self._deliver_alone(queue.popleft())
        line = queue.popleft()
        self._drop_if_empty(name)
        return line

    def next_back(self, room: str, count: int) -> list[Waiting] | None:
        """The next ``count`` lines published in ``room``, back in one publication, in
        the order published (no longer waiting; the caller delivers each, then calls
        :meth:`delivered`); None if that cannot be told without reading it (see back)."""
        name = room.lower()
        queue = self._waiting.get(name)
        if name in self._unsure or queue is None or len(queue) < count:
            return None
        if not all(queue[i].published for i in range(count)):
            return None  # (a refused one among them: rare)
        lines = [queue.popleft() for _ in range(count)]
        self._drop_if_empty(name)
        return lines

    def _drop_if_empty(self, name: str) -> None:
        if not self._waiting.get(name):
            self._waiting.pop(name, None)
            self._unsure.discard(name)

    def unheard(self, room: str) -> None:
        """Nobody here is in ``room`` any more: its waiting lines reach the others (Redis
        has them) but not this replica's log; their senders' acks and what followed go
        now, not when a timeout says so."""
        for line in self._waiting.pop(room.lower(), ()):
            self._remember_alone(line.number)
            self._finish(line, None)
        self._unsure.discard(room.lower())

    def delivered(self, line: Waiting, message_id: int | None) -> None:
        """``line`` went out as ``message_id``: its acknowledgement, what followed it,
        and the lines after it in its room that Redis refused."""
        self._finish(line, message_id)
        self._settle(line.room.lower())

    @staticmethod
    def _finish(line: Waiting, message_id: int | None) -> None:
        if line.done is not None:
            line.done(message_id)
        for action in line.then:
            action()

    def flush(self, older_than: float | None = None) -> int:
        """Deliver here alone what waits (only what was said before ``older_than``, loop
        time, in rooms whose log is not being read, with what was said before it in its
        room); how many lines."""
        done = 0
        for name in list(self._waiting):
            queue = self._waiting[name]
            cut = len(queue)
            if older_than is not None:
                late = [i + 1 for i, line in enumerate(queue) if line.since < older_than]
                cut = max(late, default=0) if self._heard(name) else 0
            for _ in range(cut):
                self._deliver_alone(queue.popleft())
            done += cut
            if cut and older_than is not None:
                self._unsure.add(name)  # (their publications may still come back)
            self._drop_if_empty(name)
        if older_than is None:
            self._unsure.clear()  # (nothing of before comes back: a split, a stop)
        return done

    def _settle(self, name: str) -> None:
        """The refused lines at the head of room ``name``'s queue go here alone."""
        queue = self._waiting.get(name)
        while queue and not queue[0].published:
            self._deliver_alone(queue.popleft())
        self._drop_if_empty(name)

    def _remember_alone(self, number: int) -> None:
        self._alone[number] = None
        while len(self._alone) > REMEMBER_ALONE:
            self._alone.popitem(last=False)

    def _deliver_alone(self, line: Waiting) -> None:
        """``line`` delivered here only, as a replica alone would."""
        relay = self.relay
        self._remember_alone(line.number)
        message = line.message.renumbered(relay.rooms.new_id())
        room = relay.rooms.get(line.room)
        if room is not None:  # (else everyone left it meanwhile: nobody to tell)
            relay.outbox.broadcast(message, room, line.recipient_to_skip())
            relay.rooms.remember(room, message, line.origin)
        self._finish(line, message.id)
