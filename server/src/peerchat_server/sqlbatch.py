"""What the SQLite store writes at once: a :class:`Batch`, and what it does to the file.

A batch is what one or more loop passes changed: messages the rooms' logs kept, rooms
whose history was let go of, sessions that changed, and marks for messages that were
not written (the writer was too far behind, or the disk failed): a peer that comes back
from before such a mark is told it may have missed something. Each room keeps its
newest ``keep`` messages in the file; what goes leaves a mark likewise.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import astuple, dataclass, field

from .store import SessionState

#: A room's key (its folded name), and the newest id and time of what left it.
Marks = dict[str, tuple[int, int]]
#: A message as the table has it: room_key, id, ts, room, nick, text, action, origin.
Row = tuple[str, int, int, str, str, str, int, str]


def mark(marks: Marks, key: str, id_: int, ts: int) -> None:
    """Raise ``key``'s mark to (``id_``, ``ts``)."""
    old_id, old_ts = marks.get(key, (0, 0))
    marks[key] = (max(old_id, id_), max(old_ts, ts))


@dataclass
class Batch:
    """What one or more loop passes changed, in the order it must be written."""

    messages: list[Row] = field(default_factory=list)
    sessions: dict[str, SessionState] = field(default_factory=dict)
    forgotten: Marks = field(default_factory=dict)  # rooms let go of, with their last id
    #: For each room let go of, how many of ``messages`` came before (those of that
    #: room are not to be written): a mark, not a filter per forget on the loop thread.
    cut: dict[str, int] = field(default_factory=dict)
    lost: Marks = field(default_factory=dict)  # messages not written, by room
    last_id: int = 0  # the newest id given when it was made
    counted: int = 0  # messages counted as waiting for the writer (SqliteStore._behind)
    failures: int = 0  # times writing it failed

    def __bool__(self) -> bool:
        return bool(self.messages or self.sessions or self.forgotten or self.lost)

    def forget(self, key: str, id_: int, ts: int) -> None:
        """The room ``key`` was let go of: none of its messages so far is to be kept."""
        self.cut[key] = len(self.messages)
        mark(self.forgotten, key, id_, ts)

    def rows(self) -> list[Row]:
        """The messages to write: all but those of a room let go of after them."""
        if not self.cut:
            return self.messages
        cut = self.cut
        return [m for i, m in enumerate(self.messages) if i >= cut.get(m[0], 0)]

    def lose_messages(self) -> int:
        """Write no message of this batch, only a mark of what was not written; returns
        how many there were."""
        for key, id_, ts, *_ in self.rows():
            mark(self.lost, key, id_, ts)
        count, self.messages, self.cut = len(self.messages), [], {}
        return count

    def absorb(self, later: Batch) -> None:
        """Add ``later``'s changes after these."""
        offset = len(self.messages)
        for key, (id_, ts) in later.forgotten.items():
            mark(self.forgotten, key, id_, ts)
            self.cut[key] = offset + later.cut[key]
        self.messages += later.messages
        self.sessions.update(later.sessions)
        for key, (id_, ts) in later.lost.items():
            mark(self.lost, key, id_, ts)
        self.last_id = max(self.last_id, later.last_id)
        self.counted += later.counted


#: Rows per INSERT, at most, and characters of JSON (SQLite takes at most 1e9 bytes in
#: one value; a character is at most 4).
CHUNK_ROWS = 20_000
CHUNK_CHARS = 64 * 1024 * 1024
#: json_extract, not ->>: it needs SQLite 3.9 with JSON1, not 3.38.
INSERT_ROWS = (
    "INSERT OR REPLACE INTO messages SELECT json_extract(value, '$[0]'),"
    " json_extract(value, '$[1]'), json_extract(value, '$[2]'), json_extract(value, '$[3]'),"
    " json_extract(value, '$[4]'), json_extract(value, '$[5]'), json_extract(value, '$[6]'),"
    " json_extract(value, '$[7]') FROM json_each(?)"
)


def insert(db: sqlite3.Connection, rows: list[Row]) -> None:
    """The rows, a chunk per statement, each chunk one JSON text: executemany would
    take and give back Python's GIL for every row, and while the event loop is busy
    each take waits its turn (30,000 rows: 0.9 s instead of 0.07 s; this way 0.2 s)."""
    for start in range(0, len(rows), CHUNK_ROWS):
        _insert(db, rows[start : start + CHUNK_ROWS])


def _insert(db: sqlite3.Connection, rows: list[Row]) -> None:
    text = json.dumps(rows, ensure_ascii=False)
    if len(text) > CHUNK_CHARS and len(rows) > 1:  # (long lines: halves, then halves ...)
        half = len(rows) // 2
        _insert(db, rows[:half])
        _insert(db, rows[half:])
        return
    db.execute(INSERT_ROWS, (text,))


def write(db: sqlite3.Connection, batch: Batch, keep: int) -> None:
    """Apply ``batch`` (within the caller's transaction)."""
    for key, (id_, ts) in batch.forgotten.items():
        db.execute("DELETE FROM messages WHERE room_key = ?", (key,))
        forgot(db, key, id_, ts)  # a peer coming back from before is told of the gap
    rows = batch.rows()
    insert(db, rows)
    for key, (id_, ts) in batch.lost.items():
        forgot(db, key, id_, ts)
    for state in batch.sessions.values():
        if state.ended:
            db.execute("DELETE FROM sessions WHERE digest = ?", (state.digest,))
        else:
            db.execute("INSERT OR REPLACE INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       astuple(state)[:-1])  # fmt: skip
    for key in {m[0] for m in rows}:
        prune_room(db, key, keep)


def prune_room(db: sqlite3.Connection, key: str, keep: int) -> None:
    """Keep the room's newest ``keep`` messages; mark what went."""
    row = db.execute(
        "SELECT id, ts FROM messages WHERE room_key = ? ORDER BY id DESC LIMIT 1 OFFSET ?",
        (key, keep),
    ).fetchone()
    if row is not None:
        db.execute("DELETE FROM messages WHERE room_key = ? AND id <= ?", (key, row[0]))
        forgot(db, key, row[0], row[1])


#: Marks kept of rooms that keep no message (their names are kept with them).
MARKS_KEPT = 10_000


def sweep(db: sqlite3.Connection, before_ms: int | None, sessions_before: float) -> None:
    """Messages said before ``before_ms`` (the retention; None: none), sessions lost
    before ``sessions_before`` (their resume window is over), and marks of rooms that
    keep nothing, past the retention or the newest MARKS_KEPT (then the file says that
    some were let go of: ``ended_forgot``, as the room book does)."""
    if before_ms is not None:
        old = db.execute(
            "SELECT room_key, max(id), max(ts) FROM messages WHERE ts < ? GROUP BY room_key",
            (before_ms,),
        ).fetchall()
        db.execute("DELETE FROM messages WHERE ts < ?", (before_ms,))
        for key, id_, ts in old:
            forgot(db, key, id_, ts)
    db.execute("DELETE FROM sessions WHERE gone_at < ?", (sessions_before,))
    gone = db.execute(
        "DELETE FROM rooms WHERE room_key NOT IN (SELECT DISTINCT room_key FROM messages)"
        " AND (forgot_ts < ? OR room_key NOT IN"
        " (SELECT room_key FROM rooms ORDER BY forgot_id DESC LIMIT ?))",
        (-1 if before_ms is None else before_ms, MARKS_KEPT),
    ).rowcount
    if gone:
        set_meta(db, ended_forgot="1")


def forgot(db: sqlite3.Connection, key: str, id_: int, ts: int) -> None:
    """Raise the room's mark of what it no longer keeps."""
    db.execute(
        "INSERT INTO rooms VALUES (?, ?, ?) ON CONFLICT (room_key) DO UPDATE SET"
        " forgot_id = max(forgot_id, excluded.forgot_id),"
        " forgot_ts = max(forgot_ts, excluded.forgot_ts)",
        (key, id_, ts),
    )


def set_meta(db: sqlite3.Connection, **values: str) -> None:
    db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", values.items())
