"""Per-room channels: a replica hears a room's traffic only while its peers are in the
room, and every promise of one chat holds across replicas; the same on a Redis Cluster
of three shards (sharded pub/sub), where the rooms spread over the shards."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from peerchat_protocol import (
    Entered,
    Hello,
    Info,
    Joined,
    JoinRoom,
    LeaveRoom,
    Left,
    Message,
    Say,
    Welcome,
)
from peerchat_server.notes import room_channel
from peerchat_server.server import ChatServer

from .peers import PlainPeer, RichPeer, console_of
from .replicaset import Cluster, Redis, replica_set, run


@pytest.fixture(params=["redis", "cluster"])
def shared(request: pytest.FixtureRequest) -> Iterator[Redis | Cluster]:
    """The bus: one redis-server, or a Redis Cluster of three shards."""
    bus: Redis | Cluster = Redis() if request.param == "redis" else Cluster()
    try:
        bus.start()
        yield bus
    finally:
        bus.stop()


def bus_of(server: ChatServer) -> Any:
    return server.relay.replication.bus  # type: ignore[attr-defined]


def subscribers(bus: Redis | Cluster, channel: str) -> int:
    """How many connections subscribe to ``channel``, as Redis itself counts them."""
    if isinstance(bus, Redis):
        command = [["-p", str(bus.port), "pubsub", "numsub", channel]]
    else:  # a shard channel lives on one shard: ask each
        command = [["-p", str(s.port), "pubsub", "shardnumsub", channel] for s in bus.shards]
    total = 0
    for args in command:
        out = subprocess.run(["redis-cli", *args], capture_output=True, text=True, timeout=10)
        total += int(out.stdout.split()[1])
    return total


async def until_subscribers(bus: Redis | Cluster, channel: str, count: int) -> None:
    """Wait (at most 10 s, asking Redis) until ``channel`` has ``count`` subscribers."""
    for _ in range(200):
        if await asyncio.to_thread(subscribers, bus, channel) == count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{channel} never had {count} subscribers")


async def arrivals(peer: RichPeer, *nicks: str) -> None:
    """Wait until ``peer`` has heard each of ``nicks`` come in, in whatever order."""
    missing = set(nicks)
    while missing:
        joined = await peer.expect(Joined, skip=(Joined, Left))
        missing.discard(joined.nick)


async def one_on_each(servers: list[ChatServer] | tuple[ChatServer, ...]) -> list[RichPeer]:
    """alice on the first replica, bob on the second, carol on the third; each has
    heard those after it arrive, so every replica knows every one of them."""
    peers = [
        await RichPeer.connect(server.port, nick)
        for server, nick in zip(servers, ("alice", "bob", "carol"), strict=False)
    ]
    for n, peer in enumerate(peers):
        await arrivals(peer, *(p.nick for p in peers[n + 1 :]))
    return peers


async def into(peer: RichPeer, room: str) -> None:
    """``peer`` goes to ``room`` and reads its welcome there (and any history)."""
    await peer.send(JoinRoom(room))
    await peer.expect(Entered, skip=(Joined, Left))


async def sync(peers: list[RichPeer], sender: RichPeer, token: str) -> None:
    """``sender`` says ``token``; every other peer reads up to it (so what it sent
    before has arrived everywhere)."""
    await sender.send(Say(token))
    for peer in peers:
        if peer is not sender:
            await peer.expect(Message, lambda m: m.text == token, skip=(Message, Joined, Left))


def test_a_replica_with_nobody_in_a_room_receives_none_of_its_notes(
    shared: Redis | Cluster,
) -> None:
    async def scenario() -> None:
        async with replica_set(shared.url, 3) as (a, b, c):
            alice, bob, carol = await one_on_each((a, b, c))
            await into(alice, "dev")
            await into(bob, "dev")
            await alice.expect(Joined, lambda j: j.nick == "bob")
            for n in range(20):
                await alice.send(Say(f"line {n}"))
            got = [(await bob.expect(Message, skip=Joined)).text for _ in range(20)]
            assert got == [f"line {n}" for n in range(20)]
            # carol hears the lobby (her room) from the others, and nothing of #dev.
            await bob.send(LeaveRoom())
            await bob.expect(Entered, skip=(Joined, Left))
            await sync([carol], bob, "back in the lobby")
            assert bus_of(c).received["dev"] == 0
            assert bus_of(c).received["lobby"] >= 1
            assert bus_of(b).received["dev"] >= 20  # (its own come back too)
            assert "dev" not in bus_of(c).rooms
            assert c.relay.stats.bus_notes == sum(bus_of(c).received.values())

    run(scenario())


def test_a_room_on_three_replicas_gets_every_line_once_and_in_order(
    shared: Redis | Cluster,
) -> None:
    async def scenario() -> None:
        async with replica_set(shared.url, 3) as servers:
            peers = [
                await RichPeer.connect(server.port, nick)
                for server, nick in zip(servers, ("alice", "bob", "carol"), strict=True)
            ]
            for peer in peers:
                await into(peer, "dev")
            for n, peer in enumerate(peers):  # each has heard those after it arrive
                await arrivals(peer, *(p.nick for p in peers[n + 1 :]))
            for n in range(30):
                for peer in peers:
                    await peer.send(Say(f"{peer.nick} {n}"))
            for peer in peers:
                got = [await peer.expect(Message, skip=Joined) for _ in range(60)]
                assert all(m.nick != peer.nick for m in got), "its own line came back"
                for other in peers:
                    if other is not peer:
                        lines = [m.text for m in got if m.nick == other.nick]
                        assert lines == [f"{other.nick} {n}" for n in range(30)]
                await peer.expect_none(skip=Joined)

    run(scenario())


def test_private_messages_reach_the_replica_that_holds_their_target(
    shared: Redis | Cluster,
) -> None:
    async def scenario() -> None:
        async with replica_set(shared.url, 3) as (a, b, c):
            alice, bob, carol = await one_on_each((a, b, c))
            await alice.send(Say("for carol only", to="carol"))
            private = await carol.expect(Message, skip=Joined)
            assert (private.text, private.to, private.nick) == ("for carol only", "carol", "alice")
            await sync([bob, carol], alice, "public")
            assert bus_of(b).received[""] >= 1  # it hears the control channel,
            await carol.send(Say("and back", to="alice"))
            back = await alice.expect(Message, skip=Joined)
            assert (back.text, back.to) == ("and back", "alice")
            await bob.expect_none(skip=Joined)  # but no private message was for it

    run(scenario())


def test_a_replica_whose_last_member_leaves_a_room_stops_following_it(
    shared: Redis | Cluster,
) -> None:
    async def scenario() -> None:
        async with replica_set(shared.url, 3) as (a, b, c):
            alice, bob, carol = await one_on_each((a, b, c))
            for peer in (alice, bob, carol):
                await into(peer, "dev")
            channel = room_channel("dev")
            await until_subscribers(shared, channel, 3)
            await bob.send(LeaveRoom())
            await bob.expect(Entered, skip=(Joined, Left))
            await until_subscribers(shared, channel, 2)
            assert "dev" not in bus_of(b).rooms
            heard = bus_of(b).received["dev"]
            for n in range(10):
                await alice.send(Say(f"after bob {n}"))
            got = [(await carol.expect(Message, skip=(Joined, Left))).text for _ in range(10)]
            assert got == [f"after bob {n}" for n in range(10)]
            assert bus_of(b).received["dev"] == heard  # nothing more came to b

    run(scenario())


def test_a_replica_that_starts_following_a_room_gets_what_was_said_there(
    shared: Redis | Cluster,
) -> None:
    async def scenario() -> None:
        async with replica_set(shared.url, 3) as (a, b, c):
            alice, bob, carol = await one_on_each((a, b, c))
            await into(alice, "dev")
            await into(bob, "dev")
            for n in range(5):
                await alice.send(Say(f"before carol {n}"))
            for n in range(5):
                assert (await bob.expect(Message, skip=Joined)).text == f"before carol {n}"
            # c has followed #dev never: carol gets what was said there as history,
            # then what is said next, in that order.
            await carol.send(JoinRoom("dev"))
            await carol.expect(Entered, skip=(Joined, Left))
            await until_subscribers(shared, room_channel("dev"), 3)  # c follows #dev now
            await bob.send(Say("after carol came"))
            history = [await carol.expect(Message, skip=(Joined, Left)) for _ in range(5)]
            assert [(m.text, m.history) for m in history] == [
                (f"before carol {n}", True) for n in range(5)
            ]
            live = await carol.expect(Message, skip=Joined)
            assert (live.text, live.history) == ("after carol came", False)
            # One who comes to #dev on c now gets the same history at once, from c's log.
            dave = await RichPeer.connect(c.port, "dave")
            await into(dave, "dev")
            texts = [(await dave.expect(Message)).text for _ in range(6)]
            assert texts == [f"before carol {n}" for n in range(5)] + ["after carol came"]

    run(scenario())


def test_a_shard_away_splits_the_chat_and_it_joins_up_when_back(cluster: Cluster) -> None:
    async def scenario() -> None:
        async with replica_set(cluster.url, 2) as (a, b):
            alice, bob = await one_on_each((a, b))
            await asyncio.to_thread(cluster.shards[1].stop)
            for peer in (alice, bob):
                down = await peer.expect(Info, skip=(Joined, Left))
                assert "link to the other chat servers is down" in down.text
            await alice.send(Say("only replica a hears this"))
            await asyncio.to_thread(cluster.restart_stopped, 1)
            for peer in (alice, bob):
                back = await peer.expect(Info, lambda i: "is back" in i.text, skip=(Joined, Left))
                assert "the chat is whole" in back.text
            await alice.send(Say("together again"))
            heard = await bob.expect(Message, skip=(Joined, Left))
            assert heard.text == "together again"  # not what was said while split

    run(scenario())


def test_with_a_password_a_stranger_who_leaves_does_not_stop_the_lobby(redis: Redis) -> None:
    """Peers waiting for the password are in a room named like the lobby: one leaving
    must not make the replica stop hearing the lobby."""

    async def scenario() -> None:
        async with replica_set(redis.url, 2, password="sesame") as (a, b):
            alice = await RichPeer.connect(a.port, "alice", password="sesame")
            bob = await RichPeer.connect(b.port, "bob", password="sesame")
            await arrivals(alice, "bob")
            stranger = await PlainPeer.connect(a.port, banner=False)  # never gives it
            await stranger.close()
            await asyncio.sleep(0)  # (nothing to wait for: a's bookkeeping is synchronous)
            assert "lobby" in bus_of(a).rooms
            await bob.send(Say("still heard"))
            assert (await alice.expect(Message, skip=(Joined, Left))).text == "still heard"

    run(scenario())


def test_leaving_a_room_and_coming_back_at_once_keeps_it_heard(redis: Redis) -> None:
    async def scenario() -> None:
        async with replica_set(redis.url, 2) as (a, b):
            alice, bob = await one_on_each((a, b))
            await into(alice, "dev")
            await into(bob, "dev")
            await until_subscribers(redis, room_channel("dev"), 2)
            # Both in one write: b unfollows and follows #dev in one pass of its loop.
            bob.writer.write(bob.conn.send(LeaveRoom()) + bob.conn.send(JoinRoom("dev")))
            await bob.writer.drain()
            await bob.expect(Entered, skip=(Joined, Left))  # the lobby
            await bob.expect(Entered, skip=(Joined, Left, Message))  # #dev again
            for n in range(5):
                await alice.send(Say(f"after the round trip {n}"))
            got = [(await bob.expect(Message, skip=(Joined, Left))).text for _ in range(5)]
            assert got == [f"after the round trip {n}" for n in range(5)]

    run(scenario())


def test_a_client_resuming_where_nobody_follows_its_room_gets_everything_it_missed(
    redis: Redis,
) -> None:
    """More lines than a newcomer's history are said while the only member of #dev on
    replica a is away; it comes back to a (which stopped following #dev) and gets them
    all, once, in order, and not its own."""

    async def scenario() -> None:
        async with replica_set(redis.url, 2, history_messages=5) as (a, b):
            alice, bob = await one_on_each((a, b))
            await into(alice, "dev")
            await into(bob, "dev")
            await alice.send(Say("mine", seq=1))
            last = await bob.expect(Message, skip=Joined)
            assert alice.welcome is not None
            secret = alice.welcome.session
            await alice.close()
            await bob.expect(Left, skip=Joined)
            await until_subscribers(redis, room_channel("dev"), 1)  # a stopped following
            for n in range(12):
                await bob.send(Say(f"while away {n}"))
            reader, writer = await asyncio.open_connection("127.0.0.1", a.port)
            back = RichPeer(reader, writer)
            hello = Hello(version=3, nick="alice", resume=secret, epoch=alice.welcome.epoch,
                          last_ts=last.ts)  # fmt: skip
            await back.send(hello)
            await back.expect(Welcome)
            texts = [(await back.expect(Message, skip=(Joined, Left))).text for _ in range(12)]
            assert texts == [f"while away {n}" for n in range(12)]
            await back.expect_none(skip=(Joined, Left))

    run(scenario())


def test_a_room_log_with_junk_in_it_is_read_like_the_channel(redis: Redis) -> None:
    """SECURITY.md: what comes off the bus is checked like a peer's input; a room's log
    in Redis too: a broken entry, a note that is no message, another room's message
    and one over the line limit are left out, and the rest still comes."""
    import json
    import time

    import redis.asyncio as aioredis

    from peerchat_protocol import Message as Msg
    from peerchat_server.notes import Note, batch, encode, room_log

    def note(text: str, room: str = "dev") -> bytes:
        message = Msg(1, "mallory", text, int(time.time() * 1000), room)
        return encode(Note("message", "r9", room=room, message=message))

    async def scenario() -> None:
        async with replica_set(redis.url, 2, max_line_bytes=100) as (a, b):
            alice, bob = await one_on_each((a, b))
            await into(bob, "dev")  # a knows #dev now, and follows it not
            await alice.expect(Left, skip=Joined)
            client = aioredis.from_url(redis.url)
            log = room_log("dev")
            bad = json.loads(encode(Note("beat", "r9")))
            bad["peers"] = 5
            first = time.time_ns() // 1000  # numbered as Redis numbers them (NUMBER)
            for data in (
                b"%d:" % first + batch([json.dumps(bad).encode(), note("fine")]),
                b"%d:" % (first + 2)
                + batch([encode(Note("beat", "r9")), note("x" * 101), note("other room", "games")]),
                b"%d:" % (first + 5) + b"not json",
                batch([note("not numbered")]),
            ):
                await client.xadd(log, {"n": data})
            await client.xadd(log, {"something": b"else"})
            await client.aclose()
            await into(alice, "dev")
            fine = await alice.expect(Message, skip=(Joined, Left))
            assert (fine.text, fine.history) == ("fine", True)
            await alice.expect_none(skip=(Joined, Left))
            await console_of(a).wait_for("Ignored a message of 101 bytes")

    run(scenario())
