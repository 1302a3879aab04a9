"""This replica's own room lines on their way through Redis.

With a bus, a line said here is not delivered here at once: Redis numbers it with the
room's next id (buslinks.NUMBER) and hands it back on the room's channel like anyone
else's, so every replica delivers a room's lines in one order and under one id each (a
client that moves to another replica catches up by id). Until it is back, it waits
here with its sender, who is left out when it is delivered. If it cannot come back (the
link to Redis broke, or it was published before this replica heard the room and its log
did not have it), it is delivered here alone, under an id of this replica's.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

from peerchat_protocol import Message

from .notes import Note
from .peer import Peer
from .relay import Relay

#: Seconds a line may wait for Redis to hand it back before it is delivered here alone.
WAIT_AT_MOST = 2.0


class Waiting(NamedTuple):
    number: int  # this replica's number for it, until Redis gives the room's
    since: float  # loop time it was said
    room: str
    message: Message
    origin: str  # its sender's session digest (or connection name)
    sender: Peer


class OwnLines:
    """The lines said here that wait for Redis, per room, in the order published."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self._numbers = 0
        self._waiting: dict[str, deque[Waiting]] = {}

    def sent(self, room: str, message: Message, origin: str, sender: Peer) -> Message:
        """``message`` goes to Redis: it waits, numbered (returned) so that it is known
        when it comes back."""
        self._numbers += 1
        message = message.renumbered(self._numbers)
        line = Waiting(self._numbers, self.relay.loop_time(), room, message, origin, sender)
        self._waiting.setdefault(room.lower(), deque()).append(line)
        return message

    def waits_for(self, note: Note) -> bool:
        """Whether ``note`` (this replica's) is a line still waiting here."""
        queue = self._waiting.get((note.room or "").lower(), ())
        number = note.message.id if note.message is not None else -1
        return any(line.number == number for line in queue)

    def back(self, note: Note) -> Waiting | None:
        """``note``, this replica's, is back from Redis: its line (no longer waiting),
        or None if it is not waited for (it was delivered here alone already). The lines
        of its room published before it that did not come back never will: they are
        delivered here alone first."""
        name = (note.room or "").lower()
        queue = self._waiting.get(name)
        number = note.message.id if note.message is not None else -1
        if not queue or not any(line.number == number for line in queue):
            return None
        while queue[0].number != number:
            self._alone(queue.popleft())
        line = queue.popleft()
        if not queue:
            del self._waiting[name]
        return line

    def flush(self, older_than: float | None = None) -> int:
        """Deliver here alone what waits (only what was said before ``older_than``, loop
        time, and what was said before it in its room); how many lines."""
        done = 0
        for name in list(self._waiting):
            queue = self._waiting[name]
            cut = len(queue)
            if older_than is not None:
                cut = max((i + 1 for i, line in enumerate(queue) if line.since < older_than),
                          default=0)  # fmt: skip
            for _ in range(cut):
                self._alone(queue.popleft())
            done += cut
            if not queue:
                del self._waiting[name]
        return done

    def _alone(self, line: Waiting) -> None:
        """``line`` delivered here only, as a replica alone would."""
        relay = self.relay
        room = relay.rooms.get(line.room)
        if room is None:
            return  # (everyone left it meanwhile: nobody to tell, no log to keep)
        message = line.message.renumbered(relay.rooms.new_id())
        relay.outbox.broadcast(message, room, line.sender)
        relay.rooms.remember(room, message, line.origin)
