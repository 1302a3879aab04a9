"""What outlives the process (``--store``): the store's interface, and the memory one.

A leaf (no server imports). The relay keeps everything it serves from in memory, as it
always did: a store is only told what changed (a message a room's log kept, a room
whose history was let go, a session that changed) and gives it all back when the
server starts again: the rooms' logs, the resumable sessions, the message ids and the
epoch they belong to. ``memory`` keeps nothing; ``sqlite:///PATH`` (sqlstore.py)
keeps it in a file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from peerchat_protocol import Message

#: What ``--store`` accepts, for the message that says a value is wrong.
STORE_FORMS = "memory, or sqlite:///PATH (sqlite:////data/peerchat.db: an absolute path)"


class StoreError(Exception):
    """The store cannot be used; the message says why and what to do."""


@dataclass
class SavedRoom:
    """A room's log as the store kept it, oldest first, each with who sent it (origin)."""

    name: str
    messages: list[tuple[Message, str]] = field(default_factory=list)
    #: The newest id and time the store let go of (pruned): older is no longer kept.
    forgot_id: int = 0
    forgot_ts: int = 0


@dataclass(frozen=True, slots=True)
class SessionState:
    """A resumable session as the store keeps it (by its digest: never the secret)."""

    digest: str
    nick: str
    room: str
    last_seq: int
    entered_id: int
    address: str
    seen_ts: int = 0
    gone_at: float | None = None  # Unix time its connection was lost (None: connected)
    ended: bool = False  # it can no longer be resumed: forget it


@dataclass
class Saved:
    """Everything a store gives back at start."""

    epoch: str | None = None  # None: a new epoch (nothing was kept)
    next_id: int = 1
    rooms: list[SavedRoom] = field(default_factory=list)
    sessions: list[SessionState] = field(default_factory=list)
    #: Rooms whose history was let go of, by folded name: the id and time of the last
    #: message they said (a peer coming back from before is told of the gap).
    ended: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: Some rooms' marks were let go of: a room not among ``ended`` may have said
    #: anything before (as RoomBook._ended_forgot).
    ended_forgot: bool = False
    #: The last run did not stop cleanly (kill -9, a crash, power).
    unclean: bool = False
    #: Messages up to this id and time may have been said and not kept (by a run that
    #: did not stop cleanly): a peer coming back from before is told of the gap.
    lost: tuple[int, int] = (0, 0)
    saved_at: float = 0.0  # Unix time of its last write


class Store(Protocol):
    """Where history and sessions are kept between runs."""

    #: Whether what is kept outlives the process (rooms then keep their history when
    #: their last member leaves).
    durable: bool
    description: str

    def load(self) -> Saved:
        """Everything kept, at start (before the server listens)."""
        ...

    def begin(self, last_id: Callable[[], int]) -> None:
        """Start writing; ``last_id`` tells the newest message id given."""
        ...

    def kept(self, room: str, message: Message, origin: str) -> None:
        """``room``'s log kept ``message`` from ``origin``."""
        ...

    def forgot_room(self, room: str, last: tuple[int, int]) -> None:
        """``room``'s history was let go of: forget it too, remembering the id and time
        of the last message it said (``last``)."""
        ...

    def session(self, digest: str, state: Callable[[], SessionState]) -> None:
        """The resumable session ``digest`` changed (or ended); ``state()`` tells what it
        is, when the store writes it (once per pass, however often it changed)."""
        ...

    async def close(self) -> None:
        """Write what is left and stop (the server is stopping)."""
        ...


class MemoryStore:
    """``--store memory``: nothing outlives the process (the default)."""

    durable = False
    description = "memory"

    def load(self) -> Saved:
        return Saved()

    def begin(self, last_id: Callable[[], int]) -> None:
        pass

    def kept(self, room: str, message: Message, origin: str) -> None:
        pass

    def forgot_room(self, room: str, last: tuple[int, int]) -> None:
        pass

    def session(self, digest: str, state: Callable[[], SessionState]) -> None:
        pass

    async def close(self) -> None:
        pass


def store_path(url: str) -> str | None:
    """The file of a ``sqlite:///PATH`` store; None for ``memory``. Raises StoreError
    for anything else."""
    if url in ("", "memory"):
        return None
    prefix = "sqlite:///"
    if url.startswith(prefix) and len(url) > len(prefix):
        return url[len(prefix) :]
    raise StoreError(f"--store {url!r} is not a store peerchat knows: give {STORE_FORMS}.")
