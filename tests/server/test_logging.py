"""The server's log as a real process writes it: --log-format, --log-level, --no-log-messages.

Every line of each format is parsed: JSON lines with json.loads (and their fields
checked), text lines against the seed's ``[TAG] text``.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import signal
import socket
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest

from peerchat_protocol import Entered, JoinRoom, Left, Say
from peerchat_server.console import LOGGER, Console, event_name

from .peers import MEMBERSHIP, WAIT, PlainPeer, RichPeer, close_and_read, membership_line
from .test_cli import SERVER, clean_env

#: What alice says in the room, and (with it) in private: the words to look for in the log.
SECRET = "the password is swordfish"
TEXT_LINE = re.compile(r"^\[[A-Z ]+\] ")
#: ISO 8601 in UTC, to the millisecond.
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|\+00:00)$")
LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}


@dataclass
class Chat:
    """What a scripted chat left: the server's output, and who was who."""

    output: str
    alice: str  # her address, host:port
    bob: str

    @property
    def lines(self) -> list[str]:
        return self.output.splitlines()

    def records(self) -> list[dict[str, Any]]:
        """Every line, as JSON (a line that is not one fails the test)."""
        return [json.loads(line) for line in self.lines]


async def _stop(proc: asyncio.subprocess.Process) -> str:
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(proc.wait(), WAIT) == 0
    assert proc.stdout is not None
    return (await proc.stdout.read()).decode()


async def _spawn(args: tuple[str, ...], env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *SERVER, *args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, env=clean_env(**env),
    )  # fmt: skip


async def scripted_chat(*args: str, **env: str) -> Chat:
    """alice (a JSON client) and bob (``nc``) meet in #dev; alice says SECRET, then
    whispers it; bob sends a bad line, then is cut off (a reset); SIGTERM."""
    proc = await _spawn(("--port", "0", *args), env)
    assert proc.stdout is not None
    first = (await asyncio.wait_for(proc.stdout.readline(), WAIT)).decode()
    found = re.search(r"Server started on 127\.0\.0\.1:(\d+)", first)
    assert found, first
    port = int(found.group(1))
    alice = await RichPeer.connect(port, "alice")
    bob = await PlainPeer.connect(port)
    await bob.say("/nick bob")
    await bob.expect("known as bob", skip=membership_line)
    await bob.say("/join #dev")
    await bob.expect("You are now in #dev", skip=membership_line)
    await alice.send(JoinRoom("dev"))
    await alice.expect(Entered, skip=MEMBERSHIP)
    await alice.send(Say(SECRET))
    await bob.expect(f"<alice> {SECRET}", skip=lambda line: line.startswith("***"))
    await alice.send(Say(f"psst: {SECRET}", to="bob"))
    await bob.expect("[PM from alice]", skip=membership_line)
    await bob.send(b"\xff\n")  # not UTF-8: a protocol error
    await bob.expect("! invalid UTF-8")
    bob.reset()
    await alice.expect(Left, skip=MEMBERSHIP)
    alice_addr = "{}:{}".format(*alice.writer.get_extra_info("sockname")[:2])
    return Chat(first + await _stop(proc), alice_addr, bob.addr)


def one(records: list[dict[str, Any]], event: str, **fields: Any) -> dict[str, Any]:
    """The one record of ``event`` with these ``fields``."""
    found = [
        r for r in records if r["event"] == event and all(r.get(k) == v for k, v in fields.items())
    ]
    assert len(found) == 1, (event, fields, found)
    return found[0]


async def test_every_json_line_is_an_object_with_time_level_event_and_who() -> None:
    # FORCE_COLOR too: JSON is never coloured, wherever it goes.
    chat = await scripted_chat("--log-format", "json", FORCE_COLOR="1")
    assert "\x1b" not in chat.output
    records = chat.records()
    for record in records:
        assert TIME.match(record["time"]), record
        when = datetime.fromisoformat(record["time"])
        assert when.utcoffset() == timedelta(0)
        assert record["level"] in LEVELS
        assert record["event"] == event_name(record["tag"])
        assert isinstance(record["message"], str)
        assert "\n" not in record["message"]
    alice, bob = chat.alice, chat.bob
    said = one(records, "received")
    assert said["level"] == "INFO"
    assert said["message"] == f"From alice ({alice}) in #dev: {SECRET}"
    assert (said["peer"], said["nick"], said["room"]) == (alice, "alice", "dev")
    assert (said["text"], said["chars"]) == (SECRET, len(SECRET))
    private = one(records, "private")
    assert (private["peer"], private["nick"], private["room"], private["to"]) == (
        alice, "alice", "dev", "bob",
    )  # fmt: skip
    assert SECRET not in json.dumps(private)  # a private message's text is never logged
    renamed = one(records, "nick", peer=bob)
    assert (renamed["nick"], renamed["old_nick"], renamed["room"]) == ("bob", bob, "lobby")
    bad = one(records, "protocol_error")
    assert (bad["level"], bad["peer"], bad["nick"], bad["code"]) == (
        "WARNING", bob, "bob", "bad_utf8",
    )  # fmt: skip
    assert one(records, "connection_reset")["peer"] == bob
    gone = one(records, "disconnected", peer=bob)
    assert (gone["nick"], gone["room"]) == ("bob", "dev")
    assert "nick" not in one(records, "new_connection", peer=bob)  # not known yet: left out
    assert [r["connections"] for r in records if r["event"] == "active_connections"] == [1, 2, 1, 0]
    started, *_, stopped = records
    assert (started["event"], stopped["event"]) == ("success", "stopped")
    assert "peer" not in started  # the server's own lines are about no peer


async def test_every_text_line_is_a_seed_tag_and_the_text_the_json_has() -> None:
    chat = await scripted_chat()  # the default: the seed's text
    for line in chat.lines:
        assert TEXT_LINE.match(line), line
    alice, bob = chat.alice, chat.bob
    for expected in (
        f"[NEW CONNECTION] Peer {bob} connected.",
        f"[NICK] Peer {bob} is now bob.",
        f"[RECEIVED] From alice ({alice}) in #dev: {SECRET}",
        f"[PRIVATE] From alice ({alice}) to bob ({bob}).",
        f"[PROTOCOL ERROR] Peer bob ({bob}): invalid UTF-8 at byte 0: the line was discarded; "
        "send text as UTF-8 (bad_utf8).",
        f"[DISCONNECTED] bob ({bob}) removed from peers list.",
    ):
        assert expected in chat.lines
    assert not any(line.startswith("{") for line in chat.lines)


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_no_log_messages_keeps_chat_text_out_but_says_who_said_how_much(
    log_format: str,
) -> None:
    # The option in one format, its environment variable in the other.
    if log_format == "text":
        chat = await scripted_chat("--no-log-messages")
    else:
        chat = await scripted_chat("--log-format", "json", PEERCHAT_NO_LOG_MESSAGES="1")
    assert "swordfish" not in chat.output
    said = f"From alice ({chat.alice}) in #dev: {len(SECRET)} characters."
    if log_format == "text":
        assert f"[RECEIVED] {said}" in chat.lines
        return
    received = one(chat.records(), "received")
    assert (received["message"], received["chars"], received["nick"]) == (said, 25, "alice")
    assert "text" not in received


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def connect_when_up(port: int) -> PlainPeer:
    """The server says nothing at start at this level: its port answering is the sign."""
    deadline = asyncio.get_running_loop().time() + WAIT
    while True:
        try:
            return await PlainPeer.connect(port)
        except ConnectionRefusedError:
            assert asyncio.get_running_loop().time() < deadline, "the server never listened"
            await asyncio.sleep(0.05)


async def test_log_level_warning_leaves_out_the_info_lines() -> None:
    port = free_port()
    proc = await _spawn(
        ("--port", str(port), "--log-format", "json", "--max-line-bytes", "64"),
        {"PEERCHAT_LOG_LEVEL": "warning"},
    )
    nc = await connect_when_up(port)
    await nc.say("/nick carol")
    await nc.expect("known as carol", skip=membership_line)
    await nc.say("x" * 100)  # over --max-line-bytes: a protocol error, a WARNING
    await nc.expect("! line too long", skip=membership_line)
    await nc.say("said but not logged")
    await nc.expect_none()  # (it was read: the answer to a line sent after it came)
    records = [json.loads(line) for line in (await _stop(proc)).splitlines()]
    assert [(r["event"], r["level"], r["nick"]) for r in records] == [
        ("protocol_error", "WARNING", "carol")
    ]


@pytest.mark.parametrize(
    ("args", "env", "needle"),
    [
        (["--log-format", "xml"], {}, "'xml' is not one of 'text', 'json'"),
        ([], {"PEERCHAT_LOG_LEVEL": "loud"}, "Invalid value in PEERCHAT_LOG_LEVEL"),
    ],
)
def test_a_bad_log_option_is_a_usage_error(
    args: list[str], env: dict[str, str], needle: str
) -> None:
    result = subprocess.run(
        [*SERVER, *args], capture_output=True, text=True, timeout=WAIT,
        stdin=subprocess.DEVNULL, env=clean_env(**env),
    )  # fmt: skip
    assert result.returncode == 2
    assert needle in result.stderr
    assert result.stderr.startswith("[ERROR] ")


@pytest.mark.timeout(10)
def test_a_json_log_nobody_reads_never_blocks_and_counts_what_it_drops() -> None:
    read_end, write_end = os.pipe()
    stream = io.TextIOWrapper(os.fdopen(write_end, "wb"), encoding="utf-8")
    logger = logging.Logger(LOGGER)  # (not the process's: other tests' consoles use it)
    console = Console(stream, log_format="json", background=True, logger=logger)
    # Far past what the pipe and the queue hold, while nobody reads: each call returns
    # at once, or the test fails by its timeout.
    for i in range(20_000):
        console.line("RECEIVED", "y" * 200, n=i)
    written = close_and_read(console, stream, read_end)
    records = [json.loads(line) for line in written.decode().splitlines()]
    shown = [r["n"] for r in records if r["event"] == "received"]
    dropped = [r["dropped"] for r in records if r["event"] == "lines_dropped"]
    assert shown == sorted(shown)
    assert shown[0] == 0
    assert sum(dropped) > 0
    assert len(shown) + sum(dropped) == 20_000
    assert all(r["level"] == "WARNING" for r in records if r["event"] == "lines_dropped")


def test_tags_name_their_events_and_levels() -> None:
    stream = io.StringIO()
    console = Console(stream, log_format="json", level=logging.DEBUG, logger=logging.Logger("t"))
    for tag in ("NEW CONNECTION", "AUTH FAILED", "ERROR", "BUS"):
        console.line(tag, "text")
    console.line("BUS", "all is well", level=logging.INFO, event="bus_news", peer=None)
    got = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(r["event"], r["level"]) for r in got] == [
        ("new_connection", "INFO"),
        ("auth_failed", "WARNING"),
        ("error", "ERROR"),
        ("bus", "WARNING"),
        ("bus_news", "INFO"),
    ]
    assert "peer" not in got[-1]  # a field given as None is left out, never null


def test_lines_are_records_of_the_peerchat_logger_which_keeps_them_from_the_root() -> None:
    class Keep(logging.Handler):
        def __init__(self) -> None:
            super().__init__()
            self.records: list[logging.LogRecord] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.records.append(record)

    at_root, in_app = Keep(), Keep()
    logging.getLogger().addHandler(at_root)
    logging.getLogger(LOGGER).addHandler(in_app)  # an app that embeds the server
    try:
        stream = io.StringIO()
        console = Console(stream)
        console.line("NICK", "Peer 10.0.0.1:5 is now alice.", peer="10.0.0.1:5", nick="alice")
    finally:
        logging.getLogger().removeHandler(at_root)
        logging.getLogger(LOGGER).removeHandler(in_app)
    assert stream.getvalue() == "[NICK] Peer 10.0.0.1:5 is now alice.\n"
    assert at_root.records == []  # not twice: pytest's handlers and an app's root see none
    [record] = in_app.records
    assert (record.levelno, record.getMessage()) == (logging.INFO, "Peer 10.0.0.1:5 is now alice.")
    assert (record.event, record.peer, record.nick) == ("nick", "10.0.0.1:5", "alice")  # type: ignore[attr-defined]
