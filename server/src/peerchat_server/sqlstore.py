"""``--store sqlite:///PATH``: history and sessions in one SQLite file (stdlib sqlite3).

The loop never waits for the disk. What changed in one loop pass is gathered here
and handed, once at the end of the pass, to a writer thread, which writes whatever it
was handed meanwhile in one transaction (WAL mode, ``synchronous=NORMAL``: a commit
survives the process being killed, not a power cut). A writer that falls behind by
more than ``MAX_BEHIND`` messages drops new ones (counted) rather than grow without
bound; a write that fails is logged and counted, and the chat goes on from memory.

Each room keeps its newest ``keep`` messages (and none older than the retention);
sessions are kept by their digest, never by their secret. Message ids are reserved
``ID_RESERVE`` ahead with each commit, so that ids given out in a pass that was lost
to ``kill -9`` are never given again.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import astuple, dataclass, field

from peerchat_protocol import Message, fold

from .sqlschema import advice, explain, open_database, transaction
from .stats import Stats
from .store import Saved, SavedRoom, SessionState, StoreError

#: Ids reserved past the newest with each commit (ids are plentiful; a pass is not).
ID_RESERVE = 100_000
#: Messages handed to the writer and not yet written, at most.
MAX_BEHIND = 50_000
#: Seconds between sweeps of what is too old (retention, expired sessions).
SWEEP_EVERY = 60.0


@dataclass
class Batch:
    """What one or more loop passes changed."""

    messages: list[tuple[object, ...]] = field(default_factory=list)
    sessions: dict[str, SessionState] = field(default_factory=dict)
    forgotten: list[str] = field(default_factory=list)
    last_id: int = 0

    def __bool__(self) -> bool:
        return bool(self.messages or self.sessions or self.forgotten)

    def absorb(self, later: Batch) -> None:
        self.messages += later.messages
        self.sessions.update(later.sessions)
        self.forgotten += later.forgotten
        self.last_id = max(self.last_id, later.last_id)


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
        self.keep, self.retention, self.window = max(1, keep), retention, window
        self.stats, self._log, self._clock = stats, log, clock
        self._db: sqlite3.Connection | None = None
        self._epoch = ""
        self._pending = Batch()
        self._sessions: dict[str, Callable[[], SessionState]] = {}
        self._handle: asyncio.Handle | None = None
        self._last_id: Callable[[], int] = lambda: 0
        self._queue: list[Batch] = []
        self._behind = 0  # messages queued for the writer
        self._wake = threading.Condition()
        self._closing = False
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._failing = False  # (writer thread) the last write failed
        self._dropping = False  # new messages are dropped: the writer is too far behind

    # --- at start -----------------------------------------------------------------------

    def load(self) -> Saved:
        """Open the file (made if new; checked, migrated) and read what it keeps."""
        self._db = open_database(self.path)
        try:
            return self._load(self._db)
        except sqlite3.Error as exc:
            self._db.close()
            raise StoreError(explain(self.path, exc)) from None

    def _load(self, db: sqlite3.Connection) -> Saved:
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        now = self._clock()
        saved = Saved(epoch=meta.get("epoch"), saved_at=float(meta.get("saved_at", now)))
        newest = db.execute("SELECT max(id) FROM messages").fetchone()[0] or 0
        saved.kept_upto = newest
        saved.unclean = meta.get("clean") == "0"
        # After a clean stop the next id is exact; after a crash, past every id reserved.
        reserved = int(meta.get("next_id" if not saved.unclean else "reserved", 1))
        saved.next_id = max(reserved, newest + 1)
        cutoff = int((now - self.retention) * 1000) if self.retention else 0
        marks = {key: (i, t) for key, i, t in db.execute("SELECT * FROM rooms")}
        rooms: dict[str, SavedRoom] = {}
        rows = db.execute(
            "SELECT room_key, id, ts, room, nick, text, action, origin FROM messages"
            " WHERE ts >= ? ORDER BY room_key, id",
            (cutoff,),
        )
        for key, id_, ts, room, nick, text, action, origin in rows:
            saved_room = rooms.get(key)
            if saved_room is None:
                forgot = marks.get(key, (0, 0))
                saved_room = rooms[key] = SavedRoom(room, [], *forgot)
            saved_room.messages.append(
                (Message(id_, nick, text, ts, room, None, bool(action)), origin)
            )
        saved.rooms = list(rooms.values())
        for row in db.execute("SELECT * FROM sessions ORDER BY coalesce(gone_at, 1e18)"):
            digest, nick, room, last_seq, entered_id, address, seen_ts, gone_at = row
            gone_at = saved.saved_at if gone_at is None else gone_at  # connected at the end
            if now - gone_at <= self.window:
                saved.sessions.append(
                    SessionState(
                        digest, nick, room, last_seq, entered_id, address, seen_ts, gone_at
                    )
                )
        if saved.epoch is None:
            saved.epoch = secrets.token_hex(6)
        self._epoch = saved.epoch
        return saved

    def begin(self, last_id: Callable[[], int]) -> None:
        """Mark the file as in use (unclean until close) and start the writer."""
        self._last_id = last_id
        self._loop = asyncio.get_running_loop()
        reserved = str(last_id() + 1 + ID_RESERVE)
        try:
            with transaction(self.db):
                self._set_meta(clean="0", reserved=reserved, epoch=self._epoch)
        except sqlite3.Error as exc:
            raise StoreError(explain(self.path, exc)) from None
        self._thread = threading.Thread(target=self._write_on, name="peerchat-store", daemon=True)
        self._thread.start()

    @property
    def db(self) -> sqlite3.Connection:
        assert self._db is not None, "load() first"
        return self._db

    # --- what changed, gathered per loop pass ----------------------------------------------

    def kept(self, room: str, message: Message, origin: str) -> None:
        self._pending.messages.append(
            (fold(room), message.id, message.ts, room, message.nick, message.text,
             int(message.action), origin)
        )  # fmt: skip
        self._touch()

    def forgot_room(self, room: str) -> None:
        self._pending.forgotten.append(fold(room))
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
                self.stats.store_dropped += len(batch.messages)
                batch.messages = []
            self._behind += len(batch.messages)
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
                if not self._queue and not self._closing:
                    self._wake.wait(timeout=SWEEP_EVERY)
                batches, self._queue = self._queue, []
                closing = self._closing
            batch = Batch()
            for later in batches:
                batch.absorb(later)
            now = self._clock()
            sweep = now >= next_sweep
            if batch or sweep or closing:
                self._attempt(batch, now, sweep)
                next_sweep = now + SWEEP_EVERY if sweep else next_sweep
            with self._wake:
                self._behind -= len(batch.messages)
            if closing and not batches:
                return

    def _attempt(self, batch: Batch, now: float, sweep: bool) -> None:
        try:
            with transaction(self.db):
                self._write(batch, now, sweep)
        except sqlite3.Error as exc:
            self.stats.store_failures += 1
            if not self._failing:
                self._failing = True
                self._report("ERROR", f"Writing to the store failed ({exc}); the chat goes on "
                             f"from memory. {advice(exc)}")  # fmt: skip
            return
        self.stats.store_written += len(batch.messages)
        if self._failing:
            self._failing = False
            self._report("INFO", f"Writing to the store {self.description} works again.")

    def _write(self, batch: Batch, now: float, sweep: bool) -> None:
        db = self.db
        for key in batch.forgotten:
            db.execute("DELETE FROM messages WHERE room_key = ?", (key,))
            db.execute("DELETE FROM rooms WHERE room_key = ?", (key,))
        db.executemany("INSERT OR REPLACE INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       batch.messages)  # fmt: skip
        for state in batch.sessions.values():
            if state.ended:
                db.execute("DELETE FROM sessions WHERE digest = ?", (state.digest,))
            else:
                db.execute("INSERT OR REPLACE INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           astuple(state)[:-1])  # fmt: skip
        for key in {str(m[0]) for m in batch.messages}:
            self._prune_room(key)
        if sweep:
            self._sweep(now)
        reserved = str(batch.last_id + 1 + ID_RESERVE) if batch.last_id else None
        self._set_meta(saved_at=repr(now), **({"reserved": reserved} if reserved else {}))

    def _prune_room(self, key: str) -> None:
        """Keep the room's newest ``keep`` messages; remember what went."""
        row = self.db.execute(
            "SELECT id, ts FROM messages WHERE room_key = ? ORDER BY id DESC LIMIT 1 OFFSET ?",
            (key, self.keep),
        ).fetchone()
        if row is not None:
            self.db.execute("DELETE FROM messages WHERE room_key = ? AND id <= ?", (key, row[0]))
            self._forgot(key, row[0], row[1])

    def _sweep(self, now: float) -> None:
        """Messages past the retention, sessions past the resume window."""
        if self.retention:
            cutoff = int((now - self.retention) * 1000)
            old = self.db.execute(
                "SELECT room_key, max(id), max(ts) FROM messages WHERE ts < ? GROUP BY room_key",
                (cutoff,),
            ).fetchall()
            self.db.execute("DELETE FROM messages WHERE ts < ?", (cutoff,))
            for key, id_, ts in old:
                self._forgot(key, id_, ts)
        self.db.execute("DELETE FROM sessions WHERE gone_at < ?", (now - self.window,))

    def _forgot(self, key: str, id_: int, ts: int) -> None:
        self.db.execute(
            "INSERT INTO rooms VALUES (?, ?, ?) ON CONFLICT (room_key) DO UPDATE SET"
            " forgot_id = max(forgot_id, excluded.forgot_id),"
            " forgot_ts = max(forgot_ts, excluded.forgot_ts)",
            (key, id_, ts),
        )

    def _set_meta(self, **values: str) -> None:
        self.db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", values.items())

    def _report(self, tag: str, text: str) -> None:
        """A console line from the writer thread, said by the loop's thread."""
        loop = self._loop
        with contextlib.suppress(RuntimeError):  # (the loop is closed: nobody to tell)
            if loop is not None:
                loop.call_soon_threadsafe(self._log, tag, text)

    # --- at the end ------------------------------------------------------------------------

    async def close(self) -> None:
        """Write what is left, mark the file cleanly closed, and let it go."""
        if self._handle is not None:
            self._handle.cancel()
        if self._thread is None:  # never began: nothing was written
            if self._db is not None:
                self._db.close()
            return
        self._hand_over()
        with self._wake:
            self._closing = True
            self._wake.notify()
        await asyncio.to_thread(self._thread.join)
        try:
            with transaction(self.db):
                now = self._clock()
                self.db.execute("UPDATE sessions SET gone_at = ? WHERE gone_at IS NULL", (now,))
                self._set_meta(clean="1", next_id=str(self._last_id() + 1), saved_at=repr(now))
        except sqlite3.Error as exc:
            self._log("ERROR", f"Could not close the store cleanly ({exc}).")
        self.db.close()
