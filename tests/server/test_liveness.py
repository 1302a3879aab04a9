"""Dead and idle peers: rich ones are pinged and dropped when silent, plain ones reaped."""

from __future__ import annotations

from typing import TypeVar

from peerchat_protocol import Bye, Event, Joined, Left, Ping, Pong, Roster, Who

from .peers import PlainPeer, RichPeer, console_of, running_server

E = TypeVar("E", bound=Event)


async def answer_pings_until(peer: RichPeer, kind: type[E]) -> E:
    """Read ``peer``'s events, answering every ping, until one of ``kind`` arrives."""
    for _ in range(1000):
        event = await peer.event()
        if isinstance(event, Ping):
            await peer.send(Pong(event.token))
        elif isinstance(event, kind):
            return event
        elif event is None:
            break
    raise AssertionError(f"no {kind.__name__}")


async def test_a_rich_peer_that_stops_answering_is_dropped_one_that_answers_stays() -> None:
    async with running_server(ping_after=0.2, ping_timeout=0.3) as server:
        lively = await RichPeer.connect(server.port, "lively")
        silent = await RichPeer.connect(server.port, "silent")
        assert isinstance(await silent.expect(Ping), Ping)  # and never answered
        left = await answer_pings_until(lively, Left)
        assert (left.nick, left.reason) == ("silent", "no answer to a ping for 0.3 s")
        bye = await silent.expect(Bye)
        assert bye.code == "ping_timeout"
        assert bye.reason == "disconnected: no answer to a ping for 0.3 s"
        await console_of(server).wait_for("[CLOSING] Peer silent")
        await lively.send(Who())
        roster = await answer_pings_until(lively, Roster)
        assert [p.nick for p in roster.peers] == ["lively"]


async def test_an_idle_plain_peer_is_reaped_when_configured() -> None:
    async with running_server(idle_timeout=0.3) as server:
        idle = await PlainPeer.connect(server.port)
        lines = await idle.eof()
        assert lines[-1] == "! disconnected: idle for 0.3 s; reconnect to chat again"
        await console_of(server).wait_for(f"[DISCONNECTED] {idle.addr}")


async def test_plain_peers_are_never_pinged() -> None:
    async with running_server(ping_after=0.1, ping_timeout=0.5) as server:
        nc = await PlainPeer.connect(server.port)
        rich = await RichPeer.connect(server.port, "rich")
        for _ in range(3):  # several sweeps pass...
            ping = await rich.expect(Ping, skip=Joined)  # (nc's join may come after)
            await rich.send(Pong(ping.token))
        await nc.say("/who")  # ...and the plain peer got nothing but its answer
        assert await nc.line() == "*** rich joined (2 online)"
        assert await nc.line() == "*** 2 online:"
