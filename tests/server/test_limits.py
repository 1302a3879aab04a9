"""Connection limits: a storm past them is turned away while existing peers chat on."""

from __future__ import annotations

import asyncio

import pytest

from peerchat_protocol import Bye, Connection, Hello, Joined, Message, Role, Say
from peerchat_server import addresses

from .peers import WAIT, PlainPeer, RichPeer, console_of, running_server


async def refused_lines(port: int) -> list[str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    data = await asyncio.wait_for(reader.read(), WAIT)  # the server closes at once
    writer.close()
    return data.decode().splitlines()


async def test_a_storm_past_the_per_address_limit_leaves_existing_peers_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(addresses, "REFUSAL_LOG_PERIOD", 0.0)  # sum up at the next sweep
    async with running_server(max_per_address=3) as server:
        alice = await RichPeer.connect(server.port, "alice")
        bob = await RichPeer.connect(server.port, "bob")
        third = await PlainPeer.connect(server.port)
        storm = await asyncio.gather(*(refused_lines(server.port) for _ in range(50)))
        for lines in storm:
            assert lines[0].startswith("! Connection refused: too many connections from 127.0.0.1")
            assert '"code":"too_many_connections"' in lines[1]
        await alice.send(Say("still chatting"))
        # third, silent, is announced 0.5 s after it came: maybe before, maybe after.
        assert (await bob.expect(Message, skip=Joined)).text == "still chatting"
        assert await third.expect("<alice>") == "<alice> still chatting"
        assert len(server.relay.registry) == 3
        # The first refusal is logged; the rest are counted and summed up once.
        refused = await console_of(server).wait_for("[REFUSED]", count=2)
        assert refused[0].startswith("[REFUSED] Peer 127.0.0.1:")
        assert refused[1].startswith(
            "[REFUSED] 49 more connections from 127.0.0.1 were refused in the last"
        )
        # Once one leaves, a new one is let in.
        await third.close()
        await console_of(server).wait_for(f"[DISCONNECTED] {third.addr}")
        fourth = await PlainPeer.connect(server.port)
        assert [await fourth.line() for _ in range(3)] == [
            "*** Last 1 messages in #lobby:",
            "<alice> still chatting",
            "*** End of history.",
        ]
        await bob.send(Say("welcome back"))
        assert await fourth.expect("<bob>") == "<bob> welcome back"


async def test_a_full_server_says_so_to_a_rich_client() -> None:
    async with running_server(max_connections=1) as server:
        first = await PlainPeer.connect(server.port)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        client = Connection(Role.CLIENT)
        writer.write(client.send(Hello(nick="late")))
        client.receive_data(await asyncio.wait_for(reader.read(), WAIT))
        events = []
        for _ in range(10):
            event = client.next_event()
            if not isinstance(event, Bye):
                break
            events.append(event)
        assert events[0].code == "too_many_connections"
        assert "the server is full (1 connections)" in events[0].reason
        writer.close()
        await first.say("/who")
        assert await first.expect("online:") == "*** 1 online:"
