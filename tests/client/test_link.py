"""The reconnecting link against scripted sessions: what is sent again, what is named."""

from __future__ import annotations

import asyncio
import io
from collections import deque
from typing import Any, cast

import pytest

from peerchat_client import link as link_module
from peerchat_client.console import Console
from peerchat_client.errors import ClientError, ServerGone
from peerchat_client.link import Link, NotSent
from peerchat_client.session import Session
from peerchat_protocol import Ack, Bye, Event, Message, Say, Welcome

from .harness import run


def welcome(epoch: str = "e1", **extra: Any) -> Welcome:
    return Welcome(
        version=3, nick="alice", addr="10.0.0.1:1", online=1, room="lobby",
        session="secret", epoch=epoch, **extra,
    )  # fmt: skip


def message(id: int, text: str, *, history: bool = False) -> Message:
    return Message(id, "bob", text, 0, "lobby", history=history)


class FakeSession:
    """A Session with scripted events; records what is sent and the hello asked for."""

    label = "server:8080"

    def __init__(self, greeting: Welcome, events: list[Event | Exception]) -> None:
        self.welcome = greeting
        self.nick: str | None = greeting.nick
        self.room: str | None = greeting.room
        self.sent: list[Event] = []
        self.events: deque[Event | Exception] = deque(events)
        self.last_heard = 0.0
        self.hello: dict[str, Any] = {}

    async def receive(self) -> Event:
        if not self.events:
            await asyncio.Event().wait()  # nothing more: the test ends before this returns
        item = self.events.popleft()
        if isinstance(item, Exception):
            raise item
        return item

    async def send(self, event: Event) -> None:
        self.sent.append(event)

    async def handshake(self, nick: str | None, password: str | None, **hello: Any) -> Welcome:
        self.hello = {"nick": nick, **hello}
        return self.welcome

    def abort(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def quit(self, reason: str | None = None) -> None:
        pass

    def too_long(self, event: Event) -> str | None:
        return None


def link_over(first: FakeSession, second: FakeSession) -> tuple[Link, io.StringIO]:
    out = io.StringIO()
    dials = iter([second])

    async def dial() -> Session:
        return cast(Session, next(dials))

    link = Link(cast(Session, first), Console(out, color=False), dial=dial, reconnect=True)
    return link, out


def said(session: FakeSession) -> list[tuple[str, int | None]]:
    return [(e.text, e.seq) for e in session.sent if isinstance(e, Say)]


def test_after_resuming_only_the_lines_the_server_had_not_handled_are_sent_again() -> None:
    async def scenario() -> None:
        first = FakeSession(welcome(), [message(5, "hi"), Ack(1)])
        second = FakeSession(welcome(resumed=True, acked=2, missed=0), [])
        link, out = link_over(first, second)
        for text in ("one", "two", "three"):
            assert await link.send(Say(text))
        assert said(first) == [("one", 1), ("two", 2), ("three", 3)]
        assert await link.receive() == message(5, "hi")  # then the ack of 1 is taken in
        first.events.append(ServerGone("Connection lost: reset"))
        back = await link.receive()
        assert back.resumed
        assert second.hello["resume"] == "secret"
        assert (second.hello["epoch"], second.hello["last_id"]) == ("e1", 5)
        assert said(second) == [("three", 3)]  # two was handled (acked=2), one acked
        assert "[RECONNECTED]" in out.getvalue()
        assert "You missed nothing" in out.getvalue()

    run(scenario())


def test_after_a_goodbye_and_a_restart_unconfirmed_lines_are_sent_again() -> None:
    async def scenario() -> None:
        first = FakeSession(welcome(), [])
        second = FakeSession(welcome(epoch="e2"), [])
        link, out = link_over(first, second)
        await link.send(Say("unconfirmed"))
        first.events.append(Bye("The server is shutting down.", code="shutdown"))
        await link.receive()
        assert said(second) == [("unconfirmed", 1)]
        assert "The server restarted, or you reached another one" in out.getvalue()
        assert "may not have reached" not in out.getvalue()

    run(scenario())


def test_after_a_crash_unconfirmed_lines_are_named_not_risked_twice() -> None:
    async def scenario() -> None:
        first = FakeSession(welcome(), [])
        second = FakeSession(welcome(epoch="e2"), [])
        link, out = link_over(first, second)
        await link.send(Say("maybe lost"))
        first.events.append(ServerGone("The connection was reset by the server"))
        await link.receive()
        assert said(second) == []
        assert "may not have reached everyone: 'maybe lost'" in out.getvalue()

    run(scenario())


def test_lines_typed_while_disconnected_wait_and_follow_in_order() -> None:
    async def scenario() -> None:
        first = FakeSession(welcome(), [ServerGone("Connection lost: reset")])
        second = FakeSession(welcome(resumed=True, acked=0, missed=0), [])
        link, out = link_over(first, second)
        receiving = asyncio.create_task(link.receive())
        await asyncio.sleep(0)  # the loss is seen; reconnecting waits for its backoff
        assert not link.connected
        assert not await link.send(Say("queued 1"))
        assert not await link.send(Say("queued 2"))
        await receiving
        assert said(second) == [("queued 1", 1), ("queued 2", 2)]
        assert out.getvalue().count("[SENT]") == 2

    run(scenario())


def test_a_live_message_seen_before_is_dropped_history_is_not() -> None:
    async def scenario() -> None:
        events: list[Event | Exception] = [
            message(7, "new"),
            message(7, "new"),  # a repeat: never shown twice
            message(3, "older, in a room just entered", history=True),
            message(8, "newer"),
        ]
        link, _ = link_over(FakeSession(welcome(), events), FakeSession(welcome(), []))
        shown = [await link.receive() for _ in range(3)]
        assert [m.text for m in shown if isinstance(m, Message)] == [
            "new", "older, in a room just entered", "newer",
        ]  # fmt: skip

    run(scenario())


def test_a_bye_for_something_we_did_ends_the_chat_without_reconnecting() -> None:
    async def scenario() -> None:
        bye = Bye("disconnected for flooding", code="flooding")
        link, out = link_over(FakeSession(welcome(), [bye]), FakeSession(welcome(), []))
        assert await link.receive() == bye
        assert "[DISCONNECTED]" not in out.getvalue()

    run(scenario())


class FailingSession(FakeSession):
    """A session whose sends fail after ``ok`` of them."""

    def __init__(self, greeting: Welcome, ok: int) -> None:
        super().__init__(greeting, [])
        self.ok = ok

    async def send(self, event: Event) -> None:
        if self.ok <= 0:
            raise ServerGone("Connection lost: reset")
        self.ok -= 1
        await super().send(event)


def test_a_resume_cut_short_loses_no_line_and_sends_none_twice() -> None:
    async def scenario() -> None:
        first = FakeSession(welcome(), [])
        second = FailingSession(welcome(resumed=True, acked=0, missed=0), ok=1)
        third = FakeSession(welcome(resumed=True, acked=1, missed=0), [])
        dials = iter([second, third])
        out = io.StringIO()

        async def dial() -> Session:
            return cast(Session, next(dials))

        link = Link(cast(Session, first), Console(out, color=False), dial=dial, reconnect=True)
        for text in ("one", "two", "three"):
            await link.send(Say(text))
        first.events.append(ServerGone("Connection lost: reset"))
        await link.receive()  # back over `second`, whose sends fail after "one"
        assert said(second) == [("one", 1)]
        await link.receive()  # back over `third`: the server had handled seq 1
        assert said(third) == [("two", 2), ("three", 3)]

    run(scenario())


def test_a_reconnect_asks_for_the_name_we_have_now_not_one_the_server_made() -> None:
    async def scenario() -> None:
        addressed = Welcome(
            version=3, nick="10.0.0.1:5", addr="10.0.0.1:5", online=1, room="lobby",
            session="secret", epoch="e1",
        )  # fmt: skip
        first = FakeSession(addressed, [ServerGone("Connection lost: reset")])
        second = FakeSession(welcome(epoch="e2"), [])
        link, _ = link_over(first, second)
        await link.receive()
        assert second.hello["nick"] is None  # the server picks: an address is no nickname
        second.nick = "bob"  # as after /nick bob
        third = FakeSession(welcome(epoch="e3"), [])
        link._dial = lambda: _ready(third)  # type: ignore[method-assign]
        second.events.append(ServerGone("Connection lost: reset"))
        await link.receive()
        assert third.hello["nick"] == "bob"

    run(scenario())


async def _ready(session: FakeSession) -> Session:
    return cast(Session, session)


async def losing(link: Link) -> asyncio.Task[Event]:
    """Start receiving on ``link`` and return once it has seen its connection lost (its
    reconnecting still to come, in the task returned)."""
    receiving = asyncio.create_task(link.receive())
    for _ in range(10):  # a few passes of the loop, until the loss is seen
        if not link.connected:
            break
        await asyncio.sleep(0)
    return receiving


def test_at_most_100_lines_wait_while_disconnected_and_one_more_is_refused_with_a_reason() -> None:
    # README and PROTOCOL.md: "lines typed while disconnected (up to 100) are sent once back".
    async def scenario() -> None:
        first = FakeSession(welcome(), [ServerGone("Connection lost: reset")])
        second = FakeSession(welcome(resumed=True, acked=0, missed=0), [])
        server_back = asyncio.Event()

        async def dial() -> Session:
            await server_back.wait()  # disconnected until the test says otherwise
            return cast(Session, second)

        out = io.StringIO()
        link = Link(cast(Session, first), Console(out, color=False), dial=dial, reconnect=True)
        receiving = await losing(link)
        assert not link.connected
        for n in range(100):
            assert not await link.send(Say(f"typed {n}"))
        with pytest.raises(NotSent) as refused:
            await link.send(Say("one too many"))
        assert "not sent" in refused.value.message
        assert "100 lines already wait" in refused.value.message
        assert "wait until the connection is back" in refused.value.message
        server_back.set()
        await receiving
        assert said(second) == [(f"typed {n}", n + 1) for n in range(100)]  # in order, once

    run(scenario())


def test_reconnecting_gives_up_after_its_time_and_names_what_was_never_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # README: it reconnects "for up to 15 minutes"; here the same rule with half a second.
    assert link_module.RECONNECT_GIVE_UP == 15 * 60
    monkeypatch.setattr(link_module, "RECONNECT_GIVE_UP", 0.5)

    async def scenario() -> None:
        first = FakeSession(welcome(), [ServerGone("Connection lost: reset")])
        tries = 0

        async def dial() -> Session:
            nonlocal tries
            tries += 1
            raise ClientError("Connection refused by server:8080")

        out = io.StringIO()
        link = Link(cast(Session, first), Console(out, color=False), dial=dial, reconnect=True)
        receiving = await losing(link)
        assert not await link.send(Say("typed while away"))
        with pytest.raises(ServerGone) as gone:
            await receiving
        assert "Could not reconnect to server:8080" in gone.value.message
        assert "(Connection refused by server:8080); giving up" in gone.value.message
        assert tries >= 1
        assert "1 of your lines were never sent: 'typed while away'" in out.getvalue()

    run(scenario())


def test_a_line_pushed_out_of_the_unacknowledged_ones_is_named_once() -> None:
    async def scenario() -> None:
        first = FakeSession(welcome(), [])
        link, out = link_over(first, FakeSession(welcome(), []))
        link.ledger.unacked_lines = 2
        for text in ("one", "two"):
            await link.send(Say(text))
        assert "[WARNING]" not in out.getvalue()
        await link.send(Say("three"))
        assert out.getvalue() == (
            "[WARNING] 2 lines wait for the server's confirmation; 'one' will not be sent "
            "again if the connection drops.\n"
        )
        assert said(first) == [("one", 1), ("two", 2), ("three", 3)]

    run(scenario())
