"""The SQLite file of ``--store sqlite:///PATH``: its schema, versions and opening.

A file is opened only if it is new or peerchat's own (``PRAGMA application_id``), and
of a schema this code knows (``PRAGMA user_version``); older schemas are brought up
to date one versioned step at a time, each in a transaction. Every failure is a
StoreError whose message says what to do.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Iterator

from .store import StoreError

#: Marks a peerchat database (PRAGMA application_id): "pchat" folded into 31 bits.
APPLICATION_ID = 0x70636874
#: The schema this code writes; each step from the version before is in MIGRATIONS.
SCHEMA_VERSION = 1
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "CREATE TABLE messages (room_key TEXT NOT NULL, id INTEGER NOT NULL,"
        " ts INTEGER NOT NULL, room TEXT NOT NULL, nick TEXT NOT NULL, text TEXT NOT NULL,"
        " action INTEGER NOT NULL, origin TEXT NOT NULL, PRIMARY KEY (room_key, id))"
        " WITHOUT ROWID",
        "CREATE INDEX messages_by_time ON messages (ts)",
        "CREATE TABLE rooms (room_key TEXT PRIMARY KEY, forgot_id INTEGER NOT NULL,"
        " forgot_ts INTEGER NOT NULL)",
        "CREATE TABLE sessions (digest TEXT PRIMARY KEY, nick TEXT NOT NULL,"
        " room TEXT NOT NULL, last_seq INTEGER NOT NULL, entered_id INTEGER NOT NULL,"
        " address TEXT NOT NULL, seen_ts INTEGER NOT NULL, gone_at REAL)",
    ),
}


def lock(path: str) -> int:
    """Take the lock beside ``path`` (one server per file); returns its descriptor."""
    if os.path.isdir(path):
        example = "sqlite:///" + os.path.join(path, "peerchat.db")
        raise StoreError(
            f"The store {path!r} is a directory: give the path of a file in it (for "
            f"example {example})."
        )
    try:
        fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        folder = os.path.dirname(os.path.abspath(path))
        if os.path.isdir(folder) and os.access(folder, os.W_OK):  # (the lock file itself)
            raise StoreError(
                f"Cannot use the store's lock file {path + '.lock'!r} ({exc.strerror}): let "
                "the server's user write it, or give --store another path."
            ) from None
        raise StoreError(explain(path, exc)) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise StoreError(
            f"The store {path!r} is in use by another peerchat server (it holds "
            f"{path + '.lock'!r}). Stop that one first, or give --store another path."
        ) from None
    return fd


def open_database(path: str) -> sqlite3.Connection:
    """Open (or create) the database at ``path``, check it is ours and migrate it."""
    try:
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    except sqlite3.Error as exc:
        raise StoreError(explain(path, exc)) from None
    try:
        app, version = _identity(db)
        if app not in (0, APPLICATION_ID) or (app == 0 and _has_tables(db)):
            raise StoreError(
                f"The store {path!r} is a SQLite database of another program, not "
                "peerchat's. Give --store a new path (or that of a peerchat database)."
            )
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"The store {path!r} was written by a newer peerchat (schema {version}; "
                f"this one knows up to {SCHEMA_VERSION}). Run that version, or give "
                "--store another path."
            )
        _check_json(db, path)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("PRAGMA busy_timeout = 5000")
        _migrate(db, version)
    except sqlite3.Error as exc:
        db.close()
        raise StoreError(explain(path, exc)) from None
    except StoreError:
        db.close()
        raise
    return db


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """One write transaction (the connection is in autocommit mode otherwise)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        raise


def _check_json(db: sqlite3.Connection, path: str) -> None:
    """The store writes its rows as JSON: SQLite needs its JSON functions (built in
    since 3.38, an extension before)."""
    try:
        db.execute("SELECT json_extract('[1]', '$[0]')")
    except sqlite3.OperationalError:
        raise StoreError(
            f"Cannot use the store {path!r}: this Python's SQLite ({sqlite3.sqlite_version}) "
            "has no JSON functions, which the store needs. Use a Python whose SQLite has "
            "them (3.38 or later has them built in), or --store memory."
        ) from None


def _identity(db: sqlite3.Connection) -> tuple[int, int]:
    app = db.execute("PRAGMA application_id").fetchone()[0]
    version = db.execute("PRAGMA user_version").fetchone()[0]
    return int(app), int(version)


def _has_tables(db: sqlite3.Connection) -> bool:
    return int(db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]) > 0


def _migrate(db: sqlite3.Connection, version: int) -> None:
    """Each step from ``version`` up to SCHEMA_VERSION, in a transaction of its own."""
    for step in range(version + 1, SCHEMA_VERSION + 1):
        with transaction(db):
            for statement in MIGRATIONS[step]:
                db.execute(statement)
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            db.execute(f"PRAGMA user_version = {step}")


def advice(exc: BaseException) -> str:
    text = str(exc).lower()
    if "full" in text:
        return "The disk is full: free some space."
    if "readonly" in text or "read-only" in text:
        return "The file is read-only: let the server's user write it."
    if "not a database" in text or "malformed" in text:
        return "The file is damaged: move it away to start afresh."
    return "Check the file and its disk."


def _writable(path: str) -> bool:
    return not os.path.exists(path) or os.access(path, os.W_OK)


def explain(path: str, exc: BaseException) -> str:
    """Why the store at ``path`` cannot be opened, and what to do."""
    text = getattr(exc, "strerror", None) or str(exc)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        return (
            f"Cannot open the store {path!r}: its directory {folder!r} does not exist. "
            "Make it (check that its directory exists and that the server's user may "
            "write there), or give --store another path."
        )
    if not (os.access(folder, os.W_OK) and _writable(path)):
        return (
            f"Cannot use the store {path!r} ({text}): it is read-only. Let the server's user "
            "write the file and its directory (SQLite keeps a journal beside it), or give "
            "--store another path."
        )
    if "unable to open" in text.lower():
        return (
            f"Cannot open the store {path!r} ({text}): check that its directory exists "
            "and that the server's user may write there, or give --store another path."
        )
    return f"Cannot use the store {path!r} ({text}). {advice(exc)}"
