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

from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from .tokens import digest, new_token

#: The connection type a session belongs to (the relay's peers); any will do here.
S = TypeVar("S")


@dataclass(eq=False)
class Resumable(Generic[S]):
    """One session, connected (``session`` set) or waiting to be resumed."""

    token: str
    nick: str
    room: str
    #: What may be shown of the secret (tokens.digest): computed once, used per message.
    digest: str = ""
    last_seq: int = 0
    session: S | None = None
    gone_at: float = 0.0  # loop time the connection was lost (when ``session`` is None)
    resumes: int = 0
    #: While being taken over: whether the room still counts the peer as present.
    announced: bool = False
    address: str = ""  # the key of the address it connected from (addresses.py)
    #: The newest message id when it came into its room: it may catch up on what was
    #: said there since, never before (Relay.missed).
    entered_id: int = 0
    #: The newest message time (Unix ms) it said it had when it came back: what a room's
    #: late history brings (RoomFollowing.backfilled) is skipped up to there.
    seen_ts: int = 0
    #: The same as an id of the room's one sequence, when the bus numbers rooms
    #: (following.py): a catch-up that comes late is then exact.
    seen_id: int = 0


class ResumeBook(Generic[S]):
    """The resumable sessions, by their secret's digest (so that a store keeps what it
    needs to recognise the secret, never the secret); gone ones expire after
    ``window`` seconds.

    Bounded: at most ``max_gone`` sessions wait to be resumed at once, and at most
    ``per_address`` from one address (0: no such cap). Past either, a session of the
    address holding the most goes (its oldest): a flood of new sessions from one
    address pushes out its own, never someone else's. ``on_release`` hears of every
    waiting session that stops waiting (resumed, expired, pushed out or forgotten), so
    the name it held can be let go; ``on_change`` of every change a store keeps.
    """

    def __init__(
        self,
        window: float,
        max_gone: int,
        per_address: int = 0,
        on_release: Callable[[Resumable[S]], None] | None = None,
        on_change: Callable[[Resumable[S], bool], None] | None = None,
    ) -> None:
        self.window = window
        self.max_gone = max(1, max_gone)
        self.per_address = per_address
        self._on_release = on_release
        self.on_change = on_change or (lambda record, ended: None)
        self._live: dict[str, Resumable[S]] = {}
        self._gone: OrderedDict[str, Resumable[S]] = OrderedDict()  # oldest first
        self._by_address: dict[str, OrderedDict[str, Resumable[S]]] = {}  # the same, by address
        #: Addresses by how many sessions they have waiting (a handful of counts at
        #: most): the one holding the most is found without looking at every address.
        self._counts: dict[int, dict[str, None]] = {}

    def __len__(self) -> int:
        return len(self._live) + len(self._gone)

    def open(
        self,
        session: S,
        nick: str,
        room: str,
        token: str | None = None,
        address: str = "",
    ) -> Resumable[S]:
        """A new session for ``session`` (connected from ``address``), with a fresh secret
        token (or ``token``: the secret of a session that moved here from another replica)."""
        token = token or new_token()
        record: Resumable[S] = Resumable(
            token, nick, room, digest(token), session=session, address=address
        )
        self._live[record.digest] = record
        self.on_change(record, False)
        return record

    def find(self, token: str, now: float) -> Resumable[S] | None:
        """The session ``token`` names, if it exists and has not expired."""
        key = digest(token)
        record = self._live.get(key) or self._gone.get(key)
        if record is None or (record.session is None and now - record.gone_at > self.window):
            return None
        record.token = token  # (one restored from a store knew only the digest)
        return record

    def waiting(self, record: Resumable[S]) -> bool:
        """Whether ``record`` is waiting to be resumed."""
        return self._gone.get(record.digest) is record

    def take_over(self, record: Resumable[S], session: S) -> None:
        """``session`` is now the connection of ``record``."""
        self._stop_waiting(record)
        self._live[record.digest] = record
        record.session = session
        record.resumes += 1
        self.on_change(record, False)

    def changed(self, record: Resumable[S]) -> None:
        """``record`` changed (its room, its name, what it had handled): for a store."""
        self.on_change(record, False)

    def lost(self, record: Resumable[S], nick: str, room: str, now: float) -> None:
        """The connection of ``record`` ended without a quit: keep it for the window."""
        record.session = None
        record.nick, record.room, record.gone_at = nick, room, now
        self._live.pop(record.digest, None)
        if self.window <= 0:
            self.on_change(record, True)
            return
        self.on_change(record, False)
        self._wait(record)

    def restore(self, records: list[Resumable[S]]) -> None:
        """Sessions a store kept (oldest first), waiting to be resumed again: the newest
        that fit, per address and in all (as they would have pushed out the older ones);
        the others end, and ``on_change`` hears of it."""
        fit: list[Resumable[S]] = []
        per_address: Counter[str] = Counter()
        for record in reversed(records):
            full = self.per_address and per_address[record.address] >= self.per_address
            if len(fit) < self.max_gone and not full:
                per_address[record.address] += 1
                fit.append(record)
            else:
                self.on_change(record, True)
        for record in reversed(fit):
            self._wait(record)

    def _wait(self, record: Resumable[S]) -> None:
        self._gone[record.digest] = record
        mine = self._by_address.setdefault(record.address, OrderedDict())
        mine[record.digest] = record
        self._recount(record.address, len(mine) - 1, len(mine))
        if self.per_address and len(mine) > self.per_address:
            self._stop_waiting(next(iter(mine.values())))  # this address's oldest
        while len(self._gone) > self.max_gone:
            # The address holding the most loses its oldest. When the newcomer's own
            # address is among them, it pays: else a flood spread over many addresses
            # (one session each) would push out everyone else's, oldest first.
            most = max(self._counts)
            payer = (
                record.address
                if len(self._by_address.get(record.address, ())) == most
                else next(iter(self._counts[most]))
            )
            self._stop_waiting(next(iter(self._by_address[payer].values())))

    def forget(self, record: Resumable[S]) -> None:
        """The peer quit: its session cannot be resumed."""
        record.session = None
        self._live.pop(record.digest, None)
        self._stop_waiting(record)
        self.on_change(record, True)

    def expire(self, now: float) -> int:
        """Drop the gone sessions older than the window; returns how many."""
        dropped = 0
        while self._gone:
            record = next(iter(self._gone.values()))
            if now - record.gone_at <= self.window:
                break
            self._stop_waiting(record)
            dropped += 1
        return dropped

    def _recount(self, address: str, was: int, now: int) -> None:
        if was:
            holders = self._counts[was]
            del holders[address]
            if not holders:
                del self._counts[was]
        if now:
            self._counts.setdefault(now, {})[address] = None

    def _stop_waiting(self, record: Resumable[S]) -> None:
        if self._gone.pop(record.digest, None) is None:
            return
        if record.session is None:  # expired or pushed out, not taken over
            self.on_change(record, True)
        mine = self._by_address.get(record.address)
        if mine is not None and mine.pop(record.digest, None) is not None:
            self._recount(record.address, len(mine) + 1, len(mine))
            if not mine:
                del self._by_address[record.address]
        if self._on_release is not None:
            self._on_release(record)
