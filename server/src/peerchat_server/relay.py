"""The room: who is connected, what they are called, and fan-out to all of them.

Fan-out never waits for anyone. A broadcast is encoded at most once per kind of
peer (JSON, plain text) and the same bytes are queued for every recipient; all
queues are flushed together once per event-loop pass, so a burst of messages
costs each recipient one write, not one per message. A recipient whose unsent
backlog passes the send-buffer limit is dropped (see Session.flush).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from peerchat_protocol import (
    MAX_ROSTER_ENTRIES,
    Bye,
    Event,
    Joined,
    Left,
    Message,
    PeerInfo,
    Renamed,
    Roster,
    encode_json,
    encode_plain,
    fold,
)

from .config import ServerConfig
from .console import Console

if TYPE_CHECKING:
    from .session import Session

#: Longest message text echoed on the server console; the rest is summarised.
LOG_TEXT_LIMIT = 300


class Frames:
    """One event's bytes, each form encoded on first use and then shared."""

    __slots__ = ("_json", "_plain", "event")

    def __init__(self, event: Event) -> None:
        self.event = event
        self._json: bytes | None = None
        self._plain: bytes | None = None

    def json(self) -> bytes:
        if self._json is None:
            self._json = encode_json(self.event)
        return self._json

    def plain(self) -> bytes:
        if self._plain is None:
            self._plain = encode_plain(self.event)
        return self._plain


class Relay:
    """Registry of sessions and the fan-out between them (one event loop, no locks)."""

    def __init__(
        self,
        config: ServerConfig,
        console: Console,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.console = console
        self._clock = clock
        self._sessions: dict[Session, None] = {}  # insertion-ordered set
        self._names: dict[str, Session] = {}  # fold(name) -> session
        self._dirty: list[Session] = []
        self._flush_handle: asyncio.Handle | None = None
        self._next_id = 1
        self.closing = False
        self._all_gone = asyncio.Event()

    # --- membership ---------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._sessions)

    def __contains__(self, session: object) -> bool:
        return session in self._sessions

    def __iter__(self) -> Iterator[Session]:
        return iter(list(self._sessions))

    def register(self, session: Session) -> None:
        self._sessions[session] = None
        self._names[fold(session.name)] = session
        self._all_gone.clear()

    def unregister(self, session: Session, reason: str) -> None:
        """Forget ``session`` and tell the room, if it had been announced."""
        if session not in self._sessions:
            return
        del self._sessions[session]
        if self._names.get(fold(session.name)) is session:
            del self._names[fold(session.name)]
        if session.announced and not self.closing:
            self.broadcast(Left(session.name, len(self._sessions), reason or None))
        if not self._sessions:
            self._all_gone.set()

    def name_taken(self, name: str, by: Session | None = None) -> bool:
        owner = self._names.get(fold(name))
        return owner is not None and owner is not by

    def rename(self, session: Session, new: str) -> str:
        """Give ``session`` the name ``new`` (caller checked it is free); returns the old."""
        old = session.name
        if self._names.get(fold(old)) is session:
            del self._names[fold(old)]
        session.name = new
        self._names[fold(new)] = session
        return old

    def free_variant(self, nick: str) -> str:
        """``nick`` if free, else the first free ``nick_2``, ``nick_3``..."""
        if not self.name_taken(nick):
            return nick
        for n in range(2, len(self._sessions) + 3):
            suffix = f"_{n}"
            candidate = nick[: 32 - len(suffix)] + suffix
            if not self.name_taken(candidate):
                return candidate
        raise AssertionError("unreachable: more candidates than sessions")

    def roster(self) -> Roster:
        return Roster(len(self._sessions), self._peer_infos())

    def _peer_infos(self) -> tuple[PeerInfo, ...]:
        infos: list[PeerInfo] = []
        for session in self._sessions:
            if len(infos) == MAX_ROSTER_ENTRIES:
                break
            infos.append(PeerInfo(session.name, session.addr))
        return tuple(infos)

    # --- traffic ------------------------------------------------------------------------

    def say(self, sender: Session, text: str) -> None:
        """Relay a chat line from ``sender`` to everyone else."""
        message = Message(self._next_id, sender.name, text, int(self._clock() * 1000))
        self._next_id += 1
        self.broadcast(message, exclude=sender)
        if not self.console.quiet:
            shown = (
                text
                if len(text) <= LOG_TEXT_LIMIT
                else f"{text[:LOG_TEXT_LIMIT]}... ({len(text)} characters)"
            )
            self.console.line("RECEIVED", f"From {sender.label}: {shown}")

    def announce_join(self, session: Session) -> None:
        self.broadcast(Joined(session.name, len(self._sessions)), exclude=session)

    def announce_rename(self, old: str, new: str) -> None:
        self.broadcast(Renamed(old, new))

    def broadcast(self, event: Event, exclude: Session | None = None) -> None:
        frames = Frames(event)
        for session in self._sessions:
            if session is not exclude:
                session.deliver(frames)

    # --- output batching ----------------------------------------------------------------

    def mark_dirty(self, session: Session) -> None:
        """``session`` has queued output: flush it at the end of this loop pass."""
        self._dirty.append(session)
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._flush_handle = None
        dirty, self._dirty = self._dirty, []
        for session in dirty:
            session.flush()

    # --- shutdown -----------------------------------------------------------------------

    async def shutdown(self, reason: str, grace: float) -> int:
        """Say goodbye to everyone, close, and wait up to ``grace`` seconds for them to go.

        Returns how many connections had to be cut off at the deadline.
        """
        self.closing = True
        bye = Bye(reason, code="shutdown")
        for session in self:
            session.close(bye, log_reason="server shutting down")
        if not self._sessions:
            return 0
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._all_gone.wait(), grace)
        stragglers = list(self._sessions)
        for session in stragglers:
            session.abort()
        return len(stragglers)
