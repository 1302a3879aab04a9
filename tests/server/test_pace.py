"""A room goes at its readers' pace: a member that reads slower than the room talks holds
its senders (nothing is lost, nobody is dropped), one that stopped reading holds nobody
for long and is dropped, and one pass takes only so much chat into a room."""

from __future__ import annotations

import asyncio
from typing import Any

from peerchat_server import output
from peerchat_server.config import ADDRESS_WAIT_BURST, ServerConfig
from peerchat_server.room import PASS_INTAKE
from peerchat_server.server import ChatServer
from peerchat_server.session import Session

from .peers import PlainPeer, RecordingConsole, console_of, raw_reader, running_server


class Transport:
    """Stands in for a socket whose unsent bytes a test sets (no kernel queue)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.written: list[bytes] = []
        self.size = 0  # what get_write_buffer_size says
        self.reading = True
        self.aborted = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 20_000 + self.n) if name == "peername" else default

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def get_write_buffer_size(self) -> int:
        return self.size

    def is_closing(self) -> bool:
        return self.aborted

    def can_write_eof(self) -> bool:
        return True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def abort(self) -> None:
        self.aborted = True

    def close(self) -> None:
        self.aborted = True

    def text(self) -> str:
        return b"".join(self.written).decode()


UNLIMITED: dict[str, Any] = {
    "flood_rate": 0, "address_flood_rate": 0, "connect_rate": 0, "max_per_address": 0,
    "max_connections": 0, "join_notices_up_to": 0, "announce_delay": 0,
    "address_wait_rate": 0,
}  # fmt: skip


async def room_of(n: int, **config: Any) -> tuple[Any, list[Session], list[Transport]]:
    """A relay with ``n`` plain peers in the lobby, each of which has said one line."""
    relay = ChatServer(ServerConfig(**{**UNLIMITED, **config}), RecordingConsole()).relay
    peers, transports = [], []
    for i in range(n):
        transport = Transport(i)
        peer = Session(relay)
        peer.connection_made(transport)  # type: ignore[arg-type]
        peer.data_received(b"/nick p%d\n" % i)
        peers.append(peer)
        transports.append(transport)
    await passes()
    return relay, peers, transports


async def passes(n: int = 5) -> None:
    """Let the loop turn ``n`` times (the fan-out and what was put off to the next pass)."""
    for _ in range(n):
        await asyncio.sleep(0)


def lines_of(n: int, tag: str) -> bytes:
    return b"".join(b"%s %d\n" % (tag.encode(), i) for i in range(n))


def now() -> float:
    return asyncio.get_running_loop().time()


# --- a member that falls behind -----------------------------------------------------------


async def test_a_member_that_falls_behind_holds_its_room_until_it_catches_up() -> None:
    relay, (slow, sender, _other), transports = await room_of(3)
    slow.pause_writing()  # its transport's buffer passed the high-water mark
    assert relay.rooms.lobby.held
    sender.data_received(lines_of(3, "held"))
    await passes()
    assert "held" not in transports[2].text()  # nothing was taken from the sender...
    assert not transports[1].reading  # ...which is no longer read
    slow.resume_writing()  # down to the low-water mark
    assert not relay.rooms.lobby.held
    await passes()
    assert [line for line in transports[2].text().splitlines() if "held" in line] == [
        "<p1> held 0",
        "<p1> held 1",
        "<p1> held 2",
    ]
    assert transports[1].reading
    assert not any(t.aborted for t in transports)


async def test_a_room_waits_only_for_its_own_members() -> None:
    relay, (slow, sender, _other), transports = await room_of(3)
    slow.data_received(b"/join side\n")
    await passes()
    slow.pause_writing()
    assert relay.rooms.get_or_make("side").held
    assert not relay.rooms.lobby.held
    sender.data_received(lines_of(2, "lobby"))
    await passes()
    assert "<p1> lobby 1" in transports[2].text()


async def test_a_member_that_leaves_while_it_is_waited_for_releases_the_room() -> None:
    relay, (slow, sender, _other), transports = await room_of(3)
    slow.pause_writing()
    sender.data_received(lines_of(2, "after"))
    await passes()
    assert "after" not in transports[2].text()
    slow.connection_lost(None)
    assert not relay.rooms.lobby.held
    await passes()
    assert "<p1> after 1" in transports[2].text()


async def test_a_member_that_moves_takes_nothing_of_the_old_rooms_wait_along() -> None:
    relay, (slow, sender, _other), _transports = await room_of(3)
    slow.pause_writing()
    sender.data_received(b"/join side\n")  # a command waits with the chat: in order
    await passes()
    assert sender.room is relay.rooms.lobby
    slow.resume_writing()
    await passes()
    assert sender.room.name == "side"
    assert not relay.rooms.lobby.held


async def test_an_address_is_waited_for_so_often_and_then_no_more() -> None:
    # An attacker that trickles to hold a room is dropped after 3 s, and reconnects:
    # its address's waits are budgeted (all three peers here share 127.0.0.1).
    relay, (slow, _sender, _other), _transports = await room_of(3, address_wait_rate=0.001)
    for _ in range(ADDRESS_WAIT_BURST):
        slow.pause_writing()
        assert relay.rooms.lobby.held
        slow.resume_writing()
        assert not relay.rooms.lobby.held
    slow.pause_writing()  # once more, at once: its address had its share
    assert not relay.rooms.lobby.held


# --- reading, or not --------------------------------------------------------------------


async def test_a_reader_that_shows_nothing_for_the_first_look_holds_nobody() -> None:
    _relay, (stalled, _sender, _other), transports = await room_of(3)
    transports[0].size = 100_000
    stalled.pause_writing()
    t = now()
    assert stalled.keeps_up(t + output.FIRST_LOOK / 2)
    assert not stalled.keeps_up(t + output.FIRST_LOOK + 0.01)
    assert not transports[0].aborted  # under the limit: kept, but waited for no more


async def test_a_reader_whose_backlog_shrinks_is_waited_for_longer() -> None:
    _relay, (slow, _sender, _other), transports = await room_of(3)
    transports[0].size = 100_000
    slow.pause_writing()
    t = now()
    transports[0].size = 90_000  # it read something
    assert slow.keeps_up(t + 0.1)
    assert slow.keeps_up(t + 0.1 + output.STALLED_AFTER - 0.01)
    assert not slow.keeps_up(t + 0.1 + output.STALLED_AFTER + 0.01)


async def test_a_reader_too_slow_to_catch_up_is_waited_for_at_most_the_longest_wait() -> None:
    relay, (slow, _sender, _other), transports = await room_of(3, max_send_buffer=200_000)
    transports[0].size = 100_000
    slow.pause_writing()
    t = now()
    for step in range(1, 40):  # a little every 0.1 s: reading, but never catching up
        transports[0].size -= 10
        if not slow.keeps_up(t + step * 0.1):
            break
        assert relay.rooms.lobby.held
    assert step * 0.1 >= output.HOLD_AT_MOST - 0.01
    assert slow._behind_since is not None
    slow._behind_since -= output.HOLD_AT_MOST  # as if that time had passed: the room's
    relay._watch_slow(relay.rooms.lobby)  # own look lets it go, and goes on without it
    assert not relay.rooms.lobby.held
    assert not transports[0].aborted  # under the limit: kept, like any peer
    transports[0].size = 300_000  # the room talks on; past the limit, it is dropped
    slow.queue_bytes(b"more\r\n")
    slow.flush()
    assert transports[0].aborted
    assert "stopped reading: 300000 bytes waiting" in relay.console.lines[-1]


async def test_a_reader_its_room_does_not_wait_for_is_dropped_at_the_limit_though_it_reads() -> (
    None
):
    # Its address had its share of waits: reading a little must not let its backlog grow
    # past the limit (the room is not held for it, so it would grow without end).
    relay, (slow, _sender, _other), transports = await room_of(
        3, max_send_buffer=200_000, address_wait_rate=0.001
    )
    for _ in range(ADDRESS_WAIT_BURST):
        slow.pause_writing()
        slow.resume_writing()
    transports[0].size = 100_000
    slow.pause_writing()
    assert not relay.rooms.lobby.held
    transports[0].size = 90_000  # it read something...
    slow.queue_bytes(b"x" * 10 + b"\r\n")
    slow.flush()
    assert not transports[0].aborted
    transports[0].size = 250_000  # ...and still falls further behind
    slow.queue_bytes(b"y\r\n")
    slow.flush()
    assert transports[0].aborted


async def test_a_member_that_leaves_is_not_kept_among_those_that_wait_to_be_read() -> None:
    relay, (slow, sender, _other), _transports = await room_of(3)
    slow.pause_writing()
    sender.data_received(lines_of(2, "queued"))
    assert relay.rooms.lobby.waiting == [sender]
    sender.connection_lost(None)
    assert relay.rooms.lobby.waiting == []


async def test_a_silent_peer_in_a_held_room_is_not_reaped_for_the_rooms_silence() -> None:
    _relay, (slow, quiet, _other), transports = await room_of(3, idle_timeout=1)
    slow.pause_writing()
    quiet.check_liveness(now() + 100)  # it could not have been heard: nobody was read
    assert not transports[1].aborted
    assert not quiet._closing


async def test_a_reader_over_the_limit_is_kept_while_it_reads_and_dropped_once_it_stops() -> None:
    relay, (slow, _sender, _other), transports = await room_of(3, max_send_buffer=1000)
    transports[0].size = 5000
    slow.pause_writing()  # just fell behind: given its first look
    slow.queue_bytes(b"x\r\n")
    slow.flush()
    assert not transports[0].aborted
    transports[0].size = 10_000  # nothing read, and it is past its first look
    slow._progress_at -= output.FIRST_LOOK + 0.01
    slow.queue_bytes(b"y\r\n")
    slow.flush()
    assert transports[0].aborted
    assert "stopped reading: 10000 bytes waiting (limit 1000)" in relay.console.lines[-1]


# --- how much one pass takes --------------------------------------------------------------


async def test_one_pass_takes_so_much_chat_into_a_room_and_the_rest_next_pass() -> None:
    relay, (first, second, _reader), transports = await room_of(3)
    big = b"".join(b"%s\n" % (b"a%05d" % i + b"x" * 994) for i in range(300))  # 300 KB
    first.data_received(big)
    assert relay.rooms.lobby.busy  # past PASS_INTAKE: nothing more this pass
    second.data_received(lines_of(5, "second"))
    assert "second" not in "".join(m.text for m, _, _ in relay.rooms.lobby.log)  # not yet
    assert not transports[1].reading
    await passes()
    got = [line for line in transports[2].text().splitlines() if line.startswith("<p")]
    assert got[-5:] == [f"<p1> second {i}" for i in range(5)]
    assert [line[6:11] for line in got[:-5]] == [f"{i:05d}" for i in range(300)]  # all, in order
    assert transports[1].reading
    assert len(big) > PASS_INTAKE


# --- with real sockets ------------------------------------------------------------------


async def test_a_slow_reader_gets_everything_and_is_not_dropped() -> None:
    # A send buffer limit far below what is said: without the wait, the slow reader
    # would be dropped long before the end.
    async with running_server(max_send_buffer=64 * 1024, quiet=True) as server:
        reader = await raw_reader(server.port, 8192)
        loop = asyncio.get_running_loop()
        sender = await PlainPeer.connect(server.port)
        await sender.say("/nick sender")
        await sender.expect("now known as sender", skip="***")
        n, line = 3000, "s" * 500
        await sender.send("".join(f"{i} {line}\n" for i in range(n)))  # 1.5 MB at once
        data = b""
        for _ in range(100_000):  # a slow reader: 4 KiB at a time, with pauses
            chunk = await loop.sock_recv(reader, 4096)
            assert chunk, "the server closed the slow reader"
            data += chunk
            if data.count(b"<sender> ") >= n:
                break
            await asyncio.sleep(0.001)
        got = [x for x in data.decode().splitlines() if x.startswith("<sender> ")]
        assert got == [f"<sender> {i} {line}" for i in range(n)]
        assert not [x for x in console_of(server).lines if x.startswith("[DROPPED]")]
        reader.close()


class GoneTransport(Transport):
    """A connection the peer reset before the server noticed: no FIN can be sent."""

    def write_eof(self) -> None:
        raise OSError(107, "Transport endpoint is not connected")


async def test_closing_a_peer_that_is_gone_already_does_not_raise() -> None:
    _relay, (peer, *_), _transports = await room_of(2)
    gone = GoneTransport(99)
    peer.transport = gone  # type: ignore[assignment]
    peer.close(None, log_reason="server shutting down", linger=True)  # as shutdown does
    assert gone.aborted
