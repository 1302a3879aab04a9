"""Two replicas sharing one chat through a real Redis (redis-server on loopback)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.request import urlopen

import pytest
from prometheus_client.parser import text_string_to_metric_families

from peerchat_protocol import (
    Ack,
    ChangeNick,
    Entered,
    Error,
    Hello,
    Info,
    Joined,
    JoinRoom,
    Left,
    ListRooms,
    Message,
    Renamed,
    Rooms,
    Roster,
    Say,
    Welcome,
    Who,
)
from peerchat_server.notes import BadNote, Note, decode, encode
from peerchat_server.tokens import digest

from .peers import (
    WAIT,
    PlainPeer,
    RichPeer,
    console_of,
    running_server,
    stub_replication,
)
from .replicaset import Redis, ended, joined_up, knows, replicas, run

# --- the notes themselves ------------------------------------------------------------------


def test_notes_round_trip_and_messages_are_checked_again() -> None:
    message = Message(3, "alice", "hi", 5, "lobby", action=True)
    note = Note("message", "r1", room="lobby", message=message)
    assert decode(encode(note)) == note
    roster = Note("roster", "r2", peers=(("games", "bob", "10.0.0.2:1", "d1"),))
    assert decode(encode(roster)) == roster
    assert decode(b'{"v": 99, "kind": "beat", "origin": "r"}') is None  # a newer format
    for bad in (b"junk", b"[]", b'{"v": 3}', b'{"v":3,"kind":"message","origin":"r",'
                b'"message":{"id":1,"nick":"bad nick","text":"x","ts":1}}'):  # fmt: skip
        with pytest.raises(BadNote):
            decode(bad)


def test_a_digest_recognises_a_secret_without_giving_it_away() -> None:
    assert digest("secret") == digest("secret") != digest("other")
    assert "secret" not in digest("secret")
    assert digest(None) == ""


def test_peers_on_two_replicas_chat_exactly_once_in_order(redis: Redis) -> None:
    async def scenario() -> None:
        async with replicas(redis) as (a, b):
            alice = await RichPeer.connect(a.port, "alice")
            bob = await RichPeer.connect(b.port, "bob")
            await joined_up(alice, "bob")
            await knows(bob, "alice")
            nc = await PlainPeer.connect(b.port)
            await nc.say("/nick carol")
            assert (await alice.expect(Joined)).nick == nc.addr  # by address at first
            assert (await alice.expect(Renamed)).new == "carol"
            assert (await bob.expect(Joined)).nick == nc.addr
            assert (await bob.expect(Renamed)).new == "carol"
            for n in range(50):
                await alice.send(Say(f"a{n}"))
            got = [(await bob.expect(Message)).text for _ in range(50)]
            assert got == [f"a{n}" for n in range(50)]
            assert await nc.expect("now known") == f"*** {nc.addr} is now known as carol"
            for n in range(50):
                assert await nc.expect("<alice>") == f"<alice> a{n}"
            await bob.send(Say("from b"))
            assert (await alice.expect(Message)).text == "from b"
            assert await nc.expect("<bob>") == "<bob> from b"
            # /who on either replica lists the room's peers on both.
            await bob.send(Who())
            roster = await bob.expect(Roster)
            assert {p.nick for p in roster.peers} == {"alice", "bob", "carol"}
            assert roster.online == 3
            # Nobody got their own line back; a sync line proves alice's stream is done.
            await nc.say("sync")
            assert (await alice.expect(Message)).text == "sync"

    run(scenario())


def test_names_private_messages_and_notices_cross_replicas(redis: Redis) -> None:
    async def scenario() -> None:
        async with replicas(redis) as (a, b):
            alice = await RichPeer.connect(a.port, "alice")
            bob = await RichPeer.connect(b.port, "bob")
            await joined_up(alice, "bob")
            await knows(bob, "alice")
            await bob.send(ChangeNick("Alice"))  # taken, on the other replica
            error = await bob.expect(Error)
            assert error.code == "nick_taken"
            await bob.send(Say("psst", to="alice"))
            whisper = await alice.expect(Message)
            assert (whisper.text, whisper.to, whisper.nick) == ("psst", "alice", "bob")
            await bob.close()
            left = await alice.expect(Left)
            assert left.nick == "bob"
            await alice.send(Say("hello?", to="bob"))
            assert (await alice.expect(Error)).code == "no_such_nick"

    run(scenario())


def test_when_redis_goes_each_replica_chats_alone_and_joins_up_when_it_returns(
    redis: Redis,
) -> None:
    async def scenario() -> None:
        async with replicas(redis) as (a, b):
            alice = await RichPeer.connect(a.port, "alice")
            ann = await RichPeer.connect(a.port, "ann")
            bob = await RichPeer.connect(b.port, "bob")
            await joined_up(alice, "bob")
            await knows(bob, "alice", "ann")
            redis.stop()
            split = await alice.expect(
                Info, lambda i: "link to the other chat servers is down" in i.text
            )
            assert split is not None
            await bob.expect(Info, lambda i: "is down" in i.text)
            assert (await ann.expect(Joined)).nick == "bob"
            await ann.expect(Info, lambda i: "is down" in i.text)
            await alice.send(Say("just us here"))
            assert (await ann.expect(Message)).text == "just us here"  # local chat goes on
            redis.start()
            await alice.expect(Info, lambda i: "is back" in i.text)
            await bob.expect(Info, lambda i: "is back" in i.text)
            await console_of(a).wait_for("[BUS] Connected to Redis", count=2)
            await console_of(b).wait_for("[BUS] Connected to Redis", count=2)
            await alice.send(Say("whole again"))
            assert (await bob.expect(Message)).text == "whole again"
            # Who is where comes back with a's roster: the one a sent on its return, or
            # (if b subscribed after it) its answer to b's own request, maybe later.
            for _ in range(10):  # one turn per roster b receives
                rosters_seen = len([line for line in console_of(b).lines if "peers." in line])
                await bob.send(Who())
                roster = await bob.expect(Roster)
                if {p.nick for p in roster.peers} == {"alice", "ann", "bob"}:
                    break
                await console_of(b).wait_for("peers.", count=rosters_seen + 1)
            assert {p.nick for p in roster.peers} == {"alice", "ann", "bob"}

    run(scenario())


def test_a_stopping_replica_takes_its_peers_with_it_and_one_can_come_back_elsewhere(
    redis: Redis,
) -> None:
    async def scenario() -> None:
        async with replicas(redis) as (a, b):
            bob = await RichPeer.connect(b.port, "bob")
            alice = await RichPeer.connect(a.port, "alice")
            await joined_up(bob, "alice")
            assert alice.welcome is not None
            secret = alice.welcome.session
            await a.stop()
            left = await bob.expect(Left)
            assert (left.nick, left.reason) == ("alice", "its server stopped")
            # alice's client comes back through the balancer, to b: same name.
            reader, writer = await asyncio.open_connection("127.0.0.1", b.port)
            back = RichPeer(reader, writer)
            await back.send(Hello(version=3, nick="alice", resume=secret))
            welcome = await back.expect(Welcome)
            assert welcome.nick == "alice"
            await alice.close()

    run(scenario())


def test_a_client_that_moves_to_another_replica_keeps_its_name(redis: Redis) -> None:
    async def scenario() -> None:
        async with replicas(redis) as (a, b):
            bob = await RichPeer.connect(b.port, "bob")
            alice = await RichPeer.connect(a.port, "alice")
            await joined_up(bob, "alice")  # b knows alice (and her session's digest)
            assert alice.welcome is not None
            # Its connection to a looks dead to the client; the balancer sends it to b.
            reader, writer = await asyncio.open_connection("127.0.0.1", b.port)
            moved = RichPeer(reader, writer)
            await moved.send(Hello(version=3, nick="alice", resume=alice.welcome.session))
            welcome = await moved.expect(Welcome)
            assert welcome.nick == "alice"
            assert await ended(alice)  # a closed the old connection
            await bob.send(Say("still there?"))
            assert (await moved.expect(Message)).text == "still there?"

    run(scenario())


def test_a_batch_keeps_its_order_and_survives_one_bad_note() -> None:
    from peerchat_server.notes import batch, decode_batch

    notes = [Note("beat", "r1"), Note("join", "r1", room="lobby", nick="ann", addr="a:1")]
    data = batch([encode(notes[0]), b'{"v":3}', encode(notes[1])])
    got = decode_batch(data)
    assert got[0] == notes[0]
    assert got[2] == notes[1]
    assert isinstance(got[1], BadNote)


def test_history_and_rooms_reach_across_replicas(redis: Redis) -> None:
    async def scenario() -> None:
        async with replicas(redis) as (a, b):
            alice = await RichPeer.connect(a.port, "alice")
            bob = await RichPeer.connect(b.port, "bob")
            await joined_up(alice, "bob")
            await knows(bob, "alice")
            await alice.send(JoinRoom("games"))
            await bob.expect(Left, lambda e: e.nick == "alice")  # went to #games
            for n in range(3):
                await alice.send(Say(f"g{n}"))
            await alice.send(Say("last", to="bob"))  # a sync: sent after the three
            await bob.expect(Message, lambda m: m.text == "last")
            await bob.send(ListRooms())
            rooms = await bob.expect(Rooms)
            assert {(r.name, r.online) for r in rooms.rooms} == {("lobby", 1), ("games", 1)}
            await bob.send(JoinRoom("games"))
            entered = await bob.expect(Entered)
            assert {p.nick for p in entered.peers} == {"alice", "bob"}
            history = [await bob.expect(Message) for _ in range(3)]
            assert [(m.text, m.history) for m in history] == [(f"g{n}", True) for n in range(3)]

    run(scenario())


def test_a_redis_password_never_reaches_the_log() -> None:
    from peerchat_server.notes import safe_url

    assert safe_url("redis://:s3cret@redis:6379/0") == "redis://***@redis:6379/0"
    assert "s3cret" not in safe_url("redis://user:s3cret@redis/0")
    assert safe_url("redis://redis:6379/0") == "redis://redis:6379/0"


def test_what_a_stopping_replica_s_peers_said_last_still_reaches_the_others(
    redis: Redis,
) -> None:
    async def scenario() -> None:
        async with replicas(redis) as (a, b):
            alice = await RichPeer.connect(a.port, "alice")
            bob = await RichPeer.connect(b.port, "bob")
            await joined_up(alice, "bob")
            await knows(bob, "alice")
            await alice.send(Say("last words", seq=1))
            await alice.expect(Ack)  # handled on a: it was relayed, so it must arrive
            await a.stop()
            assert (await bob.expect(Message)).text == "last words"
            left = await bob.expect(Left)
            assert (left.nick, left.reason) == ("alice", "its server stopped")

    run(scenario())


def test_a_name_given_away_on_two_replicas_at_once_is_settled_one_way() -> None:
    async def scenario() -> None:
        async with running_server() as server:
            relay = server.relay
            replication, bus = stub_replication(relay)
            alice = await RichPeer.connect(server.port, "alice")
            # A replica with a higher id gave "alice" away too: ours keeps the name.
            replication.on_note(Note("join", "z9999999", room="lobby", nick="alice", addr="x:1"))
            assert relay.registry.find("alice") is not None
            # One with a lower id did as well: ours gives way and tells its peer why.
            replication.on_note(Note("join", "a0000000", room="lobby", nick="Alice", addr="y:1"))
            assert (await alice.expect(Joined)).nick == "alice"  # the other replica's
            info = await alice.expect(Info, lambda i: "at the same moment" in i.text)
            assert "you are now 'alice_2'" in info.text
            assert relay.registry.find("alice_2") is not None
            renames = [n for n in bus.published if n.kind == "rename"]
            assert [(n.old, n.nick) for n in renames] == [("alice", "alice_2")]

    run(scenario())


def test_a_client_moving_to_another_replica_catches_up_by_id_without_its_own_lines(
    redis: Redis,
) -> None:
    async def scenario() -> None:
        async with replicas(redis) as (a, b):
            alice = await RichPeer.connect(a.port, "alice")
            bob = await RichPeer.connect(b.port, "bob")
            await joined_up(alice, "bob")
            await knows(bob, "alice")
            await bob.send(Say("seen by alice"))
            seen = await alice.expect(Message)
            await alice.send(Say("alice's own", seq=1))
            await alice.expect(Ack)
            await bob.expect(Message, lambda m: m.text == "alice's own")
            carol = await RichPeer.connect(b.port, "carol")
            await alice.expect(Joined, lambda j: j.nick == "carol")
            await bob.send(Say("missed 1"))
            await bob.send(Say("missed 2"))
            # Once carol has them, b's log has them: they are what alice missed.
            await carol.expect(Message, lambda m: m.text == "missed 2", skip=Message)
            # They reached a (their ids there, below), but alice's client never read them:
            # its link to a looks dead, and the balancer sends it to b. All of it may be
            # said within one millisecond: only ids tell it apart.
            on_a = [await alice.expect(Message) for _ in range(2)]
            assert alice.welcome is not None
            assert bob.welcome is not None
            assert alice.welcome.epoch == bob.welcome.epoch  # one sequence per room
            reader, writer = await asyncio.open_connection("127.0.0.1", b.port)
            moved = RichPeer(reader, writer)
            await moved.send(
                Hello(version=3, nick="alice", resume=alice.welcome.session,
                      epoch=alice.welcome.epoch, last_id=seen.id, last_ts=seen.ts + 1000)
            )  # fmt: skip
            welcome = await moved.expect(Welcome)
            assert (welcome.missed, welcome.gap) == (2, False)  # never its own line
            caught = [await moved.expect(Message) for _ in range(2)]
            assert [m.text for m in caught] == ["missed 1", "missed 2"]
            # The same ids as on the replica it came from: a, too, has them under these.
            assert [m.id for m in caught] == [m.id for m in on_a]
            assert seen.id < caught[0].id < caught[1].id

    run(scenario())


def test_session_secrets_never_go_on_the_bus_only_their_digest(redis: Redis) -> None:
    import redis.asyncio as aioredis

    from peerchat_server.notes import CONTROL

    async def scenario() -> None:
        listener = aioredis.from_url(redis.url)
        pubsub = listener.pubsub(ignore_subscribe_messages=True)
        await pubsub.psubscribe("peerchat:*")  # every channel: control, rooms, inboxes
        try:
            async with replicas(redis) as (a, b):
                alice = await RichPeer.connect(a.port, "alice")
                bob = await RichPeer.connect(b.port, "bob")
                await joined_up(alice, "bob")
                await knows(bob, "alice")
                await alice.send(Say("hello", seq=1))  # a message note
                await alice.send(Say("psst", to="bob", seq=2))  # a private one
                await alice.send(ChangeNick("alice2"))  # a rename
                # (A rename may overtake lines held while b reads the lobby's log:
                # PROTOCOL.md §8; the lines keep their order.)
                three = [await bob.event() for _ in range(3)]
                lines = [e for e in three if isinstance(e, Message)]
                assert [(m.text, m.to) for m in lines] == [("hello", None), ("psst", "bob")]
                assert [e.new for e in three if isinstance(e, Renamed)] == ["alice2"]
                rosters = len([line for line in console_of(b).lines if "peers." in line])
                # "Who is where?": each replica answers with a roster of its peers.
                await listener.publish(CONTROL, b'[{"v":3,"kind":"sync","origin":"tests"}]')
                await console_of(b).wait_for("peers.", count=rosters + 1)  # a's answer
                assert alice.welcome is not None
                secret = alice.welcome.session
                assert secret is not None
                # alice's client moves to b, giving its secret there.
                reader, writer = await asyncio.open_connection("127.0.0.1", b.port)
                moved = RichPeer(reader, writer)
                await moved.send(Hello(version=3, nick="alice2", resume=secret))
                assert (await moved.expect(Welcome)).nick == "alice2"
                assert await ended(alice)
                await moved.close()
                await listener.publish(CONTROL, b"end of the test")
                published: list[bytes] = []
                for _ in range(10_000):  # every publication, up to our own marker
                    item = await asyncio.wait_for(pubsub.get_message(timeout=WAIT), WAIT)
                    if item is None:
                        continue
                    if item["data"] == b"end of the test":
                        break
                    published.append(item["data"])
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]
            await listener.aclose()
        everything = b"\n".join(published)
        assert secret.encode() not in everything
        # What went instead: the digest, in alice's join, message, roster and move.
        assert everything.count(digest(secret).encode()) >= 4
        assert b"psst" in everything  # the notes were all seen
        assert b"alice2" in everything

    run(scenario())


def test_what_comes_off_the_bus_is_checked_like_a_peer_s_input() -> None:
    # SECURITY.md: names, text and sizes are checked before anyone sees a note.
    def note(**message: Any) -> bytes:
        fields = {"id": 1, "nick": "mallory", "text": "hi", "ts": 1, "room": "lobby", **message}
        return encode(Note("message", "r9", room="lobby", message=Message(**fields)))

    # (Any name a server may show is allowed, reserved ones too: SECURITY.md says whoever
    # can publish there can make the replicas show a message from any name.)
    for bad in ({"nick": "bell\x07"}, {"nick": "x" * 100}, {"text": "\x1b[2Jclear"},
                {"text": "\u202egnp.exe"}, {"room": "no spaces"}):  # fmt: skip
        data = note()
        for key, value in bad.items():
            obj = json.loads(data)
            obj["message"][key] = value
            data = json.dumps(obj).encode()
        with pytest.raises(BadNote):
            decode(data)

    async def scenario() -> None:
        async with running_server(max_line_bytes=100) as server:
            replication, _ = stub_replication(server.relay)
            alice = await RichPeer.connect(server.port, "alice")
            for n, text in enumerate(("y" * 101, "y" * 100)):  # over the line limit; at it
                message = Message(1, "mallory", text, 1, "lobby")
                replication.on_note(
                    Note("message", "r9", room="lobby", message=message, shared=10**15 + n)
                )
            assert (await alice.expect(Message)).text == "y" * 100  # the long one never came
            await console_of(server).wait_for("Ignored a message of 101 bytes from replica r9")

    run(scenario())


def test_metrics_say_the_bus_is_up_and_how_far_behind_it_runs(redis: Redis) -> None:
    async def scenario() -> None:
        async with replicas(redis, metrics_port=0) as (a, b):
            alice = await RichPeer.connect(a.port, "alice")
            bob = await RichPeer.connect(b.port, "bob")
            await joined_up(alice, "bob")
            await knows(bob, "alice")
            # A first line: once bob has it, b has read the lobby's log (until then a
            # line can come from the log, which is no measure of the bus) and hears live.
            await alice.send(Say("first"))
            assert (await bob.expect(Message)).text == "first"
            # b's clock runs 2 s ahead of a's: the note arrives "2 s after" it was said.
            b.relay.rooms._clock = lambda: time.time() + 2.0
            await alice.send(Say("over the bus"))
            assert (await bob.expect(Message)).text == "over the bus"
            assert b.metrics is not None
            url = f"http://127.0.0.1:{b.metrics.port}/metrics"
            text = await asyncio.to_thread(lambda: urlopen(url, timeout=10).read().decode())
            samples = {
                sample.name: sample.value
                for family in text_string_to_metric_families(text)
                for sample in family.samples
            }
            assert samples["peerchat_bus_up"] == 1
            assert 2 <= samples["peerchat_bus_lag_seconds"] < 5

    run(scenario())


def test_a_leave_that_comes_after_the_peer_moved_on_is_ignored() -> None:
    """A leave can reach a replica after the same peer's join elsewhere (it waited with
    its room's lines, or came on another shard): it must not forget the peer."""

    async def scenario() -> None:
        async with running_server() as server:
            replication, _ = stub_replication(server.relay)
            remote = server.relay.registry.remote
            replication.on_note(Note("join", "r2", room="dev", nick="bob", addr="x:1"))
            replication.on_note(Note("join", "r2", room="games", nick="bob", addr="x:1"))
            replication.on_note(Note("leave", "r2", room="dev", nick="bob"))
            bob = remote.find("bob")
            assert bob is not None
            assert bob.room == "games"
            replication.on_note(Note("leave", "r2", room="games", nick="bob"))
            assert remote.find("bob") is None

    run(scenario())
