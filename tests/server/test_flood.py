"""Flood control: floods are slowed (never dropped), honest peers are not, flooders go."""

from __future__ import annotations

import asyncio
import io
import os

import pytest

from peerchat_protocol import Event, Info, Joined, Left, Message, Say
from peerchat_server.console import Console
from peerchat_server.flood import TokenBucket

from .peers import JOINS, PlainPeer, RichPeer, close_and_read, console_of, running_server


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(burst=3, rate=2, clock=clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    assert bucket.wait() == 0.5
    clock.now += 0.5
    assert bucket.take()
    assert not bucket.take()
    clock.now += 10  # refills up to the burst, no further
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    bucket.refund()
    assert bucket.take()


def test_rate_zero_means_no_limit() -> None:
    bucket = TokenBucket(burst=1, rate=0)
    assert all(bucket.take() for _ in range(1000))
    assert bucket.wait() == 0


async def test_a_flood_at_10x_the_limit_is_delayed_in_full_while_others_chat() -> None:
    # 300 lines at once against 10 + 100/s: about 3 s of backlog, ten times the burst.
    async with running_server(flood_burst=10, flood_rate=100, quiet=True) as server:
        flooder = await PlainPeer.connect(server.port)
        alice = await RichPeer.connect(server.port, "alice")
        bob = await RichPeer.connect(server.port, "bob")
        await flooder.send("".join(f"flood {i}\n" for i in range(300)))
        notice = await flooder.expect("You are sending more than", skip=JOINS)
        assert "nothing is lost" in notice
        await alice.send(Say("honest"))
        # bob gets alice's line while the flood is still being let through...
        seen: list[str] = []
        for _ in range(400):
            event = await bob.expect(Message, skip=Joined)  # the flooder's, at its first line
            if event.nick == "alice":
                break
            seen.append(event.text)
        assert len(seen) < 300, "the honest line waited for the whole flood"
        # ...and then every flood line, in order, none lost.
        for _ in range(300 - len(seen)):
            seen.append((await bob.expect(Message, lambda m: m.nick != "alice")).text)
        assert seen == [f"flood {i}" for i in range(300)]
        await console_of(server).wait_for("[FLOOD] Peer")


async def test_a_persistent_flooder_is_disconnected_with_a_reason() -> None:
    async with running_server(flood_burst=5, flood_rate=20, flood_kick_after=0.5) as server:
        flooder = await PlainPeer.connect(server.port)
        watcher = await RichPeer.connect(server.port, "watcher")

        async def flood() -> None:
            # Bounded: at most 200 writes; the server cuts us off long before.
            for _ in range(200):
                try:
                    await flooder.send("spam\n" * 100)
                except (ConnectionError, OSError):
                    return

        task = asyncio.create_task(flood())
        lines = await flooder.eof()
        await task
        assert lines[-1].startswith("! disconnected for flooding")
        assert (await watcher.expect(Joined)).nick == flooder.addr

        def spam(event: Event) -> bool:
            return isinstance(event, Message) and event.text == "spam"

        left = await watcher.expect(Left, skip=spam)
        assert left.reason == "flooding"
        await watcher.send(Say("still fine"))
        await console_of(server).wait_for("[CLOSING] Peer")


async def test_lines_held_back_still_arrive_after_the_sender_closes() -> None:
    async with running_server(flood_burst=2, flood_rate=50) as server:
        sender = await PlainPeer.connect(server.port)
        reader = await RichPeer.connect(server.port, "reader")
        await sender.send("".join(f"last words {i}\n" for i in range(30)))
        sender.writer.write_eof()
        assert (await reader.expect(Joined)).nick == sender.addr
        texts = [(await reader.expect(Message)).text for _ in range(30)]
        assert texts == [f"last words {i}" for i in range(30)]
        assert (await reader.expect(Left)).reason is None


async def test_a_long_quit_reason_is_cut_and_the_leave_still_announced() -> None:
    async with running_server() as server:
        quitter = await PlainPeer.connect(server.port)
        watcher = await RichPeer.connect(server.port, "watcher")
        await quitter.say("/quit " + "x" * 300)
        assert (await quitter.eof())[-1] == "*** You left the chat. Goodbye!"
        assert (await watcher.expect(Joined)).nick == quitter.addr
        left = await watcher.expect(Left)
        assert left.reason is not None
        assert left.reason.startswith("quit: xxx")
        assert len(left.reason) == 200
        await console_of(server).wait_for(f"[DISCONNECTED] {quitter.addr}")


@pytest.mark.timeout(10)
def test_a_console_nobody_reads_never_blocks_the_server_and_counts_what_it_drops() -> None:
    read_end, write_end = os.pipe()
    stream = io.TextIOWrapper(os.fdopen(write_end, "wb"), encoding="utf-8")
    console = Console(stream, color=False, background=True)
    # 20,000 lines of 200 bytes: far past what the pipe and the queue hold, while nobody
    # reads. Each call returns at once; a blocking console would hang here and fail the
    # test by its timeout (10 s).
    for i in range(20_000):
        console.line("RECEIVED", f"{i} " + "y" * 200)
    # Now read it all: the writer thread empties its queue into the pipe.
    written = close_and_read(console, stream, read_end)
    lines = written.decode().splitlines()
    shown = [int(line.split()[1]) for line in lines if line.startswith("[RECEIVED] ")]
    dropped = [
        int(line.split()[1])
        for line in lines
        if line.endswith("lines were dropped: the console was too slow.")
    ]
    assert shown == sorted(shown)  # in order, none twice
    assert shown[0] == 0
    assert sum(dropped) > 0  # some were dropped...
    assert len(shown) + sum(dropped) == 20_000  # ...and every one of them was counted


async def test_flood_notice_reaches_rich_peers_too() -> None:
    async with running_server(flood_burst=1, flood_rate=50) as server:
        rich = await RichPeer.connect(server.port, "fast")
        watcher = await RichPeer.connect(server.port, "watcher")
        assert (await rich.expect(Joined)).nick == "watcher"
        rich.writer.write(b"".join(rich.conn.send(Say(f"fast {i}")) for i in range(5)))
        notice = await rich.expect(Info)
        assert "more than 50 lines a second" in notice.text
        assert "nothing is lost" in notice.text
        # ...and indeed every line arrives, in order.
        texts = [(await watcher.expect(Message)).text for _ in range(5)]
        assert texts == [f"fast {i}" for i in range(5)]


async def test_a_burst_of_exactly_the_limit_is_not_slowed_down_one_more_is() -> None:
    async with running_server(flood_burst=5, flood_rate=1) as server:
        sender = await PlainPeer.connect(server.port)
        watcher = await RichPeer.connect(server.port, "watcher")
        await sender.send("".join(f"line {i}\n" for i in range(5)))  # one read, 5 lines
        assert (await watcher.expect(Joined)).nick == sender.addr
        assert [(await watcher.expect(Message)).text for _ in range(5)] == [
            f"line {i}" for i in range(5)
        ]
        # The lines were handled in the pass that would have logged a slow-down.
        assert not [line for line in console_of(server).lines if "[FLOOD]" in line]
        await sender.say("one more")
        notice = await sender.expect("You are sending more than 1 lines a second", skip=JOINS)
        assert "nothing is lost" in notice
        assert (await watcher.expect(Message)).text == "one more"
        await console_of(server).wait_for("[FLOOD] Peer")


def test_a_burst_of_one_allows_one_line_at_once() -> None:
    bucket = TokenBucket(burst=1, rate=1, clock=FakeClock())
    assert [bucket.take(), bucket.take()] == [True, False]


@pytest.mark.parametrize("rate", [0.5, 2.0])
def test_a_refund_gives_back_exactly_one_token_at_any_rate(rate: float) -> None:
    bucket = TokenBucket(burst=3, rate=rate, clock=FakeClock())
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    bucket.refund()
    assert [bucket.take(), bucket.take()] == [True, False]


def test_wait_is_the_time_until_the_next_token() -> None:
    clock = FakeClock()
    bucket = TokenBucket(burst=3, rate=2, clock=clock)
    for _ in range(3):
        bucket.take()
    clock.now += 0.25  # half a token back
    assert bucket.wait() == pytest.approx(0.25)
    slow = TokenBucket(burst=1, rate=0.5, clock=clock)
    slow.take()
    assert slow.wait() == pytest.approx(2.0)  # a slow rate is still a limit
