"""``--store sqlite:///PATH``: history, sessions and ids outlive a restart (in-process).

Each test runs real servers one after the other on one database file. What the store
promises when the process is killed (kill -9) is in test_store_start.py, with the
refusals at start; tests/integration/test_store.py restarts and kills the compose server.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from peerchat_protocol import Hello, History, Info, Message, Say, Welcome
from peerchat_server import rooms as rooms_module
from peerchat_server import sqlbatch, sqlstore
from peerchat_server.config import ServerConfig
from peerchat_server.registry import Registry
from peerchat_server.rooms import Keep, RoomBook
from peerchat_server.server import ChatServer, StartupError
from peerchat_server.sqlschema import open_database
from peerchat_server.stats import Stats
from peerchat_server.store import MemoryStore

from .peers import PlainPeer, RecordingConsole, RichPeer, console_of, running_server


def BANNER(line: str) -> bool:
    """Notices a plain peer gets besides chat."""
    return line.startswith(("***", "!"))


def chat(line: str) -> bool:
    return not BANNER(line)


def sqlite_of(server: ChatServer) -> sqlstore.SqliteStore:
    store = server.relay.store
    assert isinstance(store, sqlstore.SqliteStore)
    return store


def store_of(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'peerchat.db'}"


def rows(tmp_path: Path, query: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(tmp_path / "peerchat.db") as db:
        return db.execute(query).fetchall()


async def test_history_survives_a_restart_in_every_room(tmp_path: Path) -> None:
    store = store_of(tmp_path)
    async with running_server(store=store) as server:
        alice = await PlainPeer.connect(server.port)
        await alice.say("/nick alice")
        await alice.say("in the lobby")
        await alice.say("/join dev")
        await alice.expect("You are now in #dev", skip=BANNER)
        await alice.say("in dev")
        await alice.expect_none(skip=BANNER)  # both lines were handled
        await alice.close()
    async with running_server(store=store) as server:
        assert "2 messages in 2 rooms" in (await console_of(server).wait_for("kept in"))[0]
        bob = await PlainPeer.connect(server.port, banner=False)
        await bob.expect("Welcome to peerchat")
        await bob.expect("Type a message")
        await bob.expect("Last 1 messages in #lobby:")
        assert (await bob.line()).endswith("<alice> in the lobby")
        await bob.expect("End of history.")
        # #dev had nobody in it, yet it kept what was said there.
        await bob.say("/join dev")
        await bob.expect("Last 1 messages in #dev:", skip=BANNER)
        assert (await bob.line()).endswith("<alice> in dev")


async def test_a_room_whose_last_member_left_keeps_its_history(tmp_path: Path) -> None:
    async with running_server(store=store_of(tmp_path)) as server:
        alice = await PlainPeer.connect(server.port)
        await alice.say("/join dev")
        await alice.say("remember me")
        await alice.say("/leave")
        await alice.expect("You are now in #lobby", skip=BANNER)
        bob = await PlainPeer.connect(server.port)
        await bob.say("/join dev")
        await bob.expect("Last 1 messages in #dev:", skip=BANNER)
        assert (await bob.line()).endswith("remember me")


async def test_a_session_resumes_across_a_restart_and_catches_up_exactly(
    tmp_path: Path,
) -> None:
    store = store_of(tmp_path)
    async with running_server(store=store, resume_window=60) as server:
        alice = await RichPeer.connect(server.port, "alice")
        welcome = alice.welcome
        assert welcome is not None
        assert welcome.session
        assert welcome.epoch
        bob = await RichPeer.connect(server.port, "bob")
        await alice.send(Say("a1", seq=1))
        await bob.send(Say("b1"))
        seen = await alice.expect(Message, lambda m: m.text == "b1", skip=lambda e: True)
        alice.writer.transport.abort()  # her connection dies: the session waits
        for text in ("b2", "b3"):
            await bob.send(Say(text))
        await bob.expect_none(skip=Message)
    async with running_server(store=store, resume_window=60) as server:
        back = await RichPeer.connect(server.port, "bob")  # bob is a new session now
        resumed = RichPeer(*await asyncio.open_connection("127.0.0.1", server.port))
        await resumed.send(
            Hello(nick="alice", resume=welcome.session, epoch=welcome.epoch, last_id=seen.id)
        )
        again = await resumed.expect(Welcome)
        assert (again.resumed, again.nick, again.epoch, again.acked) == (
            True, "alice", welcome.epoch, 1,
        )  # fmt: skip
        assert (again.missed, again.gap) == (2, False)
        caught = [await resumed.expect(Message) for _ in range(2)]
        assert [(m.text, m.history) for m in caught] == [("b2", True), ("b3", True)]
        await resumed.expect_none()  # once: nothing else, not her own a1
        # Ids go on from where the last run left them.
        await back.send(Say("after"))
        after = await resumed.expect(Message, lambda m: m.text == "after", skip=lambda e: True)
        assert after.id > caught[-1].id > seen.id


async def test_a_held_name_is_still_held_after_a_restart(tmp_path: Path) -> None:
    store = store_of(tmp_path)
    async with running_server(store=store, resume_window=60) as server:
        alice = await RichPeer.connect(server.port, "alice")
        alice.writer.transport.abort()
        await console_of(server).wait_for("removed from peers list")
    async with running_server(store=store, resume_window=60) as server:
        other = await RichPeer.connect(server.port, "alice")
        assert other.nick == "alice_2"  # alice may come back for it


async def test_history_command_gives_more_than_the_join_history(tmp_path: Path) -> None:
    async with running_server(store=store_of(tmp_path), history_messages=2) as server:
        alice = await PlainPeer.connect(server.port)
        for n in range(5):
            await alice.say(f"line {n}")
        await alice.expect_none(skip=BANNER)
        bob = await PlainPeer.connect(server.port, banner=False)
        joined = [await bob.line() for _ in range(6)]
        assert [line[-6:] for line in joined[3:5]] == ["line 3", "line 4"]
        await bob.say("/history")
        await bob.expect("Last 5 messages in #lobby:")
        assert [(await bob.line())[-6:] for _ in range(5)] == [f"line {n}" for n in range(5)]
        await bob.expect("End of history: 5 messages of #lobby.")
        await bob.say("/history 2")
        await bob.expect("Last 2 messages in #lobby:")
        assert [(await bob.line())[-6:] for _ in range(2)] == ["line 3", "line 4"]
        await bob.expect("End of history: 2 messages of #lobby; /history 5 shows all 5 kept.")
        await bob.say("/history 0")
        await bob.expect("usage: /history [N]")
        json_peer = await RichPeer.connect(server.port, "carol")
        await json_peer.expect_none(skip=Message)  # (its join history)
        await json_peer.send(History(3))
        got = [await json_peer.expect(Message, skip=lambda e: not isinstance(e, Message))
               for _ in range(3)]  # fmt: skip
        assert [(m.text, m.history) for m in got] == [(f"line {n}", True) for n in (2, 3, 4)]
        end = await json_peer.expect(Info)
        assert end.text.startswith("End of history: 3 messages of #lobby")


async def test_history_in_a_room_with_nothing_kept_says_so() -> None:
    async with running_server() as server:
        alice = await PlainPeer.connect(server.port)
        await alice.say("/history")
        await alice.expect("Nothing said in #lobby is kept; what is said from now on will be.")


async def test_a_room_keeps_catch_up_messages_in_the_file_and_reports_the_gap(
    tmp_path: Path,
) -> None:
    store = store_of(tmp_path)
    settings: dict[str, Any] = {"store": store, "history_messages": 2, "catch_up_messages": 3}
    async with running_server(**settings) as server:
        alice = await RichPeer.connect(server.port, "alice")
        welcome = alice.welcome
        assert welcome is not None
        bob = await RichPeer.connect(server.port, "bob")
        await bob.send(Say("first"))
        first = await alice.expect(Message, skip=lambda e: True)
        alice.writer.transport.abort()
        for n in range(6):
            await bob.send(Say(f"more {n}"))
        await bob.expect_none(skip=lambda e: not isinstance(e, Message))
    assert rows(tmp_path, "SELECT text FROM messages ORDER BY id") == [
        ("more 3",), ("more 4",), ("more 5",),
    ]  # fmt: skip
    async with running_server(**settings) as server:
        resumed = RichPeer(*await asyncio.open_connection("127.0.0.1", server.port))
        await resumed.send(
            Hello(nick="alice", resume=welcome.session, epoch=welcome.epoch, last_id=first.id)
        )
        again = await resumed.expect(Welcome)
        assert (again.resumed, again.missed, again.gap) == (True, 3, True)


async def test_retention_lets_old_messages_go_in_memory_and_in_the_file(tmp_path: Path) -> None:
    store = store_of(tmp_path)
    async with running_server(store=store) as server:
        alice = await PlainPeer.connect(server.port)
        for text in ("old one", "old two", "recent"):
            await alice.say(text)
        await alice.expect_none(skip=BANNER)
    day = 86_400_000
    with sqlite3.connect(tmp_path / "peerchat.db") as db:
        db.execute("UPDATE messages SET ts = ts - 3 * ? WHERE text LIKE 'old%'", (day,))
    async with running_server(store=store, retention=2 * 86400) as server:
        bob = await PlainPeer.connect(server.port, banner=False)
        lines = [await bob.line() for _ in range(5)]
        assert lines[2:] == ["*** Last 1 messages in #lobby:", lines[3], "*** End of history."]
        assert lines[3].endswith("recent")
    assert rows(tmp_path, "SELECT text FROM messages") == [("recent",)]


async def test_a_failing_write_is_logged_counted_tried_again_and_the_chat_goes_on(
    tmp_path: Path,
) -> None:
    async with running_server(store=store_of(tmp_path)) as server:
        store = sqlite_of(server)
        real = store.db
        store._db = Failing(real)  # type: ignore[assignment]
        alice = await PlainPeer.connect(server.port)
        bob = await PlainPeer.connect(server.port)
        for n in range(20):
            await alice.say(f"line {n}")
        for n in range(20):
            assert (await bob.expect(chat, skip=BANNER)).endswith(f"line {n}")
        errors = await console_of(server).wait_for("Writing to the store failed")
        assert "The disk is full: free some space." in errors[0]
        assert server.relay.stats.store_failures >= 1
        store._db = real  # the disk has room again
        await alice.say("back")
        await console_of(server).wait_for("works again")
        said = [line for line in console_of(server).lines if line.startswith("[ERROR]")]
        assert len(said) == 1  # once, not per write
    # What failed was written with the next write, in order.
    texts = [text for (text,) in rows(tmp_path, "SELECT text FROM messages ORDER BY id")]
    assert texts == [f"line {n}" for n in range(20)] + ["back"]


async def test_an_unexpected_error_in_the_writer_is_one_more_failed_write(
    tmp_path: Path,
) -> None:
    async with running_server(store=store_of(tmp_path)) as server:
        store = sqlite_of(server)
        real = store.db
        error = OverflowError("Python int too large")
        store._db = Failing(real, error, on="json_each")  # type: ignore[assignment]
        alice = await PlainPeer.connect(server.port)
        bob = await RichPeer.connect(server.port, "bob")
        await alice.say("given up")
        given_up = await bob.expect(Message, skip=lambda e: not isinstance(e, Message))
        await console_of(server).wait_for("Writing to the store failed (Python int too large)")
        store._db = real
        await alice.say("and this")
        await console_of(server).wait_for("works again")  # the writer lived on
    # An error that will not pass by trying again: the line is given up, and marked.
    assert rows(tmp_path, "SELECT text FROM messages ORDER BY id") == [("and this",)]
    ((forgot,),) = rows(tmp_path, "SELECT forgot_id FROM rooms WHERE room_key = 'lobby'")
    assert forgot >= given_up.id


async def test_a_store_that_falls_behind_never_holds_up_the_chat_and_marks_the_gap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlstore, "MAX_BEHIND", 20)
    release = threading.Event()
    async with running_server(store=store_of(tmp_path)) as server:
        store = sqlite_of(server)
        real = store.db
        store._db = Stuck(real, release)  # type: ignore[assignment]
        try:
            alice = await PlainPeer.connect(server.port)
            bob = await RichPeer.connect(server.port, "bob")
            for n in range(100):
                await alice.say(f"line {n}")
            got = [await bob.expect(Message, skip=lambda e: not isinstance(e, Message))
                   for _ in range(100)]  # fmt: skip
            # Every line arrived while the disk was stuck.
            assert [m.text for m in got] == [f"line {n}" for n in range(100)]
            await console_of(server).wait_for("too slow for the chat")
            assert server.relay.stats.store_dropped > 0
        finally:
            release.set()
            store._db = real
    texts = {text for (text,) in rows(tmp_path, "SELECT text FROM messages")}
    skipped = [m for m in got if m.text not in texts]
    assert skipped  # some were not written ...
    ((forgot,),) = rows(tmp_path, "SELECT forgot_id FROM rooms WHERE room_key = 'lobby'")
    assert all(m.id <= forgot for m in skipped)  # ... and a peer from before is told


async def test_sqlite_with_a_bus_is_refused_with_what_to_do(tmp_path: Path) -> None:
    config = ServerConfig(port=0, store=store_of(tmp_path), bus="redis://127.0.0.1:1")
    with pytest.raises(StartupError, match="with --bus, the rooms' history is kept in Redis"):
        await ChatServer(config, RecordingConsole()).start()


async def test_memory_is_the_default_and_keeps_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # (where a relative path would have put a file)
    async with running_server() as server:
        assert server.relay.store.description == "memory"
        alice = await PlainPeer.connect(server.port)
        await alice.say("gone with the process")
        await alice.expect_none(skip=BANNER)
    assert os.listdir(tmp_path) == []


class Failing:
    """A database connection whose disk is full (or that fails with ``error``)."""

    def __init__(
        self, real: sqlite3.Connection, error: Exception | None = None, on: str = "BEGIN"
    ) -> None:
        self.real = real
        self.error = error or sqlite3.OperationalError("database or disk is full")
        self.on = on  # (the statements that fail: those with this in them)

    def execute(self, sql: str, *args: Any) -> Any:
        if self.on in sql:
            raise self.error
        return self.real.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class Stuck(Failing):
    """A database connection on a disk that does not answer until ``release``."""

    def __init__(self, real: sqlite3.Connection, release: threading.Event) -> None:
        super().__init__(real)
        self.release = release

    def execute(self, sql: str, *args: Any) -> Any:
        self.release.wait(timeout=30)
        return self.real.execute(sql, *args)


def crash(store: sqlstore.SqliteStore) -> None:
    """As kill -9 would leave it: what the writer had is written, nothing is closed."""
    thread = store._thread
    assert thread is not None
    with store._wake:
        store._closing = True  # (the writer writes what it holds, then stops)
        store._wake.notify()
    thread.join(timeout=10)
    store.db.close()  # no clean mark, no final ids
    assert store._lock is not None
    os.close(store._lock)  # (the kernel lets a killed process's lock go)


async def test_ids_given_before_a_crash_are_never_given_again(tmp_path: Path) -> None:
    path = str(tmp_path / "peerchat.db")
    given = 1

    store = open_store(path)
    assert store.load().next_id == 1
    store.begin(lambda: given)
    store.kept("lobby", Message(1, "alice", "written", 1_000), "o1")
    await asyncio.sleep(0)  # the pass ends: handed to the writer
    given = 5_000  # ids given since (private messages, a pass not yet written)
    crash(store)
    saved = open_store(path).load()
    assert saved.unclean
    assert saved.next_id > 5_000
    assert [m.text for room in saved.rooms for m, _ in room.messages] == ["written"]
    book: RoomBook[Any] = RoomBook(Keep(20, 32_768, 1_000, 262_144))
    book.restore(saved)
    # A peer that saw an id from before the crash is told it may have missed some.
    assert book.missed(book.lobby, (1, None), "o2", floor=1) == ([], True)
    assert book.new_id() == saved.next_id


def open_store(path: str) -> sqlstore.SqliteStore:
    return sqlstore.SqliteStore(path, keep=10, retention=0, window=60, stats=Stats(),
                                log=lambda tag, text: None)  # fmt: skip


async def test_a_crash_is_a_gap_for_every_later_run_not_only_the_next(tmp_path: Path) -> None:
    path = str(tmp_path / "peerchat.db")
    first = open_store(path)
    first.load()
    first.begin(lambda: 7)
    crash(first)
    second = open_store(path)
    assert second.load().lost[0] >= 7
    second.begin(lambda: second._saved.next_id - 1)
    await second.close()  # a clean stop, nobody came back meanwhile
    third = open_store(path).load()
    assert not third.unclean
    assert third.lost[0] >= 7  # still: a peer from before the crash is told of the gap
    book: RoomBook[Any] = RoomBook(Keep(20, 32_768, 1_000, 262_144))
    book.restore(third)
    assert book.missed(book.lobby, (5, None), "o", floor=5)[1]
    assert book.missed(book.get_or_make("dev"), (5, None), "o", floor=5)[1]


async def test_a_room_forgotten_in_the_same_pass_as_its_last_lines_stays_forgotten(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "peerchat.db")
    store = open_store(path)
    store.load()
    store.begin(lambda: 2)
    store.kept("dev", Message(1, "alice", "one", 1_000), "o1")
    store.kept("dev", Message(2, "alice", "two", 2_000), "o1")
    store.forgot_room("dev", (2, 2_000))
    await asyncio.sleep(0)
    crash(store)
    saved = open_store(path).load()
    assert saved.rooms == []
    assert saved.ended == {"dev": (2, 2_000)}  # what it said last is remembered


async def test_one_server_at_a_time_uses_a_file(tmp_path: Path) -> None:
    async with running_server(store=store_of(tmp_path)):
        with pytest.raises(StartupError, match="in use by another peerchat server"):
            async with running_server(store=store_of(tmp_path)):
                pass  # pragma: no cover


async def test_restored_sessions_fit_the_book_and_hold_only_their_own_names(
    tmp_path: Path,
) -> None:
    store = store_of(tmp_path)
    async with running_server(store=store, resume_window=60) as server:
        for nick, source in (("alice", "127.0.0.1"), ("bob", "127.0.0.2"), ("carol", "127.0.0.3")):
            peer = await RichPeer.connect(server.port, nick, source=source)
            peer.writer.transport.abort()
            await console_of(server).wait_for("removed from peers list", count=["alice", "bob",
                                              "carol"].index(nick) + 1)  # fmt: skip
    before = dict(rows(tmp_path, "SELECT nick, digest FROM sessions"))
    # Room for two: the newest two wait for their people; alice's name is free.
    async with running_server(store=store, resume_window=60, max_connections=2) as server:
        names = [(await RichPeer.connect(server.port, nick)).nick for nick in ("alice", "carol")]
        assert names == ["alice", "carol_2"]
    kept = {digest for (digest,) in rows(tmp_path, "SELECT digest FROM sessions")}
    assert before["alice"] not in kept  # the file forgot it too, not only this run
    assert {before["bob"], before["carol"]} <= kept


async def test_a_stuck_disk_does_not_hold_up_a_stop_and_is_not_marked_clean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlstore, "CLOSE_TIMEOUT", 0.2)
    release = threading.Event()
    try:
        async with running_server(store=store_of(tmp_path)) as server:
            store = sqlite_of(server)
            store._db = Stuck(store.db, release)  # type: ignore[assignment]
            alice = await PlainPeer.connect(server.port)
            await alice.say("never written")
            await alice.expect_none(skip=BANNER)
        assert "could not write everything" in "\n".join(console_of(server).lines)
    finally:
        release.set()
        if store._thread is not None:
            store._thread.join(timeout=10)
        store._let_go()
    saved = open_store(str(tmp_path / "peerchat.db")).load()
    assert saved.unclean


async def test_lines_of_a_room_let_go_of_while_they_waited_do_not_stay_counted(
    tmp_path: Path,
) -> None:
    said: list[str] = []
    changed = asyncio.Event()

    def log(tag: str, text: str) -> None:
        said.append(text)
        changed.set()

    async def until(needle: str) -> None:
        for _ in range(100):
            if any(needle in text for text in said):
                return
            changed.clear()
            await asyncio.wait_for(changed.wait(), 10)
        raise AssertionError(f"never said {needle!r}: {said}")

    store = sqlstore.SqliteStore(str(tmp_path / "peerchat.db"), keep=10, retention=0,
                                 window=60, stats=Stats(), log=log)  # fmt: skip
    store.load()
    store.begin(lambda: 11)
    real = store.db
    store._db = Failing(real)  # type: ignore[assignment]
    for n in range(1, 11):
        store.kept("dev", Message(n, "alice", f"line {n}", n), "o")
    await asyncio.sleep(0)  # the pass ends: handed over, and it fails
    await until("Writing to the store failed")
    store.forgot_room("dev", (10, 10))  # while its lines wait to be tried again
    store._db = real
    store.kept("lobby", Message(11, "bob", "hi", 11), "o")
    await until("works again")
    assert store._behind == 0  # (it counted the dev lines as waiting for ever)
    await store.close()
    assert rows(tmp_path, "SELECT text FROM messages") == [("hi",)]


def test_rows_go_to_sqlite_in_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlbatch, "CHUNK_ROWS", 3)
    monkeypatch.setattr(sqlbatch, "CHUNK_CHARS", 10_000)  # (the long line goes alone)
    db = open_database(str(tmp_path / "peerchat.db"))
    texts = ['quote " and \\ back', "emoji 😀 ñ", "tab\there", "x" * 16_384] + [
        f"line {n}" for n in range(6)
    ]
    sqlbatch.insert(db, [("lobby", n, n, "lobby", "a", t, n % 2, "o") for n, t in enumerate(texts)])
    got = db.execute("SELECT id, text, action, typeof(id) FROM messages ORDER BY id").fetchall()
    assert [(i, t, a) for i, t, a, _ in got] == [(n, t, n % 2) for n, t in enumerate(texts)]
    assert {kind for *_, kind in got} == {"integer"}


def test_the_file_keeps_marks_of_at_most_so_many_rooms_that_keep_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlbatch, "MARKS_KEPT", 2)
    db = open_database(str(tmp_path / "peerchat.db"))
    for n in range(5):
        sqlbatch.forgot(db, f"room{n}", n + 1, 1_000 * (n + 1))
    sqlbatch.sweep(db, None, 0)
    assert db.execute("SELECT room_key FROM rooms ORDER BY room_key").fetchall() == [
        ("room3",), ("room4",),
    ]  # fmt: skip
    assert db.execute("SELECT value FROM meta WHERE key = 'ended_forgot'").fetchall() == [("1",)]


def test_marks_and_what_passed_the_retention_while_down_are_gaps_after_a_restart(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "peerchat.db")
    db = open_database(path)
    sqlbatch.insert(db, [("dev", 5, 1_000, "dev", "a", "long ago", 0, "o")])
    sqlbatch.forgot(db, "lobby", 7, 2_000)  # the lobby keeps nothing, and said id 7
    db.close()
    store = sqlstore.SqliteStore(path, keep=10, retention=86_400, window=60, stats=Stats(),
                                 log=lambda tag, text: None)  # fmt: skip
    saved = store.load()
    store._let_go()
    assert saved.rooms == []  # (past the retention)
    book: RoomBook[Any] = RoomBook(Keep(20, 32_768, 1_000, 262_144))
    book.restore(saved)
    assert book.missed(book.lobby, (3, None), "o", floor=3) == ([], True)
    assert book.missed(book.get_or_make("dev"), (3, None), "o", floor=3) == ([], True)


def test_connections_of_two_runs_have_different_names() -> None:
    first, second = Registry(ServerConfig()), Registry(ServerConfig())
    assert first.next_connection() != second.next_connection()


class Kept(MemoryStore):
    """A store that outlives the process, as the room book sees it: what it is told."""

    durable = True

    def __init__(self) -> None:
        self.forgotten: list[tuple[str, tuple[int, int]]] = []

    def forgot_room(self, room: str, last: tuple[int, int]) -> None:
        self.forgotten.append((room, last))


def test_at_most_so_many_empty_rooms_keep_their_history_the_quietest_go(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rooms_module, "ENDED_ROOMS_KEPT", 2)
    store = Kept()
    book: RoomBook[Any] = RoomBook(Keep(20, 32_768, 1_000, 262_144), store=store)
    for n, name in enumerate(("old", "middle", "new"), start=1):
        room = book.get_or_make(name)
        book.remember(room, Message(n, "a", f"in {name}", n), "o")
        book.drop_if_empty(room)
    assert store.forgotten == [("old", (1, 1))]  # the quietest went, and the store forgot it
    assert book.history(book.get_or_make("middle"))[0].text == "in middle"
    assert book.history(book.get_or_make("old")) == []


def test_sessions_past_their_resume_window_are_not_restored(tmp_path: Path) -> None:
    path = str(tmp_path / "peerchat.db")
    db = open_database(path)
    now = time.time()
    for digest, gone_at in (("recent", now - 30), ("expired", now - 120)):
        db.execute("INSERT INTO sessions VALUES (?, ?, 'lobby', 0, 0, 'a', 0, ?)",
                   (digest, digest, gone_at))  # fmt: skip
    db.close()
    saved = open_store(path).load()  # (a window of 60 s)
    assert [state.digest for state in saved.sessions] == ["recent"]


async def test_private_messages_are_never_kept(tmp_path: Path) -> None:
    async with running_server(store=store_of(tmp_path)) as server:
        alice = await RichPeer.connect(server.port, "alice")
        bob = await RichPeer.connect(server.port, "bob")
        await alice.send(Say("just between us", to="bob"))
        await bob.expect(Message, lambda m: m.to == "bob", skip=lambda e: True)
        await alice.send(Say("for the room"))
        await bob.expect(Message, lambda m: m.text == "for the room", skip=lambda e: True)
    assert rows(tmp_path, "SELECT text FROM messages") == [("for the room",)]


async def test_the_file_can_be_backed_up_while_the_server_runs(tmp_path: Path) -> None:
    """README: sqlite3 /data/peerchat.db ".backup copy.db" while the server runs (the
    SQLite shell's .backup is the backup API used here)."""
    async with running_server(store=store_of(tmp_path)) as server:
        alice = await PlainPeer.connect(server.port)
        await alice.say("in the backup")
        for _ in range(1000):  # until the writer has it (its count says so), 10 s at most
            if server.relay.stats.store_written:
                break
            await asyncio.sleep(0.01)
        live = sqlite3.connect(tmp_path / "peerchat.db")
        copy = sqlite3.connect(tmp_path / "copy.db")
        live.backup(copy)  # while the server holds the file and its lock
        live.close()
        await alice.say("still chatting")
        await alice.expect_none(skip=BANNER)
    assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert copy.execute("SELECT text FROM messages").fetchall() == [("in the backup",)]
    copy.close()
