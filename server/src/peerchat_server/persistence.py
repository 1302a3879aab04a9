"""Between the relay and its store (``--store``): what is opened, kept and given back.

The relay's parts keep their state in memory and tell the store what changed (the room
book each message its logs keep, the resume book each session that changed). This
module makes the store ``--store`` names, says what a session is as the store keeps
it, and puts back what a store kept when the server starts again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from peerchat_protocol import fold

from .config import ServerConfig
from .peer import Peer
from .relay import Relay
from .resume import Resumable
from .sqlstore import SqliteStore
from .store import MemoryStore, Saved, SessionState, Store, StoreError, store_path


def make_store(config: ServerConfig, log: Callable[[str, str], None]) -> Callable[[Relay], Store]:
    """The store ``config.store`` names, made for a relay (nothing is opened yet: see
    :func:`restore`). Raises StoreError for a value that names no store."""
    path = store_path(config.store)
    if path is None:
        return lambda relay: MemoryStore()
    if config.bus:
        raise StoreError(
            "--store sqlite:///... and --bus do not go together: with --bus, the rooms' "
            "history is kept in Redis and shared by the replicas. Give --store memory "
            "(PEERCHAT_STORE=memory: the server image keeps a file by default)."
        )
    keep = max(config.history_messages, config.catch_up_messages)

    def made(relay: Relay) -> Store:
        return SqliteStore(path, keep=keep, retention=config.retention,
                           window=config.resume_window, stats=relay.stats, log=log)  # fmt: skip

    return made


def restore(relay: Relay) -> Saved:
    """Open the relay's store and put back what it kept: the epoch, the message ids,
    the rooms' logs and the sessions still within their resume window. Then the store
    starts writing. Raises StoreError (at start, before the server listens)."""
    store = relay.store
    saved = store.load()
    if saved.epoch is not None:
        relay.epoch = saved.epoch
    relay.rooms.restore(saved)
    cutoff = relay.rooms.now() - int(relay.config.retention * 1000)
    if relay.config.retention:
        relay.rooms.prune(cutoff)
    _restore_sessions(relay, saved.sessions)
    store.begin(lambda: relay.rooms.last_id)
    return saved


def _restore_sessions(relay: Relay, states: list[SessionState]) -> None:
    """Put back the sessions (oldest first) the resume book has room for (it keeps the
    newest), each holding its name: of two with one name, the newer."""
    book, registry = relay.registry.book, relay.registry
    skew = relay.loop_time() - time.time()  # loop time, from Unix time
    names: set[str] = set()
    records: list[Resumable[Peer]] = []
    for state in reversed(states):  # newest first
        record: Resumable[Peer] = Resumable(
            "", state.nick, state.room, state.digest, state.last_seq,
            gone_at=(state.gone_at or time.time()) + skew,
            address=state.address, entered_id=state.entered_id, seen_ts=state.seen_ts,
        )  # fmt: skip
        if fold(state.nick) in names:
            book.on_change(record, True)  # (and the file forgets it too)
        else:
            names.add(fold(state.nick))
            records.append(record)
    records.reverse()
    book.restore(records)
    for record in records:  # oldest first
        if not book.waiting(record):
            continue
        if registry.name_taken(record.nick):  # a look-alike's: the older keeps it
            book.forget(record)
        else:
            registry.names.claim(record.nick, record)


#: Seconds between looks for messages past ``--retention``.
PRUNE_EVERY = 60.0


async def keep_pruning(relay: Relay) -> None:
    """Let go of messages older than ``--retention``, every minute (the store sweeps
    its own file likewise)."""
    while True:
        await asyncio.sleep(PRUNE_EVERY)
        relay.rooms.prune(relay.rooms.now() - int(relay.config.retention * 1000))


def session_state(relay: Relay, record: Resumable[Peer], ended: bool) -> SessionState:
    """What the store keeps of ``record``: where it is now, and when it was lost."""
    peer = record.session
    nick, room = (peer.name, peer.room.name) if peer is not None else (record.nick, record.room)
    gone_at = None
    if peer is None:
        gone_at = time.time() - (relay.loop_time() - record.gone_at)
    return SessionState(
        record.digest, nick, room, record.last_seq, record.entered_id, record.address,
        record.seen_ts, gone_at, ended,
    )  # fmt: skip


def watch_sessions(relay: Relay) -> Callable[[Resumable[Peer], bool], None]:
    """What the resume book calls when a session changes: the store hears of it."""
    store = relay.store

    def changed(record: Resumable[Peer], ended: bool) -> None:
        store.session(record.digest, lambda: session_state(relay, record, ended))

    return changed


__all__ = ["StoreError", "keep_pruning", "make_store", "restore", "watch_sessions"]
