"""A plain-text peer's chat lines read together are relayed as one broadcast, and every
guarantee of one line at a time holds: order, ids, no echo, history, the replay for a
late hello, timestamps, flood budgets, the console's lines; and a fan-out with many
senders in one pass gives each sender all but its own lines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from peerchat_protocol import Joined, Message, Renamed, Say
from peerchat_server.frames import PLAIN, Form, Frames
from peerchat_server.outbox import _fan_out
from peerchat_server.room import Room

from .peers import PlainPeer, RichPeer, console_of, running_server, stub_replication
from .test_journal import messages, replay_after_hello


@pytest.fixture
def blocks(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Every block of lines the relay is given to say together (so a test knows the
    path it means to test was taken)."""
    from peerchat_server.relay import Relay

    seen: list[list[str]] = []
    real = Relay.say_lines

    def spy(self: Relay, sender: Any, texts: list[str]) -> None:
        seen.append(list(texts))
        real(self, sender, texts)

    monkeypatch.setattr(Relay, "say_lines", spy)
    return seen


async def test_lines_read_together_reach_everyone_else_each_as_itself(
    blocks: list[list[str]],
) -> None:
    async with running_server() as server:
        rich = await RichPeer.connect(server.port, "rich")
        plain = await PlainPeer.connect(server.port)
        talker = await PlainPeer.connect(server.port)
        await talker.say("/nick talker")
        await talker.expect("now known as talker", skip=lambda _: True)
        await talker.send("one\ntwo\nthree héllo\n")
        got = [await rich.expect(Message, skip=(Joined, Renamed)) for _ in range(3)]
        assert [(m.nick, m.text) for m in got] == [
            ("talker", "one"),
            ("talker", "two"),
            ("talker", "three héllo"),
        ]
        assert [m.id for m in got] == list(range(got[0].id, got[0].id + 3))
        for text in ("one", "two", "three héllo"):
            assert await plain.expect(f"<talker> {text}", skip=lambda line: "***" in line)
        assert ["one", "two", "three héllo"] in blocks
        await talker.expect_none(skip=lambda line: "***" in line)  # no echo
        # A newcomer gets them as history, one message each.
        late = await RichPeer.connect(server.port, "late")
        history = [await late.expect(Message) for _ in range(3)]
        assert [(m.text, m.history) for m in history] == [
            ("one", True),
            ("two", True),
            ("three héllo", True),
        ]


async def test_commands_among_the_lines_keep_their_place(blocks: list[list[str]]) -> None:
    async with running_server() as server:
        rich = await RichPeer.connect(server.port, "rich")
        talker = await PlainPeer.connect(server.port)
        await talker.say("hello")
        await rich.expect(Message, skip=Joined)
        # A block with a command in it is read line by line up to the command (blank
        # lines too); what follows it is a block again.
        await talker.send("a\nb\n/nick x\nc\nd\n\ne\nf\n")
        seen = []
        for _ in range(7):
            event = await rich.event()
            assert isinstance(event, Message | Renamed), event
            seen.append(event.text if isinstance(event, Message) else f"-> {event.new}")
        assert seen == ["a", "b", "-> x", "c", "d", "e", "f"]
        await talker.send("g\nh\n")
        assert [(await rich.expect(Message)).text for _ in range(2)] == ["g", "h"]
        assert blocks == [["g", "h"]]


async def test_a_late_hello_gets_the_lines_again_one_by_one(blocks: list[list[str]]) -> None:
    async with running_server(announce_delay=10) as server:
        talker = await PlainPeer.connect(server.port)
        await talker.say("first")
        waiting = await PlainPeer.connect(server.port)  # no line yet: may send a hello
        await talker.send("x\ny\nz\n")
        for text in ("x", "y", "z"):
            assert await waiting.expect(lambda line, t=text: line.endswith(f"> {t}"), skip="")
        assert ["x", "y", "z"] in blocks
        replay = messages(await replay_after_hello(waiting, "waiting"))
        assert replay == [("first", True), ("x", False), ("y", False), ("z", False)]


async def test_timestamps_go_before_each_line_of_a_block(blocks: list[list[str]]) -> None:
    async with running_server() as server:
        listener = await PlainPeer.connect(server.port)
        await listener.say("/timestamps on")
        await listener.expect("Timestamps (UTC) are on")
        talker = await PlainPeer.connect(server.port)
        await talker.say("o")  # its first line says what it is: then blocks
        await listener.expect("> o", skip="***")
        await talker.send("p\nq\n")
        for text in ("p", "q"):
            line = await listener.expect(f"> {text}", skip="***")
            assert line.startswith("[")
            assert line[6:] == f"] <{talker.addr}> {text}"
        assert ["p", "q"] in blocks


async def test_the_console_logs_each_line_of_a_block(blocks: list[list[str]]) -> None:
    async with running_server() as server:
        talker = await PlainPeer.connect(server.port)
        await talker.say("hello")  # its first line says what it is
        await talker.send("l1\nl2\nl3\n")
        logged = await console_of(server).wait_for("[RECEIVED]", 4)
        assert [line.rsplit(": ", 1)[1] for line in logged] == ["hello", "l1", "l2", "l3"]
        assert ["l1", "l2", "l3"] in blocks


async def test_a_block_takes_no_more_lines_than_the_peers_budget(
    blocks: list[list[str]],
) -> None:
    async with running_server(flood_burst=5, flood_rate=0.01) as server:
        listener = await RichPeer.connect(server.port, "listener")
        talker = await PlainPeer.connect(server.port)
        await talker.send("".join(f"m{n}\n" for n in range(20)))
        got = [await listener.expect(Message, skip=Joined) for _ in range(5)]
        assert [m.text for m in got] == [f"m{n}" for n in range(5)]
        await console_of(server).wait_for("[FLOOD]")  # the rest waits, paced
        assert [m.text for m, _, _ in server.relay.rooms.lobby.log] == [f"m{n}" for n in range(5)]
        assert blocks
        assert all(len(block) <= 5 for block in blocks)


async def test_a_block_takes_no_more_lines_than_the_addresses_budget(
    blocks: list[list[str]],
) -> None:
    # 9 lines for the address: the listener's hello, then 6 + 2 of the talkers'.
    async with running_server(address_flood_burst=9, address_flood_rate=0.01) as server:
        listener = await RichPeer.connect(server.port, "listener")
        first = await PlainPeer.connect(server.port)
        second = await PlainPeer.connect(server.port)
        await first.send("".join(f"a{n}\n" for n in range(6)))
        got = [await listener.expect(Message, skip=Joined) for _ in range(6)]
        await second.send("".join(f"b{n}\n" for n in range(6)))
        got += [await listener.expect(Message, skip=Joined) for _ in range(2)]
        assert [m.text for m in got] == [f"a{n}" for n in range(6)] + ["b0", "b1"]
        await console_of(server).wait_for("[FLOOD]")
        assert len(server.relay.rooms.lobby.log) == 8
        assert blocks


# --- the fan-out of several senders' blocks in one pass ------------------------------------


@dataclass(eq=False)
class Member:
    name: str
    form: Form = PLAIN
    addr: str = "a"
    got: list[bytes] = field(default_factory=list)

    def queue_bytes(self, data: bytes) -> None:
        self.got.append(data)


def test_each_sender_gets_all_but_its_own_lines_in_order() -> None:
    a, b, c = Member("a"), Member("b"), Member("c")
    room: Room[Any] = Room("lobby", members=dict.fromkeys([a, b, c]))

    def said(sender: Member, text: str) -> tuple[Frames, Member]:
        return Frames(Message.relay(1, Say(text), sender.name, 0, None)), sender

    room.outbox = [said(a, "a1"), said(a, "a2"), said(b, "b1"), said(a, "a3"), said(c, "c1")]
    _fan_out(room, 0)
    assert a.got == [b"<b> b1\r\n<c> c1\r\n"]
    assert b.got == [b"<a> a1\r\n<a> a2\r\n<a> a3\r\n<c> c1\r\n"]
    assert c.got == [b"<a> a1\r\n<a> a2\r\n<b> b1\r\n<a> a3\r\n"]


def test_a_sender_with_nothing_else_to_get_gets_no_write() -> None:
    a, b = Member("a"), Member("b")
    room: Room[Any] = Room("lobby", members=dict.fromkeys([a, b]))
    room.outbox = [(Frames(Message.relay(1, Say("x"), "a", 0, None)), a)]
    _fan_out(room, 0)
    assert (a.got, b.got) == ([], [b"<a> x\r\n"])


async def test_each_line_of_a_block_goes_to_the_other_replicas_with_its_own_id(
    blocks: list[list[str]],
) -> None:
    async with running_server() as server:
        relay = server.relay
        _, bus = stub_replication(relay)
        talker = await PlainPeer.connect(server.port)
        await talker.say("/nick talker")
        await talker.expect("now known as talker", skip=lambda _: True)
        await talker.send("r1\nr2\nr3\n")
        await console_of(server).wait_for("[RECEIVED]", 3)
        said = [n.message for n in bus.published if n.kind == "message"]
        assert [(m.nick, m.text, m.room) for m in said if m is not None] == [
            ("talker", "r1", "lobby"),
            ("talker", "r2", "lobby"),
            ("talker", "r3", "lobby"),
        ]
        ids = [m.id for m in said if m is not None]
        assert ids == sorted(set(ids))
        assert ["r1", "r2", "r3"] in blocks
