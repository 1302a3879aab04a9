"""Peers that have not said what they are yet share one journal per room (issue 16).

A peer that has not sent a line may be a listening ``nc`` or a client whose hello is in
flight; the second wants what it was sent again, as JSON. The room keeps its broadcasts
once for all such peers instead of a copy per peer, and fan-out treats them like
everyone else.
"""

from __future__ import annotations

from peerchat_protocol import Event, Hello, Info, Message, Ping, Pong, Say, Welcome
from peerchat_server.frames import Frames
from peerchat_server.room import Room

from .peers import PlainPeer, RichPeer, running_server


class Member:
    def __init__(self, name: str) -> None:
        self.name = name
        self.addr = f"{name}:1"


def frames(*texts: str) -> list[Frames]:
    return [Frames(Say(text)) for text in texts]


def texts(kept: list[tuple[int, Frames]]) -> list[tuple[int, str]]:
    return [(i, f.event.text) for i, f in kept]  # type: ignore[attr-defined]


def test_a_waiter_gets_what_the_room_broadcast_since_it_came_and_how_much() -> None:
    room: Room[Member] = Room("lobby")
    a = Member("a")
    room.wait(a)
    room.keep(frames("one", "two"), 10)
    kept, sent = room.stop_waiting(a, 10)
    assert (texts(kept), sent) == ([(0, "one"), (1, "two")], 2)
    assert room.stop_waiting(a, 10) == ([], 0)  # no longer waiting: nothing more


def test_waiters_that_came_at_different_times_each_get_their_own_part() -> None:
    room: Room[Member] = Room("lobby")
    a, b = Member("a"), Member("b")
    room.wait(a)
    room.keep(frames("one"), 10)
    room.wait(b)
    room.keep(frames("two"), 10)
    kept_b, sent_b = room.stop_waiting(b, 10)
    kept_a, sent_a = room.stop_waiting(a, 10)
    assert (texts(kept_b), sent_b) == ([(1, "two")], 1)
    assert (texts(kept_a), sent_a) == ([(0, "one"), (1, "two")], 2)


def test_no_more_than_the_limit_is_kept_but_everything_is_counted() -> None:
    room: Room[Member] = Room("lobby")
    a = Member("a")
    room.wait(a)
    room.keep(frames("0", "1", "2", "3", "4"), 3)
    assert len(room.journal) == 3  # the room kept no more than a waiter may want
    kept, sent = room.stop_waiting(a, 3)
    assert (texts(kept), sent) == ([(0, "0"), (1, "1"), (2, "2")], 5)


def test_what_no_waiter_wants_is_let_go_and_the_last_waiter_takes_the_journal_along() -> None:
    room: Room[Member] = Room("lobby")
    a, b = Member("a"), Member("b")
    room.wait(a)
    room.keep(frames("one"), 10)
    room.wait(b)
    room.stop_waiting(a, 0)  # a said it is plain: "one" is wanted by nobody now
    room.keep(frames("two"), 10)
    assert [i for i, _ in room.journal] == [1]
    room.remove(b)  # b left: nobody waits, nothing is kept
    assert (len(room.journal), room.waiters) == (0, {})


async def replay_after_hello(late: PlainPeer, nick: str) -> list[Event]:
    """What a peer that sent nothing so far gets after its hello, up to a ping's answer."""
    rich = RichPeer(late.reader, late.writer)
    await rich.send(Hello(nick=nick))
    await rich.expect(Welcome)
    await rich.send(Ping("end"))
    events: list[Event] = []
    for _ in range(100):
        event = await rich.event()
        assert event is not None
        if isinstance(event, Pong):
            return events
        events.append(event)
    raise AssertionError("no end to the replay")


def messages(events: list[Event]) -> list[tuple[str, bool]]:
    return [(e.text, e.history) for e in events if isinstance(e, Message)]


async def test_each_late_hello_gets_again_exactly_what_it_was_sent_in_that_order() -> None:
    async with running_server(announce_delay=10) as server:
        talker = await PlainPeer.connect(server.port)
        first = await PlainPeer.connect(server.port)  # raw sockets: no hello yet
        await talker.say("one")
        assert await first.expect(lambda line: line.endswith("> one"), skip=lambda _: True)
        second = await PlainPeer.connect(server.port)  # gets "one" as history, alone
        assert await second.expect(lambda line: line.endswith("> one"), skip=lambda _: True)
        await talker.say("two")  # for both: one broadcast, kept once
        for late in (first, second):
            assert await late.expect(lambda line: line.endswith("> two"), skip=lambda _: True)
        # The history came before "two": it is repeated before it, marked as history.
        assert messages(await replay_after_hello(second, "second")) == [
            ("one", True),
            ("two", False),
        ]
        assert messages(await replay_after_hello(first, "first")) == [
            ("one", False),
            ("two", False),
        ]


async def test_a_listener_that_never_speaks_keeps_nothing_and_a_late_hello_is_told() -> None:
    async with running_server(announce_delay=0.1) as server:
        talker = await PlainPeer.connect(server.port)
        listener = await PlainPeer.connect(server.port)
        # Announced after its delay, silent: a listener; nothing is kept for it. (The
        # talker hears of it once it is announced; the listener hears only the talker.)
        assert await talker.expect(f"{listener.addr} joined", skip=lambda _: True)
        assert server.relay.rooms.lobby.waiters == {}
        await talker.say("heard as text")
        heard = await listener.expect(
            lambda line: line.endswith("> heard as text"), skip=lambda _: True
        )
        assert heard
        events = await replay_after_hello(listener, "listener")
        assert messages(events) == []
        notes = [e.text for e in events if isinstance(e, Info)]
        assert any("Your hello came late" in note for note in notes)
