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
from collections.abc import Awaitable, Callable

from peerchat_protocol import (
    Ack,
    Bye,
    Event,
    LocalProtocolError,
    Message,
    Ping,
    Say,
    Welcome,
    backoff,
    nick_problem,
)

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


def _short(lines: list[Say], limit: int = 20) -> str:
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
        self._token: str | None = None
        self._epoch: str | None = None
        self._last_id = 0
        self._last_ts = 0  # server time of the newest message seen (for another epoch)
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
                if event.id is not None:  # our own line's id: seen, as far as catch-up goes
                    self._last_id = max(self._last_id, event.id)
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
                self._last_ts = max(self._last_ts, event.ts)
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
        session = self._session
        tracked = self._track(event)
        try:
            await session.send(tracked)
        except ServerGone as exc:
            if not self.reconnect:
                raise
            if tracked is event:  # not among the unacknowledged lines: send it once back
                self._queue.append(event)
            if session is self._session and self._up:  # not a reconnect's business already
                session.abort()  # so the receiving side notices at once
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

    def _wanted_nick(self) -> str | None:
        """The name to ask for again: ours now (through /nick), if it is a nickname (a
        name the server made from our address is not one: then it picks again)."""
        nick = self._session.nick
        return nick if nick is not None and nick_problem(nick) is None else None

    def _track(self, event: Event) -> Event:
        """``event`` numbered and kept until acknowledged, if it is a line the server
        acknowledges; else ``event`` itself."""
        if not isinstance(event, Say) or self._token is None:
            return event
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
        return event

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
        # Bounded by RECONNECT_GIVE_UP below.
        for delay in backoff(RECONNECT_FIRST, RECONNECT_CAP, uniform=random.uniform):
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
                    self._wanted_nick(),
                    self._password,
                    resume=self._token,
                    room=self.room,
                    epoch=self._epoch,
                    last_id=self._last_id if self._epoch is not None else None,
                    last_ts=self._last_ts or None,
                )
            except ServerGone as exc:
                await session.close()
                if exc.code is not None and exc.code not in RECONNECT_AFTER:
                    self._warn_unsent()
                    raise
                problem = exc.message
                continue
            except LocalProtocolError as exc:  # a hello we cannot make: give up cleanly
                await session.close()
                self._warn_unsent()
                raise ServerGone(f"Cannot reconnect: {exc.message}") from None
            await self._resume(session, welcome, loop.time() - began)
            return welcome
        raise AssertionError("unreachable: backoff never ends")

    async def _resume(self, session: Session, welcome: Welcome, took: float) -> None:
        """Carry on over ``session``: report what was missed, send what is owed.

        The lines to send again stay among the unacknowledged ones until acknowledged,
        and a queued line joins them before it is sent: if this connection fails too,
        the next reconnect finds each line in exactly one of the two places.
        """
        restarted = self._epoch is not None and welcome.epoch != self._epoch
        owed = list(self._unacked)
        if welcome.resumed:
            resend = [say for say in owed if (say.seq or 0) > (welcome.acked or 0)]
            doubtful: list[Say] = []
        elif self._said_goodbye:
            resend, doubtful = owed, []  # it said goodbye before handling them: not relayed
        else:
            resend, doubtful = [], owed
        self._unacked = deque(resend)
        crashed = restarted and not self._said_goodbye
        self._said_goodbye = False
        self._session = session
        self._adopt(welcome)
        where = f" in #{welcome.room}" if welcome.room else ""
        self._status.line(
            Tag.RECONNECTED,
            f"Back on {self.label} after {took:.1f} s: you are {welcome.nick}{where}.",
        )
        self._report_missed(welcome, restarted, crashed)
        if doubtful:
            self._status.warning(
                f"The server went away before confirming {len(doubtful)} of your lines, so "
                f"they may not have reached everyone: {_short(doubtful)}. Send again what "
                "matters."
            )
        try:
            for say in resend:
                await session.send(say)
            if resend:
                self._status.info(
                    f"Sent again the {len(resend)} lines the server had not confirmed."
                )
            while self._queue:  # lines typed meanwhile, in order; more may come as we go
                event = self._queue.popleft()
                tracked = self._track(event)
                try:
                    await session.send(tracked)
                except ServerGone:
                    if tracked is event:
                        self._queue.appendleft(event)  # not tracked: still owed from here
                    raise
                if isinstance(event, Say):
                    self._status.said(event, welcome.nick)
        except ServerGone as exc:
            self._lose(exc.message)
            return
        self._up = True

    def _report_missed(self, welcome: Welcome, restarted: bool, crashed: bool) -> None:
        lead = (
            "The server restarted, or you reached another one, while you were away. "
            if restarted
            else ""
        )
        if welcome.missed is not None:  # the server replays what was said since our last
            n = welcome.missed
            if welcome.gap:
                self._status.warning(
                    lead
                    + "More was said while you were away than the server keeps: some "
                    + (
                        f"messages are lost to you; the last {n} follow."
                        if n
                        else "may be lost to you."
                    )
                )
            elif n:
                self._status.info(
                    lead
                    + (
                        f"{n} message you missed follows."
                        if n == 1
                        else f"{n} messages you missed follow."
                    )
                )
            else:
                self._status.info(lead + "You missed nothing.")
        elif restarted:
            self._status.warning(lead + "What was said meanwhile was not kept.")
        elif not welcome.resumed and welcome.session is not None:
            self._status.warning(
                "The server no longer knew this session (away too long): what was said "
                "meanwhile is lost to you."
            )
        if crashed:
            self._status.warning(
                "It went away without a goodbye: what was said just before may be lost to you."
            )

    def _warn_unsent(self) -> None:
        """Name the lines that never went out, and those whose fate is unknown, as the
        chat ends while disconnected."""
        never = [event for event in self._queue if isinstance(event, Say)]
        if never:
            self._status.warning(f"{len(never)} of your lines were never sent: {_short(never)}.")
        if not self._up and self._unacked:
            unsure = list(self._unacked)
            self._status.warning(
                f"{len(unsure)} of your lines were sent but not confirmed, so they may not "
                f"have reached everyone: {_short(unsure)}."
            )
        self._queue.clear()
