"""The chat as the user sees it: one connection at a time, and a new one after a loss.

A :class:`Link` wraps the current :class:`~.session.Session` and keeps what must
outlive it: the session secret and epoch from the welcome, the id of the newest
message seen, the lines sent but not yet acknowledged, and the lines typed while
disconnected. When the connection drops (reset, end of stream, a ``bye`` worth
coming back from, or keepalive silence) it says so, reconnects with capped,
jittered exponential backoff, resumes the session (same name and room, the
messages missed replayed by the server), sends again what the server had not
acknowledged, then what was typed meanwhile, and says it is back. Whatever it
cannot vouch for, it names: nothing typed is dropped without a notice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections import deque
from collections.abc import Awaitable, Callable, Iterator

from peerchat_protocol import Ack, Bye, Event, Message, Ping, Say, Welcome

from .console import Console, Tag
from .session import ClientError, ServerGone, Session

#: Backoff between reconnection attempts: from RECONNECT_FIRST, doubling up to
#: RECONNECT_CAP, each delay drawn between half and all of it (jitter, so that a
#: server that restarts is not hit by every client in the same instant).
RECONNECT_FIRST = 0.25
RECONNECT_CAP = 8.0
#: Give up reconnecting after this long (and end with an [ERROR], exit status 1).
RECONNECT_GIVE_UP = 15 * 60.0
#: Lines typed while disconnected, kept to send once back; more are refused at once.
QUEUE_LINES = 100
#: Lines sent but not yet acknowledged that are kept to send again after a loss.
#: The server acknowledges every read, so only a fast paste gets anywhere near it.
UNACKED_LINES = 10_000
#: ``bye`` codes worth reconnecting after: the server went away or dropped us for a
#: fault of the connection, not for something we did or will do again.
RECONNECT_AFTER = frozenset(
    {"shutdown", "ping_timeout", "internal", "too_many_connections", "slow_consumer"}
)


class NotSent(Exception):
    """A line that could not even be queued; ``message`` says why and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def reconnect_delays(
    first: float = RECONNECT_FIRST, cap: float = RECONNECT_CAP, rand: random.Random | None = None
) -> Iterator[float]:
    """Delays before each attempt: doubling from ``first`` up to ``cap``, each jittered
    to between half and all of its step ("equal jitter")."""
    pick = rand or random.Random()
    step = first
    while True:  # consumed one attempt at a time; the caller bounds the attempts
        yield step / 2 + pick.uniform(0, step / 2)
        step = min(step * 2, cap)


def _short(lines: list[Say], limit: int = 5) -> str:
    shown = "; ".join(repr(say.text[:60]) for say in lines[:limit])
    return shown + (f" and {len(lines) - limit} more" if len(lines) > limit else "")


class Link:
    """The current connection and everything that survives its loss.

    It offers what the chat modes use of a :class:`Session` (``receive``, ``send``,
    ``too_long``, ``nick``, ``room``, ``welcome``, ``quit``, ``close``). With
    ``reconnect`` off it adds only acknowledgements and duplicate checks, and a lost
    connection ends the run as before.
    """

    def __init__(
        self,
        session: Session,
        status: Console,
        *,
        dial: Callable[[], Awaitable[Session]],
        nick: str | None = None,
        password: str | None = None,
        reconnect: bool = True,
        keepalive: float = 0.0,
    ) -> None:
        assert session.welcome is not None, "a link starts from a session that was welcomed"
        self._session = session
        self._status = status
        self._dial = dial
        self._password = password
        self.reconnect = reconnect
        self.keepalive = keepalive
        self.label = session.label
        self._nick = nick
        self._token: str | None = None
        self._epoch: str | None = None
        self._last_id = 0
        self._seq = 0
        self._unacked: deque[Say] = deque()
        self._queue: deque[Event] = deque()
        self._up = True
        self._lost: str | None = None  # why the connection was lost, until reconnected
        self._said_goodbye = False  # the lost connection ended with a shutdown bye
        self._adopt(session.welcome)

    # --- what the chat modes see --------------------------------------------------------

    @property
    def welcome(self) -> Welcome | None:
        return self._session.welcome

    @property
    def nick(self) -> str | None:
        return self._session.nick

    @property
    def room(self) -> str | None:
        return self._session.room

    @property
    def connected(self) -> bool:
        return self._up

    def too_long(self, event: Event) -> str | None:
        return self._session.too_long(event)

    async def receive(self) -> Event:
        """The next event worth showing; reconnects (and returns the new welcome)
        when the connection is lost and reconnecting is on."""
        while True:  # one turn per frame; ends with an event, or ServerGone
            if self._lost is not None:
                reason, self._lost = self._lost, None
                return await self._reconnect(reason)
            try:
                event = await self._next()
            except ServerGone as exc:
                if not self.reconnect or (exc.code is not None and exc.code not in RECONNECT_AFTER):
                    raise
                self._lose(exc.message)
                continue
            if isinstance(event, Ack):
                while (
                    self._unacked
                    and self._unacked[0].seq is not None
                    and (self._unacked[0].seq <= event.seq)
                ):
                    self._unacked.popleft()
                continue
            if isinstance(event, Bye):
                if self.reconnect and event.code in RECONNECT_AFTER:
                    self._said_goodbye = event.code == "shutdown"
                    self._lose(f"The server closed the connection: {event.reason}")
                    continue
                return event
            if isinstance(event, Message):
                if not event.history and event.id <= self._last_id:
                    continue  # seen already (a defence: the server sends nothing twice)
                self._last_id = max(self._last_id, event.id)
            return event

    async def send(self, event: Event) -> bool:
        """Send ``event``: True if it went out now, False if it waits for the reconnect.

        Raises :class:`NotSent` when it can be neither sent nor kept.
        """
        if not self._up:
            if len(self._queue) >= QUEUE_LINES:
                raise NotSent(
                    f"not sent: still reconnecting to {self.label}, and {QUEUE_LINES} lines "
                    "already wait to be sent; wait until the connection is back"
                )
            self._queue.append(event)
            return False
        try:
            await self._transmit(event)
        except ServerGone as exc:
            if not self.reconnect:
                raise
            if not isinstance(event, Say):  # a Say waits among the unacknowledged lines
                self._queue.append(event)
            self._session.abort()  # so the receiving side notices at once
            self._lose(exc.message)
            return False
        return True

    async def quit(self, reason: str | None = None) -> None:
        """Leave: a goodbye if connected; then close. Warns about lines never sent."""
        self._warn_unsent()
        if self._up:
            await self._session.quit(reason)
        else:
            await self._session.close()

    async def close(self) -> None:
        await self._session.close()

    # --- one connection -----------------------------------------------------------------

    def _adopt(self, welcome: Welcome) -> None:
        if welcome.epoch != self._epoch:
            self._last_id = 0  # message ids restart with each run of the server
        self._token, self._epoch = welcome.session, welcome.epoch
        if welcome.nick:
            self._nick = welcome.nick

    async def _transmit(self, event: Event) -> None:
        if isinstance(event, Say) and self._token is not None:  # the server acknowledges
            if event.seq is None:
                self._seq += 1
                event = dataclasses.replace(event, seq=self._seq)
            self._unacked.append(event)
            if len(self._unacked) > UNACKED_LINES:
                dropped = self._unacked.popleft()
                self._status.warning(
                    f"{UNACKED_LINES} lines wait for the server's confirmation; "
                    f"{dropped.text[:60]!r} will not be sent again if the connection drops."
                )
        await self._session.send(event)

    async def _next(self) -> Event:
        """The next event from the current session, pinging it when quiet.

        After ``keepalive`` quiet seconds it sends a ping; if then nothing at all
        arrives within ``keepalive`` seconds more, the connection is dead.
        """
        session = self._session
        keepalive = self.keepalive
        if keepalive <= 0:
            return await session.receive()
        loop = asyncio.get_running_loop()
        pinged: float | None = None
        while True:  # one turn per wait; ends with an event or ServerGone
            now = loop.time()
            if pinged is not None and session.last_heard >= pinged:
                pinged = None  # something came back: alive
            if pinged is None:
                quiet = now - session.last_heard
                if quiet >= keepalive:
                    await session.send(Ping("keepalive"))
                    pinged, wait = now, keepalive
                else:
                    wait = keepalive - quiet
            else:
                if now - pinged >= keepalive:
                    session.abort()
                    raise ServerGone(
                        f"No answer from {self.label} for {now - session.last_heard:.0f} s: "
                        "the network or the server is down"
                    )
                wait = keepalive - (now - pinged)
            try:
                async with asyncio.timeout(wait):
                    return await session.receive()
            except TimeoutError:
                continue

    def _lose(self, reason: str) -> None:
        self._up = False
        self._lost = reason

    # --- reconnecting -------------------------------------------------------------------

    async def _reconnect(self, reason: str) -> Welcome:
        """Dial again with backoff until welcomed; raises ServerGone when giving up."""
        self._session.abort()
        self._status.line(
            Tag.DISCONNECTED,
            f"{reason.rstrip('.')}. Reconnecting to {self.label}; what you type meanwhile "
            "is sent once back (/quit gives up).",
        )
        loop = asyncio.get_running_loop()
        began = loop.time()
        problem = reason
        for delay in reconnect_delays():  # bounded by RECONNECT_GIVE_UP
            if loop.time() - began + delay > RECONNECT_GIVE_UP:
                self._warn_unsent()
                raise ServerGone(
                    f"Could not reconnect to {self.label} for {RECONNECT_GIVE_UP / 60:g} "
                    f"minutes ({problem}); giving up"
                )
            await asyncio.sleep(delay)
            try:
                session = await self._dial()
            except ClientError as exc:
                problem = exc.message
                continue
            try:
                welcome = await session.handshake(
                    self._nick,
                    self._password,
                    resume=self._token,
                    room=self.room,
                    epoch=self._epoch,
                    last_id=self._last_id if self._epoch is not None else None,
                )
            except ServerGone as exc:
                await session.close()
                if exc.code is not None and exc.code not in RECONNECT_AFTER:
                    self._warn_unsent()
                    raise
                problem = exc.message
                continue
            await self._resume(session, welcome, loop.time() - began)
            return welcome
        raise AssertionError("unreachable: reconnect_delays never ends")

    async def _resume(self, session: Session, welcome: Welcome, took: float) -> None:
        """Carry on over ``session``: report what was missed, send what is owed."""
        restarted = self._epoch is not None and welcome.epoch != self._epoch
        owed = list(self._unacked)
        self._unacked.clear()
        resend: list[Say] = []
        doubtful: list[Say] = []
        if welcome.resumed:
            resend = [say for say in owed if (say.seq or 0) > (welcome.acked or 0)]
        elif self._said_goodbye:
            resend = owed  # it said goodbye before handling them: they were not relayed
        else:
            doubtful = owed
        self._said_goodbye = False
        self._session = session
        self._adopt(welcome)
        where = f" in #{welcome.room}" if welcome.room else ""
        self._status.line(
            Tag.RECONNECTED,
            f"Back on {self.label} after {took:.1f} s: you are {welcome.nick}{where}.",
        )
        if welcome.resumed and welcome.missed is not None:
            if welcome.gap:
                self._status.warning(
                    "More was said while you were away than the server keeps: some messages "
                    f"are lost to you; the last {welcome.missed} follow."
                )
            elif welcome.missed:
                n = welcome.missed
                self._status.info(
                    f"{n} message you missed follows."
                    if n == 1
                    else f"{n} messages you missed follow."
                )
            else:
                self._status.info("You missed nothing.")
        elif restarted:
            self._status.warning(
                "The server restarted, or you reached another one, while you were away: "
                "what was said meanwhile was not kept."
            )
        elif not welcome.resumed and welcome.session is not None:
            self._status.warning(
                "The server no longer knew this session (away too long): what was said "
                "meanwhile is lost to you."
            )
        if doubtful:
            self._status.warning(
                f"The server went away before confirming {len(doubtful)} of your lines, so "
                f"they may not have reached everyone: {_short(doubtful)}. Send again what "
                "matters."
            )
        try:
            for say in resend:
                await self._transmit(say)
            if resend:
                self._status.info(
                    f"Sent again the {len(resend)} lines the server had not confirmed."
                )
            while self._queue:  # lines typed meanwhile, in order; more may come as we go
                event = self._queue[0]
                await self._transmit(event)
                self._queue.popleft()
                if isinstance(event, Say):
                    self._status.said(event, welcome.nick)
        except ServerGone as exc:
            self._lose(exc.message)
            return
        self._up = True

    def _warn_unsent(self) -> None:
        """Name the lines that never reached the server, as the run ends."""
        unsent = [event for event in self._queue if isinstance(event, Say)]
        if not self._up and self._unacked:
            unsent = list(self._unacked) + unsent
        if unsent:
            self._status.warning(f"{len(unsent)} of your lines were never sent: {_short(unsent)}.")
        self._queue.clear()
