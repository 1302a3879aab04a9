"""Issue 5 in containers: rooms side by side, private messages, history for late joiners."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network

from .containers import Peer, start_client, start_server

HISTORY = 5


@pytest.fixture
def server(network: Network) -> Iterator[DockerContainer]:
    container = start_server(network, ("PEERCHAT_HISTORY", str(HISTORY)))
    try:
        yield container
    finally:
        container.stop()


def live(peer: Peer, room: str | None = None) -> list[tuple[str, str]]:
    """(nick, text) of the live (not history, not private) messages a client printed."""
    return [
        (e["nick"], e["text"])
        for e in peer.events()
        if e["type"] == "message" and not e.get("history") and not e.get("to")
        and (room is None or e.get("room") == room)
    ]  # fmt: skip


def test_rooms_private_messages_and_history(network: Network, server: DockerContainer) -> None:
    peers: dict[str, Peer] = {}
    try:
        for nick in ("ann", "ben", "cat", "dan"):
            peers[nick] = start_client(network, nick, "--linger", "120")
        for nick in ("cat", "dan"):
            peers[nick].type("/join games")
            peers[nick].wait_for_event(type="entered", room="games")
        peers["cat"].wait_for_event(type="join", nick="dan", room="games")

        # Two rooms chat side by side.
        for i in range(3):
            peers["ann"].type(f"lobby {i} from ann")
            peers["cat"].type(f"games {i} from cat")
        peers["ben"].wait_for_event(type="message", text="lobby 2 from ann")
        peers["dan"].wait_for_event(type="message", text="games 2 from cat")
        # A private message across rooms reaches only its target.
        peers["ann"].type("/msg dan just for dan")
        private = peers["dan"].wait_for_event(type="message", text="just for dan")
        assert (private["nick"], private["to"]) == ("ann", "dan")
        # Sentinels: once these arrive, everything sent before them has been relayed.
        peers["ben"].type("lobby done")
        peers["dan"].type("games done")
        peers["ann"].wait_for_event(type="message", text="lobby done")
        peers["cat"].wait_for_event(type="message", text="games done")

        assert live(peers["ben"]) == [("ann", f"lobby {i} from ann") for i in range(3)]
        assert live(peers["ann"]) == [("ben", "lobby done")]
        assert live(peers["dan"]) == [("cat", f"games {i} from cat") for i in range(3)]
        assert live(peers["cat"]) == [("dan", "games done")]
        for nick in ("ann", "ben", "cat"):  # the sender's client only notes what it sent
            assert not [e for e in peers[nick].events() if "just for dan" in str(e)]

        # Seven more in games, then a late joiner gets exactly the last HISTORY of them.
        for i in range(3, 10):
            peers["cat"].type(f"games {i} from cat")
        peers["dan"].wait_for_event(type="message", text="games 9 from cat")
        eve = peers["eve"] = start_client(network, "eve", "--linger", "120")
        eve.type("/join games")
        eve.wait_for_event(type="entered", room="games")
        eve.wait_for_text("games 9 from cat")
        history = [
            (e["nick"], e["text"])
            for e in eve.events()
            if e["type"] == "message" and e.get("history") and e.get("room") == "games"
        ]
        # games heard: cat 0-2, dan's "games done", cat 3-9; the last five are cat 5-9.
        assert history == [("cat", f"games {i} from cat") for i in range(10 - HISTORY, 10)]
        assert not [e for e in eve.events() if "just for dan" in str(e)]  # not history
    finally:
        for peer in peers.values():
            peer.stop()
