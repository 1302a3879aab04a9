"""Events validate themselves: an invalid event cannot be built."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from typing import Any

import pytest

from peerchat_protocol import (
    CLIENT_EVENTS,
    MAX_ROSTER_ENTRIES,
    SERVER_EVENTS,
    Ack,
    Bye,
    ChangeNick,
    Entered,
    Error,
    ErrorCode,
    Hello,
    Info,
    Joined,
    JoinRoom,
    Left,
    LocalProtocolError,
    Message,
    Pass,
    PeerInfo,
    Ping,
    Pong,
    Quit,
    Renamed,
    RoomInfo,
    Rooms,
    Roster,
    Say,
    Timestamps,
    Welcome,
)
from peerchat_protocol.limits import MAX_ROOM_ENTRIES, SHORT_TEXT_MAX_LENGTH, TOKEN_MAX_LENGTH

ALICE = PeerInfo("alice", "127.0.0.1:5001")


def test_events_are_frozen() -> None:
    say = Say("hi")
    with pytest.raises(FrozenInstanceError):
        say.text = "changed"  # type: ignore[misc]


def test_wire_types_are_unique_per_direction() -> None:
    assert set(CLIENT_EVENTS) == {
        "hello", "say", "nick", "who", "help", "quit", "ping", "pong",
        "join_room", "leave_room", "list_rooms", "timestamps", "pass", "history",
    }  # fmt: skip
    assert set(SERVER_EVENTS) == {
        "welcome", "message", "join", "leave", "renamed", "roster", "info", "error", "bye",
        "ping", "pong", "entered", "rooms", "ack",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("build", "code"),
    [
        (lambda: Hello(version=-1), ErrorCode.BAD_FRAME),
        (lambda: Hello(version=True), ErrorCode.BAD_FRAME),
        (lambda: Hello(version="1"), ErrorCode.BAD_FRAME),
        (lambda: Hello(nick="bad nick"), ErrorCode.INVALID_NICK),
        (lambda: Hello(nick="server"), ErrorCode.INVALID_NICK),
        (lambda: Hello(client="x" * 201), ErrorCode.BAD_FRAME),
        (lambda: Say(""), ErrorCode.BAD_FRAME),
        (lambda: Say("esc\x1b[31m"), ErrorCode.BAD_FRAME),
        (lambda: Say("two\nlines"), ErrorCode.BAD_FRAME),
        (lambda: Say(5), ErrorCode.BAD_FRAME),
        (lambda: ChangeNick(""), ErrorCode.INVALID_NICK),
        (lambda: ChangeNick(None), ErrorCode.INVALID_NICK),
        (lambda: Quit("\x07"), ErrorCode.BAD_FRAME),
        (lambda: Ping("t" * 65), ErrorCode.BAD_FRAME),
        (lambda: Message(-1, "a", "t", 0), ErrorCode.BAD_FRAME),
        (lambda: Message(1, "a b", "t", 0), ErrorCode.BAD_FRAME),
        (lambda: Message(1, "a", "t", 1.5), ErrorCode.BAD_FRAME),
        (lambda: Joined("", 1), ErrorCode.BAD_FRAME),
        (lambda: Left("a", -1), ErrorCode.BAD_FRAME),
        (lambda: Renamed("a", "b c"), ErrorCode.BAD_FRAME),
        (lambda: Roster(0, (ALICE,)), ErrorCode.BAD_FRAME),
        (lambda: Roster(1, [ALICE]), ErrorCode.BAD_FRAME),
        (lambda: Roster(1, ("alice",)), ErrorCode.BAD_FRAME),
        (lambda: Roster(999, (ALICE,) * (MAX_ROSTER_ENTRIES + 1)), ErrorCode.BAD_FRAME),
        (lambda: Welcome(1, "a", "x:1", online=1, max_line=-1), ErrorCode.BAD_FRAME),
        (lambda: Info("\x1b[2J"), ErrorCode.BAD_FRAME),
        (lambda: Error("", "m"), ErrorCode.BAD_FRAME),
        (lambda: Bye(""), ErrorCode.BAD_FRAME),
        (lambda: PeerInfo("a", ""), ErrorCode.BAD_FRAME),
        (lambda: Say("x", to="a b"), ErrorCode.BAD_FRAME),
        (lambda: Say("x", action="yes"), ErrorCode.BAD_FRAME),
        (lambda: Say("x", to="bob", action=True), ErrorCode.BAD_FRAME),
        (lambda: JoinRoom(""), ErrorCode.INVALID_ROOM),
        (lambda: JoinRoom("#games"), ErrorCode.INVALID_ROOM),
        (lambda: JoinRoom("a" * 33), ErrorCode.INVALID_ROOM),
        (lambda: JoinRoom("spa ce"), ErrorCode.INVALID_ROOM),
        (lambda: Message(1, "a", "t", 0, room="bad room"), ErrorCode.INVALID_ROOM),
        (lambda: Message(1, "a", "t", 0, history=1), ErrorCode.BAD_FRAME),
        (lambda: Timestamps("on"), ErrorCode.BAD_FRAME),
        (lambda: Rooms((RoomInfo("a", 1),) * 101), ErrorCode.BAD_FRAME),
        (lambda: Rooms([RoomInfo("a", 1)]), ErrorCode.BAD_FRAME),
        (lambda: RoomInfo("a", -1), ErrorCode.BAD_FRAME),
        (lambda: Entered("lobby", 0, (ALICE,)), ErrorCode.BAD_FRAME),
        # Required members cannot be left out (None) either.
        (lambda: PeerInfo("a", None), ErrorCode.BAD_FRAME),
        (lambda: Pass(None), ErrorCode.BAD_FRAME),
        (lambda: Welcome(1, "a", None, 1), ErrorCode.BAD_FRAME),
        (lambda: Welcome(1, "a", "x:1", 1, server=None), ErrorCode.BAD_FRAME),
        (lambda: Error(None, "m"), ErrorCode.BAD_FRAME),
        (lambda: JoinRoom(None), ErrorCode.INVALID_ROOM),
        (lambda: Entered(None, 0), ErrorCode.INVALID_ROOM),
        (lambda: RoomInfo(None, 1), ErrorCode.INVALID_ROOM),
        # Names, rooms and tokens of the wrong type or shape.
        (lambda: ChangeNick(5), ErrorCode.INVALID_NICK),
        (lambda: Joined(5, 1), ErrorCode.BAD_FRAME),
        (lambda: JoinRoom(5), ErrorCode.INVALID_ROOM),
        (lambda: RoomInfo("bad room", 1), ErrorCode.INVALID_ROOM),
        (lambda: Hello(resume="r" * (TOKEN_MAX_LENGTH + 1)), ErrorCode.BAD_FRAME),
        (lambda: Pong("t" * 65), ErrorCode.BAD_FRAME),
    ],
)
def test_invalid_events_cannot_exist(build: Any, code: ErrorCode) -> None:
    with pytest.raises(LocalProtocolError) as info:
        build()
    assert info.value.code is code
    # A decoder passes the reason on to the peer, and the server sends it as an error
    # frame as it is: it must be text that such a frame can carry.
    assert str(info.value) == info.value.message
    assert Error(info.value.code, info.value.message).message == info.value.message


def test_members_may_reach_their_documented_limits() -> None:
    """PROTOCOL.md §4: reasons and client names up to 200 characters, tokens and
    session secrets up to 64, rosters and room lists up to 100 entries."""
    Quit("q" * SHORT_TEXT_MAX_LENGTH)
    Left("bob", 0, reason="r" * SHORT_TEXT_MAX_LENGTH)
    Hello(client="c" * SHORT_TEXT_MAX_LENGTH, resume="r" * TOKEN_MAX_LENGTH)
    Welcome(3, "a", "x:1", 1, session="s" * TOKEN_MAX_LENGTH, epoch="e" * TOKEN_MAX_LENGTH)
    Ping("t" * 64)
    Pong("t" * 64)
    Roster(MAX_ROSTER_ENTRIES, (ALICE,) * MAX_ROSTER_ENTRIES)
    Rooms((RoomInfo("a", 1),) * MAX_ROOM_ENTRIES)
    Ack(0, id=0)


def test_a_ping_may_carry_no_token_and_its_pong_none_either() -> None:
    assert Ping().token == Pong().token == ""


def test_valid_events() -> None:
    Hello()
    Hello(version=7, nick="alice", client="bot/1.0")
    Say("héllo 🙂")
    Info("line one\nline two")
    Roster(1000, (ALICE,))
    Welcome(1, "127.0.0.1:5", "127.0.0.1:5", online=1, peers=(ALICE,), max_line=16384)
    Message(0, "[::1]:5000", "x", 1_700_000_000_000)
    Left("bob", 0, reason="connection reset")
    Bye("see you", code="shutdown")
    Error("some_future_code", "codes from newer servers are kept as strings")
    Say("waves", action=True)
    Say("psst", to="127.0.0.1:5000")
    JoinRoom("Games.2-x_y")
    Message(1, "a", "t", 0, room="games", to="bob", history=True)
    Entered("games", 2, (ALICE,))
    Rooms((RoomInfo("lobby", 3), RoomInfo("games", 0)))
    Timestamps(True)


def test_version_2_events_say_so() -> None:
    assert (JoinRoom.SINCE, Entered.SINCE, Rooms.SINCE, Timestamps.SINCE) == (2, 2, 2, 2)
    assert (Say.SINCE, Message.SINCE, Hello.SINCE) == (1, 1, 1)


def test_a_relayed_message_equals_the_checked_construction() -> None:
    say = Say("waves", action=True)
    relayed = Message.relay(7, say, "alice", 1_700_000_000_000, "games")
    assert relayed == Message(7, "alice", "waves", 1_700_000_000_000, room="games", action=True)
    private = Message.relay(8, Say("psst"), "alice", 5, None, "bob")
    assert private == Message(8, "alice", "psst", 5, to="bob")
    with pytest.raises(FrozenInstanceError):
        relayed.text = "changed"  # type: ignore[misc]


def test_passwords_never_show_in_a_repr() -> None:
    assert "hunter2" not in repr(Hello(nick="a", password="hunter2"))
    assert "hunter2" not in repr(Pass("hunter2"))
    assert "password=None" in repr(Hello())
