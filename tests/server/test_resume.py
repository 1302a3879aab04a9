"""Protocol v3 on the server: acks, resuming a session, catch-up after a lost connection."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

from peerchat_protocol import (
    Ack,
    Bye,
    Entered,
    Event,
    Hello,
    Joined,
    JoinRoom,
    LeaveRoom,
    Left,
    Message,
    Quit,
    Roster,
    Say,
    Welcome,
    Who,
)
from peerchat_server.replicas import RemotePeer
from peerchat_server.resume import ResumeBook
from peerchat_server.session import Session

from .peers import PlainPeer, RichPeer, console_of, running_server


async def hello(port: int, **members: Any) -> RichPeer:
    """A rich peer whose hello carries ``members`` (resume, room, epoch, last_id ...)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    peer = RichPeer(reader, writer)
    await peer.send(Hello(version=3, client="tests", **members))
    peer.welcome = await peer.expect(Welcome)
    return peer


async def alice_and_bob_in_games(port: int) -> tuple[RichPeer, RichPeer]:
    """alice and bob, both moved from the lobby to #games, every notice on the way read."""
    alice = await RichPeer.connect(port, "alice")
    bob = await RichPeer.connect(port, "bob")
    assert (await alice.expect(Joined)).nick == "bob"
    await alice.send(JoinRoom("games"))
    await alice.expect(Entered)
    assert (await bob.expect(Left)).nick == "alice"
    await bob.send(JoinRoom("games"))
    await bob.expect(Entered)
    assert (await alice.expect(Joined)).nick == "bob"
    return alice, bob


def session_of(peer: RichPeer) -> str:
    assert peer.welcome is not None
    assert peer.welcome.session is not None
    return peer.welcome.session


async def test_a_v3_welcome_names_the_session_and_the_epoch() -> None:
    async with running_server() as server:
        alice = await RichPeer.connect(server.port, "alice")
        assert alice.welcome is not None
        assert alice.welcome.version == 3
        assert len(session_of(alice)) >= 20
        assert alice.welcome.epoch
        assert not alice.welcome.resumed
        assert alice.welcome.acked is None
        assert alice.welcome.server == server.config.name
        old = await RichPeer.connect(server.port, "old", version=2)
        assert old.welcome is not None
        assert old.welcome.session is None
        assert old.welcome.epoch is None


async def test_lines_with_a_seq_are_acknowledged_and_a_repeat_is_not_relayed() -> None:
    async with running_server() as server:
        alice = await RichPeer.connect(server.port, "alice")
        bob = await RichPeer.connect(server.port, "bob")
        assert (await alice.expect(Joined)).nick == "bob"
        for seq in (1, 2, 3):
            await alice.send(Say(f"line {seq}", seq=seq))
        # One ack per read: the three may come in one read or several.
        assert (await alice.expect(Ack, lambda a: a.seq == 3, skip=Ack)).seq == 3
        await alice.send(Say("line 2", seq=2))  # sent again, as after a reconnect
        await alice.send(Say("line 4", seq=4))
        await alice.expect(Ack, lambda a: a.seq == 4, skip=Ack)
        texts = [(await bob.expect(Message)).text for _ in range(4)]
        assert texts == ["line 1", "line 2", "line 3", "line 4"]


async def test_a_lost_client_resumes_its_name_and_catches_up_on_what_it_missed() -> None:
    async with running_server() as server:
        alice = await RichPeer.connect(server.port, "alice")
        bob = await RichPeer.connect(server.port, "bob")
        await bob.send(Say("before"))
        assert (await alice.expect(Joined)).nick == "bob"
        seen = await alice.expect(Message)
        await alice.send(Say("mine", seq=1))
        await alice.expect(Ack)
        assert (await bob.expect(Message)).text == "mine"
        alice_welcome = alice.welcome
        assert alice_welcome is not None
        await alice.close()
        left = await bob.expect(Left)
        assert left.nick == "alice"
        for n in range(3):
            await bob.send(Say(f"while away {n}"))
        await bob.send(Who())
        await bob.expect(Roster)  # the three were handled before the roster was sent
        back = await hello(
            server.port,
            nick="someone-else",
            resume=session_of(alice),
            epoch=alice_welcome.epoch,
            last_id=seen.id,
        )
        welcome = back.welcome
        assert welcome is not None
        assert (welcome.nick, welcome.resumed, welcome.acked) == ("alice", True, 1)
        assert (welcome.missed, welcome.gap) == (3, False)  # bob's three; never its own line
        caught = [await back.expect(Message) for _ in range(3)]
        assert [m.text for m in caught] == [f"while away {n}" for n in range(3)]
        assert all(m.history for m in caught)
        joined = await bob.expect(Joined)
        assert joined.nick == "alice"  # it had left; now it is back
        await back.send(Say("still mine?", seq=1))  # a repeat across connections
        await back.send(Say("new", seq=2))
        await back.expect(Ack, lambda a: a.seq == 2, skip=Ack)
        assert (await bob.expect(Message)).text == "new"  # the repeat was not relayed


async def test_resuming_over_a_half_open_connection_replaces_it_without_notices() -> None:
    async with running_server() as server:
        alice, bob = await alice_and_bob_in_games(server.port)
        await bob.send(Say("in games"))
        seen = await alice.expect(Message)
        assert alice.welcome is not None
        # alice's client thinks its connection died; the server still has it open.
        back = await hello(
            server.port,
            resume=session_of(alice),
            room="lobby",  # ignored: the session's own room wins
            epoch=alice.welcome.epoch,
            last_id=seen.id,
        )
        assert back.welcome is not None
        assert (back.welcome.nick, back.welcome.room, back.welcome.resumed) == (
            "alice",
            "games",
            True,
        )
        assert await alice.event() is None  # the old connection was closed
        await console_of(server).wait_for("[REPLACED] Peer alice")
        await bob.send(Who())
        await bob.send(Say("after"))
        assert (await back.expect(Message)).text == "after"
        await back.send(Say("hello again"))
        seen_by_bob = await events_until(bob, lambda e: isinstance(e, Message))
        roster = next(e for e in seen_by_bob if isinstance(e, Roster))
        assert [p.nick for p in roster.peers] == ["bob", "alice"]
        assert not [e for e in seen_by_bob if isinstance(e, Left | Joined)]  # no notices
        assert seen_by_bob[-1] == Message(
            seen_by_bob[-1].id, "alice", "hello again", seen_by_bob[-1].ts, "games"
        )


async def events_until(peer: RichPeer, last: Callable[[Event], bool]) -> list[Event]:
    """Every event ``peer`` receives, up to and including the first ``last`` one."""
    events: list[Event] = []
    for _ in range(1000):
        event = await peer.event()
        assert event is not None, f"end of stream after {events!r}"
        events.append(event)
        if last(event):
            return events
    raise AssertionError("too many events")


async def test_a_gap_larger_than_the_catch_up_is_reported() -> None:
    async with running_server(catch_up_messages=3, history_messages=2) as server:
        alice = await RichPeer.connect(server.port, "alice")
        bob = await RichPeer.connect(server.port, "bob")
        assert alice.welcome is not None
        await alice.close()
        await bob.expect(Left)
        for n in range(5):
            await bob.send(Say(f"m{n}"))
        await bob.send(Who())
        await bob.expect(Roster)
        back = await hello(
            server.port, resume=session_of(alice), epoch=alice.welcome.epoch, last_id=0
        )
        assert back.welcome is not None
        assert (back.welcome.missed, back.welcome.gap) == (3, True)
        texts = [(await back.expect(Message)).text for _ in range(3)]
        assert texts == ["m2", "m3", "m4"]


async def test_after_a_restart_the_old_session_is_unknown_and_history_is_ordinary() -> None:
    async with running_server() as server:
        bob = await RichPeer.connect(server.port, "bob")
        await bob.send(Say("said here"))
        await bob.send(Who())
        await bob.expect(Roster)
        back = await hello(
            server.port,
            nick="alice",
            resume="a-token-from-another-run",
            room="games",
            epoch="another-epoch",
            last_id=99,
        )
        assert back.welcome is not None
        assert (back.welcome.nick, back.welcome.room) == ("alice", "games")
        assert not back.welcome.resumed
        assert back.welcome.missed is None
        assert back.welcome.epoch != "another-epoch"


async def test_after_quit_a_session_cannot_be_resumed() -> None:
    async with running_server() as server:
        alice = await RichPeer.connect(server.port, "alice")
        await alice.send(Quit("bye"))
        await alice.expect(Bye)
        await alice.close()
        await console_of(server).wait_for("[DISCONNECTED] alice")
        back = await hello(server.port, nick="alice2", resume=session_of(alice))
        assert back.welcome is not None
        assert (back.welcome.nick, back.welcome.resumed) == ("alice2", False)


async def test_with_no_resume_window_nothing_is_resumed() -> None:
    async with running_server(resume_window=0) as server:
        alice = await RichPeer.connect(server.port, "alice")
        await alice.close()
        await console_of(server).wait_for("[DISCONNECTED] alice")
        back = await hello(server.port, resume=session_of(alice))
        assert back.welcome is not None
        assert not back.welcome.resumed


def test_gone_sessions_expire_after_the_window_and_are_bounded_in_number() -> None:
    book = ResumeBook(window=300, max_gone=2)
    peer = cast("Session", object())
    records = [book.open(peer, f"p{n}", "lobby") for n in range(3)]
    assert len({r.token for r in records}) == 3
    assert book.find(records[0].token, now=0) is records[0]  # live: no expiry
    for n, record in enumerate(records):
        book.lost(record, f"p{n}", "lobby", now=float(n))
    assert book.find(records[0].token, now=10) is None  # the oldest of three gone went
    assert book.find(records[1].token, now=301) is records[1]
    assert book.find(records[1].token, now=301.5) is None  # past its window
    assert book.expire(now=301.5) == 1
    assert len(book) == 1
    book.forget(records[2])
    assert len(book) == 0


async def test_plain_peers_are_untouched_by_seq_and_resume() -> None:
    async with running_server() as server:
        alice = await RichPeer.connect(server.port, "alice")
        nc = await PlainPeer.connect(server.port)
        await alice.send(Say("hi nc", seq=1))
        await alice.expect(Ack, skip=Joined)  # nc is announced at its first line, or 0.5 s in
        assert (await nc.expect("<alice>")) == "<alice> hi nc"
        await nc.say("hi alice")
        assert (await alice.expect(Message, skip=Joined)).text == "hi alice"
        await nc.expect_none()  # no ack, nothing about a seq


async def test_a_forgotten_session_still_gets_no_echo_of_its_own_lines() -> None:
    async with running_server(resume_window=0) as server:
        alice = await RichPeer.connect(server.port, "alice")
        bob = await RichPeer.connect(server.port, "bob")
        await bob.send(Say("before"))
        assert (await alice.expect(Joined)).nick == "bob"
        seen = await alice.expect(Message)
        await alice.send(Say("mine", seq=1))
        await alice.expect(Ack)
        assert (await bob.expect(Message)).text == "mine"
        assert alice.welcome is not None
        await alice.close()
        await bob.expect(Left)
        await bob.send(Say("while away"))
        await bob.send(Who())
        await bob.expect(Roster)
        back = await hello(
            server.port, resume=session_of(alice), epoch=alice.welcome.epoch, last_id=seen.id
        )
        assert back.welcome is not None
        assert not back.welcome.resumed  # no window: the session was not kept
        assert back.welcome.missed == 1  # bob's line, not its own
        assert (await back.expect(Message)).text == "while away"


async def test_coming_back_to_a_room_that_emptied_reports_no_false_gap() -> None:
    async with running_server() as server:
        alice = await RichPeer.connect(server.port, "alice")
        bob = await RichPeer.connect(server.port, "bob")
        assert (await alice.expect(Joined)).nick == "bob"
        await alice.send(JoinRoom("quiet"))
        await alice.expect(Entered)
        await alice.send(Say("alone here", seq=1))
        ack = await alice.expect(Ack)
        assert alice.welcome is not None
        assert ack.id is not None
        last_seen = ack.id  # its own line: what a client counts as seen
        await alice.close()
        await console_of(server).wait_for("[DISCONNECTED] alice")
        assert (await bob.expect(Left)).reason == "went to #quiet"
        await bob.send(Say("meanwhile in the lobby"))
        await bob.send(Who())
        await bob.expect(Roster)
        back = await hello(
            server.port, resume=session_of(alice), epoch=alice.welcome.epoch, last_id=last_seen
        )
        assert back.welcome is not None
        assert back.welcome.room == "quiet"
        assert (back.welcome.missed, back.welcome.gap) == (0, False)


async def test_names_held_on_other_replicas_are_skipped_when_choosing_a_free_one() -> None:
    async with running_server() as server:
        for n in ["", *(f"_{k}" for k in range(2, 9))]:
            server.relay.registry.remote.add(RemotePeer(f"guest{n}", "a:1", "lobby", "r1"))
        peer = await RichPeer.connect(server.port, "guest")
        assert peer.nick == "guest_9"


async def test_a_client_from_another_epoch_catches_up_by_time() -> None:
    async with running_server() as server:
        bob = await RichPeer.connect(server.port, "bob")
        carol = await RichPeer.connect(server.port, "carol")
        await bob.send(Say("seen before"))
        seen = await carol.expect(Message)
        await bob.send(Say("said after"))
        await carol.expect(Message, lambda m: m.text == "said after")
        # alice was here before the server restarted: its ids mean nothing now, but
        # the time of the newest message it saw does.
        back = await hello(
            server.port, nick="alice", resume="old-secret", epoch="old-epoch",
            last_id=12345, last_ts=seen.ts - 1,
        )  # fmt: skip
        assert back.welcome is not None
        assert not back.welcome.resumed
        assert back.welcome.missed == 2
        texts = [(await back.expect(Message)).text for _ in range(2)]
        assert texts == ["seen before", "said after"]


async def test_a_room_emptied_and_made_again_since_reports_a_gap() -> None:
    # PROTOCOL.md section 8: the server cannot tell what the room said in its other life.
    async with running_server() as server:
        alice = await RichPeer.connect(server.port, "alice")
        await alice.send(JoinRoom("quiet"))
        await alice.expect(Entered)
        await alice.send(Say("alone here", seq=1))
        last_seen = (await alice.expect(Ack)).id
        assert alice.welcome is not None
        assert last_seen is not None
        await alice.close()  # the room empties and goes
        await console_of(server).wait_for("[DISCONNECTED] alice")
        bob = await RichPeer.connect(server.port, "bob")
        await bob.send(JoinRoom("quiet"))  # made again...
        await bob.expect(Entered)
        await bob.send(Say("said in its second life"))
        await bob.send(LeaveRoom())  # ...and emptied again
        await bob.expect(Entered)
        back = await hello(
            server.port, resume=session_of(alice), epoch=alice.welcome.epoch, last_id=last_seen
        )
        assert back.welcome is not None
        assert (back.welcome.room, back.welcome.resumed) == ("quiet", True)
        assert (back.welcome.missed, back.welcome.gap) == (0, True)


async def test_the_catch_up_is_bounded_in_bytes_too_and_the_gap_reported() -> None:
    async with running_server(catch_up_bytes=300, history_bytes=300) as server:
        alice = await RichPeer.connect(server.port, "alice")
        bob = await RichPeer.connect(server.port, "bob")
        assert (await alice.expect(Joined)).nick == "bob"
        assert alice.welcome is not None
        await alice.close()
        assert (await bob.expect(Left)).nick == "alice"
        for n in range(5):
            await bob.send(Say(f"{n}" * 100))
        await bob.send(Who())
        await bob.expect(Roster)
        back = await hello(
            server.port, resume=session_of(alice), epoch=alice.welcome.epoch, last_id=0
        )
        assert back.welcome is not None
        assert (back.welcome.missed, back.welcome.gap) == (
            2,
            True,
        )  # 300 bytes hold two (149 each in memory)
        assert [(await back.expect(Message)).text for _ in range(2)] == ["3" * 100, "4" * 100]
        await back.expect_none(skip=Joined)


async def test_sessions_waiting_to_be_resumed_are_bounded_by_max_connections() -> None:
    # SECURITY.md: at most --max-connections sessions wait; the oldest goes first.
    async with running_server(max_connections=2) as server:
        secrets = []
        for n in range(3):
            peer = await RichPeer.connect(server.port, f"p{n}")
            secrets.append(session_of(peer))
            await peer.close()
            await console_of(server).wait_for(f"[DISCONNECTED] p{n}")
        first = await hello(server.port, nick="again", resume=secrets[0])
        assert first.welcome is not None
        assert (first.welcome.nick, first.welcome.resumed) == ("again", False)  # forgotten
        await first.close()
        await console_of(server).wait_for("[DISCONNECTED] again")
        last = await hello(server.port, resume=secrets[2])
        assert last.welcome is not None
        assert (last.welcome.nick, last.welcome.resumed) == ("p2", True)
        # Whatever happened, no session secret reached the server's log.
        log = "\n".join(console_of(server).lines)
        assert not [secret for secret in secrets if secret in log]


async def test_a_line_acknowledged_has_reached_everyone_connected_even_if_the_server_stops() -> (
    None
):
    # PROTOCOL.md section 8, guarantee 4: once a line is acknowledged it has been relayed
    # to every member of the room connected at that moment.
    async with running_server() as server:
        alice = await RichPeer.connect(server.port, "alice")
        bob = await RichPeer.connect(server.port, "bob")
        assert (await alice.expect(Joined)).nick == "bob"
        await alice.send(Say("acknowledged", seq=1))
        assert (await alice.expect(Ack)).seq == 1
        await server.stop()  # at once: nothing may be left to relay
        assert (await bob.expect(Message)).text == "acknowledged"
        assert (await bob.expect(Bye)).code == "shutdown"


#: Stand-ins for connections, for the book's own tests.
PEER_ = cast("Session", object())
OTHER_ = cast("Session", object())


def test_a_short_window_still_keeps_a_session_and_a_zero_one_keeps_none() -> None:
    book = ResumeBook(window=1.0, max_gone=10)
    record = book.open(PEER_, "alice", "lobby")
    book.lost(record, "alice", "lobby", now=0.0)
    assert book.find(record.token, now=0.5) is record
    off = ResumeBook(window=0, max_gone=10)
    gone = off.open(PEER_, "bob", "lobby")
    off.lost(gone, "bob", "lobby", now=5.0)
    assert off.find(gone.token, now=5.0) is None
    assert len(off) == 0


def test_the_window_is_inclusive_and_expire_counts_every_session_it_drops() -> None:
    book = ResumeBook(window=300, max_gone=10)
    a, b, c = (book.open(PEER_, n, "lobby") for n in ("a", "b", "c"))
    for record in (a, b, c):
        book.lost(record, record.nick, "lobby", now=0.0)
    assert book.find(a.token, now=300.0) is a  # exactly the window: still there
    assert book.expire(now=300.0) == 0
    assert book.expire(now=300.5) == 3


def test_a_taken_over_session_is_live_under_its_new_connection_only() -> None:
    book = ResumeBook(window=300, max_gone=10)
    record = book.open(PEER_, "alice", "lobby")
    book.lost(record, "alice", "lobby", now=0.0)
    book.take_over(record, OTHER_)
    assert record.session is OTHER_
    assert book.find(record.token, now=1.0) is record  # can be resumed again
    assert len(book) == 1  # counted once: not also waiting


def test_a_live_session_can_be_forgotten() -> None:
    book = ResumeBook(window=300, max_gone=10)
    record = book.open(PEER_, "alice", "lobby")
    book.forget(record)  # the peer quit while connected
    assert len(book) == 0
    assert book.find(record.token, now=0.0) is None


def test_at_most_max_gone_sessions_wait_even_when_it_is_one() -> None:
    book = ResumeBook(window=300, max_gone=1)
    first, second = book.open(PEER_, "a", "lobby"), book.open(PEER_, "b", "lobby")
    book.lost(first, "a", "lobby", now=0.0)
    book.lost(second, "b", "lobby", now=1.0)
    assert book.find(first.token, now=2.0) is None
    assert book.find(second.token, now=2.0) is second


async def test_an_ordinary_v3_welcome_reports_no_gap() -> None:
    async with running_server() as server:
        alice = await RichPeer.connect(server.port, "alice")
        assert alice.welcome is not None
        assert (alice.welcome.missed, alice.welcome.gap) == (None, False)


async def test_a_session_that_cannot_be_resumed_gets_a_fresh_secret() -> None:
    async with running_server() as server:
        back = await hello(server.port, nick="alice", resume="a-secret-nobody-was-given")
        assert back.welcome is not None
        assert not back.welcome.resumed
        assert session_of(back) != "a-secret-nobody-was-given"


async def test_a_session_can_be_resumed_twice_over_half_open_connections() -> None:
    async with running_server() as server:
        alice = await RichPeer.connect(server.port, "alice")
        secret = session_of(alice)
        first = await hello(server.port, resume=secret)  # alice's connection was half-open
        assert first.welcome is not None
        assert first.welcome.resumed
        second = await hello(server.port, resume=secret)  # and so was this one
        assert second.welcome is not None
        assert (second.welcome.nick, second.welcome.resumed) == ("alice", True)
        assert await first.event() is None  # the earlier one was closed


async def test_resuming_alone_in_a_room_over_a_half_open_connection_keeps_the_room_s_log() -> None:
    # The new connection joins before the old one goes: the room never empties, so its
    # log (and what the peer missed) is kept, with no false gap.
    async with running_server() as server:
        alice, bob = await alice_and_bob_in_games(server.port)
        await bob.send(Say("before"))
        seen = await alice.expect(Message)
        await bob.send(Say("while alice's link was dying"))  # alice's client never sees it
        await bob.send(LeaveRoom())
        await bob.expect(Entered)  # alice is alone in #games, on a half-open connection
        assert alice.welcome is not None
        back = await hello(
            server.port, resume=session_of(alice), epoch=alice.welcome.epoch, last_id=seen.id
        )
        assert back.welcome is not None
        assert (back.welcome.room, back.welcome.resumed) == ("games", True)
        assert (back.welcome.missed, back.welcome.gap) == (1, False)
        assert (await back.expect(Message)).text == "while alice's link was dying"


async def test_resuming_into_another_room_gets_that_room_s_history_not_the_lobby_s() -> None:
    async with running_server() as server:
        talker = await RichPeer.connect(server.port, "talker")
        await talker.send(Say("said in the lobby"))  # history a new connection is sent
        alice = await RichPeer.connect(server.port, "alice")
        assert (await alice.expect(Message)).text == "said in the lobby"
        await alice.send(JoinRoom("games"))
        await alice.expect(Entered)
        assert (await talker.expect(Joined)).nick == "alice"
        assert (await talker.expect(Left)).nick == "alice"  # went to #games
        await talker.send(JoinRoom("games"))
        await talker.expect(Entered)
        await alice.close()
        assert (await talker.expect(Left)).nick == "alice"
        await talker.send(Say("said in games"))
        await talker.send(Who())
        await talker.expect(Roster)
        # Only the secret: no epoch or last id (a client that kept nothing else).
        back = await hello(server.port, resume=session_of(alice))
        assert back.welcome is not None
        assert (back.welcome.room, back.welcome.resumed) == ("games", True)
        got = await back.expect(Message)
        assert (got.text, got.history) == ("said in games", True)
        await back.expect_none()  # and not the lobby's line, sent as text before the hello


async def test_names_held_for_lost_sessions_leave_a_free_variant_for_a_newcomer() -> None:
    # Each reload of a page whose session was lost (never resumed) asks for the same
    # name while the earlier sessions still hold theirs: each gets the next variant.
    async with running_server() as server:
        names = []
        for gone in range(1, 7):
            peer = await RichPeer.connect(server.port, "t")
            names.append(peer.nick)
            peer.writer.transport.abort()
            await console_of(server).wait_for("[DISCONNECTED]", count=gone)
        assert names == ["t", "t_2", "t_3", "t_4", "t_5", "t_6"]
