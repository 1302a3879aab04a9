"""Sessions that outlive their connection (protocol v3): what a returning client gets back.

Every rich v3 peer gets a secret session token in its welcome. While its connection
lives, and for the resume window after it is lost, the server keeps what the token
stands for: the peer's name, its room, and the highest ``seq`` it has had handled.
A hello that gives the token back takes over that session: same name, same room,
lines it sends again (``seq`` at or below the mark) are acknowledged but not relayed
twice, and a connection of it that is still open (half-open: the client saw it die
first) is closed without a leave notice.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .bus import digest

if TYPE_CHECKING:
    from .session import Session

#: Random bytes in a session token (URL-safe base64: 22 characters, 128 bits).
TOKEN_BYTES = 16


@dataclass(eq=False)
class Resumable:
    """One session, connected (``session`` set) or waiting to be resumed."""

    token: str
    nick: str
    room: str
    #: What may be shown of the secret (bus.digest): computed once, used per message.
    digest: str = ""
    last_seq: int = 0
    session: Session | None = None
    gone_at: float = 0.0  # loop time the connection was lost (when ``session`` is None)
    resumes: int = 0
    #: While being taken over: whether the room still counts the peer as present.
    announced: bool = False


class ResumeBook:
    """The resumable sessions, by token; gone ones expire after ``window`` seconds.

    Bounded: at most ``max_gone`` sessions wait to be resumed at once (the oldest goes
    first), so connections that come and go cannot grow it without limit.
    """

    def __init__(self, window: float, max_gone: int) -> None:
        self.window = window
        self.max_gone = max(1, max_gone)
        self._live: dict[str, Resumable] = {}
        self._gone: OrderedDict[str, Resumable] = OrderedDict()  # oldest first

    def __len__(self) -> int:
        return len(self._live) + len(self._gone)

    def open(self, session: Session, nick: str, room: str, token: str | None = None) -> Resumable:
        """A new session for ``session``, with a fresh secret token (or ``token``: the
        secret of a session that moved here from another replica)."""
        token = token or secrets.token_urlsafe(TOKEN_BYTES)
        record = self._live[token] = Resumable(token, nick, room, digest(token), session=session)
        return record

    def find(self, token: str, now: float) -> Resumable | None:
        """The session ``token`` names, if it exists and has not expired."""
        record = self._live.get(token)
        if record is not None:
            return record
        record = self._gone.get(token)
        if record is None or now - record.gone_at > self.window:
            return None
        return record

    def take_over(self, record: Resumable, session: Session) -> None:
        """``session`` is now the connection of ``record``."""
        self._gone.pop(record.token, None)
        self._live[record.token] = record
        record.session = session
        record.resumes += 1

    def lost(self, record: Resumable, nick: str, room: str, now: float) -> None:
        """The connection of ``record`` ended without a quit: keep it for the window."""
        record.session = None
        record.nick, record.room, record.gone_at = nick, room, now
        self._live.pop(record.token, None)
        if self.window <= 0:
            return
        self._gone[record.token] = record
        while len(self._gone) > self.max_gone:
            self._gone.popitem(last=False)

    def forget(self, record: Resumable) -> None:
        """The peer quit: its session cannot be resumed."""
        record.session = None
        self._live.pop(record.token, None)
        self._gone.pop(record.token, None)

    def expire(self, now: float) -> int:
        """Drop the gone sessions older than the window; returns how many."""
        dropped = 0
        while self._gone:
            token, record = next(iter(self._gone.items()))
            if now - record.gone_at <= self.window:
                break
            del self._gone[token]
            dropped += 1
        return dropped
