"""Connection: kind detection, handshake, version negotiation, send rules — no sockets."""

from __future__ import annotations

import ast
import json
import pathlib
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

import peerchat_protocol
from peerchat_protocol import (
    CLIENT_MIN_LINE_BYTES,
    CLOSED,
    DEFAULT_MAX_LINE_BYTES,
    MAX_VERSION,
    MIN_VERSION,
    NEED_DATA,
    Bye,
    ChangeNick,
    Connection,
    Error,
    ErrorCode,
    Event,
    Hello,
    Info,
    LocalProtocolError,
    Message,
    PeerKind,
    Ping,
    Pong,
    RemoteProtocolError,
    Role,
    Say,
    Welcome,
    Who,
    encode_json,
    encode_plain,
)
from peerchat_protocol.limits import MAX_BLANK_LINES_PER_CALL

WELCOME = Welcome(1, "alice", "127.0.0.1:5001", 1, max_line=16384)


def events(conn: Connection, data: bytes = b"") -> list[Event | str]:
    """Feed ``data`` and collect events; errors appear as 'error:<code>'."""
    if data:
        conn.receive_data(data)
    out: list[Event | str] = []
    for _ in range(1000):
        try:
            event = conn.next_event()
        except RemoteProtocolError as exc:
            out.append(f"error:{exc.code}{':fatal' if exc.fatal else ''}")
            continue
        if event is NEED_DATA:
            return out
        if event is CLOSED:
            out.append("closed")
            return out
        assert isinstance(event, Event)
        out.append(event)
    raise AssertionError("connection did not settle")


class ConnectionPair:
    """A client and a server Connection wired back to back in memory (after h11)."""

    def __init__(self) -> None:
        self.client = Connection(Role.CLIENT)
        self.server = Connection(Role.SERVER)

    def to_server(self, *evs: Event) -> list[Event | str]:
        return events(self.server, b"".join(self.client.send(e) for e in evs))

    def to_client(self, *evs: Event) -> list[Event | str]:
        return events(self.client, b"".join(self.server.send(e) for e in evs))


# --- the server side tells peers apart ------------------------------------------------


def test_hello_first_makes_a_rich_peer() -> None:
    pair = ConnectionPair()
    assert pair.server.kind is PeerKind.UNKNOWN
    assert pair.to_server(Hello(1, "alice"), Say("hi"), Who()) == [
        Hello(1, "alice"),
        Say("hi"),
        Who(),
    ]
    assert pair.server.kind is PeerKind.RICH
    assert pair.server.version == 1


def test_any_other_first_line_makes_a_plain_peer() -> None:
    server = Connection(Role.SERVER)
    assert events(server, b"hi all\r\n/who\n") == [Say("hi all"), Who()]
    assert server.kind is PeerKind.PLAIN
    # Later JSON from a plain peer is just text.
    assert events(server, b'{"type":"hello"}\n') == [Say('{"type":"hello"}')]


@pytest.mark.parametrize(
    "first",
    [b'{"type":"say","text":"x"}', b"{not json", b"[1]", b"   ", b"/who", b'{"type": 5}'],
)
def test_first_lines_that_are_not_hello_are_plain(first: bytes) -> None:
    server = Connection(Role.SERVER)
    events(server, first + b"\n")
    assert server.kind is PeerKind.PLAIN


def test_blank_first_line_decides_plain_without_an_event() -> None:
    server = Connection(Role.SERVER)
    assert events(server, b"\r\n") == []
    assert server.kind is PeerKind.PLAIN


def test_invalid_utf8_first_line_is_a_plain_peer_with_an_error() -> None:
    server = Connection(Role.SERVER)
    assert events(server, b"\xff\xfe\n") == ["error:bad_utf8"]
    assert server.kind is PeerKind.PLAIN


@pytest.mark.parametrize(
    "first", [b'{"type":"say","text":"x"}', b"{not json", b"hi all", b"", b"/who", b"\xff"]
)
def test_a_json_only_peer_must_start_with_a_hello(first: bytes) -> None:
    server = Connection(Role.SERVER, json_only=True)
    assert events(server, first + b"\n") == ["error:unexpected:fatal"]
    assert server.kind is PeerKind.UNKNOWN  # never plain: it is told in JSON, and goes
    sent = server.send(Bye("bad first frame", code=ErrorCode.UNEXPECTED))
    assert json.loads(sent) == {"type": "bye", "reason": "bad first frame", "code": "unexpected"}


def test_a_json_only_peer_with_a_hello_is_rich_as_usual() -> None:
    server = Connection(Role.SERVER, json_only=True)
    hello = Hello(MAX_VERSION, "alice")
    assert events(server, encode_json(hello)) == [hello]
    assert server.kind is PeerKind.RICH
    assert events(server, b'{"type":"say","text":"hi"}\n') == [Say("hi")]


def test_detection_waits_for_a_complete_line() -> None:
    server = Connection(Role.SERVER)
    assert events(server, b'{"type":"hel') == []
    assert server.kind is PeerKind.UNKNOWN
    assert events(server, b'lo","version":2}\n') == [Hello(2)]


def test_newer_client_version_is_negotiated_down() -> None:
    server = Connection(Role.SERVER)
    assert events(server, b'{"type":"hello","version":99}\n') == [Hello(99)]
    assert server.version == MAX_VERSION


def test_unsupported_version_is_a_fatal_error_not_a_hang() -> None:
    server = Connection(Role.SERVER)
    server.receive_data(b'{"type":"hello","version":0}\n')
    with pytest.raises(RemoteProtocolError) as info:
        server.next_event()
    assert info.value.fatal
    assert server.kind is PeerKind.RICH
    assert info.value.code is ErrorCode.UNSUPPORTED_VERSION
    assert f"{MIN_VERSION} to {MAX_VERSION}" in info.value.message  # says which it speaks


def test_bad_hello_is_fatal_with_its_reason() -> None:
    server = Connection(Role.SERVER)
    assert events(server, b'{"type":"hello","version":2,"nick":"no spaces"}\n') == [
        "error:invalid_nick:fatal"
    ]
    server = Connection(Role.SERVER)
    server.receive_data(b'{"type":"hello","version":2,"nick":"no spaces"}\n')
    with pytest.raises(RemoteProtocolError) as info:
        server.next_event()
    assert "nickname" in info.value.message


def test_hello_without_a_version_is_refused() -> None:
    server = Connection(Role.SERVER)
    assert events(server, b'{"type":"hello","nick":"alice"}\n') == ["error:bad_frame:fatal"]


def test_second_hello_is_refused() -> None:
    pair = ConnectionPair()
    pair.to_server(Hello())
    assert events(pair.server, encode_json(Hello())) == ["error:unexpected"]
    pair.server.receive_data(encode_json(Hello()))
    with pytest.raises(RemoteProtocolError) as info:
        pair.server.next_event()
    assert Error(info.value.code, info.value.message)  # a reason the server can send on


def test_json_lines_may_start_with_whitespace() -> None:
    """RFC 8259 allows whitespace before the object, in a hello and in a welcome."""
    server = Connection(Role.SERVER)
    assert events(server, b' \t{"type":"hello","version":3}\n') == [Hello(3)]
    assert server.kind is PeerKind.RICH
    client = Connection(Role.CLIENT)
    client.send(Hello())
    assert events(client, b"  " + encode_json(WELCOME)) == [WELCOME]


def test_default_line_limits_are_the_documented_ones() -> None:
    """PROTOCOL.md §1: a server refuses lines over 16,384 bytes by default; a client
    accepts at least 65,536, whatever the server announced."""
    server = Connection(Role.SERVER)
    fits = b"x" * DEFAULT_MAX_LINE_BYTES
    assert events(server, fits + b"\n" + fits + b"y\n") == [
        Say(fits.decode()),
        "error:line_too_long",
    ]
    client = Connection(Role.CLIENT)
    client.send(Hello())
    assert events(client, encode_json(Welcome(3, "alice", "x:1", 1))) != []  # no max_line
    envelope = len(encode_json(Message(1, "bob", "z", 0))) - 2  # without text and newline
    big = Message(1, "bob", "z" * (CLIENT_MIN_LINE_BYTES - envelope), 0)
    assert len(encode_json(big)) == CLIENT_MIN_LINE_BYTES + 1
    assert events(client, encode_json(big)) == [big]


def test_bad_lines_from_a_rich_peer_are_recoverable() -> None:
    pair = ConnectionPair()
    pair.to_server(Hello())
    got = events(pair.server, b'nope\n{"type":"fly"}\n\xff\n{"type":"say","text":"ok"}\n')
    assert got == ["error:bad_json", "error:unknown_type", "error:bad_utf8", Say("ok")]


def test_overlong_line_then_carry_on() -> None:
    server = Connection(Role.SERVER, max_line=32)
    assert events(server, b"x" * 100 + b"\nafter\n") == ["error:line_too_long", Say("after")]


def test_end_of_stream_delivers_last_partial_line_then_closed() -> None:
    server = Connection(Role.SERVER)
    server.receive_data(b"bye")
    server.receive_data(b"")
    assert events(server) == [Say("bye"), "closed"]
    with pytest.raises(LocalProtocolError) as info:
        server.receive_data(b"more")
    assert info.value.code is ErrorCode.UNEXPECTED
    assert info.value.message


# --- what the server may send, and how ----------------------------------------------------


def test_server_renders_by_peer_kind() -> None:
    message = Message(1, "bob", "hi", 5)
    unknown = Connection(Role.SERVER)
    assert unknown.send(message) == encode_plain(message)
    rich = Connection(Role.SERVER)
    events(rich, encode_json(Hello()))
    assert rich.send(message) == encode_json(message)


def test_server_refuses_client_events_and_plain_welcome() -> None:
    server = Connection(Role.SERVER)
    with pytest.raises(LocalProtocolError):
        server.send(Say("x"))
    with pytest.raises(LocalProtocolError):
        server.send(WELCOME)


def test_plain_peers_are_not_pinged() -> None:
    server = Connection(Role.SERVER)
    assert server.send(Ping("x")) == b""


def test_nothing_after_bye() -> None:
    server = Connection(Role.SERVER)
    server.send(Bye("closing", "shutdown"))
    with pytest.raises(LocalProtocolError):
        server.send(Info("late"))


def test_a_plain_peer_with_timestamps_on_gets_them() -> None:
    server = Connection(Role.SERVER)
    assert events(server, b"/timestamps on\n") != []
    server.timestamps = True  # the server's answer to that command
    message = Message(1, "alice", "hi", 1_700_000_000_000)  # 22:13 UTC
    assert server.send(message) == b"[22:13] <alice> hi\r\n"


def _after_bye() -> Connection:
    server = Connection(Role.SERVER)
    server.send(Bye("closing", "shutdown"))
    return server


def _hello_sent() -> Connection:
    client = Connection(Role.CLIENT)
    client.send(Hello())
    return client


@pytest.mark.parametrize(
    "attempt",
    [
        lambda: Connection(Role.SERVER).send(Say("a client frame")),
        lambda: Connection(Role.SERVER).send(WELCOME),  # to a peer not known to be rich
        lambda: _after_bye().send(Info("late")),
        lambda: Connection(Role.CLIENT).send(Say("before the hello")),
        lambda: _hello_sent().send(Hello()),
        lambda: _hello_sent().send(Message(1, "a", "a server frame", 0)),
    ],
)
def test_what_may_not_be_sent_now_is_refused_as_unexpected(attempt: Callable[[], bytes]) -> None:
    with pytest.raises(LocalProtocolError) as info:
        attempt()
    assert info.value.code is ErrorCode.UNEXPECTED
    assert info.value.message


# --- the client side -------------------------------------------------------------------------


def test_client_must_say_hello_first_and_once() -> None:
    client = Connection(Role.CLIENT)
    with pytest.raises(LocalProtocolError):
        client.send(Say("too early"))
    client.send(Hello())
    with pytest.raises(LocalProtocolError):
        client.send(Hello())
    with pytest.raises(LocalProtocolError):
        client.send(Message(1, "a", "b", 0))


def test_client_skips_everything_before_the_welcome_except_errors() -> None:
    client = Connection(Role.CLIENT)
    client.send(Hello())
    pre = (
        b"*** Welcome to peerchat!\r\n<bob> hi\r\n"
        + encode_json(Message(1, "bob", "hi", 0))
        + b"{broken json\n"
        + encode_json(Error("nick_taken", "taken"))
    )
    assert events(client, pre) == [Error("nick_taken", "taken")]
    assert events(client, encode_json(WELCOME) + encode_json(Message(2, "c", "d", 0))) == [
        WELCOME,
        Message(2, "c", "d", 0),
    ]
    assert events(client, b"*** plain after welcome\n") == ["error:bad_json"]


def test_client_sees_bye_before_welcome() -> None:
    client = Connection(Role.CLIENT)
    client.send(Hello(version=0 + 1))
    bye = Bye("unsupported version", "unsupported_version")
    assert events(client, encode_json(bye)) == [bye]


def test_client_line_limit_follows_the_servers() -> None:
    client = Connection(Role.CLIENT)
    small = client.max_line
    events(client, encode_json(Welcome(1, "a", "x:1", 1, max_line=1_000_000)))
    assert client.max_line > 2 * 1_000_000 > small
    assert client.max_line == 2 * 1_000_000 + 1024  # PROTOCOL.md §1


def test_client_refuses_a_version_it_does_not_speak() -> None:
    client = Connection(Role.CLIENT)
    events_ = events(client, encode_json(Welcome(MAX_VERSION + 1, "a", "x:1", 1)))
    assert events_ == ["error:unsupported_version:fatal"]
    client = Connection(Role.CLIENT)
    client.receive_data(encode_json(Welcome(MAX_VERSION + 1, "a", "x:1", 1)))
    with pytest.raises(RemoteProtocolError) as info:
        client.next_event()
    assert f"version {MAX_VERSION + 1}" in info.value.message


def test_a_client_speaks_the_version_the_welcome_chose() -> None:
    """PROTOCOL.md §6: both ends use the negotiated version from the welcome on."""
    client = Connection(Role.CLIENT)
    client.send(Hello(version=3))
    welcome = Welcome(2, "alice", "x:1", 1)
    assert events(client, encode_json(welcome, 2)) == [welcome]
    assert client.version == 2
    assert json.loads(client.send(Say("hi", seq=1))) == {"type": "say", "text": "hi"}
    assert events(client, b'{"type":"ack","seq":1}\n') == ["error:unknown_type"]


def test_full_conversation_through_a_pair() -> None:
    pair = ConnectionPair()
    assert pair.to_server(Hello(1, "alice", "test")) == [Hello(1, "alice", "test")]
    assert pair.to_client(WELCOME, Message(7, "bob", "yo", 1)) == [
        WELCOME,
        Message(7, "bob", "yo", 1),
    ]
    assert pair.to_server(ChangeNick("alicia"), Ping("p")) == [ChangeNick("alicia"), Ping("p")]
    assert pair.to_client(Pong("p")) == [Pong("p")]


@given(
    texts=st.lists(
        st.text(min_size=1, max_size=50).filter(lambda t: t.isprintable() and not t.isspace()),
        max_size=15,
    ),
    cuts=st.lists(st.integers(min_value=1, max_value=40), max_size=40),
)
def test_any_chunking_of_a_session_yields_the_same_events(
    texts: list[str], cuts: list[int]
) -> None:
    client = Connection(Role.CLIENT)
    stream = client.send(Hello(nick="alice")) + b"".join(client.send(Say(t)) for t in texts)
    whole = events(Connection(Role.SERVER), stream)
    server = Connection(Role.SERVER)
    got: list[Event | str] = []
    position = 0
    for size in cuts:
        got += events(server, stream[position : position + size])
        position += size
    got += events(server, stream[position:])
    assert got == whole == [Hello(nick="alice")] + [Say(t) for t in texts]


# --- sans-I/O ------------------------------------------------------------------------------


def test_protocol_package_does_no_io() -> None:
    """No socket, asyncio, threads, clocks or files in the protocol package."""
    forbidden = {"asyncio", "socket", "selectors", "ssl", "threading", "time", "os", "io", "random"}
    package = pathlib.Path(peerchat_protocol.__file__).parent
    for path in package.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{path.name} imports {name}"


def test_line_waiting_counts_complete_lines_and_the_rest_at_end_of_stream() -> None:
    server = Connection(Role.SERVER, max_line=100)
    assert not server.line_waiting
    server.receive_data(b"hello\nhalf")
    assert server.line_waiting
    assert isinstance(server.next_event(), Say)
    assert not server.line_waiting  # "half" needs its newline, or the end of the stream
    server.receive_data(b"")
    assert server.line_waiting
    assert isinstance(server.next_event(), Say)
    assert not server.line_waiting
    assert server.next_event() is CLOSED


def test_blank_lines_are_counted_and_a_server_reads_at_most_16_of_them_per_call() -> None:
    server = Connection(Role.SERVER)
    server.receive_data(b"hi\n" + b"\n" * 40 + b"  \t\n" + b"there\n")
    assert server.next_event() == Say("hi")
    assert server.next_event() is NEED_DATA  # early: blank lines stopped the call
    assert (server.lines_skipped, server.line_waiting) == (MAX_BLANK_LINES_PER_CALL, True)
    assert server.next_event() is NEED_DATA
    assert server.next_event() == Say("there")  # the 41st blank line held only spaces
    assert server.lines_skipped == 41
    assert server.next_event() is NEED_DATA
    assert not server.line_waiting


def test_a_client_skips_any_number_of_lines_before_the_welcome_in_one_call() -> None:
    client = Connection(Role.CLIENT)
    client.send(Hello(nick="alice"))
    banner = b"".join(b"*** line %d\r\n" % n for n in range(40))
    welcome = encode_json(Welcome(version=3, nick="alice", addr="a:1", online=1))
    client.receive_data(banner + welcome)
    assert isinstance(client.next_event(), Welcome)
    assert client.lines_skipped == 40
