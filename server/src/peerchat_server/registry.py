"""Who is connected: the peers, the names they hold, their sessions and their addresses.

A name is held by a connected peer, by a session waiting to be resumed (so nobody
takes the name of someone whose connection dropped), or by a peer of another replica
(known from the bus). Names clash when they are equal in any case or look alike
(names.py); the registry answers whether a name is free and, if not, why.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator

from peerchat_protocol import NICK_MAX_LENGTH, fold

from .addresses import AddressBook
from .config import ServerConfig
from .names import Names
from .peer import Peer
from .replicas import Replicas
from .resume import Resumable, ResumeBook


class Registry:
    """The connected peers (in arrival order), names, resumable sessions, address
    budgets, and the peers of other replicas."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self._peers: dict[Peer, None] = {}  # insertion-ordered set
        self.addresses = AddressBook(config)  # budgets per address, across connections
        #: Names held by connected peers and by sessions waiting to be resumed.
        self.names: Names[Peer | Resumable[Peer]] = Names()
        self.book = ResumeBook(
            config.resume_window,
            config.max_connections or 10_000,
            config.max_sessions_per_address,
            on_release=self._release_name,
        )
        #: The other replicas' peers (empty without ``--bus``).
        self.remote = Replicas()
        self._connections = 0
        self._run = secrets.token_hex(4)  # names this run's connections
        self.all_gone = asyncio.Event()

    def __len__(self) -> int:
        return len(self._peers)

    def __contains__(self, peer: object) -> bool:
        return peer in self._peers

    def __iter__(self) -> Iterator[Peer]:
        return iter(list(self._peers))  # a copy: the loop may close peers

    def refusal(self, peer: Peer) -> str | None:
        """Why a new connection may not come in, or ``None`` if it may."""
        cfg = self.config
        if cfg.max_connections and len(self._peers) >= cfg.max_connections:
            return f"the server is full ({cfg.max_connections} connections); try again in a while"
        return self.addresses.refusal(peer.address)

    def next_connection(self) -> str:
        """A name for a new connection, unique in this run and across runs (a store
        keeps who said each line: a connection of a later run must not pass for it)."""
        self._connections += 1
        return f"{self._run}.{self._connections}"

    def add(self, peer: Peer) -> None:
        """A new connection, known by its address name."""
        peer.address.connections += 1
        self._peers[peer] = None
        self.names.claim(peer.name, peer)
        self.all_gone.clear()

    def remove(self, peer: Peer) -> bool:
        """Forget ``peer``; its session, if it waits to be resumed, keeps its name.
        Returns False if it was not here."""
        if peer not in self._peers:
            return False
        del self._peers[peer]
        peer.address.connections -= 1
        self.names.release(peer.name, peer)
        record = peer.resumable
        if record is not None and self.book.waiting(record):
            self.names.claim(peer.name, record)  # nobody else takes it meanwhile
        if not self._peers:
            self.all_gone.set()
        return True

    def _release_name(self, record: Resumable[Peer]) -> None:
        """A session stopped waiting to be resumed: the name it held is free again."""
        self.names.release(record.nick, record)

    # --- names --------------------------------------------------------------------------

    def find(self, name: str) -> Peer | None:
        """The connected peer called ``name`` (in any case; never a look-alike)."""
        holder = self.names.exact(name)
        return holder if not isinstance(holder, Resumable) else None

    def waiting_as(self, name: str) -> Resumable[Peer] | None:
        """The session waiting to be resumed that holds ``name``, if any."""
        holder = self.names.exact(name)
        return holder if isinstance(holder, Resumable) else None

    def why_taken(self, name: str, now: float) -> str:
        """Why ``name`` cannot be had (at loop time ``now``), for the message that says so."""
        holder = self.names.clash(name)
        if isinstance(holder, Resumable):
            left = max(1, round(self.book.window - (now - holder.gone_at)))
            return (
                f"is held for {holder.nick}, who lost their connection and may be back "
                f"(free again in {left} s if not)"
            )
        owner = holder.name if holder is not None else None
        if owner is None and (remote := self.remote.clash(name)) is not None:
            owner = remote.nick
        if owner is not None and fold(owner) != fold(name):
            return f"looks too much like {owner!r}, who is here"
        return "is taken"

    def name_taken(self, name: str, by: Peer | None = None) -> bool:
        """Whether ``name``, or a name like it, is someone else's: a peer's here or on
        another replica, or held for a session that may be resumed."""
        holder = self.names.clash(name)
        if holder is None:
            return self.remote.clash(name) is not None  # someone on another replica
        return holder is not by

    def rename(self, peer: Peer, new: str) -> str:
        """Give ``peer`` the name ``new`` (caller checked it is free); returns the old."""
        old = peer.name
        self.names.release(old, peer)
        peer.name = new
        self.names.claim(new, peer)
        if peer.resumable is not None:
            self.book.changed(peer.resumable)  # (a store keeps its name)
        return old

    def free_variant(self, nick: str) -> str:
        """``nick`` if free, else the first free ``nick_2``, ``nick_3``..."""
        if not self.name_taken(nick):
            return nick
        # Every name held (peers here and elsewhere, sessions waiting) rules out one
        # candidate at most: one of these is free.
        for n in range(2, len(self._peers) + len(self.remote) + len(self.book) + 3):
            suffix = f"_{n}"
            candidate = nick[: NICK_MAX_LENGTH - len(suffix)] + suffix
            if not self.name_taken(candidate):
                return candidate
        raise AssertionError("unreachable: more candidates than peers")
