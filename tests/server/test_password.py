"""A server with a password: wrong, missing and slow passwords; nothing reaches outsiders."""

from __future__ import annotations

import asyncio
import hmac
from typing import Any

import pytest

from peerchat_protocol import (
    Bye,
    Connection,
    Error,
    Hello,
    Joined,
    Left,
    Role,
    Roster,
    Say,
    Welcome,
    Who,
)

from .peers import WAIT, PlainPeer, RichPeer, console_of, running_server

SECRET = "correct horse"


async def rich_hello(port: int, password: str | None, **hello: Any) -> list[object]:
    """Connect, say hello with ``password`` (and ``hello``'s members), and return the
    JSON events until the end or a welcome."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    conn = Connection(Role.CLIENT)
    writer.write(conn.send(Hello(**{"nick": "rich", **hello}, password=password)))
    events: list[object] = []
    for _ in range(100):
        data = await asyncio.wait_for(reader.read(65536), WAIT)
        conn.receive_data(data)
        for _ in range(100):
            event = conn.next_event()
            if not hasattr(event, "TYPE"):
                break
            events.append(event)
        if not data or any(isinstance(e, Welcome) for e in events):
            break
    writer.close()
    return events


async def test_the_right_password_lets_peers_in_and_chat() -> None:
    async with running_server(password=SECRET) as server:
        nc = await PlainPeer.connect(server.port, banner=False)
        assert await nc.line() == f"*** Welcome to peerchat! You are {nc.addr}."
        assert "send /pass PASSWORD" in await nc.line()
        await nc.say(f"/pass {SECRET}")
        assert (await nc.line()).startswith("*** Password accepted.")
        rich = await RichPeer.connect(server.port, "rich", password=SECRET)
        assert await nc.expect("joined") == "*** rich joined (2 online)"
        await rich.send(Say("in"))
        assert await nc.expect("<rich>") == "<rich> in"
        log = "\n".join(console_of(server).lines)
        assert SECRET not in log
        assert f"[AUTH] Peer {nc.addr} gave the password." in log


async def test_wrong_and_missing_passwords_are_refused_and_logged_without_the_secret() -> None:
    async with running_server(password=SECRET) as server:
        insider = await RichPeer.connect(server.port, "insider", password=SECRET)
        wrong = await rich_hello(server.port, "hunter2")
        assert [e.code for e in wrong if isinstance(e, Bye)] == ["bad_password"]
        missing = await rich_hello(server.port, None)
        assert "no password given" in next(e for e in missing if isinstance(e, Bye)).reason
        nc = await PlainPeer.connect(server.port, banner=False)
        await nc.say("/pass guess")
        assert (await nc.eof())[-1].startswith("! disconnected: wrong password")
        lines = await console_of(server).wait_for("[AUTH FAILED]", count=3)
        assert all("hunter2" not in line and "guess" not in line for line in lines)
        await nc.close()
        await console_of(server).wait_for(f"[DISCONNECTED] {nc.addr}")
        assert [s.name for s in server.relay.registry] == [insider.nick]


async def test_nothing_is_relayed_to_or_from_a_peer_without_the_password() -> None:
    async with running_server(password=SECRET) as server:
        insider = await RichPeer.connect(server.port, "insider", password=SECRET)
        outsider = await PlainPeer.connect(server.port, banner=False)
        await outsider.line()
        await outsider.line()
        await outsider.say("let me talk")
        assert "give the password first" in await outsider.line()
        await insider.send(Say("secret plans"))
        await outsider.say("/who")
        assert "give the password first" in await outsider.line()  # not the insider's line
        await insider.send(Who())
        got = await insider.event()
        assert isinstance(got, Roster), got  # the outsider's line never came before it
        assert [p.nick for p in got.peers] == ["insider"]  # nor is it in the room


async def test_a_peer_that_never_gives_the_password_is_disconnected() -> None:
    async with running_server(password=SECRET, auth_timeout=0.3) as server:
        slow = await PlainPeer.connect(server.port, banner=False)
        lines = await slow.eof()
        assert lines[-1] == (
            "! disconnected: no password within 0.3 s (send /pass PASSWORD as your first "
            "line, or give it in your hello); reconnect and try again"
        )
        await console_of(server).wait_for(f"[AUTH FAILED] Peer {slow.addr}: no password in 0.3 s.")


async def test_error_codes_reach_rich_clients() -> None:
    async with running_server(password=SECRET) as server:
        events = await rich_hello(server.port, "nope")
        assert any(isinstance(e, (Error, Bye)) for e in events)


async def test_a_resuming_connection_must_still_give_the_password() -> None:
    async with running_server(password=SECRET) as server:
        alice = await RichPeer.connect(server.port, "alice", password=SECRET)
        watcher = await RichPeer.connect(server.port, "watcher", password=SECRET)
        assert alice.welcome is not None
        assert alice.welcome.session is not None
        secret = alice.welcome.session
        await alice.close()  # lost, not quit: its session waits to be resumed
        assert (await watcher.expect(Left)).nick == "alice"
        # The session secret alone lets nobody in: without the password, or with a
        # wrong one, the connection is refused like any other.
        for password in (None, "wrong"):
            events = await rich_hello(server.port, password, version=3, nick="alice", resume=secret)
            assert not [e for e in events if isinstance(e, Welcome)], events
            assert [e.code for e in events if isinstance(e, Bye)] == ["bad_password"]
        await console_of(server).wait_for("[AUTH FAILED]", count=2)
        assert not [line for line in console_of(server).lines if "[RESUMED]" in line]
        # The session is still there for its owner, who knows the password.
        events = await rich_hello(server.port, SECRET, version=3, nick="alice", resume=secret)
        welcome = next(e for e in events if isinstance(e, Welcome))
        assert (welcome.nick, welcome.resumed) == ("alice", True)
        assert (await watcher.expect(Joined)).nick == "alice"  # once: the refused never came in


async def test_the_password_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # What can be checked of "constant time": the comparison is hmac.compare_digest's,
    # which takes as long whatever the prefix that matches, and nothing else decides.
    import peerchat_server.admission as admission_module

    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def compare_digest(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(admission_module.hmac, "compare_digest", compare_digest)
    async with running_server(password=SECRET) as server:
        wrong = await rich_hello(server.port, "correct horsf")  # all but the last byte
        assert [e.code for e in wrong if isinstance(e, Bye)] == ["bad_password"]
        await RichPeer.connect(server.port, "right", password=SECRET)
    assert compared == [(b"correct horsf", SECRET.encode()), (SECRET.encode(), SECRET.encode())]


async def test_a_wrong_password_in_a_hello_is_called_wrong() -> None:
    async with running_server(password=SECRET) as server:
        peer = await PlainPeer.connect(server.port, banner=False)
        rich = RichPeer(peer.reader, peer.writer)
        await rich.send(Hello(version=3, nick="rich", password="not it"))
        bye = await rich.expect(Bye, skip=Error)  # the bad_password error, then the bye
        assert bye.code == "bad_password"
        assert "wrong password" in bye.reason
        await console_of(server).wait_for("wrong password")


async def test_a_second_pass_is_answered_and_the_peer_stays() -> None:
    async with running_server(password=SECRET) as server:
        peer = await PlainPeer.connect(server.port, banner=False)
        await peer.send(f"/pass {SECRET}\n")
        assert await peer.line() == f"*** Welcome to peerchat! You are {peer.addr}."
        assert "send /pass PASSWORD" in await peer.line()
        assert (await peer.line()).startswith("*** Password accepted.")
        await peer.send(f"/pass {SECRET}\n")
        assert await peer.line() == "*** You are already in."


async def test_a_wrong_password_is_told_even_to_a_peer_still_sending() -> None:
    # A lingering close: what the peer sent after the wrong password stays unread, and
    # a plain close would reset the connection, and the goodbye with it.
    async with running_server(password=SECRET) as server:
        peer = await PlainPeer.connect(server.port, banner=False)
        # More than one read of the server's: the rest arrives after the verdict.
        peer.writer.write(b"/pass guess\n" + b"more typing\n" * 100_000)
        lines = await peer.eof()  # a reset here would fail the test
        assert lines[-1].startswith("! disconnected: wrong password")
