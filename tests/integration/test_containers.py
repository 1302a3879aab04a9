"""The real images on a private network: clients in containers chat through the server."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network

from .containers import Peer, start_client, start_nc, start_server


@pytest.fixture
def server(network: Network) -> Iterator[DockerContainer]:
    container = start_server(network, ("PEERCHAT_SHUTDOWN_TIMEOUT", "3"))
    try:
        yield container
    finally:
        container.stop()


def server_log(server: DockerContainer) -> str:
    stdout, stderr = server.get_logs()
    return stdout.decode() + stderr.decode()


def wait_for_log(server: DockerContainer, text: str) -> None:
    deadline = time.monotonic() + 30
    while text not in server_log(server):
        assert time.monotonic() < deadline, f"{text!r} not in server log:\n{server_log(server)}"
        time.sleep(0.1)


def messages(peer: Peer) -> list[tuple[str, str]]:
    return [(e["nick"], e["text"]) for e in peer.events() if e["type"] == "message"]


@pytest.fixture
def room(network: Network, server: DockerContainer) -> Iterator[dict[str, Peer]]:
    """Three real clients and one nc-style peer, all connected and announced."""
    peers: dict[str, Peer] = {}
    try:
        for nick in ("ann", "ben", "cat"):
            peers[nick] = start_client(network, nick, "--linger", "120")
        peers["nc"] = start_nc(network)
        peers["nc"].type("/nick nc")
        for nick in ("ben", "cat"):
            peers["ann"].wait_for_event(type="join", nick=nick)
        for nick in ("ann", "ben", "cat"):  # everyone knows the nc peer by name now
            peers[nick].wait_for_event(type="renamed", new="nc")
        yield peers
    finally:
        for peer in peers.values():
            peer.stop()


def test_every_message_reaches_every_other_peer_and_not_its_sender(
    room: dict[str, Peer], server: DockerContainer
) -> None:
    for nick in ("ann", "ben", "cat"):
        room[nick].type(f"hello from {nick}")
    room["nc"].type("hello from nc")
    everyone = {"ann", "ben", "cat", "nc"}
    for nick in ("ann", "ben", "cat"):
        peer = room[nick]
        for other in everyone - {nick}:
            peer.wait_for_event(type="message", nick=other, text=f"hello from {other}")
    for other in ("ann", "ben", "cat"):
        room["nc"].wait_for_text(f"<{other}> hello from {other}")
    # Every peer has now seen the other three; none saw its own.
    for nick in ("ann", "ben", "cat"):
        got = messages(room[nick])
        assert sorted(got) == sorted((o, f"hello from {o}") for o in everyone - {nick})
    assert "<nc>" not in room["nc"].output()
    log = server_log(server)
    for nick in everyone:
        assert f"hello from {nick}" in log


def test_join_and_leave_notices_arrive(room: dict[str, Peer]) -> None:
    ann = room["ann"]
    joined = ann.wait_for_event(type="join", nick="cat")
    assert joined["online"] >= 3
    room["ben"].type("/quit")
    left = ann.wait_for_event(type="leave", nick="ben")
    assert left["reason"] == "quit"
    room["nc"].wait_for_text("*** ben left: quit")
    assert room["ben"].exit_code() == 0


def test_a_killed_client_is_logged_and_the_others_keep_chatting(
    room: dict[str, Peer], server: DockerContainer
) -> None:
    room["cat"].container.get_wrapped_container().kill()  # SIGKILL: no goodbye
    left = room["ann"].wait_for_event(type="leave", nick="cat")
    assert left["online"] == 3
    wait_for_log(server, "[DISCONNECTED] cat (")
    room["ann"].type("still here?")
    room["ben"].wait_for_event(type="message", nick="ann", text="still here?")
    room["nc"].wait_for_text("<ann> still here?")


def test_docker_stop_on_the_server_ends_everyone_cleanly(
    room: dict[str, Peer], server: DockerContainer
) -> None:
    started = time.monotonic()
    server.get_wrapped_container().stop(timeout=10)
    stopped_after = time.monotonic() - started
    server.get_wrapped_container().reload()
    state = server.get_wrapped_container().attrs["State"]
    assert state["ExitCode"] == 0
    assert stopped_after < 8, f"server took {stopped_after:.1f}s to stop (grace period 10s)"
    log = server_log(server)
    assert "[SHUTDOWN] SIGTERM received" in log
    assert "[STOPPED] Server stopped." in log
    for nick in ("ann", "ben", "cat"):
        peer = room[nick]
        bye = peer.wait_for_event(type="bye")
        assert bye["code"] == "shutdown"
        assert peer.exit_code() == 1  # the server went away: status 1, no traceback
        assert "Traceback" not in peer.output()
    room["nc"].wait_for_text("! The server is shutting down.")
    room["nc"].wait_for_text("[EOF]")
