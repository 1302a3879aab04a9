"""JSON and plain-text encodings, and decoding what peers send."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from peerchat_protocol import (
    CLIENT_EVENTS,
    SERVER_EVENTS,
    Bye,
    ChangeNick,
    Entered,
    Error,
    ErrorCode,
    Event,
    Hello,
    Help,
    Info,
    Joined,
    JoinRoom,
    LeaveRoom,
    Left,
    ListRooms,
    LocalProtocolError,
    Message,
    Pass,
    PeerInfo,
    Ping,
    Pong,
    Quit,
    RemoteProtocolError,
    Renamed,
    RoomInfo,
    Rooms,
    Roster,
    Say,
    Timestamps,
    Welcome,
    Who,
    decode_plain,
    encode_json,
    encode_plain,
    from_wire,
    plain_help,
    render_plain,
    sanitize,
)
from peerchat_protocol.codec import parse_json_object
from peerchat_protocol.limits import SHORT_TEXT_MAX_LENGTH
from peerchat_protocol.plain import PLAIN_COMMANDS
from peerchat_protocol.text import is_clean, name_problem

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


@given(st.text(min_size=1).filter(lambda t: t.isprintable() and not t.isspace()))
def test_any_printable_text_survives_json(text: str) -> None:
    # Printable for Python is not always kept: the Unicode policy (PROTOCOL.md 3.1) drops
    # invisible characters such as U+034F, which Python calls printable. What the policy
    # keeps survives unchanged.
    assume(is_clean(text))
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
        (b'{"type":"say","text":"   "}', ErrorCode.BAD_FRAME),
        (b'{"type":"hello","nick":"alice"}', ErrorCode.BAD_FRAME),
        (b'{"type":"say","text":"\\u001b"}', ErrorCode.BAD_FRAME),
        (b'{"type":"nick","nick":"bad nick"}', ErrorCode.INVALID_NICK),
        (b'{"type":"hello","version":"1"}', ErrorCode.BAD_FRAME),
        (b'{"type":"hello","version":3,"password":5}', ErrorCode.BAD_FRAME),
        (b'{"type":"hello","version":3,"last_ts":-1}', ErrorCode.BAD_FRAME),
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
    ("line", "code"),
    [
        # Lists that are not lists, entries that are not objects or lack a member.
        (b'{"type":"roster","online":1,"peers":{"nick":"a","addr":"x:1"}}', ErrorCode.BAD_FRAME),
        (b'{"type":"roster","online":1,"peers":[{"nick":"a"}]}', ErrorCode.BAD_FRAME),
        (b'{"type":"roster","online":1,"peers":[{"nick":"a b","addr":"x"}]}', ErrorCode.BAD_FRAME),
        (b'{"type":"rooms","rooms":{"name":"lobby","online":1}}', ErrorCode.BAD_FRAME),
        (b'{"type":"rooms","rooms":["lobby"]}', ErrorCode.BAD_FRAME),
        (b'{"type":"rooms","rooms":[{"online":1}]}', ErrorCode.BAD_FRAME),
        (b'{"type":"rooms","rooms":[{"name":"bad room","online":1}]}', ErrorCode.INVALID_ROOM),
        (b'{"type":"rooms","rooms":[{"name":"games","online":-1}]}', ErrorCode.BAD_FRAME),
        # Every optional member is checked when it is there.
        (b'{"type":"welcome","version":3,"nick":"a","addr":"x:1","online":1,"room":"a b"}',
         ErrorCode.INVALID_ROOM),
        (b'{"type":"welcome","version":3,"nick":"a","addr":"x:1","online":1,"session":5}',
         ErrorCode.BAD_FRAME),
        (b'{"type":"welcome","version":3,"nick":"a","addr":"x:1","online":1,"epoch":["e"]}',
         ErrorCode.BAD_FRAME),
        (b'{"type":"welcome","version":3,"nick":"a","addr":"x:1","online":1,"acked":-1}',
         ErrorCode.BAD_FRAME),
        (b'{"type":"welcome","version":3,"nick":"a","addr":"x:1","online":1,"missed":"2"}',
         ErrorCode.BAD_FRAME),
        (b'{"type":"join","nick":"a","online":1,"room":"a b"}', ErrorCode.INVALID_ROOM),
        (b'{"type":"leave","nick":"a","online":1,"reason":5}', ErrorCode.BAD_FRAME),
        (b'{"type":"leave","nick":"a","online":1,"room":"a b"}', ErrorCode.INVALID_ROOM),
        (b'{"type":"roster","online":0,"room":"a b"}', ErrorCode.INVALID_ROOM),
        (b'{"type":"ack","seq":1,"id":-1}', ErrorCode.BAD_FRAME),
        (b'{"type":"bye","reason":"closing","code":5}', ErrorCode.BAD_FRAME),
    ],
)  # fmt: skip
def test_bad_members_from_a_server_are_refused_with_a_reason(line: bytes, code: ErrorCode) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        decode(line, SERVER_EVENTS)
    assert info.value.code is code
    assert str(info.value) == info.value.message
    assert Error(info.value.code, info.value.message)  # can be shown as an error


def test_ping_and_pong_tokens_are_optional() -> None:
    assert decode(b'{"type":"ping"}', CLIENT_EVENTS) == Ping("")
    assert decode(b'{"type":"pong"}', SERVER_EVENTS) == Pong("")


@pytest.mark.parametrize(
    ("event", "text"),
    [
        (Message(1, "alice", "hello", 0), "<alice> hello"),
        (Joined("bob", 3), "*** bob joined (3 online)"),
        (Left("bob", 2), "*** bob left (2 online)"),
        (Left("bob", 2, "connection reset"), "*** bob left: connection reset (2 online)"),
        (Renamed("a", "b"), "*** a is now known as b"),
        (Info("one\ntwo"), "*** one\n*** two"),
        (Error("nick_taken", "nickname 'x' is taken"), "! nickname 'x' is taken"),
        (Bye("shutting down", "shutdown"), "! shutting down"),
        (Bye("Goodbye!"), "*** Goodbye!"),
        (
            Roster(5, PEERS),
            "*** 5 online:\n***   alice (127.0.0.1:5001)\n***   10.0.0.2:4000\n"
            "***   ... and 3 more",
        ),
    ],
)
def test_plain_rendering(event: Event, text: str) -> None:
    assert render_plain(event) == text
    assert encode_plain(event) == (text.replace("\n", "\r\n") + "\r\n").encode()
    assert b"\x1b" not in encode_plain(event)


@pytest.mark.parametrize("event", [Welcome(1, "a", "x:1", 1), Ping(), Say("x"), Hello()])
def test_plain_rendering_refuses_events_without_a_plain_form(event: Event) -> None:
    with pytest.raises(LocalProtocolError) as info:
        render_plain(event)
    assert info.value.code is ErrorCode.UNEXPECTED
    assert event.TYPE in info.value.message


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


def test_help_gives_each_command_a_line_of_its_own() -> None:
    lines = plain_help().split("\n")
    for _, help_line in PLAIN_COMMANDS.values():
        assert help_line in lines


def test_a_long_quit_reason_is_cut_to_the_limit() -> None:
    """A quit reason has at most 200 characters: a longer /quit is cut, not refused."""
    assert decode_plain(b"/quit " + b"r" * 500) == Quit("r" * SHORT_TEXT_MAX_LENGTH)


# --- version 2: rooms, private messages, actions, history, timestamps -------------------

V2_EVENTS: list[Event] = [
    Say("waves", action=True),
    Say("psst", to="bob"),
    JoinRoom("games"),
    LeaveRoom(),
    ListRooms(),
    Timestamps(True),
    Message(3, "alice", "hi", 1_700_000_000_000, room="games", to="bob", history=True),
    Message(4, "alice", "waves", 1_700_000_000_000, action=True),
    Joined("bob", 2, room="games"),
    Left("bob", 1, "quit", room="games"),
    Roster(1, (PeerInfo("a", "x:1"),), room="games"),
    Entered("games", 1, (PeerInfo("a", "x:1"),)),
    Rooms((RoomInfo("lobby", 3), RoomInfo("games", 1))),
    Welcome(2, "a", "x:1", 1, room="lobby"),
]


@pytest.mark.parametrize("event", V2_EVENTS, ids=lambda e: type(e).__name__)
def test_version_2_round_trip(event: Event) -> None:
    known = CLIENT_EVENTS if type(event) in CLIENT_EVENTS.values() else SERVER_EVENTS
    assert decode(encode_json(event), known) == event


def test_flags_and_absent_values_stay_off_the_wire() -> None:
    assert encode_json(Say("hi")) == b'{"type":"say","text":"hi"}\n'
    assert b"history" not in encode_json(Message(1, "a", "b", 0))


def test_version_1_peers_get_version_1_frames() -> None:
    private = Message(1, "alice", "psst", 0, room="lobby", to="bob")
    assert json.loads(encode_json(private, version=1)) == {
        "type": "message", "id": 1, "nick": "alice", "text": "(private) psst", "ts": 0,
    }  # fmt: skip
    action = Message(2, "alice", "waves", 0, action=True)
    assert json.loads(encode_json(action, version=1))["text"] == "* alice waves"
    assert "room" not in json.loads(encode_json(Joined("bob", 2, room="games"), version=1))
    replayed = Message(3, "alice", "waves", 0, room="games", action=True, history=True)
    assert json.loads(encode_json(replayed, version=1)) == {
        "type": "message", "id": 3, "nick": "alice", "text": "* alice waves", "ts": 0,
    }  # fmt: skip
    with pytest.raises(LocalProtocolError) as info:
        encode_json(Entered("games", 0), version=1)
    assert info.value.code is ErrorCode.UNEXPECTED
    assert "'entered'" in info.value.message


def test_version_2_peers_get_the_version_2_members() -> None:
    private = Message(3, "alice", "psst", 0, room="games", to="bob", history=True)
    assert json.loads(encode_json(private, version=2)) == {
        "type": "message", "id": 3, "nick": "alice", "text": "psst", "ts": 0,
        "room": "games", "to": "bob", "history": True,
    }  # fmt: skip
    action = Message(4, "alice", "waves", 0, room="games", action=True)
    assert json.loads(encode_json(action, version=2))["action"] is True
    assert json.loads(encode_json(Joined("bob", 2, room="games"), version=2))["room"] == "games"


def test_version_2_frames_are_unknown_to_version_1() -> None:
    with pytest.raises(RemoteProtocolError) as info:
        from_wire({"type": "join_room", "room": "games"}, CLIENT_EVENTS, version=1)
    assert info.value.code is ErrorCode.UNKNOWN_TYPE


def test_null_counts_as_absent() -> None:
    assert decode(b'{"type":"say","text":"hi","to":null,"action":null}', CLIENT_EVENTS) == Say("hi")
    with pytest.raises(RemoteProtocolError):
        decode(b'{"type":"say","text":null}', CLIENT_EVENTS)


@pytest.mark.parametrize(
    ("event", "text"),
    [
        (Message(1, "alice", "psst", 0, to="bob"), "[PM from alice] psst"),
        (Message(1, "alice", "waves", 0, action=True), "* alice waves"),
        (Message(1, "alice", "old", 0, history=True), "<alice> old"),
        (Joined("bob", 2, room="games"), "*** bob joined #games (2 online)"),
        (Joined("bob", 2, room="lobby"), "*** bob joined (2 online)"),
        (Left("bob", 1, "quit", room="games"), "*** bob left #games: quit (1 online)"),
        (Roster(1, (PeerInfo("a", "x:1"),), room="games"), "*** #games 1 online:\n***   a (x:1)"),
        (
            Entered("games", 1, (PeerInfo("a", "x:1"),)),
            "*** You are now in #games: 1 online:\n***   a (x:1)",
        ),
        (
            Rooms((RoomInfo("lobby", 3), RoomInfo("games", 1))),
            "*** 2 rooms:\n***   #lobby (3 online)\n***   #games (1 online)",
        ),
    ],
)  # fmt: skip
def test_version_2_plain_rendering(event: Event, text: str) -> None:
    assert render_plain(event) == text


@pytest.fixture
def local_zone_far_from_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    if not hasattr(time, "tzset"):
        pytest.skip("needs time.tzset")
    monkeypatch.setenv("TZ", "IST-5:30")  # POSIX rule, no tz database needed: UTC+05:30
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_plain_timestamps_are_utc_whatever_the_local_zone(local_zone_far_from_utc: None) -> None:
    assert time.localtime(1_700_000_000).tm_hour == 3  # the zone is in effect: 03:43 here
    message = Message(1, "alice", "hi", 1_700_000_000_000)  # 2023-11-14 22:13:20 UTC
    assert render_plain(message, timestamps=True) == "[22:13] <alice> hi"


def test_plain_timestamps_are_utc_hh_mm() -> None:
    message = Message(1, "alice", "hi", 1_700_000_000_000)  # 2023-11-14 22:13:20 UTC
    assert render_plain(message, timestamps=True) == "[22:13] <alice> hi"
    assert encode_plain(message, timestamps=True) == b"[22:13] <alice> hi\r\n"
    assert render_plain(Joined("b", 1), timestamps=True) == "*** b joined (1 online)"


@pytest.mark.parametrize(
    ("line", "event"),
    [
        (b"/join games", JoinRoom("games")),
        (b"/join #games", JoinRoom("games")),
        (b"/leave", LeaveRoom()),
        (b"/rooms", ListRooms()),
        (b"/msg bob hello there", Say("hello there", to="bob")),
        (b"/msg 127.0.0.1:5000 hi", Say("hi", to="127.0.0.1:5000")),
        (b"/me waves", Say("waves", action=True)),
        (b"/timestamps on", Timestamps(True)),
        (b"/pass open sesame", Pass("open sesame")),
        (b"/TIMESTAMPS OFF", Timestamps(False)),
    ],
)
def test_version_2_plain_commands(line: bytes, event: Event) -> None:
    assert decode_plain(line) == event


@pytest.mark.parametrize(
    ("line", "code", "hint"),
    [
        (b"/join", ErrorCode.BAD_COMMAND, "usage: /join ROOM"),
        (b"/join two words", ErrorCode.BAD_COMMAND, "usage: /join ROOM"),
        (b"/join bad!", ErrorCode.INVALID_ROOM, "/join ROOM"),
        (b"/msg bob", ErrorCode.BAD_COMMAND, "usage: /msg NICK MESSAGE"),
        (b"/msg", ErrorCode.BAD_COMMAND, "usage: /msg NICK MESSAGE"),
        (b"/me", ErrorCode.BAD_COMMAND, "/me waves"),
        (b"/timestamps maybe", ErrorCode.BAD_COMMAND, "on|off"),
        (b"/msg " + b"n" * 65 + b" hi", ErrorCode.BAD_FRAME, "/who lists who is online"),
        (b"/pass", ErrorCode.BAD_COMMAND, "usage: /pass PASSWORD"),
        (b"/pass " + b"p" * 201, ErrorCode.BAD_FRAME, "ask the server's operator"),
    ],
)
def test_version_2_plain_command_errors(line: bytes, code: ErrorCode, hint: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        decode_plain(line)
    assert info.value.code is code
    assert hint in info.value.message


def test_help_lists_the_version_2_commands() -> None:
    for command in ("/msg", "/me", "/join", "/leave", "/rooms", "/timestamps"):
        assert command in plain_help()


# --- nobody passes for the server ---------------------------------------------------------

_NOTICES: list[Event] = [
    Joined("bob", 3),
    Joined("bob", 2, room="games"),
    Left("bob", 2, "connection reset"),
    Left("bob", 1, "quit", room="games"),
    Renamed("alice", "alicia"),
    Roster(5, PEERS),
    Roster(1, (PeerInfo("a", "x:1"),), room="games"),
    Entered("games", 5, PEERS),
    Rooms((RoomInfo("lobby", 3), RoomInfo("games", 1))),
    Info("line one\nline two"),
    Bye("You left the chat. Goodbye!"),
]


@pytest.mark.parametrize("event", _NOTICES, ids=lambda e: type(e).__name__)
def test_every_line_of_a_server_notice_starts_with_three_stars(event: Event) -> None:
    for line in render_plain(event).split("\n"):
        assert line.startswith("*** "), line


@pytest.mark.parametrize("event", [Error("x", "bad"), Bye("shutting down", "shutdown")])
def test_errors_and_faults_start_with_a_bang(event: Event) -> None:
    assert render_plain(event).startswith("! ")


@pytest.mark.parametrize(
    ("say", "spoof"),
    [
        ("/me is now known as bob", Renamed("mallory", "bob")),
        ("/me left (3 online)", Left("mallory", 3)),
        ("/me joined (4 online)", Joined("mallory", 4)),
    ],
)
def test_an_action_cannot_mimic_a_server_notice(say: str, spoof: Event) -> None:
    action = decode_plain(say.encode())
    assert isinstance(action, Say)
    relayed = Message(1, "mallory", action.text, 0, action=action.action)
    shown = render_plain(relayed)
    assert shown == f"* mallory {say.removeprefix('/me ')}"
    assert shown != render_plain(spoof)
    assert render_plain(spoof) == f"*** mallory {say.removeprefix('/me ')}"


_NICKS = st.one_of(
    st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,31}", fullmatch=True),
    st.text(min_size=1, max_size=64).filter(lambda n: name_problem(n) is None),  # any name
)
_TEXTS = st.one_of(
    st.text(min_size=1).map(sanitize).filter(bool),
    # what the notices about a peer say after its name
    st.sampled_from(["is now known as x", "left (1 online)", "joined (1 online)", "left"]),
)


@given(
    nick=_NICKS,
    text=_TEXTS,
    kind=st.sampled_from(["message", "action", "private"]),
    timestamps=st.booleans(),
    history=st.booleans(),
)
def test_nothing_a_peer_says_renders_like_a_server_notice(
    nick: str, text: str, kind: str, timestamps: bool, history: bool
) -> None:
    message = Message(
        7, nick, text, 1_700_000_000_000, to="you" if kind == "private" else None,
        action=kind == "action", history=history,
    )  # fmt: skip
    shown = render_plain(message, timestamps=timestamps)
    assert "\n" not in shown
    assert "\r" not in shown
    assert not shown.startswith(("*** ", "**", "! "))
    notices = {render_plain(e) for e in _NOTICES} | {
        render_plain(Renamed(nick, "x")), render_plain(Left(nick, 1)),
        render_plain(Joined(nick, 1)), render_plain(Info(f"{nick} {text}")),
    }  # fmt: skip
    assert shown not in notices
