"""Attacks by one address across many connections, and what they may no longer do.

Each test is one of the attacks in SECURITY.md's table, run against a real server on
loopback. The attacker connects from 127.0.0.2 (another address to the server), so
honest peers on 127.0.0.1 keep their own budgets.
"""

from __future__ import annotations

import asyncio
import re
import sys
from typing import Any, cast

from peerchat_protocol import (
    ChangeNick,
    Entered,
    Error,
    Hello,
    Info,
    Joined,
    JoinRoom,
    Left,
    Message,
    Ping,
    Pong,
    Renamed,
    Say,
    Welcome,
)
from peerchat_server.addresses import AddressBook, address_key
from peerchat_server.config import ServerConfig
from peerchat_server.replicas import RemotePeer
from peerchat_server.resume import Resumable, ResumeBook
from peerchat_server.session import Session
from peerchat_server.tokens import digest

from .peers import WAIT, PlainPeer, RichPeer, console_of, running_server, stub_replication

ATTACKER = "127.0.0.2"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def raw(port: int, source: str = ATTACKER) -> tuple[asyncio.StreamReader, Any]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def lines_until_closed(reader: asyncio.StreamReader) -> list[str]:
    data = await asyncio.wait_for(reader.read(), WAIT)
    return data.decode().splitlines()


async def count_messages_before_pong(peer: RichPeer) -> int:
    await peer.send(Ping("count"))
    count = 0
    for _ in range(10_000):
        event = await peer.event()
        if isinstance(event, Pong):
            return count
        if isinstance(event, Message):
            count += 1
        else:
            assert isinstance(event, Joined | Left), event
    raise AssertionError("no pong")


# --- 1. reconnecting does not get round flood control -----------------------------------


async def test_reconnecting_gets_no_fresh_budget_lines_and_connections_are_paced_per_address() -> (
    None
):
    budgets = {
        "flood_burst": 20, "flood_rate": 5, "address_flood_burst": 10,
        "address_flood_rate": 2, "connect_burst": 3, "connect_rate": 0.5,
    }  # fmt: skip
    async with running_server(quiet=True, **budgets) as server:
        watcher = await RichPeer.connect(server.port, "watcher")
        loop = asyncio.get_running_loop()
        started = loop.time()
        accepted = refused = 0
        for _ in range(12):  # connect -> 19 lines -> close, as fast as it goes
            reader, writer = await raw(server.port)
            first = (await asyncio.wait_for(reader.readline(), WAIT)).decode()
            if first.startswith("! Connection refused"):
                assert "too many new connections from 127.0.0.2" in first
                assert "try again in" in first
                refused += 1
            else:
                accepted += 1
                writer.write(b"".join(b"flood %d\n" % n for n in range(19)))
                await writer.drain()
            writer.close()
        assert accepted <= 3 + 1, "more connections than the burst (and one refill) let in"
        assert refused >= 8
        received = await count_messages_before_pong(watcher)
        elapsed = loop.time() - started
        # Per connection, 20 lines would pass at once: 12 x 19 = 228 without the budget
        # shared by the address (10, then 2 a second).
        assert received <= 10 + 2 * elapsed + 2, (received, elapsed)
        console = console_of(server)
        await console.wait_for("[FLOOD] Peer 127.0.0.2")
        # A storm is logged once, then counted, not logged line by line.
        assert len([t for t in console.lines if t.startswith("[REFUSED]")]) == 1


async def test_the_address_budget_is_shared_by_its_open_connections_too() -> None:
    async with running_server(address_flood_burst=4, address_flood_rate=1) as server:
        watcher = await RichPeer.connect(server.port, "watcher")
        first = await PlainPeer.connect(server.port, local_addr=(ATTACKER, 0))
        second = await PlainPeer.connect(server.port, local_addr=(ATTACKER, 0))
        await first.send("one\ntwo\nthree\n")
        for text in ("one", "two", "three"):
            assert (await watcher.expect(Message, skip=Joined)).text == text
        await second.send("four\nfive\n")  # the address has one token left
        assert (await watcher.expect(Message, skip=Joined)).text == "four"
        notice = await second.expect(
            "You are sending more than", skip=lambda line: line.startswith(("<", "***"))
        )
        assert "from your address (127.0.0.2, all its connections together)" in notice
        assert (await watcher.expect(Message, skip=Joined)).text == "five"  # late, not lost


# --- 2. rename storms ---------------------------------------------------------------------


async def test_a_rename_is_told_to_its_room_only() -> None:
    async with running_server() as server:
        alice = await RichPeer.connect(server.port, "alice")
        bob = await RichPeer.connect(server.port, "bob")
        carol = await RichPeer.connect(server.port, "carol")
        await carol.send(JoinRoom("elsewhere"))
        await carol.expect(Entered)
        await alice.send(ChangeNick("alicia"))
        assert await alice.expect(Renamed, skip=(Joined, Left)) == Renamed("alice", "alicia")
        assert await bob.expect(Renamed, skip=(Joined, Left)) == Renamed("alice", "alicia")
        await carol.expect_none()  # in another room: nothing


async def test_in_a_crowd_a_rename_is_told_to_the_peer_alone_like_joins() -> None:
    async with running_server(join_notices_up_to=1) as server:
        alice = await RichPeer.connect(server.port, "alice")
        bob = await RichPeer.connect(server.port, "bob")
        await alice.send(ChangeNick("alicia"))
        assert await alice.expect(Renamed) == Renamed("alice", "alicia")
        await bob.expect_none()


async def test_renames_are_budgeted_per_address_across_connections() -> None:
    async with running_server(rename_burst=2, rename_rate=0.01) as server:
        alice = await RichPeer.connect(server.port, "alice", source=ATTACKER)
        bob = await RichPeer.connect(server.port, "bob", source=ATTACKER)
        watcher = await RichPeer.connect(server.port, "watcher")
        for nick in ("a1", "a2"):
            await alice.send(ChangeNick(nick))
            await alice.expect(Renamed, skip=Joined)
        await alice.send(ChangeNick("a3"))
        error = await alice.expect(Error, skip=(Renamed, Joined))
        assert error.code == "flooding"
        assert "too many renames from your address" in error.message
        assert "you are still a2" in error.message
        await bob.send(ChangeNick("b1"))  # another connection, the same address
        assert (await bob.expect(Error, skip=(Renamed, Joined))).code == "flooding"
        seen = [await watcher.expect(Renamed) for _ in range(2)]
        assert [r.new for r in seen] == ["a1", "a2"]
        await watcher.expect_none()


# --- 3. the catch-up log is for sessions that were there ---------------------------------


async def hello(port: int, **members: Any) -> RichPeer:
    reader, writer = await raw(port)
    peer = RichPeer(reader, writer)
    await peer.send(Hello(version=3, client="tests", **members))
    peer.welcome = await peer.expect(Welcome)
    return peer


async def staff_room_with_30_lines(port: int) -> RichPeer:
    alice = await RichPeer.connect(port, "alice")
    await alice.send(JoinRoom("staff"))
    await alice.expect(Entered)
    for n in range(30):
        await alice.send(Say(f"secret {n}"))
    await alice.expect_none()  # every line handled
    return alice


async def test_a_stranger_claiming_an_old_time_gets_no_more_than_the_history() -> None:
    async with running_server(history_messages=0) as server:
        alice = await staff_room_with_30_lines(server.port)
        stranger = await hello(server.port, nick="m", room="staff", epoch="x", last_ts=0)
        assert stranger.welcome is not None
        assert stranger.welcome.missed == 0
        assert stranger.welcome.gap  # told that more was said than it gets
        await stranger.expect_none()
        assert (await alice.expect(Joined)).nick == "m"


async def test_a_made_up_secret_in_this_epoch_gets_the_history_only() -> None:
    async with running_server(history_messages=5) as server:
        alice = await staff_room_with_30_lines(server.port)
        epoch = server.relay.epoch
        stranger = await hello(
            server.port, nick="m", room="staff", resume="made-up", epoch=epoch, last_id=0
        )
        assert stranger.welcome is not None
        assert not stranger.welcome.resumed
        assert stranger.welcome.missed == 5
        texts = [(await stranger.expect(Message)).text for _ in range(5)]
        assert texts == [f"secret {n}" for n in range(25, 30)]
        await stranger.expect_none()
        assert (await alice.expect(Joined)).nick == "m"


# --- 4. password guessing -------------------------------------------------------------


async def guess(port: int, password: str, source: str = ATTACKER) -> list[str]:
    """Connect from ``source``, give ``password``; every line until the server closes."""
    reader, writer = await raw(port, source)
    first = (await asyncio.wait_for(reader.readline(), WAIT)).decode()
    if first.startswith("! Connection refused"):
        writer.close()
        return [first.rstrip()]
    writer.write(f"/pass {password}\n".encode())
    lines = [first.rstrip(), *await lines_until_closed(reader)]
    writer.close()
    return lines


async def test_password_guesses_cost_ever_more_time_then_lock_the_address_out() -> None:
    async with running_server(password="s3cret", auth_failures=4, auth_lockout=600) as server:
        clock = FakeClock()
        server.relay.registry.addresses.clock = clock
        console = console_of(server)
        assert "! disconnected: wrong password; this server" in (await guess(server.port, "a"))[-1]
        # The first is free (a typo); the second makes the address wait 1 s...
        second = await guess(server.port, "b")
        assert "your address must wait 1 s before it connects again" in second[-1]
        refused = await guess(server.port, "c")
        assert refused == [
            "! Connection refused: too many wrong passwords from 127.0.0.2; try again in 1 s."
        ]
        clock.now += 1.1
        assert "must wait 2 s" in (await guess(server.port, "c"))[-1]
        clock.now += 2.1
        locked = await guess(server.port, "d")
        assert "too many from your address: try again in 600 s" in locked[-1]
        assert (await guess(server.port, "s3cret"))[0].endswith("try again in 600 s.")
        lockouts = await console.wait_for("[AUTH FAILED] 4 wrong passwords from 127.0.0.2")
        assert lockouts == [
            "[AUTH FAILED] 4 wrong passwords from 127.0.0.2: its new connections are "
            "refused for 600 s."
        ]
        # Someone else is not held back by it.
        honest = await RichPeer.connect(server.port, "honest", password="s3cret")
        assert honest.nick == "honest"
        clock.now += 601  # the lockout ends
        back = await RichPeer.connect(server.port, "back", password="s3cret", source=ATTACKER)
        assert back.nick == "back"


async def test_a_lockout_is_logged_once_even_with_guesses_already_under_way() -> None:
    async with running_server(password="s3cret", auth_failures=2, auth_lockout=600) as server:
        console = console_of(server)
        open_ones = [await raw(server.port) for _ in range(4)]
        for reader, _ in open_ones:
            await asyncio.wait_for(reader.readline(), WAIT)  # the banner: all four are in
        for _, writer in open_ones:
            writer.write(b"/pass wrong\n")
        for reader, writer in open_ones:
            await lines_until_closed(reader)
            writer.close()
        await console.wait_for("[AUTH FAILED] Peer 127.0.0.2", count=4)
        assert len(await console.wait_for("wrong passwords from 127.0.0.2")) == 1


# --- 5. memory: what Python holds, not what UTF-8 would take -----------------------------


async def test_the_room_log_counts_the_memory_its_text_holds() -> None:
    limit = 64 * 1024
    async with running_server(catch_up_bytes=limit, history_bytes=limit) as server:
        alice = await RichPeer.connect(server.port, "alice")
        await alice.send(JoinRoom("mine"))
        await alice.expect(Entered)
        for n in range(10):  # 8 KB of UTF-8 each, but 32 KB in memory: 4 bytes a character
            await alice.send(Say(f"\N{GRINNING FACE}{n}" + "x" * 8000))
        await alice.expect_none()
        session = server.relay.registry.find("alice")
        assert session is not None
        log = session.room.log
        held = sum(sys.getsizeof(message.text) for message, _, _ in log)
        assert held <= limit, f"{len(log)} messages hold {held} bytes"
        assert len(log) >= 1


# --- 6. throwaway sessions evict only their own ------------------------------------------


async def test_a_flood_of_throwaway_sessions_does_not_evict_someone_else_s() -> None:
    async with running_server(max_sessions_per_address=3, max_connections=8) as server:
        console = console_of(server)
        carol = await RichPeer.connect(server.port, "carol")
        assert carol.welcome is not None
        assert carol.welcome.session is not None
        carol.writer.transport.abort()  # lost, not quit: waits to be resumed
        await console.wait_for("[DISCONNECTED] carol")
        gone = 1
        for source in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
            for _ in range(4):
                peer = await RichPeer.connect(server.port, None, source=source)
                peer.writer.transport.abort()
                gone += 1
                await console.wait_for("[DISCONNECTED]", count=gone)
        assert len(server.relay.registry.book) <= 8
        back = await hello(server.port, resume=carol.welcome.session)
        assert back.welcome is not None
        assert back.welcome.resumed
        assert back.welcome.nick == "carol"


# --- 7. a name is held for its session ---------------------------------------------------


async def test_a_lost_peer_s_name_is_held_for_it_during_the_resume_window() -> None:
    async with running_server() as server:
        carol = await RichPeer.connect(server.port, "carol")
        bob = await RichPeer.connect(server.port, "bob")
        mallory = await RichPeer.connect(server.port, "mallory", source=ATTACKER)
        assert carol.welcome is not None
        assert carol.welcome.session is not None
        carol.writer.transport.abort()
        assert (await bob.expect(Left, skip=Joined)).nick == "carol"
        for name in ("carol", "Carol", "caro1"):
            await mallory.send(ChangeNick(name))
            error = await mallory.expect(Error, skip=(Joined, Left))
            assert error.code == "nick_taken", name
            assert "is held for carol, who lost their connection and may be back" in (error.message)
            assert re.search(r"\(free again in (29\d|300) s if not\)", error.message)
        await bob.send(Say("psst", to="carol"))
        error = await bob.expect(Error)
        assert error.code == "no_such_nick"
        assert "carol lost their connection and may be back soon" in error.message
        back = await hello(server.port, resume=carol.welcome.session)
        assert back.welcome is not None
        assert back.welcome.resumed
        assert back.welcome.nick == "carol"
        # Once the window is over, the name is free again.
        back.writer.transport.abort()
        await console_of(server).wait_for("[DISCONNECTED] carol", count=2)
        relay = server.relay
        relay.registry.book.expire(relay.loop_time() + server.config.resume_window + 1)
        await mallory.send(ChangeNick("carol"))
        assert (await mallory.expect(Renamed, skip=(Joined, Left))).new == "carol"


# --- 8 and 9. invisible characters, look-alike names, actions that mimic notices ---------


async def test_invisible_and_tag_characters_never_reach_another_peer() -> None:
    async with running_server() as server:
        alice = await RichPeer.connect(server.port, "alice")
        nc = await PlainPeer.connect(server.port)
        hidden = "".join(chr(0xE0000 + ord(c)) for c in "rm -rf")  # tag characters
        await nc.say(f"hi\u00ad\u034f\u115f\u180e\u2061\u2062\u206a\u2800\u3164\ufff9{hidden}!")
        message = await alice.expect(Message, skip=Joined)
        assert message.text == "hi!"


async def test_look_alike_and_reserved_names_are_refused() -> None:
    async with running_server() as server:
        alice = await RichPeer.connect(server.port, "alice")
        mallory = await PlainPeer.connect(server.port)
        for name, why in (
            ("aIice", "looks too much like 'alice', who is here"),
            ("a1ice", "looks too much like 'alice', who is here"),
            ("ALICE", "is taken"),
        ):
            await mallory.say(f"/nick {name}")
            line = await mallory.expect("!", skip=" joined (")
            assert line == f"! the nickname {name!r} {why}: choose another with /nick NAME"
        for name in ("Server.", "server_", "SYSTEM_"):
            await mallory.say(f"/nick {name}")
            assert "reserved" in await mallory.expect("!")
        await alice.expect_none(skip=Joined)  # no rename reached anyone


async def test_an_action_cannot_pass_for_a_server_notice() -> None:
    async with running_server() as server:
        watcher = await PlainPeer.connect(server.port)
        mallory = await PlainPeer.connect(server.port)
        alice = await RichPeer.connect(server.port, "alice")
        await mallory.say("/nick mallory")
        await mallory.say("/me is now known as bob")
        await alice.send(ChangeNick("bob"))
        lines = [
            await watcher.expect(lambda line: "known as bob" in line, skip=lambda _: True)
            for _ in range(2)
        ]
        assert lines == ["* mallory is now known as bob", "*** alice is now known as bob"]


# --- 10. long lines flood by their size ---------------------------------------------------


async def test_long_lines_count_by_size_and_a_flood_of_them_is_kicked() -> None:
    # At 1 line a second, 47 KiB of lines is a debt of 47 s: the kick must not wait for it.
    async with running_server(flood_burst=20, flood_rate=1, flood_kick_after=1.0) as server:
        flooder = await PlainPeer.connect(server.port)
        line = b"y" * 16_000 + b"\n"
        await flooder.send(line * 3)  # 3 lines, but 47 KiB: past a burst of 20
        assert "a long line counts one per KiB" in await flooder.expect("You are sending")

        async def flood() -> None:
            for _ in range(400):  # bounded; the server cuts us off long before
                try:
                    await flooder.send(line)
                except (ConnectionError, OSError):
                    return

        task = asyncio.create_task(flood())
        rest = await flooder.eof()
        task.cancel()
        assert any("disconnected for flooding" in text for text in rest), rest[-3:]


# --- 11. addresses are networks ----------------------------------------------------------


def test_ipv6_addresses_count_by_their_64_and_mapped_ipv4_as_ipv4() -> None:
    assert address_key("2001:db8::1") == address_key("2001:db8::ffff:1") == "2001:db8::/64"
    assert address_key("2001:db8:0:1::1") != address_key("2001:db8::1")
    assert address_key("::ffff:203.0.113.7") == address_key("203.0.113.7") == "203.0.113.7"
    assert address_key("203.0.113.7", ipv4_prefix=24) == "203.0.113.0/24"
    assert address_key("2001:db8::1", ipv6_prefix=128) == "2001:db8::1"
    assert address_key("fe80::1%eth0") == "fe80::/64"
    assert address_key("unix-socket") == "unix-socket"


def test_one_64_is_one_address_for_every_budget() -> None:
    book = AddressBook(ServerConfig(connect_burst=2, connect_rate=0.001), clock=FakeClock())
    first, second = book.get("2001:db8::1"), book.get("2001:db8::2")
    assert first is second
    assert book.refusal(first) is None
    assert book.refusal(second) is None
    refusal = book.refusal(book.get("2001:db8::3"))
    assert refusal is not None
    assert "2001:db8::/64" in refusal
    assert book.refusal(book.get("2001:db8:0:1::1")) is None  # another /64


def test_addresses_with_nothing_left_to_count_are_forgotten() -> None:
    clock = FakeClock()
    book = AddressBook(ServerConfig(), clock=clock)
    address = book.get("203.0.113.7")
    assert book.refusal(address) is None
    book.sweep(lambda _: None)
    assert len(book) == 1  # its connection budget is not full again yet
    clock.now += 60
    book.sweep(lambda _: None)
    assert len(book) == 0


async def test_a_look_alike_of_a_peer_on_another_replica_is_refused_too() -> None:
    async with running_server() as server:
        server.relay.registry.remote.add(RemotePeer("alice", "a:1", "lobby", "r1"))
        mallory = await RichPeer.connect(server.port, "aIice")
        assert mallory.nick == "aIice_2"
        await mallory.send(ChangeNick("a1ice"))
        assert (await mallory.expect(Error)).code == "nick_taken"


def carol_lost_then_three_from_one_address(book: ResumeBook) -> tuple[Resumable, list[Resumable]]:
    """carol's session lost first, then three from one other address, one by one."""
    peer = cast("Session", object())
    honest = book.open(peer, "carol", "lobby", address="198.51.100.1")
    book.lost(honest, "carol", "lobby", now=0.0)
    flood = [book.open(peer, f"m{n}", "lobby", address="203.0.113.9") for n in range(3)]
    for n, record in enumerate(flood):
        book.lost(record, record.nick, "lobby", now=1.0 + n)
    return honest, flood


def test_an_address_past_its_cap_loses_its_own_oldest_session_only() -> None:
    released: list[str] = []
    book = ResumeBook(
        window=300, max_gone=100, per_address=2, on_release=lambda r: released.append(r.nick)
    )
    honest, flood = carol_lost_then_three_from_one_address(book)
    assert released == ["m0"]  # its own oldest, though carol's is older
    assert book.waiting(honest)
    assert [book.waiting(r) for r in flood] == [False, True, True]


def test_past_the_total_the_address_holding_most_loses_its_oldest() -> None:
    book = ResumeBook(window=300, max_gone=3)
    honest, flood = carol_lost_then_three_from_one_address(book)
    assert book.waiting(honest)  # the oldest of all, but not of the crowd
    assert [book.waiting(r) for r in flood] == [False, True, True]


async def test_all_rooms_logs_together_stay_within_their_total_and_the_quietest_pays() -> None:
    # Each line of 100 ASCII characters holds 149 bytes: 2,000 bytes hold 13 of them.
    async with running_server(catch_up_total_bytes=2000) as server:
        relay = server.relay
        talkers = []
        for name in ("one", "two"):
            talker = await RichPeer.connect(server.port, f"talker-{name}")
            await talker.send(JoinRoom(name))
            await talker.expect(Entered, skip=(Joined, Left))
            talkers.append(talker)
        one, two = (relay.registry.find(t.nick) for t in talkers)
        assert one is not None
        assert two is not None
        for n in range(10):
            await talkers[0].send(Say(f"{n}" * 100))
        await talkers[0].expect_none()
        for n in range(10):
            await talkers[1].send(Say(f"{n}" * 100))
        await talkers[1].expect_none()
        assert relay.rooms.log_bytes == one.room.log_bytes + two.room.log_bytes <= 2000
        assert len(two.room.log) == 10  # the room that spoke last keeps everything
        assert len(one.room.log) == 3  # the quietest paid
        # Someone coming into #one is told that its history is cut short.
        late = await hello(server.port, nick="late", room="one", epoch=relay.epoch, last_id=0)
        assert late.welcome is not None
        assert (late.welcome.missed, late.welcome.gap) == (3, True)
        # A room that ends gives its bytes back.
        await talkers[0].close()
        await late.close()
        await console_of(server).wait_for("[DISCONNECTED] late")
        assert relay.rooms.log_bytes == two.room.log_bytes


# --- blank lines and shared budgets (found in review) ----------------------------------


async def test_a_flood_of_blank_lines_is_paced_and_kicked_like_any_other() -> None:
    async with running_server(flood_burst=20, flood_rate=5, flood_kick_after=1.0) as server:
        flooder = await PlainPeer.connect(server.port)

        async def flood() -> None:
            for _ in range(200):  # bounded; 13 MB of blank lines at most
                try:
                    await flooder.send(b"\n" * 65536)
                except (ConnectionError, OSError):
                    return

        task = asyncio.create_task(flood())
        rest = await flooder.eof()
        task.cancel()
        assert any("You are sending more than 5 lines a second" in text for text in rest)
        assert any("disconnected for flooding" in text for text in rest), rest[-3:]


async def test_blank_lines_buy_no_room_for_long_ones() -> None:
    # 4 lines a second is under the rate of 5; 4 x 15 KB a second is far over the bytes
    # it allows, padding or not: each blank line costs what the KiB it excuses would.
    async with running_server(flood_burst=20, flood_rate=5, flood_kick_after=1.0) as server:
        flooder = await PlainPeer.connect(server.port)
        padded = b"y" * 15_000 + b"\n" + b"\n" * 15

        async def flood() -> None:
            for _ in range(60):  # bounded: 15 s at most; the server cuts us off long before
                try:
                    await flooder.send(padded)
                except (ConnectionError, OSError):
                    return
                await asyncio.sleep(0.25)  # the pace of the load, not a wait for an event

        task = asyncio.create_task(flood())
        rest = await flooder.eof()
        task.cancel()
        assert any("disconnected for flooding" in text for text in rest), rest[-3:]


async def test_a_peer_held_back_only_by_its_address_s_budget_is_never_kicked() -> None:
    # An honest peer behind the same address as a flooder: paced with it, not kicked.
    async with running_server(
        flood_burst=20, flood_rate=5, flood_kick_after=0.5,
        address_flood_burst=2, address_flood_rate=4,
    ) as server:  # fmt: skip
        honest = await RichPeer.connect(server.port, "honest", source=ATTACKER)
        watcher = await RichPeer.connect(server.port, "watcher")
        others = [await PlainPeer.connect(server.port, local_addr=(ATTACKER, 0)) for _ in range(3)]
        loop = asyncio.get_running_loop()
        end = loop.time() + 1.5
        sent = 0
        while sent < 30 and loop.time() < end:  # each 4 a second (its own rate is 5)
            for other in others:
                await other.say(f"crowd {sent}")
            await honest.send(Say(f"honest {sent}"))
            sent += 1
            await asyncio.sleep(0.25)  # the pace of the load, not a wait for an event
        texts = [
            (
                await watcher.expect(Message, lambda m: m.nick == "honest", skip=(Message, Joined))
            ).text
            for _ in range(sent)
        ]
        assert texts == [f"honest {k}" for k in range(sent)]  # late, none lost
        await honest.send(Ping("still here?"))  # still connected, told once at most
        notices = []
        for _ in range(1000):
            event = await honest.event()
            if isinstance(event, Pong):
                break
            if isinstance(event, Info):
                notices.append(event.text)
            else:
                assert isinstance(event, Joined | Message), event
        assert len(notices) <= 1, notices


async def test_resuming_a_session_gets_only_what_was_said_since_it_came_in() -> None:
    async with running_server(history_messages=5) as server:
        alice = await staff_room_with_30_lines(server.port)
        eve = await hello(server.port, nick="eve", room="staff")
        assert eve.welcome is not None
        assert eve.welcome.session is not None
        for _ in range(5):  # an ordinary newcomer's history
            assert (await eve.expect(Message)).history
        assert (await alice.expect(Joined)).nick == "eve"
        await alice.send(Say("after eve came"))
        assert (await eve.expect(Message)).text == "after eve came"
        for claim in ({"epoch": server.relay.epoch, "last_id": 0}, {"epoch": "x", "last_ts": 0}):
            # Another connection "resumes" eve's own fresh session, claiming to have
            # seen nothing: it gets what was said since eve came in, not the 30 before.
            again = await hello(server.port, resume=eve.welcome.session, **claim)
            assert again.welcome is not None
            assert again.welcome.resumed
            assert (again.welcome.missed, again.welcome.gap) == (1, False), claim
            assert (await again.expect(Message)).text == "after eve came"
            await again.expect_none()


async def test_a_session_vouched_for_by_another_replica_catches_up_on_its_room_since() -> None:
    async with running_server() as server:
        relay = server.relay
        stub_replication(relay)
        alice = await staff_room_with_30_lines(server.port)
        # eve came into #staff on replica r1 after the 30 lines (the newest id here then).
        since = relay.rooms.last_id
        relay.registry.remote.add(
            RemotePeer("eve", "a:1", "staff", "r1", digest("eve-secret"), since)
        )
        await alice.send(Say("said while eve was there"))
        await alice.expect_none()
        # mallory's session is vouched for in the lobby, not in #staff: a stranger there.
        mallory = RemotePeer("mallory", "a:2", "lobby", "r1", digest("m-secret"), 1)
        relay.registry.remote.add(mallory)
        other = await hello(server.port, resume="m-secret", room="staff", epoch="x", last_ts=0)
        assert other.welcome is not None
        assert (other.welcome.missed, other.welcome.gap) == (20, True)  # --history's 20
        back = await hello(server.port, resume="eve-secret", room="staff", epoch="x", last_ts=0)
        assert back.welcome is not None
        assert (back.welcome.missed, back.welcome.gap) == (1, False)
        assert (await back.expect(Message)).text == "said while eve was there"


def test_a_flood_spread_over_many_addresses_pushes_out_only_its_newest() -> None:
    # One session each from 256 /64s of one /56: the book is full, and each newcomer
    # holds as many as anyone: it is the one that goes.
    book = ResumeBook(window=300, max_gone=100)
    peer = cast("Session", object())
    honest = book.open(peer, "carol", "lobby", address="198.51.100.1")
    book.lost(honest, "carol", "lobby", now=0.0)
    flood = []
    for n in range(256):
        record = book.open(peer, f"m{n}", "lobby", address=f"2001:db8:0:{n:x}::/64")
        book.lost(record, record.nick, "lobby", now=1.0 + n)
        flood.append(record)
    assert book.waiting(honest)
    assert sum(book.waiting(r) for r in flood) == 99
    assert book.waiting(flood[0])  # the first 99 stay: a newcomer never pushes one out
