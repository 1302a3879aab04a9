"""Pure parts of the client: line parsing, rendering, mentions, completion, colour, backoff."""

from __future__ import annotations

import io
import os
import socket
import time
from collections.abc import Iterator

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from peerchat_client.commands import (
    COMMAND_NAMES,
    COMMANDS,
    Complain,
    Leave,
    Send,
    SetTimestamps,
    ShowHelp,
    help_lines,
    parse_line,
)
from peerchat_client.completion import ChatCompleter, Known, RecentNames
from peerchat_client.config import ClientConfig, hostport
from peerchat_client.console import (
    BELL,
    DIMMED,
    HIGHLIGHT,
    Console,
    Display,
    JsonPrinter,
    Tag,
    color_wanted,
    describe,
    local_clock,
    mentions,
    paint,
)
from peerchat_client.dial import check_listen_port
from peerchat_client.errors import ListenPortTaken
from peerchat_protocol import (
    PLAIN_COMMANDS,
    Bye,
    ChangeNick,
    Entered,
    Error,
    Info,
    Joined,
    JoinRoom,
    LeaveRoom,
    Left,
    ListRooms,
    Message,
    PeerInfo,
    Ping,
    Renamed,
    RoomInfo,
    Rooms,
    Roster,
    Say,
    Welcome,
    Who,
)

# --- typed lines -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("hello", Send(Say("hello"))),
        ("hello\n", Send(Say("hello"))),
        ("q", Leave()),
        ("  q  ", Leave()),
        ("/quit", Leave()),
        ("/QUIT gone fishing", Leave("gone fishing")),
        ("/who", Send(Who())),
        ("/help", ShowHelp()),
        ("/nick bob", Send(ChangeNick("bob"))),
        ("//who", Send(Say("/who"))),
        ("qq", Send(Say("qq"))),
        ("/join games", Send(JoinRoom("games"))),
        ("/join #games", Send(JoinRoom("games"))),
        ("/leave", Send(LeaveRoom())),
        ("/rooms", Send(ListRooms())),
        ("/msg bob see you  at 5 ", Send(Say("see you  at 5", to="bob"))),
        ("/msg 127.0.0.1:5001 hi", Send(Say("hi", to="127.0.0.1:5001"))),
        ("/me waves", Send(Say("waves", action=True))),
        ("/timestamps off", SetTimestamps(on=False)),
        ("/TIMESTAMPS ON", SetTimestamps(on=True)),
        ("", None),
        ("   ", None),
        ("\x1b[31m", None),
    ],
)
def test_parse_line(line: str, expected: object) -> None:
    assert parse_line(line) == expected


def test_parse_line_scripting_mode_sends_q() -> None:
    assert parse_line("q", bare_q_quits=False) == Send(Say("q"))
    assert parse_line("/quit", bare_q_quits=False) == Leave()


def test_parse_line_strips_terminal_escapes_from_what_is_sent() -> None:
    assert parse_line("hi \x1b]0;pwned\x07there\tyou") == Send(Say("hi there you"))


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("/nick", "usage: /nick NAME"),
        ("/nick bad name", "cannot use 'bad name' as a nickname"),
        ("/nick server", "reserved"),
        ("/dance", "unknown command /dance: type /help"),
        ("/join", "usage: /join ROOM (for example: /join games)"),
        ("/join #", "usage: /join ROOM"),
        ("/join bad!room", "cannot use 'bad!room' as a room name: a room name uses only"),
        ("/join -x", "for example: /join games"),
        ("/msg", "usage: /msg NICK TEXT"),
        ("/msg bob", "usage: /msg NICK TEXT"),
        ("/msg bob    ", "usage: /msg NICK TEXT"),
        ("/me", "usage: /me ACTION (for example: /me waves)"),
        ("/timestamps", "usage: /timestamps on|off"),
        ("/timestamps maybe", "usage: /timestamps on|off"),
    ],
)
def test_parse_line_complaints(line: str, needle: str) -> None:
    action = parse_line(line)
    assert isinstance(action, Complain)
    assert needle in action.message


def test_help_lists_every_command_once_per_mode() -> None:
    interactive = "\n".join(help_lines(interactive=True))
    script = "\n".join(help_lines(interactive=False))
    for command in COMMANDS:
        assert interactive.count(f"  {command.usage} ") == 1, command
        assert script.count(f"  {command.usage} ") == (0 if command.interactive_only else 1)
    # Every command the server offers is one this client knows and lists (/timestamps
    # too: it is handled locally, since this client formats its own lines).
    for name in PLAIN_COMMANDS:
        assert f"/{name}" in COMMAND_NAMES
        action = parse_line(f"/{name}")
        assert not (isinstance(action, Complain) and "unknown command" in action.message)


# --- rendering ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "lines"),
    [
        (Message(1, "alice", "hi", 0), [(Tag.RECEIVED, "<alice> hi")]),
        (Joined("bob", 3), [(Tag.INFO, "bob joined (3 online)")]),
        (Left("bob", 2, "quit"), [(Tag.INFO, "bob left: quit (2 online)")]),
        (Left("bob", 2), [(Tag.INFO, "bob left (2 online)")]),
        (Renamed("a", "b"), [(Tag.INFO, "a is now known as b")]),
        (Info("one\ntwo"), [(Tag.INFO, "one"), (Tag.INFO, "two")]),
        (Error("nick_taken", "taken"), [(Tag.ERROR, "taken")]),
        (
            Roster(3, (PeerInfo("a", "127.0.0.1:1"), PeerInfo("b", "127.0.0.1:2"))),
            [(Tag.INFO, "3 online: a (127.0.0.1:1), b (127.0.0.1:2) and 1 more")],
        ),
        (
            Welcome(1, "me", "127.0.0.1:5", 1, (PeerInfo("me", "127.0.0.1:5"),)),
            [(Tag.INFO, "You are me (127.0.0.1:5); 1 online: me")],
        ),
        (Ping("x"), []),
        (Bye("going"), []),  # reported as the run's final [ERROR] line instead
        # Protocol version 2: rooms, private messages, actions, history.
        (Message(1, "alice", "psst", 0, to="bob"), [(Tag.RECEIVED, "[PM from alice] psst")]),
        (Message(1, "alice", "waves", 0, action=True), [(Tag.RECEIVED, "* alice waves")]),
        (Message(1, "alice", "hi", 0, room="x", history=True), [(Tag.HISTORY, "<alice> hi")]),
        (
            Message(1, "alice", "waved", 0, action=True, history=True),
            [(Tag.HISTORY, "* alice waved")],
        ),
        (Joined("bob", 2, "games"), [(Tag.INFO, "bob joined #games (2 online)")]),
        (
            Left("bob", 1, "went to #games", "lobby"),
            [(Tag.INFO, "bob left #lobby: went to #games (1 online)")],
        ),
        (
            Entered("games", 2, (PeerInfo("alice", "a:1"), PeerInfo("bob", "b:2"))),
            [(Tag.INFO, "You are now in #games: 2 online: alice, bob")],
        ),
        (
            Roster(1, (PeerInfo("a", "127.0.0.1:1"),), "games"),
            [(Tag.INFO, "#games: 1 online: a (127.0.0.1:1)")],
        ),
        (
            Rooms((RoomInfo("games", 2), RoomInfo("lobby", 0))),
            [(Tag.INFO, "2 rooms: #games (2 online), #lobby (0 online)")],
        ),
        (Rooms((RoomInfo("lobby", 1),)), [(Tag.INFO, "1 room: #lobby (1 online)")]),
        (
            Welcome(2, "me", "127.0.0.1:5", 1, (PeerInfo("me", "127.0.0.1:5"),), room="lobby"),
            [(Tag.INFO, "You are me (127.0.0.1:5) in #lobby; 1 online: me")],
        ),
    ],
)
def test_describe(event: object, lines: list[tuple[Tag, str]]) -> None:
    assert describe(event) == lines  # type: ignore[arg-type]


@pytest.fixture
def tz_tokyo() -> Iterator[None]:
    """This process in UTC+9 (no daylight saving), so local time differs from UTC."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Tokyo"
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


@pytest.mark.usefixtures("tz_tokyo")
def test_timestamps_are_local_hh_mm() -> None:
    ts = 1_700_000_000_000  # 2023-11-14 22:13:20 UTC: 07:13 the next day in Tokyo
    assert local_clock(ts) == "07:13"
    assert describe(Message(1, "alice", "hi", ts), timestamps=True) == [
        (Tag.RECEIVED, "07:13 <alice> hi")
    ]
    assert describe(Message(1, "alice", "hi", ts, history=True), timestamps=True) == [
        (Tag.HISTORY, "07:13 <alice> hi")
    ]
    out = io.StringIO()
    console = Console(out, color=False, display=Display(timestamps=True))
    console.show(Message(1, "alice", "waves", ts, action=True))
    console.show(Joined("bob", 2, "games"))  # notices carry no time
    console.display.timestamps = False
    console.show(Message(2, "alice", "hi", ts))
    assert out.getvalue().splitlines() == [
        "[RECEIVED] 07:13 * alice waves",
        "[INFO] bob joined #games (2 online)",
        "[RECEIVED] <alice> hi",
    ]


def test_sent_lines_mark_private_messages_and_actions() -> None:
    out = io.StringIO()
    console = Console(out, color=False)
    console.said(Say("psst", to="bob"), "alice")
    console.said(Say("waves", action=True), "alice")
    console.said(Say("hi"), "alice")
    assert out.getvalue().splitlines() == [
        "[SENT] [PM to bob] psst",
        "[SENT] * alice waves",
        "[SENT] hi",
    ]
    out = io.StringIO()
    Console(out, color=False, display=Display(timestamps=True)).said(Say("hi"), "alice")
    assert out.getvalue()[:7] == "[SENT] " and out.getvalue()[9] == ":"  # noqa: PT018


# --- mentions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "nick", "expected"),
    [
        (Message(1, "bob", "hi alice", 0), "alice", True),
        (Message(1, "bob", "ALICE: lunch?", 0), "alice", True),
        (Message(1, "bob", "@Alice.", 0), "alice", True),
        (Message(1, "bob", "ask alice, then me", 0), "alice", True),
        (Message(1, "bob", "pokes alice", 0, action=True), "alice", True),
        (Message(1, "bob", "no names here", 0, to="alice"), "alice", True),  # private
        (Message(1, "bob", "alicette is not you", 0), "alice", False),
        (Message(1, "bob", "bob_alice neither", 0), "alice", False),
        (Message(1, "bob", "nor alice-2", 0), "alice", False),
        (Message(1, "bob", "nor alice.b", 0), "alice", False),
        (Message(1, "bob", "a.b is a nick with a dot", 0), "a.b", True),
        (Message(1, "bob", "hi alice", 0, history=True), "alice", False),  # replayed
        (Message(1, "Alice", "note to alice", 0), "alice", False),  # your own line
        (Message(1, "bob", "hi alice", 0), None, False),  # no nick yet
    ],
)
def test_mentions(message: Message, nick: str | None, expected: bool) -> None:
    assert mentions(message, nick) is expected


def _shown(event: object, *, nick: str = "alice", bell: bool = True, color: bool = True) -> str:
    out = io.StringIO()
    display = Display(bell=bell, me=lambda: nick)
    Console(out, color=color, display=display).show(event)  # type: ignore[arg-type]
    return out.getvalue()


def test_a_mention_is_highlighted_and_rings_the_bell() -> None:
    shown = _shown(Message(1, "bob", "hi alice", 0))
    assert HIGHLIGHT in shown
    assert shown.count(BELL) == 1
    assert shown.endswith(BELL + "\n")
    private = _shown(Message(1, "bob", "psst", 0, to="alice"))
    assert HIGHLIGHT in private
    assert BELL in private
    # --no-bell: still highlighted, silent; without colour: the bell alone tells.
    assert BELL not in _shown(Message(1, "bob", "hi alice", 0), bell=False)
    assert _shown(Message(1, "bob", "hi alice", 0), color=False) == (
        "[RECEIVED] <bob> hi alice" + BELL + "\n"
    )


def test_no_bell_and_no_highlight_otherwise() -> None:
    for event in (
        Message(1, "bob", "hi carol", 0),
        Message(1, "bob", "hi alice", 0, history=True),
        Message(1, "alice", "alice talking", 0),
        Joined("alice", 2),
        Info("alice, welcome"),
    ):
        shown = _shown(event)
        assert BELL not in shown, event
        assert HIGHLIGHT not in shown, event


def test_history_is_dimmed() -> None:
    shown = _shown(Message(1, "bob", "old news", 0, history=True))
    assert DIMMED in shown
    assert "[HISTORY]" in shown
    assert _shown(Message(1, "bob", "old news", 0, history=True), color=False) == (
        "[HISTORY] <bob> old news\n"
    )


def test_json_marks_history_private_and_actions() -> None:
    out = io.StringIO()
    JsonPrinter(out).show(Message(1, "bob", "old", 5, room="lobby", history=True))
    JsonPrinter(out).show(Message(2, "bob", "psst", 5, to="alice"))
    JsonPrinter(out).show(Message(3, "bob", "waves", 5, action=True))
    assert out.getvalue().splitlines() == [
        '{"type": "message", "id": 1, "nick": "bob", "text": "old", "ts": 5, "room": "lobby", '
        '"history": true}',
        '{"type": "message", "id": 2, "nick": "bob", "text": "psst", "ts": 5, "to": "alice"}',
        '{"type": "message", "id": 3, "nick": "bob", "text": "waves", "ts": 5, "action": true}',
    ]


def test_prompt_names_the_nick_and_room() -> None:
    console = Console(io.StringIO(), color=False)
    assert console.prompt("alice", "lobby") == (
        "[INPUT] alice@#lobby - Enter your message (or 'q' to quit): "
    )
    assert console.prompt("alice") == "[INPUT] alice - Enter your message (or 'q' to quit): "
    assert console.prompt() == "[INPUT] Enter your message (or 'q' to quit): "


# --- completion --------------------------------------------------------------------------


def _complete(completer: ChatCompleter, text: str) -> list[str]:
    found = completer.get_completions(Document(text), CompleteEvent(completion_requested=True))
    return [text[: len(text) + c.start_position] + c.text for c in found]


def _known() -> Known:
    known = Known()
    known.learn(
        Welcome(
            2, "alice", "a:1", 3, (PeerInfo("alice", "a:1"), PeerInfo("bob", "b:2")), room="lobby"
        )
    )
    known.learn(Joined("Bobby", 3, "lobby"))
    known.learn(Rooms((RoomInfo("games", 2), RoomInfo("garden", 1), RoomInfo("lobby", 3))))
    return known


def test_completer_commands_nicks_and_rooms() -> None:
    completer = ChatCompleter(_known(), lambda: "alice")
    assert _complete(completer, "/") == [f"{name}" for name in COMMAND_NAMES]
    assert _complete(completer, "/j") == ["/join"]
    assert _complete(completer, "/J") == ["/join"]
    assert _complete(completer, "/m") == ["/msg", "/me"]
    assert _complete(completer, "/msg bo") == ["/msg Bobby", "/msg bob"]  # newest first
    assert _complete(completer, "/msg al") == []  # not yourself
    assert _complete(completer, "/msg bob hi ") == []
    assert _complete(completer, "/join ga") == ["/join games", "/join garden"]
    assert _complete(completer, "/join #gar") == ["/join #garden"]
    assert _complete(completer, "/nick b") == []
    assert _complete(completer, "BOBB") == ["Bobby"]  # a nick at the start of a message
    assert _complete(completer, "thanks bob") == ["thanks Bobby", "thanks bob"]
    assert _complete(completer, "//j") == []
    assert _complete(completer, "") == []


def test_known_names_follow_renames_and_stay_bounded() -> None:
    known = _known()
    known.learn(Renamed("bob", "robert"))
    known.learn(Entered("den", 1, (PeerInfo("zed", "z:1"),)))
    known.learn(Message(1, "mallory", "hi", 0, room="den"))
    assert "bob" not in known.nicks
    assert {"robert", "zed", "mallory"} <= {n for n in known.nicks.starting_with("")}
    assert known.rooms.starting_with("d") == ["den"]
    names = RecentNames(limit=3)
    for i in range(10):
        names.add(f"n{i}")
    names.add("N8")  # seen again: moves to the front, keeping its newest spelling
    assert names.starting_with("n") == ["N8", "n9", "n7"]
    assert len(names) == 3


def test_console_plain_and_coloured() -> None:
    out = io.StringIO()
    Console(out, color=False).show(Message(1, "alice", "hi", 0))
    assert out.getvalue() == "[RECEIVED] <alice> hi\n"
    coloured = paint(Tag.ERROR, "boom", color=True)
    assert coloured.startswith("\x1b[") and coloured.endswith("[ERROR]\x1b[0m boom")  # noqa: PT018


def test_console_never_prints_control_characters() -> None:
    out = io.StringIO()
    Console(out, color=False).error("bad \x1b[2Jthing\x07")
    assert out.getvalue() == "[ERROR] bad thing\n"


def test_json_printer_writes_one_object_per_line() -> None:
    out = io.StringIO()
    JsonPrinter(out).show(Message(7, "ålice", "hé", 5))
    assert out.getvalue() == (
        '{"type": "message", "id": 7, "nick": "ålice", "text": "hé", "ts": 5}\n'
    )


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("tty", "env", "expected"),
    [
        (True, {}, True),
        (False, {}, False),
        (True, {"NO_COLOR": "1"}, False),
        (True, {"NO_COLOR": ""}, True),
        (False, {"FORCE_COLOR": "1"}, True),
        (True, {"NO_COLOR": "1", "FORCE_COLOR": "1"}, False),
    ],
)
def test_color_wanted(tty: bool, env: dict[str, str], expected: bool) -> None:
    stream = _Tty() if tty else io.StringIO()
    assert color_wanted(stream, env) is expected


# --- connecting --------------------------------------------------------------------------


def test_check_listen_port_free_and_taken() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(ListenPortTaken) as info:
            check_listen_port(port)
        assert info.value.exit_code == 2
        assert f"local port {port} is already in use" in info.value.message
    check_listen_port(port)  # released: free again
    check_listen_port(0)  # "any" is always fine


def test_hostport_brackets_ipv6() -> None:
    assert hostport("::1", 80) == "[::1]:80"
    assert ClientConfig(port=8080).server_label == "127.0.0.1:8080"
