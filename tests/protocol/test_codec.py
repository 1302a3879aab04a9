"""JSON and plain-text encodings, and decoding what peers send."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerchat_protocol import (
    CLIENT_EVENTS,
    SERVER_EVENTS,
    Bye,
    ChangeNick,
    Error,
    ErrorCode,
    Event,
    Hello,
    Help,
    Info,
    Joined,
    Left,
    LocalProtocolError,
    Message,
    PeerInfo,
    Ping,
    Pong,
    Quit,
    RemoteProtocolError,
    Renamed,
    Roster,
    Say,
    Welcome,
    Who,
    decode_plain,
    encode_json,
    encode_plain,
    from_wire,
    plain_help,
    render_plain,
)
from peerchat_protocol.codec import parse_json_object

PEERS = (PeerInfo("alice", "127.0.0.1:5001"), PeerInfo("10.0.0.2:4000", "10.0.0.2:4000"))

EVERY_EVENT: list[Event] = [
    Hello(1, "alice", "peerchat-client/0.1"),
    Hello(),
    Say('héllo "quoted" \\ back'),
    ChangeNick("bob"),
    Who(),
    Help(),
    Quit("bye now"),
    Quit(),
    Ping("t1"),
    Pong("t1"),
    Welcome(1, "alice", "127.0.0.1:5001", 2, PEERS, "peerchat-server/0.1.0", 16384),
    Message(42, "alice", "hi 🙂", 1_732_443_000_123),
    Joined("bob", 3),
    Left("bob", 2, "connection reset"),
    Left("bob", 2),
    Renamed("alice", "alicia"),
    Roster(5, PEERS),
    Info("line one\nline two"),
    Error(ErrorCode.NICK_TAKEN, "taken"),
    Bye("server shutting down", "shutdown"),
]


def decode(line: bytes, known: dict[str, type[Event]]) -> Event:
    return from_wire(parse_json_object(line.rstrip(b"\n")), known)


@pytest.mark.parametrize("event", EVERY_EVENT, ids=lambda e: type(e).__name__)
def test_json_round_trip(event: Event) -> None:
    data = encode_json(event)
    assert data.endswith(b"\n")
    assert data.count(b"\n") == 1  # one event, one line
    known = CLIENT_EVENTS if type(event) in CLIENT_EVENTS.values() else SERVER_EVENTS
    assert decode(data, known) == event


def test_json_is_utf8_compact_and_omits_none() -> None:
    assert encode_json(Quit()) == b'{"type":"quit"}\n'
    assert encode_json(Say("é")) == '{"type":"say","text":"é"}\n'.encode()


@given(st.text(min_size=1).filter(lambda t: t.isprintable()))
def test_any_printable_text_survives_json(text: str) -> None:
    assert decode(encode_json(Say(text)), CLIENT_EVENTS) == Say(text)


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    event = decode(b'{"type":"say","text":"hi","colour":"red","v2":{"x":1}}', CLIENT_EVENTS)
    assert event == Say("hi")


def test_text_off_the_wire_is_sanitized() -> None:
    event = decode(b'{"type":"say","text":"a\\u001b[31mb\\u0007c\\u202e"}', CLIENT_EVENTS)
    assert event == Say("abc")
    info = decode(b'{"type":"info","text":"one\\ntwo\\u001b]0;x\\u0007"}', SERVER_EVENTS)
    assert info == Info("one\ntwo")


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (b"not json", ErrorCode.BAD_JSON),
        (b'{"type":"say","text":"unterminated', ErrorCode.BAD_JSON),
        (b"[1,2]", ErrorCode.BAD_JSON),
        (b'"just a string"', ErrorCode.BAD_JSON),
        (b'{"type":"ping","token":NaN}', ErrorCode.BAD_JSON),
        (b"[" * 100_000 + b"]" * 100_000, ErrorCode.BAD_JSON),
        (b'{"type":"say","text":"\xff"}', ErrorCode.BAD_UTF8),
        (b'{"text":"no type"}', ErrorCode.BAD_FRAME),
        (b'{"type":7}', ErrorCode.BAD_FRAME),
        (b'{"type":"say"}', ErrorCode.BAD_FRAME),
        (b'{"type":"say","text":5}', ErrorCode.BAD_FRAME),
        (b'{"type":"say","text":""}', ErrorCode.BAD_FRAME),
        (b'{"type":"say","text":"\\u001b"}', ErrorCode.BAD_FRAME),
        (b'{"type":"nick","nick":"bad nick"}', ErrorCode.INVALID_NICK),
        (b'{"type":"hello","version":"1"}', ErrorCode.BAD_FRAME),
        (b'{"type":"welcome","version":1}', ErrorCode.UNKNOWN_TYPE),
        (b'{"type":"teleport"}', ErrorCode.UNKNOWN_TYPE),
    ],
)
def test_bad_frames_from_a_client(line: bytes, code: ErrorCode) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        decode(line, CLIENT_EVENTS)
    assert info.value.code is code
    assert info.value.message


@pytest.mark.parametrize(
    "line",
    [
        b'{"type":"roster","online":1,"peers":"alice"}',
        b'{"type":"roster","online":1,"peers":[{"nick":"a"}]}',
        b'{"type":"roster","online":1,"peers":[5]}',
        b'{"type":"message","id":1,"nick":"a","text":"t"}',
    ],
)
def test_bad_frames_from_a_server(line: bytes) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        decode(line, SERVER_EVENTS)
    assert info.value.code is ErrorCode.BAD_FRAME


@pytest.mark.parametrize(
    ("event", "text"),
    [
        (Message(1, "alice", "hello", 0), "<alice> hello"),
        (Joined("bob", 3), "* bob joined (3 online)"),
        (Left("bob", 2), "* bob left (2 online)"),
        (Left("bob", 2, "connection reset"), "* bob left: connection reset (2 online)"),
        (Renamed("a", "b"), "* a is now known as b"),
        (Info("one\ntwo"), "* one\n* two"),
        (Error("nick_taken", "nickname 'x' is taken"), "! nickname 'x' is taken"),
        (Bye("shutting down", "shutdown"), "! shutting down"),
        (Bye("Goodbye!"), "* Goodbye!"),
        (
            Roster(5, PEERS),
            "* 5 online:\n*   alice (127.0.0.1:5001)\n*   10.0.0.2:4000\n*   ... and 3 more",
        ),
    ],
)
def test_plain_rendering(event: Event, text: str) -> None:
    assert render_plain(event) == text
    assert encode_plain(event) == (text.replace("\n", "\r\n") + "\r\n").encode()
    assert b"\x1b" not in encode_plain(event)


@pytest.mark.parametrize("event", [Welcome(1, "a", "x:1", 1), Ping(), Say("x"), Hello()])
def test_plain_rendering_refuses_events_without_a_plain_form(event: Event) -> None:
    with pytest.raises(LocalProtocolError):
        render_plain(event)


@pytest.mark.parametrize(
    ("line", "event"),
    [
        (b"hello world", Say("hello world")),
        (b"  indented", Say("  indented")),
        ("unicodé ✓".encode(), Say("unicodé ✓")),
        (b"red \x1b[31mtext", Say("red text")),
        (b"//slash", Say("/slash")),
        (b"/nick bob", ChangeNick("bob")),
        (b"/NICK   bob  ", ChangeNick("bob")),
        (b"/who", Who()),
        (b"/help", Help()),
        (b"/quit", Quit()),
        (b"/quit see you all", Quit("see you all")),
        (b"", None),
        (b"   ", None),
        (b"\x1b[A", None),
    ],
)
def test_plain_decoding(line: bytes, event: Event | None) -> None:
    assert decode_plain(line) == event


@pytest.mark.parametrize(
    ("line", "code", "hint"),
    [
        (b"/bogus", ErrorCode.UNKNOWN_COMMAND, "/help"),
        (b"/nick", ErrorCode.BAD_COMMAND, "usage: /nick NAME"),
        (b"/nick bad name", ErrorCode.INVALID_NICK, "/nick NAME"),
        (b"/nick server", ErrorCode.INVALID_NICK, "reserved"),
        (b"caf\xe9", ErrorCode.BAD_UTF8, "UTF-8"),
        (b"\xff\xfe\x00junk", ErrorCode.BAD_UTF8, "UTF-8"),
    ],
)
def test_plain_decoding_errors_say_what_to_do(line: bytes, code: ErrorCode, hint: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        decode_plain(line)
    assert info.value.code is code
    assert hint in info.value.message
    assert not info.value.fatal


def test_help_lists_every_command() -> None:
    text = plain_help()
    for command in ("/nick", "/who", "/help", "/quit", "//"):
        assert command in text
    assert json.dumps(text)  # plain text, no surprises
