"""Version 3: resuming a session (hello/welcome members), say sequence numbers, acks."""

from __future__ import annotations

import json

import pytest

from peerchat_protocol import (
    Ack,
    Connection,
    ErrorCode,
    Hello,
    LocalProtocolError,
    PeerKind,
    RemoteProtocolError,
    Role,
    Say,
    Welcome,
    encode_json,
    from_wire,
    to_wire,
)
from peerchat_protocol.events import CLIENT_EVENTS, SERVER_EVENTS
from peerchat_protocol.limits import TOKEN_MAX_LENGTH

RESUMING = Hello(
    version=3, nick="alice", resume="s3cr3t-token", room="games", epoch="e1", last_id=41
)


def _welcome(**extra: object) -> Welcome:
    return Welcome(version=3, nick="alice", addr="127.0.0.1:1", online=1, **extra)  # type: ignore[arg-type]


def test_resuming_hello_round_trips_in_v3() -> None:
    obj = json.loads(encode_json(RESUMING, 3))
    assert obj["resume"] == "s3cr3t-token"
    assert obj["last_id"] == 41
    assert from_wire(obj, CLIENT_EVENTS, 3) == RESUMING


def test_v3_members_are_left_out_for_older_versions() -> None:
    obj = to_wire(RESUMING, 2)
    assert not {"resume", "room", "epoch", "last_id"} & obj.keys()
    assert to_wire(Say("hi", seq=7), 2) == {"type": "say", "text": "hi"}
    welcome = _welcome(session="tok", epoch="e1", resumed=True, acked=3, missed=2, gap=True)
    assert (
        not {"session", "epoch", "resumed", "acked", "missed", "gap"} & to_wire(welcome, 2).keys()
    )
    assert to_wire(welcome, 3)["acked"] == 3


def test_v3_members_from_an_older_version_are_ignored() -> None:
    obj = {"type": "say", "text": "hi", "seq": 5}
    assert from_wire(obj, CLIENT_EVENTS, 2) == Say("hi")
    assert from_wire(obj, CLIENT_EVENTS, 3) == Say("hi", seq=5)
    # Ignored means not even checked: a v2 peer's stray member is no error.
    assert from_wire({"type": "say", "text": "hi", "seq": "x"}, CLIENT_EVENTS, 2) == Say("hi")


def test_ack_exists_only_from_v3() -> None:
    assert json.loads(encode_json(Ack(9), 3)) == {"type": "ack", "seq": 9}
    with pytest.raises(LocalProtocolError):
        encode_json(Ack(9), 2)
    with pytest.raises(RemoteProtocolError) as info:
        from_wire({"type": "ack", "seq": 9}, SERVER_EVENTS, 2)
    assert info.value.code is ErrorCode.UNKNOWN_TYPE


@pytest.mark.parametrize(
    "obj",
    [
        {"type": "say", "text": "hi", "seq": -1},
        {"type": "say", "text": "hi", "seq": True},
        {"type": "say", "text": "hi", "seq": 1.5},
        {"type": "ack", "seq": -2},
        {"type": "hello", "version": 3, "last_id": -1},
        {"type": "hello", "version": 3, "resume": "x" * (TOKEN_MAX_LENGTH + 1)},
        {"type": "hello", "version": 3, "epoch": 12},
        {"type": "hello", "version": 3, "room": "no spaces"},
    ],
)
def test_bad_v3_members_are_refused(obj: dict[str, object]) -> None:
    known = CLIENT_EVENTS if obj["type"] != "ack" else SERVER_EVENTS
    with pytest.raises(RemoteProtocolError):
        from_wire(obj, known, 3)


def test_secrets_never_show_in_a_repr() -> None:
    assert "s3cr3t" not in repr(RESUMING)
    assert "resume='***'" in repr(RESUMING)
    welcome = _welcome(session="s3cr3t-session")
    assert "s3cr3t" not in repr(welcome)
    assert "session='***'" in repr(welcome)


def test_server_negotiates_v3_and_gets_resume_members() -> None:
    server = Connection(Role.SERVER)
    server.receive_data(encode_json(RESUMING, 3))
    hello = server.next_event()
    assert hello == RESUMING
    assert server.version == 3
    assert server.kind is PeerKind.RICH


def test_a_v2_server_peer_gets_no_acks_or_v3_members() -> None:
    server = Connection(Role.SERVER)
    server.receive_data(encode_json(Hello(version=2, nick="old"), 2))
    server.next_event()
    assert server.version == 2
    server.receive_data(b'{"type":"say","text":"hi","seq":1}\n')
    assert server.next_event() == Say("hi")
    with pytest.raises(LocalProtocolError):
        server.send(Ack(1))


def test_plain_peers_get_no_acks() -> None:
    server = Connection(Role.SERVER)
    server.receive_data(b"hello\n")
    server.next_event()
    assert server.kind is PeerKind.PLAIN
    assert server.send(Ack(1)) == b""


def test_client_reads_acks_after_a_v3_welcome() -> None:
    client = Connection(Role.CLIENT)
    client.send(Hello(version=3))
    client.receive_data(encode_json(_welcome(session="tok", epoch="e1"), 3))
    welcome = client.next_event()
    assert isinstance(welcome, Welcome)
    assert welcome.session == "tok"
    assert welcome.epoch == "e1"
    client.receive_data(b'{"type":"ack","seq":4}\n')
    assert client.next_event() == Ack(4)
    assert json.loads(client.send(Say("x", seq=5))) == {"type": "say", "text": "x", "seq": 5}


def test_a_renumbered_message_differs_only_in_its_id() -> None:
    from peerchat_protocol import Message

    message = Message(4, "bob", "hi", 1, "games", action=True)
    again = message.renumbered(99)
    assert again == Message(99, "bob", "hi", 1, "games", action=True)
    assert message.id == 4
