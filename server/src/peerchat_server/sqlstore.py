"""``--store sqlite:///PATH``: history and sessions in one SQLite file (stdlib sqlite3).

The loop never waits for the disk. What changed in one loop pass is gathered here
and handed, once at the end of the pass, to a writer thread, which writes whatever it
was handed meanwhile in one transaction (WAL mode, ``synchronous=NORMAL``: a commit
survives the process being killed, not a power cut). A writer more than
``MAX_BEHIND`` messages behind skips new ones, and a write that fails is tried again
with the next; either way the chat goes on from memory, it is logged and counted, and
what was not written leaves a mark, so that a peer coming back is told of the gap.

Sessions are kept by their digest, never by their secret. Message ids are reserved
``ID_RESERVE`` ahead with each commit, so that ids given in a pass lost to ``kill -9``
are never given again; a run that did not stop cleanly leaves a mark (``lost_upto``)
that every later catch-up from before it reports as a gap. One server at a time uses
a file (a lock beside it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable

from peerchat_protocol import LocalProtocolError, Message, fold

from . import sqlbatch
from .sqlbatch import Batch, set_meta
from .sqlschema import advice, explain, lock, open_database, transaction
from .stats import Stats
from .store import Saved, SavedRoom, SessionState, StoreError

#: Ids reserved past the newest with each commit: more than a disk that fails for hours
#: could see given, far fewer than an id can count (2^53).
ID_RESERVE = 1_000_000_000
#: Messages handed to the writer (or failed) and not yet written, at most.
MAX_BEHIND = 50_000
#: Seconds between sweeps of what is too old (retention, expired sessions).
SWEEP_EVERY = 60.0
#: A failed write is tried again after RETRY_FIRST seconds, then twice as long each
#: time up to RETRY_MAX; after GIVE_UP_AFTER failures its lines are given up (marked).
RETRY_FIRST = 0.1
RETRY_MAX = 5.0
GIVE_UP_AFTER = 8
#: Seconds a stopping server waits for the writer to finish.
CLOSE_TIMEOUT = 10.0


class SqliteStore:
    """History and sessions in a SQLite file, written by a thread of its own."""

    durable = True

    def __init__(
        self,
        path: str,
        *,
        keep: int,
        retention: float,
        window: float,
        stats: Stats,
        log: Callable[[str, str], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.description = f"sqlite:///{path}"
        self.keep, self.retention, self.window = keep, retention, window
        self.stats, self._log, self._clock = stats, log, clock
        self._db: sqlite3.Connection | None = None
        self._lock: int | None = None  # the open lock file (one server per file)
        self._saved = Saved()
        self._pending = Batch()
        self._sessions: dict[str, Callable[[], SessionState]] = {}
        self._handle: asyncio.Handle | None = None
        self._last_id: Callable[[], int] = lambda: 0
        self._queue: list[Batch] = []
        self._behind = 0  # messages handed to the writer and not yet written
        self._wake = threading.Condition()
        self._closing = False
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._retry = Batch()  # (writer thread) what the last write failed to write
        self._dropping = False  # new messages are skipped: the writer is too far behind
        self._failing = False  # (writer thread) the last write failed
        self._retry_at = 0.0  # (writer thread) when to try the failed batch again

    # --- at start -----------------------------------------------------------------------

    def load(self) -> Saved:
        """Open the file (made if new; locked, checked, migrated) and read what it keeps."""
        self._lock = lock(os.path.realpath(self.path))  # (a link to it is the same file)
        try:
            self._db = open_database(self.path)
            self._saved = self._load(self._db)
        except (sqlite3.Error, ValueError, LocalProtocolError) as exc:
            self._let_go()
            raise StoreError(explain(self.path, exc)) from None
        except StoreError:
            self._let_go()
            raise
        return self._saved

    def _load(self, db: sqlite3.Connection) -> Saved:
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        now = self._clock()
        saved = Saved(epoch=meta.get("epoch"), saved_at=float(meta.get("saved_at", now)))
        newest = db.execute("SELECT max(id) FROM messages").fetchone()[0] or 0
        saved.unclean = meta.get("clean") == "0"
        # After a clean stop the next id is exact; after a crash, past every id reserved.
        reserved = int(meta.get("next_id" if not saved.unclean else "reserved", 1))
        saved.next_id = max(reserved, newest + 1)
        lost = (int(meta.get("lost_upto", 0)), int(meta.get("lost_ts", 0)))
        # What a crash lost cannot be known: anyone from before it may have missed some.
        saved.lost = (saved.next_id - 1, int(now * 1000)) if saved.unclean else lost
        cutoff = int((now - self.retention) * 1000) if self.retention else 0
        marks = {key: (i, t) for key, i, t in db.execute("SELECT * FROM rooms")}
        expired = db.execute(  # (what passed the retention while no server ran)
            "SELECT room_key, max(id), max(ts) FROM messages WHERE ts < ? GROUP BY room_key",
            (cutoff,),
        )
        for key, id_, ts in expired:
            sqlbatch.mark(marks, key, id_, ts)
        saved.ended_forgot = meta.get("ended_forgot") == "1"
        rooms: dict[str, SavedRoom] = {}
        rows = db.execute(
            "SELECT room_key, id, ts, room, nick, text, action, origin FROM messages"
            " WHERE ts >= ? ORDER BY room_key, id",
            (cutoff,),
        )
        for key, id_, ts, room, nick, text, action, origin in rows:
            if key not in rooms:
                rooms[key] = SavedRoom(room, [], *marks.pop(key, (0, 0)))
            message = Message(id_, nick, text, ts, room, None, bool(action))
            rooms[key].messages.append((message, origin))
        # The rooms that spoke least lately first, as the room book orders them.
        saved.rooms = sorted(rooms.values(), key=lambda room: room.messages[-1][0].id)
        saved.ended = marks  # rooms with nothing kept, and what they said last
        for row in db.execute("SELECT * FROM sessions ORDER BY coalesce(gone_at, ?)", (now,)):
            digest, nick, room, last_seq, entered_id, address, seen_ts, gone_at = row
            gone_at = saved.saved_at if gone_at is None else gone_at  # connected at the end
            if now - gone_at <= self.window:
                saved.sessions.append(SessionState(
                    digest, nick, room, last_seq, entered_id, address, seen_ts, gone_at
                ))  # fmt: skip
        saved.epoch = saved.epoch or secrets.token_hex(6)
        return saved

    def begin(self, last_id: Callable[[], int]) -> None:
        """Mark the file as in use (unclean until close) and start the writer."""
        self._last_id = last_id
        self._loop = asyncio.get_running_loop()
        saved = self._saved
        try:
            with transaction(self.db):
                if saved.unclean:  # sessions connected at the crash were lost at its time
                    self.db.execute("UPDATE sessions SET gone_at = ? WHERE gone_at IS NULL",
                                    (saved.saved_at,))  # fmt: skip
                set_meta(self.db, clean="0", reserved=str(last_id() + 1 + ID_RESERVE),
                         epoch=saved.epoch or "", lost_upto=str(saved.lost[0]),
                         lost_ts=str(saved.lost[1]))  # fmt: skip
        except sqlite3.Error as exc:
            self._let_go()
            raise StoreError(explain(self.path, exc)) from None
        self._thread = threading.Thread(target=self._write_on, name="peerchat-store", daemon=True)
        self._thread.start()
        if self._pending or self._sessions:  # (told before it began: sessions not restored)
            self._touch()

    @property
    def db(self) -> sqlite3.Connection:
        assert self._db is not None, "load() first"
        return self._db

    # --- what changed, gathered per loop pass ----------------------------------------------

    def kept(self, room: str, message: Message, origin: str) -> None:
        if self.keep:
            self._pending.messages.append(
                (fold(room), message.id, message.ts, room, message.nick, message.text,
                 int(message.action), origin)
            )  # fmt: skip
            self._touch()

    def forgot_room(self, room: str, last: tuple[int, int]) -> None:
        self._pending.forget(fold(room), *last)
        self._touch()

    def session(self, digest: str, state: Callable[[], SessionState]) -> None:
        self._sessions[digest] = state  # (what it is at the end of the pass is kept)
        self._touch()

    def _touch(self) -> None:
        if self._handle is None and self._loop is not None:
            self._handle = self._loop.call_soon(self._hand_over)

    def _hand_over(self) -> None:
        """End of the pass: give what it changed to the writer (never wait for it)."""
        self._handle = None
        batch, self._pending = self._pending, Batch()
        batch.last_id = self._last_id()
        batch.sessions = {key: state() for key, state in self._sessions.items()}
        self._sessions.clear()
        with self._wake:
            behind = self._behind + len(batch.messages) > MAX_BEHIND
            if behind:
                self.stats.store_dropped += batch.lose_messages()
            batch.counted = len(batch.messages)
            self._behind += batch.counted
            self._queue.append(batch)
            self._wake.notify()
        if behind != self._dropping:  # said once each way, not per pass
            self._dropping = behind
            self._log(*(("ERROR", f"The store {self.description} is too slow for the chat: "
                         "new messages are not kept on disk until it catches up (the chat "
                         "goes on).") if behind else
                        ("INFO", f"The store {self.description} keeps up again.")))  # fmt: skip

    # --- the writer thread ----------------------------------------------------------------

    def _write_on(self) -> None:
        next_sweep = 0.0
        while True:
            with self._wake:
                # After a failure, wait a little before trying again (and again ...).
                pause = self._retry_at - self._clock() if self._retry else 0.0
                if (pause > 0 or not self._queue) and not self._closing:
                    self._wake.wait(timeout=pause if pause > 0 else SWEEP_EVERY)
                    if self._retry_at > self._clock() and not self._closing:
                        continue
                batches, self._queue = self._queue, []
                closing = self._closing
            batch, self._retry = self._retry, Batch()  # (what failed goes first)
            for later in batches:
                batch.absorb(later)
            now = self._clock()
            sweep = now >= next_sweep
            if (batch or sweep or closing) and self._attempt(batch, now, sweep) and sweep:
                next_sweep = now + SWEEP_EVERY
            if closing and not batches:
                return

    def _attempt(self, batch: Batch, now: float, sweep: bool) -> bool:
        """Write ``batch``; if that fails, keep it to try again (a while later) with the
        next, unless it failed too often or for good: then its lines are marked lost."""
        try:
            with transaction(self.db):
                sqlbatch.write(self.db, batch, self.keep)
                if sweep:
                    cutoff = int((now - self.retention) * 1000) if self.retention else None
                    sqlbatch.sweep(self.db, cutoff, now - self.window)
                reserved = {"reserved": str(batch.last_id + 1 + ID_RESERVE)}
                set_meta(self.db, saved_at=repr(now), **(reserved if batch.last_id else {}))
        except Exception as exc:  # any: this thread must not die (sqlite3, a bad value)
            self._failed(batch, exc)
            return False
        self._written(batch)
        if self._failing:
            self._failing = False
            self._report("INFO", f"Writing to the store {self.description} works again.")
        return True

    def _failed(self, batch: Batch, exc: Exception) -> None:
        self.stats.store_failures += 1
        if not self._failing:
            self._report(
                "ERROR", f"Writing to the store failed ({exc}); the chat goes on from "
                f"memory; the write is tried again. {advice(exc)}",
            )  # fmt: skip
        self._failing = True
        batch.failures += 1
        hopeless = not isinstance(exc, sqlite3.OperationalError)  # (a bad value, say)
        if hopeless or batch.failures >= GIVE_UP_AFTER or len(batch.messages) > MAX_BEHIND:
            # Its lines leave marks instead (a peer coming back is told of the gap);
            # its sessions and marks are tried again.
            self.stats.store_dropped += batch.lose_messages()
            self._written(batch)
        self._retry = batch
        self._retry_at = self._clock() + min(RETRY_MAX, RETRY_FIRST * 2 ** (batch.failures - 1))

    def _written(self, batch: Batch) -> None:
        """``batch``'s lines no longer wait for the writer (written, or given up)."""
        with self._wake:
            self._behind -= batch.counted
        self.stats.store_written += len(batch.messages)
        batch.counted = 0

    def _report(self, tag: str, text: str) -> None:
        """A console line from the writer thread, said by the loop's thread."""
        loop = self._loop
        with contextlib.suppress(RuntimeError):  # (the loop is closed: nobody to tell)
            if loop is not None:
                loop.call_soon_threadsafe(self._log, tag, text)

    # --- at the end ------------------------------------------------------------------------

    async def close(self) -> None:
        """Write what is left and let the file go, marked clean if all was written."""
        if self._handle is not None:
            self._handle.cancel()
        thread = self._thread
        if thread is None:  # never began: nothing was written
            self._let_go()
            return
        self._hand_over()
        with self._wake:
            self._closing = True
            self._wake.notify()
        await asyncio.to_thread(thread.join, CLOSE_TIMEOUT)
        if thread.is_alive() or self._failing:
            self._log("ERROR", f"The store {self.description} could not write everything "
                      "before the server stopped: what it had not written is lost, and the "
                      "next start treats this stop as a crash.")  # fmt: skip
            if not thread.is_alive():
                self._let_go()
            return  # (a writer still stuck keeps the file; the process ends anyway)
        try:
            with transaction(self.db):
                now = self._clock()
                self.db.execute("UPDATE sessions SET gone_at = ? WHERE gone_at IS NULL", (now,))
                set_meta(self.db, clean="1", next_id=str(self._last_id() + 1), saved_at=repr(now))
        except sqlite3.Error as exc:
            self._log("ERROR", f"Could not close the store cleanly ({exc}).")
        self._let_go()

    def _let_go(self) -> None:
        """Close the file and its lock."""
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._lock is not None:
            with contextlib.suppress(OSError):
                os.close(self._lock)
            self._lock = None
