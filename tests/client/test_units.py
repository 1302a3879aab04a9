"""Pure parts of the client: line parsing, rendering, colour choice, backoff, port check."""

from __future__ import annotations

import io
import itertools
import socket

import pytest

from peerchat_client.commands import Complain, Leave, Send, parse_line
from peerchat_client.config import ClientConfig, hostport
from peerchat_client.console import Console, JsonPrinter, Tag, color_wanted, describe, paint
from peerchat_client.session import (
    BACKOFF_CAP,
    ListenPortTaken,
    backoff_delays,
    check_listen_port,
)
from peerchat_protocol import (
    Bye,
    ChangeNick,
    Error,
    Help,
    Info,
    Joined,
    Left,
    Message,
    PeerInfo,
    Ping,
    Renamed,
    Roster,
    Say,
    Welcome,
    Who,
)

# --- typed lines -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("hello", Send(Say("hello"), echo="hello")),
        ("hello\n", Send(Say("hello"), echo="hello")),
        ("q", Leave()),
        ("  q  ", Leave()),
        ("/quit", Leave()),
        ("/QUIT gone fishing", Leave("gone fishing")),
        ("/who", Send(Who())),
        ("/help", Send(Help())),
        ("/nick bob", Send(ChangeNick("bob"))),
        ("//who", Send(Say("/who"), echo="/who")),
        ("qq", Send(Say("qq"), echo="qq")),
        ("", None),
        ("   ", None),
        ("\x1b[31m", None),
    ],
)
def test_parse_line(line: str, expected: object) -> None:
    assert parse_line(line) == expected


def test_parse_line_scripting_mode_sends_q() -> None:
    assert parse_line("q", bare_q_quits=False) == Send(Say("q"), echo="q")
    assert parse_line("/quit", bare_q_quits=False) == Leave()


def test_parse_line_strips_terminal_escapes_from_what_is_sent() -> None:
    assert parse_line("hi \x1b]0;pwned\x07there\tyou") == Send(
        Say("hi there you"), echo="hi there you"
    )


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("/nick", "usage: /nick NAME"),
        ("/nick bad name", "cannot use 'bad name' as a nickname"),
        ("/nick server", "reserved"),
        ("/dance", "unknown command /dance: type /help"),
    ],
)
def test_parse_line_complaints(line: str, needle: str) -> None:
    action = parse_line(line)
    assert isinstance(action, Complain)
    assert needle in action.message


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
    ],
)
def test_describe(event: object, lines: list[tuple[Tag, str]]) -> None:
    assert describe(event) == lines  # type: ignore[arg-type]


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


def test_backoff_doubles_up_to_the_cap() -> None:
    delays = list(itertools.islice(backoff_delays(), 8))
    assert delays[:6] == [0.1, 0.2, 0.4, 0.8, 1.6, BACKOFF_CAP]
    assert delays[6:] == [BACKOFF_CAP, BACKOFF_CAP]


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
