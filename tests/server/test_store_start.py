"""``--store``: a real ``peerchat-server`` process, started on bad files and killed (-9).

A store that cannot be used is one ``[ERROR]`` line and exit status 2, never a
traceback. ``kill -9`` loses at most what the writer had not committed (PROTOCOL.md
§8): here, with a line per loop pass, at most the last one; and ids given before the
kill are never given again.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from peerchat_protocol import History, Info, Message, Say
from peerchat_server.sqlschema import APPLICATION_ID, open_database

from .peers import WAIT, PlainPeer, RichPeer

SERVER = [sys.executable, "-m", "peerchat_server", "--port", "0"]
STARTED = re.compile(r"\[SUCCESS\] Server started on 127\.0\.0\.1:(\d+)")


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("PEERCHAT_", "FORCE_COLOR"))}


def refused(store: str, *, read_only: Path | None = None) -> str:
    """Start a server on ``store``; it must refuse with one line and status 2.
    ``read_only``: a directory the server sees mounted read-only."""
    command = [*SERVER, "--store", store]
    if read_only is not None:  # (root writes any file: only a read-only mount stops it)
        where = str(read_only)
        command = ["unshare", "--mount", "--propagation", "private", "sh", "-ec",
                   'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" "$1" && shift '
                   '&& exec "$@"', "sh", where, *command]  # fmt: skip
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=WAIT,
        stdin=subprocess.DEVNULL, env=env(),
    )  # fmt: skip
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 2, output
    assert len(output.splitlines()) == 1, output
    assert output.startswith("[ERROR] ")
    assert "Traceback" not in output
    return output


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(os.urandom(4096))
    output = refused(f"sqlite:///{junk}")
    assert "file is not a database" in output
    assert "move it away to start afresh" in output


def test_a_missing_directory_is_refused(tmp_path: Path) -> None:
    output = refused(f"sqlite:///{tmp_path}/no/such/dir/peerchat.db")
    assert "check that its directory exists" in output


def test_a_database_of_another_program_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE accounts (name TEXT)")
    assert "a SQLite database of another program" in refused(f"sqlite:///{other}")
    with sqlite3.connect(other) as db:
        assert db.execute("SELECT name FROM sqlite_master").fetchall() == [("accounts",)]


def test_a_database_of_a_newer_peerchat_is_refused(tmp_path: Path) -> None:
    newer = tmp_path / "newer.db"
    with sqlite3.connect(newer) as db:
        db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        db.execute("PRAGMA user_version = 99")
    output = refused(f"sqlite:///{newer}")
    assert "written by a newer peerchat (schema 99" in output


def test_a_store_that_is_not_a_url_is_refused() -> None:
    assert "give memory, or sqlite:///PATH" in refused("postgres://db/chat")


def test_a_read_only_database_is_refused(tmp_path: Path) -> None:
    """A database on a read-only mount (CI runs as root, whom file modes do not stop)."""
    store = tmp_path / "ro.db"
    open_database(str(store)).close()  # a peerchat database, made by this version
    if os.geteuid() == 0:
        output = refused(f"sqlite:///{store}", read_only=tmp_path)
    else:
        store.chmod(0o444)
        tmp_path.chmod(0o555)
        output = refused(f"sqlite:///{store}")
    assert "read-only" in output or "readonly" in output, output


async def start(store: str) -> tuple[asyncio.subprocess.Process, int]:
    proc = await asyncio.create_subprocess_exec(
        *SERVER, "--store", store, "--flood-rate", "0",
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env(),
    )  # fmt: skip
    assert proc.stdout is not None
    for _ in range(20):
        line = (await asyncio.wait_for(proc.stdout.readline(), WAIT)).decode()
        if match := STARTED.search(line):
            asyncio.get_running_loop().create_task(proc.stdout.read())  # keep it drained
            return proc, int(match.group(1))
    raise AssertionError("the server did not start")


async def test_kill_9_loses_at_most_the_last_pass_and_never_reuses_an_id(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'peerchat.db'}"
    proc, port = await start(store)
    try:
        talker = await PlainPeer.connect(port)
        listener = await RichPeer.connect(port, "listener")
        said: list[Message] = []
        for n in range(50):  # one line per loop pass: each waits for the last to arrive
            await talker.say(f"line {n}")
            said.append(await listener.expect(Message, skip=lambda e: True))
    finally:
        proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(proc.wait(), WAIT)
    proc, port = await start(store)
    try:
        late = await RichPeer.connect(port, "late")
        await late.expect_none(skip=Message)
        await late.send(History())
        kept: list[Message] = []
        while not isinstance(event := await late.event(), Info):
            assert isinstance(event, Message)
            kept.append(event)
        assert [m.text for m in kept] == [m.text for m in said[: len(kept)]]
        lost = len(said) - len(kept)
        print(f"kill -9: {lost} of {len(said)} lines lost")
        assert lost <= 1, f"kill -9 lost {lost} lines"
        await late.send(Say("after the kill"))
        talker = await RichPeer.connect(port, "talker")
        after = await talker.expect(Message, lambda m: m.text == "after the kill", skip=Message)
        assert after.id > said[-1].id  # even the ids of what was lost are not given again
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), WAIT)
