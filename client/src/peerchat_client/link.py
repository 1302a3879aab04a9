"""The chat as the user sees it: one connection at a time, and a new one after a loss.

A :class:`Link` wraps the current :class:`~.session.Session` and does the I/O of
coming back: when the connection drops (reset, end of stream, a ``bye`` worth
coming back from, or keepalive silence) it says so, reconnects with capped,
jittered exponential backoff, resumes the session (same name and room, the
messages missed replayed by the server), sends again what the server had not
acknowledged, then what was typed meanwhile, and says it is back. What must
outlive a connection (the session secret and epoch, the newest message seen, the
lines unacknowledged or typed while disconnected) is kept by a sans-I/O
:class:`~.ledger.Ledger`. Whatever it cannot vouch for, it names: nothing typed is
dropped without a notice.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence

from peerchat_protocol import (
    Bye,
    Event,
    LocalProtocolError,
    Ping,
    Say,
    Welcome,
    backoff,
    nick_problem,
)

from . import notices
from .console import Console, Tag
from .errors import ClientError, ServerGone
from .ledger import Ledger, Tracked
from .session import Session

#: Backoff between reconnection attempts: from RECONNECT_FIRST, doubling up to
#: RECONNECT_CAP, each delay drawn between half and all of it (jitter, so that a
#: server that restarts is not hit by every client in the same instant).
RECONNECT_FIRST = 0.25
RECONNECT_CAP = 8.0
#: Give up reconnecting after this long (and end with an [ERROR], exit status 1).
RECONNECT_GIVE_UP = 15 * 60.0
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


def _final(code: str | None) -> bool:
    """A refusal or goodbye with this code is not worth coming back from."""
    return code is not None and code not in RECONNECT_AFTER


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
        self.ledger = Ledger(session.welcome)
        self._up = True
        self._lost: str | None = None  # why the connection was lost, until reconnected

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
                if not self.reconnect or _final(exc.code):
                    raise
                self._lose(exc.message)
                continue
            if not self.ledger.received(event):
                continue  # an ack, or a message seen already
            if isinstance(event, Bye) and self.reconnect and not _final(event.code):
                self._lose(f"The server closed the connection: {event.reason}")
                continue
            return event

    async def send(self, event: Event) -> bool:
        """Send ``event``: True if it went out now, False if it waits for the reconnect.

        Raises :class:`NotSent` when it can be neither sent nor kept.
        """
        if not self._up:
            if not self.ledger.hold(event):
                raise NotSent(
                    f"not sent: still reconnecting to {self.label}, and "
                    f"{self.ledger.queue_lines} lines already wait to be sent; wait until "
                    "the connection is back"
                )
            return False
        session = self._session
        tracked = self._noted(self.ledger.track(event))
        try:
            await session.send(tracked.event)
        except ServerGone as exc:
            if not self.reconnect:
                raise
            if not tracked.kept:  # not among the unacknowledged lines: send it once back
                self.ledger.owe(event)
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

    def _wanted_nick(self) -> str | None:
        """The name to ask for again: ours now (through /nick), if it is a nickname (a
        name the server made from our address is not one: then it picks again)."""
        nick = self._session.nick
        return nick if nick is not None and nick_problem(nick) is None else None

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
                    self._wanted_nick(), self._password, room=self.room, **self.ledger.comeback()
                )
            except ServerGone as exc:
                await session.close()
                if _final(exc.code):
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
        and a held line joins them before it is sent: if this connection fails too,
        the next reconnect finds each line in exactly one of the two places.
        """
        resume = self.ledger.resume(welcome)
        self._session = session
        self._show(notices.back(self.label, took, welcome, resume))
        try:
            await self._send_owed(session, resume.resend, welcome.nick)
        except ServerGone as exc:
            self._lose(exc.message)
            return
        self._up = True

    async def _send_owed(self, session: Session, resend: Sequence[Say], nick: str) -> None:
        """Send again the lines the server had not handled, then those held, in order."""
        for say in resend:
            await session.send(say)
        if resend:
            self._status.info(f"Sent again the {len(resend)} lines the server had not confirmed.")
        while (tracked := self.ledger.release()) is not None:  # more may be held as we go
            self._noted(tracked)
            try:
                await session.send(tracked.event)
            except ServerGone:
                if not tracked.kept:
                    self.ledger.put_back(tracked.event)  # not kept: still owed, first
                raise
            if isinstance(tracked.event, Say):
                self._status.said(tracked.event, nick)

    def _noted(self, tracked: Tracked) -> Tracked:
        """``tracked``, after a warning if it pushed an unacknowledged line out."""
        if tracked.dropped is not None:
            self._status.warning(
                f"{self.ledger.unacked_lines} lines wait for the server's confirmation; "
                f"{tracked.dropped.text[:60]!r} will not be sent again if the connection drops."
            )
        return tracked

    def _warn_unsent(self) -> None:
        """Name the lines that never went out, and those whose fate is unknown, as the
        chat ends while disconnected."""
        never = self.ledger.drop_held()
        self._show(notices.unsent(never, () if self._up else self.ledger.unacked))

    def _show(self, lines: notices.Lines) -> None:
        for tag, text in lines:
            self._status.line(tag, text)
