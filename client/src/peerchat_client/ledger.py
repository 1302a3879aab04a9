"""What a client owes and has seen across connections, sans-I/O (PROTOCOL.md §8).

A :class:`Ledger` numbers the chat lines sent (``seq``) and keeps those the server has
not acknowledged, and the lines typed while disconnected; it remembers the session
secret and epoch of the last welcome, and the id and time of the newest message seen,
which a resuming hello sends back; it drops a live message seen before. Given the
welcome of a new connection, it says what to send again and what it cannot vouch for.

No sockets, no clock, no asyncio: :class:`~peerchat_client.link.Link` feeds it the
events it sends and receives and does the I/O, as h11's connection does for HTTP.
Every chat line owed is in exactly one place: held (never sent), or unacknowledged
(sent, and kept until the server confirms it).
"""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass
from typing import TypedDict

from peerchat_protocol import Ack, Bye, Event, Message, Say, Welcome

#: Lines typed while disconnected, kept to send once back; more are refused at once.
QUEUE_LINES = 100
#: Lines sent but not yet acknowledged that are kept to send again after a loss.
#: The server acknowledges every read, so only a fast paste gets anywhere near it.
UNACKED_LINES = 10_000


class Comeback(TypedDict):
    """The members of a resuming hello that come from the ledger (PROTOCOL.md §8)."""

    resume: str | None
    epoch: str | None
    last_id: int | None
    last_ts: int | None


@dataclass(frozen=True, slots=True)
class Tracked:
    """An event on its way out, as the ledger saw it.

    ``event`` is what to send: a chat line numbered, or the event as given. ``kept``:
    it is among the unacknowledged lines now (if sending it fails, it is sent again
    after the resume; if not kept, it is owed only if held again). ``dropped``: the
    oldest unacknowledged line, pushed out by this one (over the limit), which will
    not be sent again after a loss.
    """

    event: Event
    kept: bool = False
    dropped: Say | None = None


@dataclass(frozen=True, slots=True)
class Resume:
    """What a new connection's welcome means for the lines owed.

    ``restarted``: the welcome is from another run of the server (or another replica)
    than the last one. ``crashed``: and the last connection ended without a goodbye,
    so what was said just before may be lost. ``resend``: the lines to send again, in
    order, with their ``seq`` (still unacknowledged until the server says otherwise).
    ``doubtful``: lines the server may or may not have relayed, to name to the user
    rather than risk twice; the ledger no longer keeps them.
    """

    restarted: bool
    crashed: bool
    resend: tuple[Say, ...] = ()
    doubtful: tuple[Say, ...] = ()


class Ledger:
    """The resume state of one chat, over every connection it goes through.

    Starts from the welcome of the first connection. ``queue_lines`` and
    ``unacked_lines`` bound what is held and what is kept unacknowledged.
    """

    def __init__(
        self,
        welcome: Welcome,
        *,
        queue_lines: int = QUEUE_LINES,
        unacked_lines: int = UNACKED_LINES,
    ) -> None:
        self.queue_lines = queue_lines
        self.unacked_lines = unacked_lines
        self._token: str | None = None
        self._epoch: str | None = None
        self._last_id = 0
        self._last_ts = 0  # server time of the newest message seen (for another epoch)
        self._seq = 0
        self._unacked: deque[Say] = deque()
        self._held: deque[Event] = deque()
        self._goodbye = False  # the server said it shut down: it read nothing after
        self._adopt(welcome)

    # --- what it knows --------------------------------------------------------------

    @property
    def token(self) -> str | None:
        """The session secret of the last welcome (``None``: nothing to resume)."""
        return self._token

    @property
    def epoch(self) -> str | None:
        return self._epoch

    @property
    def last_id(self) -> int:
        """The id of the newest message seen (or acknowledged as ours) in this epoch."""
        return self._last_id

    @property
    def last_ts(self) -> int:
        """The server time of the newest message seen, in any epoch (0: none)."""
        return self._last_ts

    @property
    def seq(self) -> int:
        """The ``seq`` of the last line numbered (0: none yet)."""
        return self._seq

    @property
    def unacked(self) -> tuple[Say, ...]:
        """The lines sent and not yet acknowledged, oldest first."""
        return tuple(self._unacked)

    @property
    def held(self) -> tuple[Event, ...]:
        """What waits to be sent once connected, oldest first."""
        return tuple(self._held)

    @property
    def said_goodbye(self) -> bool:
        """The last connection ended with a ``shutdown`` bye (not yet resumed)."""
        return self._goodbye

    def comeback(self) -> Comeback:
        """What the resuming hello says of the last session and the newest message seen."""
        return Comeback(
            resume=self._token,
            epoch=self._epoch,
            last_id=self._last_id if self._epoch is not None else None,
            last_ts=self._last_ts or None,
        )

    # --- events in ------------------------------------------------------------------

    def received(self, event: Event) -> bool:
        """Take in ``event`` from the server; whether it is worth showing.

        An ack confirms lines (never shown); a live message seen before is dropped; a
        bye is noted (after a ``shutdown`` one, unconfirmed lines were not relayed).
        """
        if isinstance(event, Ack):
            self._acked(event)
            return False
        if isinstance(event, Message):
            return self._seen(event)
        if isinstance(event, Bye):
            self._goodbye = event.code == "shutdown"
        return True

    def _acked(self, ack: Ack) -> None:
        if ack.id is not None:  # our own line's id: seen, as far as catch-up goes
            self._last_id = max(self._last_id, ack.id)
        unacked = self._unacked
        while unacked and unacked[0].seq is not None and unacked[0].seq <= ack.seq:
            unacked.popleft()

    def _seen(self, message: Message) -> bool:
        if not message.history and message.id <= self._last_id:
            return False  # seen already (a defence: the server sends nothing twice)
        self._last_id = max(self._last_id, message.id)
        self._last_ts = max(self._last_ts, message.ts)
        return True

    # --- events out -----------------------------------------------------------------

    def track(self, event: Event) -> Tracked:
        """``event`` numbered and kept until acknowledged, if it is a line the server
        acknowledges (a ``say``, once a welcome gave a session); else as it is."""
        if not isinstance(event, Say) or self._token is None:
            return Tracked(event)
        if event.seq is None:
            self._seq += 1
            event = dataclasses.replace(event, seq=self._seq)
        self._unacked.append(event)
        dropped = self._unacked.popleft() if len(self._unacked) > self.unacked_lines else None
        return Tracked(event, kept=True, dropped=dropped)

    def hold(self, event: Event) -> bool:
        """Keep ``event`` to send once connected, after what is held already; False
        (and not kept) when ``queue_lines`` events wait already."""
        if len(self._held) >= self.queue_lines:
            return False
        self._held.append(event)
        return True

    def owe(self, event: Event) -> None:
        """Keep ``event``, which could not be sent and is not among the unacknowledged
        lines, to send once connected, after what is held already (whatever the limit:
        it was accepted before)."""
        self._held.append(event)

    def put_back(self, event: Event) -> None:
        """As :meth:`owe`, but to send first: ``event`` was the oldest held (see
        :meth:`release`)."""
        self._held.appendleft(event)

    def release(self) -> Tracked | None:
        """The oldest held event, tracked (a line moves among the unacknowledged ones
        before it is sent, so it is never in neither place); None when none is held."""
        if not self._held:
            return None
        return self.track(self._held.popleft())

    def drop_held(self) -> list[Say]:
        """Forget everything held (the chat ends); the chat lines among it, never sent."""
        never = [event for event in self._held if isinstance(event, Say)]
        self._held.clear()
        return never

    # --- a new connection -----------------------------------------------------------

    def resume(self, welcome: Welcome) -> Resume:
        """Carry on under a new connection's ``welcome``: what to send again, what not.

        Resumed: the lines above the welcome's ``acked`` (the server handled the rest).
        Not resumed after a ``shutdown`` bye: all of them (the server had stopped
        reading). Not resumed otherwise: none; they are doubtful.
        """
        restarted = self._epoch is not None and welcome.epoch != self._epoch
        owed = tuple(self._unacked)
        resend: tuple[Say, ...]
        doubtful: tuple[Say, ...]
        if welcome.resumed:
            acked = welcome.acked or 0
            resend, doubtful = tuple(say for say in owed if (say.seq or 0) > acked), ()
        elif self._goodbye:
            resend, doubtful = owed, ()
        else:
            resend, doubtful = (), owed
        self._unacked = deque(resend)
        crashed = restarted and not self._goodbye
        self._goodbye = False
        self._adopt(welcome)
        return Resume(restarted, crashed, resend, doubtful)

    def _adopt(self, welcome: Welcome) -> None:
        if welcome.epoch != self._epoch:
            self._last_id = 0  # message ids restart with each run of the server
        self._token, self._epoch = welcome.session, welcome.epoch
