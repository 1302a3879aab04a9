"""One id sequence per room across replicas: Redis numbers every room's lines, each
replica delivers them in that order under those ids (its own peers' too, once Redis
hands them back), and a client that moves catches up by id (PROTOCOL.md §3, §8)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest

from peerchat_protocol import (
    Ack,
    Entered,
    Hello,
    Info,
    Joined,
    JoinRoom,
    Left,
    Message,
    Say,
    Welcome,
)
from peerchat_server.notes import Note, room_channel

from .peers import PlainPeer, RichPeer, console_of, running_server, stub_replication
from .replicaset import Cluster, Redis, replica_set, run
from .test_room_channels import into, one_on_each, shared, until_subscribers

__all__ = ["shared"]  # (the fixture: one redis-server, or a Redis Cluster of three)


def test_lines_crossing_between_replicas_arrive_in_one_order_under_one_id_everywhere(
    shared: Redis | Cluster,
) -> None:
    """Two people on two replicas talk at once: everyone, on either replica, gets the
    room's lines in the same order, under the same ids, increasing."""

    async def scenario() -> None:
        async with replica_set(shared.url, 2) as (a, b):
            alice, bob = await one_on_each((a, b))
            carol = await RichPeer.connect(a.port, "carol")
            dave = await RichPeer.connect(b.port, "dave")
            await alice.expect(Joined, lambda j: j.nick == "dave", skip=Joined)
            await bob.expect(Joined, lambda j: j.nick == "dave", skip=Joined)
            await carol.expect(Joined, lambda j: j.nick == "dave", skip=Joined)
            for n in range(30):  # sent without waiting: the two senders' lines cross
                await alice.send(Say(f"alice {n}"))
                await bob.send(Say(f"bob {n}"))
            heard = {}
            for peer in (carol, dave):
                got = [await peer.expect(Message, skip=(Joined, Left)) for _ in range(60)]
                heard[peer.nick] = [(m.text, m.id) for m in got]
            assert heard["carol"] == heard["dave"]
            ids = [i for _, i in heard["carol"]]
            assert ids == sorted(set(ids))
            order = [text for text, _ in heard["carol"]]
            assert [t for t in order if t.startswith("alice")] == [f"alice {n}" for n in range(30)]
            # Each sender gets the other's lines only, in the same order and ids.
            to_alice = [await alice.expect(Message, skip=Joined) for _ in range(30)]
            assert [(m.text, m.id) for m in to_alice] == [
                (t, i) for t, i in heard["carol"] if t.startswith("bob")
            ]
            assert carol.welcome is not None
            assert dave.welcome is not None
            assert carol.welcome.epoch == dave.welcome.epoch  # one for all (from Redis)

    run(scenario())


def test_a_client_back_where_nobody_follows_its_room_catches_up_by_id(redis: Redis) -> None:
    """alice had the room's lines up to one id; the time it gives says nothing (all of
    it may be one millisecond). Back on a replica that stopped following the room, it
    gets exactly what came after that id: from the log here, then from Redis's."""

    async def scenario() -> None:
        async with replica_set(redis.url, 2) as (a, b):
            alice, bob = await one_on_each((a, b))
            await into(alice, "dev")
            await into(bob, "dev")
            for text in ("one", "two", "three"):
                await bob.send(Say(text))
            had = [await alice.expect(Message, skip=Joined) for _ in range(3)]
            assert alice.welcome is not None
            secret, epoch = alice.welcome.session, alice.welcome.epoch
            await alice.close()
            await bob.expect(Left, skip=Joined)
            await until_subscribers(redis, room_channel("dev"), 1)  # a stopped following
            for n in range(4):
                await bob.send(Say(f"while away {n}"))
            reader, writer = await asyncio.open_connection("127.0.0.1", a.port)
            back = RichPeer(reader, writer)
            await back.send(
                Hello(version=3, nick="alice", resume=secret, epoch=epoch, last_id=had[1].id,
                      last_ts=had[2].ts + 60_000)
            )  # fmt: skip
            await back.expect(Welcome)
            got = [await back.expect(Message, skip=(Joined, Left)) for _ in range(5)]
            assert [m.text for m in got] == ["three"] + [f"while away {n}" for n in range(4)]
            assert got[0].id == had[2].id
            await back.expect_none(skip=(Joined, Left))

    run(scenario())


# --- a replica's own lines, with a bus that hands them back when told ----------------------


class EchoingBus:
    """What a stub bus publishes waits; ``echo`` hands a room's line back as Redis would
    (numbered), ``split`` is Redis going away."""

    def __init__(self, bus: Any, replication: Any) -> None:
        self.bus, self.replication = bus, replication
        bus.publish = self.publish
        self.lines: list[Note] = []

    def publish(self, note: Note, channel: str = "") -> bool:
        if note.kind == "message":
            self.lines.append(note)
        return True

    def echo(self, text: str, shared: int) -> None:
        note = next(n for n in self.lines if n.message is not None and n.message.text == text)
        self.replication.on_note(dataclasses.replace(note, shared=shared))


@contextlib.asynccontextmanager
async def echoing() -> AsyncIterator[tuple[Any, EchoingBus, RichPeer, RichPeer]]:
    """A server as one replica of several whose bus hands its lines back only when told
    (EchoingBus), with alice and carol in its lobby: (server, echo, alice, carol)."""
    async with running_server() as server:
        replication, bus = stub_replication(server.relay)
        echo = EchoingBus(bus, replication)
        alice = await RichPeer.connect(server.port, "alice")
        carol = await RichPeer.connect(server.port, "carol")
        await alice.expect(Joined)
        yield server, echo, alice, carol


def test_a_replica_delivers_its_own_peers_lines_once_redis_numbered_them() -> None:
    """... and acknowledges each only then (guarantee 4: acknowledged means relayed)."""

    async def scenario() -> None:
        async with echoing() as (server, echo, alice, carol):
            replication = echo.replication
            await alice.send(Say("first", seq=1))
            await alice.expect_none()  # read (the ping after it is answered), not acked
            await carol.expect_none()  # nor delivered until Redis hands it back
            base = server.relay.rooms.last_id + 1_000
            echo.echo("first", base)
            got = await carol.expect(Message)
            assert (got.text, got.id) == ("first", base)
            assert await alice.expect(Ack) == Ack(1, base)
            # Of two lines, the second is back first: the first never will be (published
            # before its room was heard, say): delivered here alone, before the second.
            await alice.send(Say("lost", seq=2))
            await alice.send(Say("second", seq=3))
            await alice.expect_none()
            echo.echo("second", base + 10)
            lost, second = await carol.expect(Message), await carol.expect(Message)
            assert [lost.text, second.text] == ["lost", "second"]
            assert base < lost.id < second.id == base + 10
            assert await alice.expect(Ack) == Ack(2, lost.id)
            assert await alice.expect(Ack) == Ack(3, second.id)
            # Redis goes: what waits is delivered here at once.
            await alice.send(Say("in flight", seq=4))
            await alice.expect_none()
            replication.on_split("test")
            in_flight = await carol.expect(Message, skip=Info)
            assert in_flight.text == "in flight"
            assert await alice.expect(Ack, skip=Info) == Ack(4, in_flight.id)
            await alice.expect_none(skip=Info)  # never its own line

    run(scenario())


def test_what_its_sender_says_after_a_waiting_line_waits_for_it() -> None:
    """Per-sender order (guarantee 1): a private message after a room line that waits
    for Redis reaches its target after that line, and the ack of a later line does not
    cover the one that waits."""

    async def scenario() -> None:
        async with echoing() as (server, echo, alice, carol):
            await alice.send(Say("room line", seq=1))
            await alice.send(Say("psst", to="carol", seq=2))
            await alice.expect_none()  # no ack: line 1 waits, and 2 comes after it
            await carol.expect_none()  # the private message waits behind the room line
            echo.echo("room line", server.relay.rooms.last_id + 1_000)
            room_line, private = await carol.expect(Message), await carol.expect(Message)
            assert [room_line.text, private.text] == ["room line", "psst"]
            assert room_line.id < private.id
            assert await alice.expect(Ack) == Ack(2, None)

    run(scenario())


def test_a_line_redis_does_not_hand_back_is_delivered_here_after_a_while() -> None:
    async def scenario() -> None:
        async with echoing() as (server, echo, alice, carol):
            await echo.replication.start()  # (its watch hands over what waited too long)
            await alice.send(Say("never back"))
            assert (await carol.expect(Message)).text == "never back"
            await console_of(server).wait_for("Redis did not hand back 1 lines said here")

    run(scenario())


def test_ids_a_replica_gives_keep_increasing_when_redis_s_run_behind() -> None:
    """A room's id from Redis that is not above an id this replica gave (a private
    message, in the same microsecond) is given the next one here: a client drops
    an id it has seen (PROTOCOL.md §3: ids increase)."""

    async def scenario() -> None:
        async with echoing() as (_server, echo, alice, carol):
            await alice.send(Say("private", to="carol"))
            private = await carol.expect(Message)
            await alice.send(Say("behind", seq=1))
            await alice.expect_none()
            echo.echo("behind", private.id)  # Redis's id is not above it
            behind = await carol.expect(Message)
            assert behind.text == "behind"
            assert behind.id > private.id

    run(scenario())


def test_a_client_moved_to_a_replica_new_to_its_room_catches_up_by_id_however_long_ago(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """alice moves to replica c, which never had anyone in #dev: what #dev said after
    alice's last id comes from the room's stream in Redis, by id, even from before c
    learned of the room (what a newcomer there would not be shown as history)."""
    import peerchat_server.following

    # As if c had learned of #dev an hour after all of this was said (LIFE_GRACE: 30 s).
    monkeypatch.setattr(peerchat_server.following, "LIFE_GRACE", -3_600_000)

    async def scenario() -> None:
        async with replica_set(redis.url, 3) as (a, b, c):
            alice, bob = await one_on_each((a, b))
            await into(alice, "dev")
            await into(bob, "dev")
            await bob.send(Say("one"))
            had = await alice.expect(Message, skip=Joined)
            assert alice.welcome is not None
            secret, epoch = alice.welcome.session, alice.welcome.epoch
            await alice.close()
            await bob.expect(Left, skip=Joined)
            for text in ("two", "three"):
                await bob.send(Say(text))
            reader, writer = await asyncio.open_connection("127.0.0.1", c.port)
            moved = RichPeer(reader, writer)
            await moved.send(
                Hello(version=3, nick="alice", resume=secret, room="dev", epoch=epoch,
                      last_id=had.id, last_ts=had.ts + 60_000)
            )  # fmt: skip
            welcome = await moved.expect(Welcome)
            assert welcome.room == "dev"
            got = [await moved.expect(Message, skip=(Joined, Left)) for _ in range(2)]
            assert [m.text for m in got] == ["two", "three"]
            await moved.expect_none(skip=(Joined, Left))
            newcomer = await RichPeer.connect(c.port, "dave")
            await newcomer.send(JoinRoom("dev"))  # c's log has them now: history for all
            await newcomer.expect(Entered, skip=(Joined, Left))
            history = [await newcomer.expect(Message) for _ in range(2)]
            assert [(m.text, m.history) for m in history] == [("two", True), ("three", True)]
            await newcomer.expect_none(skip=(Joined, Left))

    run(scenario())


def test_redis_numbers_a_room_s_lines_in_order_above_its_clock_even_after_losing_its_key(
    redis: Redis,
) -> None:
    import time

    import redis.asyncio as aioredis

    from peerchat_server.buslinks import ONE_SEQUENCE, make_link
    from peerchat_server.notes import batch, numbered, room_ids, room_log

    async def scenario() -> None:
        link = make_link(redis.url)
        await link.open()
        keys = (room_log("x"), room_ids("x"))
        publication = (room_channel("x"), batch([b"{}", b"{}", b"{}"]), (*keys, 3))
        try:
            before = time.time_ns() // 1000
            await link.send([publication, publication], keep=10)
            client = aioredis.from_url(redis.url)
            await client.delete(ONE_SEQUENCE)  # Redis lost it (restarted empty, a day quiet)
            await link.send([publication], keep=10)
            await client.set(ONE_SEQUENCE, b"junk")  # (whoever can write to Redis)
            await link.send([publication], keep=10)
            await client.aclose()
            entries = await link.recent(room_log("x"), 10, None)  # newest first
        finally:
            await link.close()
        firsts = [numbered(data)[0] or 0 for _, data in reversed(entries)]
        assert len(firsts) == 4
        assert before <= firsts[0]  # Redis's clock, in microseconds
        assert firsts[0] + 3 <= firsts[1]  # three ids each
        assert firsts[1] + 3 <= firsts[2]  # still above, without the key
        assert firsts[2] < firsts[3] < 2**53  # and with junk in it; what a frame may carry

    run(scenario())


def test_an_id_no_frame_could_carry_is_a_bad_note() -> None:
    from peerchat_server.notes import BadNote, batch, decode_batch, encode

    note = encode(Note("message", "r9", room="x", message=Message(1, "bob", "hi", 1, "x")))
    ok, over = decode_batch(batch([note, note]), 2**53 - 1)
    assert isinstance(ok, Note)
    assert ok.shared == 2**53 - 1
    assert isinstance(over, BadNote)  # 2**53: SECURITY.md, "Replicas and their Redis"


def test_a_line_back_from_redis_never_reaches_a_new_connection_of_its_sender() -> None:
    async def scenario() -> None:
        async with echoing() as (server, echo, alice, carol):
            await alice.send(Say("mine", seq=1))
            await alice.expect_none()
            assert alice.welcome is not None
            # Before Redis hands it back, alice's session is taken over by a new connection.
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            back = RichPeer(reader, writer)
            await back.send(
                Hello(version=3, nick="alice", resume=alice.welcome.session,
                      epoch=alice.welcome.epoch, last_id=0)
            )  # fmt: skip
            assert (await back.expect(Welcome)).resumed
            base = server.relay.rooms.last_id + 1_000
            echo.echo("mine", base)
            assert (await carol.expect(Message, skip=(Joined, Left))).text == "mine"
            await carol.send(Say("to alice"))
            await carol.expect_none(skip=(Joined, Left))
            echo.echo("to alice", base + 1)
            got = await back.expect(Message, lambda m: not m.history, skip=Message)
            assert got.text == "to alice"  # the first live line: not its own

    run(scenario())


class GatedLog:
    """Replica ``server``'s reads of rooms' logs in Redis wait until :meth:`open`."""

    def __init__(self, server: Any) -> None:
        self.bus = server.relay.replication.bus
        self.gate = asyncio.Event()
        self.waiting = asyncio.Event()
        real = self.bus._read_log

        async def gated(link: Any, room: str, pages: list[Any]) -> None:
            self.waiting.set()
            await self.gate.wait()
            await real(link, room, pages)

        self.bus._read_log = gated

    def open(self) -> None:
        self.gate.set()


def test_while_a_room_s_log_is_read_its_lines_keep_one_order_and_come_once(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replica a starts hearing #dev (its log is read slowly, longer than a line may
    wait for Redis): bob's M1, alice's L (said on a) and bob's M2 reach carol on a once
    each, in Redis's order, under the ids replica b gave them."""
    import peerchat_server.redis_replication as replication_module

    monkeypatch.setattr(replication_module, "HEARTBEAT", 0.05)  # the waiting lines' watch
    monkeypatch.setattr(replication_module, "WAIT_AT_MOST", 0.0)

    async def scenario() -> None:
        async with replica_set(redis.url, 2) as (a, b):
            alice, bob = await one_on_each((a, b))
            dave = await RichPeer.connect(b.port, "dave")
            await into(bob, "dev")
            await into(dave, "dev")
            log = GatedLog(a)
            carol = await RichPeer.connect(a.port, "carol")
            await into(alice, "dev")
            await log.waiting.wait()
            await into(carol, "dev")
            await bob.send(Say("M1"))
            await dave.expect(Message, lambda m: m.text == "M1", skip=(Joined, Left))
            await alice.send(Say("L", seq=1))
            await dave.expect(Message, lambda m: m.text == "L", skip=(Joined, Left))
            await bob.send(Say("M2"))
            on_b = [await dave.expect(Message, lambda m: m.text == "M2", skip=(Joined, Left))]
            await alice.expect(Message, lambda m: m.text == "M1", skip=(Joined, Left))
            log.open()
            got = [await carol.expect(Message, skip=(Joined, Left)) for _ in range(3)]
            assert [m.text for m in got] == ["M1", "L", "M2"]
            assert got[-1].id == on_b[0].id
            assert [m.id for m in got] == sorted({m.id for m in got})
            assert (await alice.expect(Ack, skip=(Joined, Left, Message))).seq == 1
            await bob.send(Say("after"))
            # Nothing came twice: the next line carol gets is bob's next.
            assert (await carol.expect(Message, skip=(Joined, Left))).text == "after"

    run(scenario())


def test_a_burst_in_one_room_does_not_part_the_ids_of_another(redis: Redis) -> None:
    """On one Redis every room takes its ids from one sequence: replica a, which hears a
    burst in #x (2,000 ids taken at once, ahead of Redis's clock), gives the #y line
    after it the same id as replica b, which hears #y alone."""

    async def scenario() -> None:
        async with replica_set(redis.url, 2) as (a, b):
            alice, bob = await one_on_each((a, b))
            carol = await RichPeer.connect(a.port, "carol")
            dave = await RichPeer.connect(a.port, "dave")
            await bob.expect(Joined, lambda j: j.nick == "dave", skip=Joined)
            await into(alice, "x")
            await into(carol, "y")
            await into(dave, "y")
            await into(bob, "y")
            writer = await PlainPeer.connect(a.port)
            await writer.say("/join x")
            await writer.expect("#x", skip=lambda line: "#x" not in line)
            reader = await PlainPeer.connect(a.port)  # (a plain peer: lines said together)
            await reader.say("/join x")
            await reader.expect("#x", skip=lambda line: "#x" not in line)
            await writer.say("\n".join(f"x {n}" for n in range(2000)))
            await carol.send(Say("y line"))
            on_b = await bob.expect(Message, lambda m: m.text == "y line", skip=(Joined, Left))
            on_a = await dave.expect(Message, lambda m: m.text == "y line", skip=(Joined, Left))
            xs = [await alice.expect(Message, skip=(Joined, Left)) for _ in range(2000)]
            assert [m.text for m in xs] == [f"x {n}" for n in range(2000)]
            lines: list[str] = []
            await reader.expect("x 1999", skip=lambda line: lines.append(line) is None, limit=3000)
            said = [line.rsplit(" ", 1)[-1] for line in lines if " x " in f" {line}"]
            assert said == [str(n) for n in range(1999)]  # each once, in order
            assert on_a.id == on_b.id

    run(scenario())


def test_a_stranger_s_claimed_id_opens_no_more_than_a_newcomer_s_history(redis: Redis) -> None:
    async def scenario() -> None:
        async with replica_set(redis.url, 2) as (a, b):
            alice, bob = await one_on_each((a, b))
            assert alice.welcome is not None
            epoch = alice.welcome.epoch  # (a's: the same as every replica's)
            await into(bob, "dev")
            for n in range(30):
                await bob.send(Say(f"line {n}"))
            reader, writer = await asyncio.open_connection("127.0.0.1", a.port)
            eve = RichPeer(reader, writer)  # no session: it proves nothing
            await eve.send(Hello(version=3, nick="eve", room="dev", epoch=epoch, last_id=1))
            await eve.expect(Welcome)
            got = [await eve.expect(Message, skip=(Joined, Left)) for _ in range(20)]
            assert [m.text for m in got] == [f"line {n}" for n in range(10, 30)]  # --history
            await eve.expect_none(skip=(Joined, Left))

    run(scenario())


# --- what a second review found -----------------------------------------------------------


def test_a_room_entered_while_redis_is_away_is_heard_once_it_is_back(redis: Redis) -> None:
    """Peers arrive while Redis is away, and a reconnect attempt fails after that: once
    Redis is back their room's log is read and their lines go round again."""

    async def scenario() -> None:
        redis.stop()
        async with running_server(bus=redis.url) as a:
            bus = a.relay.replication.bus  # type: ignore[attr-defined]
            attempts = asyncio.Event()
            real = bus._make_link

            def counting(url: str) -> Any:
                attempts.set()
                return real(url)

            bus._make_link = counting
            alice = await RichPeer.connect(a.port, "alice")
            carol = await RichPeer.connect(a.port, "carol")
            await alice.expect(Joined)
            for _ in range(2):  # a new attempt: the one before it failed, after they came
                attempts.clear()
                await attempts.wait()
            redis.start()
            await console_of(a).wait_for("[BUS] Connected to Redis")
            await alice.send(Say("hello", seq=1))
            assert (await carol.expect(Message, skip=(Info, Joined, Left))).text == "hello"
            assert (await alice.expect(Ack, skip=(Info, Joined, Left))).seq == 1

    run(scenario())


def test_lines_of_a_room_s_log_keep_the_room_s_ids_while_other_rooms_talk(redis: Redis) -> None:
    """While replica a reads #dev's log, #x's lines raise a's ids: #dev's line said
    meanwhile still goes out under the id Redis gave it (as history: a's ids passed
    it), the same as on replica b."""

    async def scenario() -> None:
        async with replica_set(redis.url, 2) as (a, b):
            alice, bob = await one_on_each((a, b))
            dave = await RichPeer.connect(b.port, "dave")
            eve = await RichPeer.connect(b.port, "eve")
            await into(alice, "x")
            await into(bob, "x")
            await into(dave, "dev")
            await into(eve, "dev")
            log = GatedLog(a)
            carol = await RichPeer.connect(a.port, "carol")
            await into(carol, "dev")
            await log.waiting.wait()
            await dave.send(Say("D1"))
            on_b = await eve.expect(Message, lambda m: m.text == "D1", skip=(Joined, Left))
            await bob.send(Say("X1"))
            await alice.expect(Message, lambda m: m.text == "X1", skip=(Joined, Left))
            log.open()
            on_a = await carol.expect(Message, lambda m: m.text == "D1", skip=(Joined, Left))
            assert on_a.id == on_b.id

    run(scenario())


def test_a_sender_s_lines_keep_their_order_when_they_straddle_a_log_read() -> None:
    """alice's L1 is found in the room's log, her L2 came on the channel meanwhile, and
    a private message followed each: carol gets L1, W1, L2, W2."""

    async def scenario() -> None:
        async with echoing() as (server, echo, alice, carol):
            replication = echo.replication
            replication.following._filling["lobby"] = []  # as if its log were being read
            await alice.send(Say("L1", seq=1))
            await alice.send(Say("W1", to="carol", seq=2))
            await alice.send(Say("L2", seq=3))
            await alice.send(Say("W2", to="carol", seq=4))
            await alice.expect_none()
            base = server.relay.rooms.last_id + 1_000
            echo.echo("L2", base + 2)  # on the channel: held
            l1 = next(n for n in echo.lines if n.message and n.message.text == "L1")
            replication.on_backfill("lobby", [dataclasses.replace(l1, shared=base + 1)])
            got = [(await carol.expect(Message)).text for _ in range(4)]
            assert got == ["L1", "W1", "L2", "W2"]
            assert [(await alice.expect(Ack)).seq for _ in range(2)] == [2, 4]

    run(scenario())


def test_a_sender_that_leaves_the_room_is_acknowledged_at_once(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """alice, the only one in #dev on replica a, says a line there and leaves at once:
    a stops hearing #dev, so the line cannot come back; it reaches bob, and alice's ack
    and her private message after it do not wait for a timeout."""
    import peerchat_server.redis_replication as replication_module

    monkeypatch.setattr(replication_module, "WAIT_AT_MOST", 3_600.0)  # (no timeout here)

    async def scenario() -> None:
        async with replica_set(redis.url, 2) as (a, b):
            alice, bob = await one_on_each((a, b))
            carol = await RichPeer.connect(a.port, "carol")
            await alice.expect(Joined, lambda j: j.nick == "carol", skip=Joined)
            await into(alice, "dev")
            await into(bob, "dev")
            await alice.send(Say("in dev", seq=1))
            await alice.send(JoinRoom("lobby"))
            await alice.send(Say("psst", to="carol", seq=2))
            said = await bob.expect(Message, skip=(Joined, Left))
            assert said.text == "in dev"
            assert (await carol.expect(Message, skip=(Joined, Left))).text == "psst"
            skip = (Joined, Left, Entered, Message, Info)
            assert (await alice.expect(Ack, skip=skip)).seq == 2
            dev = a.relay.rooms.get("dev")
            assert dev is not None  # (bob is in it)
            assert all(m.id == said.id for m, _, _ in dev.log if m.text == "in dev")

    run(scenario())


def test_a_replica_knows_its_own_publications_without_reading_them() -> None:
    """bus.RedisBus._receive: this replica's room publication is told by how it begins,
    and its notes are counted exactly, whatever their texts say."""
    from peerchat_server.notes import NOTE_START, batch, encode, own_publication

    tricky = '{"v":3,"kind":"message","origin":"r1" [{"v":3, "quotes"'
    notes = [
        encode(Note("message", "r1", room="x", message=Message(n, "bob", text, 1, "x")))
        for n, text in enumerate(("hi", tricky, "\\"))
    ]
    data = batch(notes)
    assert data.startswith(own_publication("r1"))
    assert not data.startswith(own_publication("r2"))
    assert data.count(NOTE_START) == 3


def test_the_replicas_epoch_is_redis_s_and_changes_with_its_data(redis: Redis) -> None:
    """PROTOCOL.md §8: one epoch for every replica sharing a Redis, until Redis loses
    its data (restarted empty): then a new one, so that no client compares ids across."""

    async def scenario() -> None:
        async with replica_set(redis.url, 2) as (a, b):
            alice, bob = await one_on_each((a, b))
            assert alice.welcome is not None
            assert bob.welcome is not None
            assert alice.welcome.epoch == bob.welcome.epoch
            redis.stop()
            redis.start()  # (no persistence: empty)
            await console_of(a).wait_for("[BUS] Connected to Redis", count=2)
            carol = await RichPeer.connect(a.port, "carol")
            assert carol.welcome is not None
            assert carol.welcome.epoch != alice.welcome.epoch

    run(scenario())
