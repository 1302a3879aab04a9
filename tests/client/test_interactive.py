"""Interactive mode through a real pseudo-terminal, against the real server."""

from __future__ import annotations

import re
import sys

import pytest

from .harness import RawPeer, run, running_server
from .pty_client import PtyClient

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pty")

# prompt_toolkit may draw the prompt's trailing space as a cursor move: match without it.
PROMPT = "Enter your message (or 'q' to quit):"


def prompt(nick: str, room: str = "lobby") -> str:
    return f"[INPUT] {nick}@#{room} - {PROMPT}"


async def _carol(port: int) -> RawPeer:
    carol = await RawPeer.connect(port)
    await carol.say("/nick carol")
    await carol.lines.wait_text("is now known as carol")
    return carol


def test_message_arriving_mid_line_leaves_the_typed_text_intact() -> None:
    async def scenario() -> None:
        async with running_server() as server:
            carol = await _carol(server.port)
            async with await PtyClient.start(
                "--port", str(server.port), "--nick", "alice", "--listen-port", "0",
                "--no-timestamps",
            ) as alice:  # fmt: skip
                await alice.wait_for(f"[SUCCESS] Connected to server at 127.0.0.1:{server.port}")
                at = await alice.wait_for(prompt("alice"))
                alice.type("hel")
                at = await alice.wait_for("hel", after=at)
                await carol.say("a message while you type")
                at = await alice.wait_for("[RECEIVED] <carol> a message while you type", after=at)
                # The prompt is redrawn below the message with the half-typed text.
                prompt_end = await alice.wait_for(prompt("alice"), after=at)
                at = await alice.wait_for("hel", after=prompt_end)
                assert alice.text[prompt_end : at - 3].strip() == ""
                alice.type("lo\r")
                assert await carol.lines.wait_text("<alice>") == ["<alice> hello"]
                await alice.wait_for("[SENT] hello", after=at)
                alice.type("q\r")
                await alice.wait_for("[INFO] Quitting...")
                assert await alice.wait() == 0
                await carol.lines.wait_text("alice left")
            assert "Traceback" not in alice.text
            await carol.close()

    run(scenario())


def test_q_quits() -> None:
    async def scenario() -> None:
        async with running_server() as server:
            async with await PtyClient.start(
                "--port", str(server.port), "--nick", "quitter", "--listen-port", "0"
            ) as client:
                await client.wait_for(prompt("quitter"))
                client.type("q\r")
                await client.wait_for("[INFO] Quitting...")
                assert await client.wait() == 0
            assert "Traceback" not in client.text

    run(scenario())


@pytest.mark.parametrize("key", ["\x04", "\x03"], ids=["ctrl-d", "ctrl-c"])
def test_ctrl_d_and_ctrl_c_quit_without_a_traceback(key: str) -> None:
    async def scenario() -> None:
        async with running_server() as server:
            async with await PtyClient.start(
                "--port", str(server.port), "--nick", "keys", "--listen-port", "0"
            ) as client:
                await client.wait_for(prompt("keys"))
                client.type(key)
                await client.wait_for("[INFO] Quitting...")
                assert await client.wait() == 0
            assert "Traceback" not in client.text

    run(scenario())


def test_commands_and_server_shutdown() -> None:
    async def scenario() -> None:
        async with running_server() as server:
            carol = await _carol(server.port)
            async with await PtyClient.start(
                "--port", str(server.port), "--nick", "cmd", "--listen-port", "0", "--no-reconnect"
            ) as client:
                at = await client.wait_for(prompt("cmd"))
                client.type("/who\r")
                at = await client.wait_for("[INFO] #lobby: 2 online: ", after=at)
                client.type("/nick bad nick\r")
                at = await client.wait_for("[ERROR] cannot use 'bad nick' as a nickname", after=at)
                client.type("/nick newname\r")
                at = await client.wait_for("[INFO] cmd is now known as newname", after=at)
                client.type("/frobnicate\r")
                at = await client.wait_for("[ERROR] unknown command /frobnicate", after=at)
                client.type("/help\r")
                at = await client.wait_for("/nick NAME", after=at)
                client.type("//slash\r")
                assert await carol.lines.wait_text("<newname>") == ["<newname> /slash"]
                await server.stop()
                await client.wait_for(
                    "[ERROR] The server closed the connection: The server is shutting down",
                    after=at,
                )
                assert await client.wait() == 1
            assert "Traceback" not in client.text
            await carol.close()

    run(scenario())


def test_in_a_terminal_a_lost_server_is_waited_for_and_typed_lines_kept() -> None:
    async def scenario() -> None:
        async with running_server() as server:
            async with await PtyClient.start(
                "--port", str(server.port), "--nick", "kept", "--listen-port", "0"
            ) as client:
                at = await client.wait_for(prompt("kept"))
                await server.stop()
                at = await client.wait_for(
                    "[DISCONNECTED] The server closed the connection", after=at
                )
                client.type("still here\r")
                at = await client.wait_for(
                    "[WAIT] Not connected; will be sent once reconnected: still here", after=at
                )
                client.type("q\r")
                await client.wait_for("1 of your lines were never sent: 'still here'", after=at)
                assert await client.wait() == 0
            assert "Traceback" not in client.text

    run(scenario())


def test_asks_for_missing_values_like_the_seed() -> None:
    async def scenario() -> None:
        async with running_server() as server, await PtyClient.start("--delay", "0.2") as client:
            await client.wait_for("Enter the listen port number: ")
            client.type("\r")  # empty: any port
            await client.wait_for("Enter the server port number: ")
            client.type("no\r")
            await client.wait_for("[ERROR] Not a port number: 'no'")
            client.type(f"{server.port}\r")
            await client.wait_for("Enter your nickname")
            client.type("asked\r")
            await client.wait_for(f"[INFO] Server detected at 127.0.0.1:{server.port}")
            await client.wait_for("[INFO] You are asked (127.0.0.1:")
            await client.wait_for("[WAIT] Waiting 0.2 seconds before allowing message input...")
            await client.wait_for(prompt("asked"))
            client.type("q\r")
            assert await client.wait() == 0

    run(scenario())


def test_prompt_follows_room_and_nick_with_completion_history_and_times() -> None:
    async def scenario() -> None:
        async with running_server() as server:
            carol = await _carol(server.port)
            async with await PtyClient.start(
                "--port", str(server.port), "--nick", "alice", "--listen-port", "0"
            ) as alice:
                at = await alice.wait_for(prompt("alice"))
                await carol.say("what time is it")
                at = await alice.wait_for("<carol> what time is it", after=at)
                # Local HH:MM before each message, after the seed's tag.
                assert re.search(r"\[RECEIVED\] \d\d:\d\d <carol> what time is it", alice.text)
                alice.type("/jo\t")  # Tab: the only command starting so is completed
                at = await alice.wait_for("/join", after=at)
                alice.type(" #games\r")
                at = await alice.wait_for("[INFO] You are now in #games: 1 online: alice", after=at)
                at = await alice.wait_for(prompt("alice", "games"), after=at)
                alice.type("/nick alicia\r")
                at = await alice.wait_for("[INFO] alice is now known as alicia", after=at)
                at = await alice.wait_for(prompt("alicia", "games"), after=at)
                alice.type("/msg ca\t")  # carol is known from the welcome
                at = await alice.wait_for("/msg carol", after=at)
                alice.type(" hi from games\r")
                assert await carol.lines.wait_text("[PM from alicia]") == [
                    "[PM from alicia] hi from games"
                ]
                at = await alice.wait_for(" [PM to carol] hi from games", after=at)
                assert re.search(r"\[SENT\] \d\d:\d\d \[PM to carol\] hi from games", alice.text)
                alice.type("/leave\r")
                at = await alice.wait_for(prompt("alicia", "lobby"), after=at)
                alice.type("\x1b[A\r")  # Up recalls /leave: already in the lobby now
                at = await alice.wait_for("[INFO] You are in #lobby, the room everyone", after=at)
                alice.type("q\r")
                await alice.wait_for("[INFO] Quitting...", after=at)
                assert await alice.wait() == 0
            assert "Traceback" not in alice.text
            await carol.close()

    run(scenario())


def test_a_mention_rings_the_bell_unless_no_bell() -> None:
    async def scenario() -> None:
        async with running_server() as server:
            carol = await _carol(server.port)
            await carol.say("ring and quiet: this is history, no bell for it")
            common = ("--port", str(server.port), "--listen-port", "0")
            async with (
                await PtyClient.start(*common, "--nick", "ring") as ring,
                await PtyClient.start(*common, "--nick", "quiet", "--no-bell") as quiet,
            ):
                for client, nick in ((ring, "ring"), (quiet, "quiet")):
                    await client.wait_for("[HISTORY]")
                    await client.wait_for(prompt(nick))
                await carol.say("hey RING and quiet, lunch?")
                await carol.say("/msg quiet a private word")
                await carol.say("nobody named here")
                for client in (ring, quiet):
                    await client.wait_for("nobody named here")
                await quiet.wait_for("[PM from carol] a private word")
                # The mention rang once; the history line and the others did not.
                assert ring.text.count("\a") == 1
                assert re.search(r"RING and quiet, lunch\?\a", ring.text)
                assert quiet.text.count("\a") == 0
                for client in (ring, quiet):
                    client.type("q\r")
                    assert await client.wait() == 0
            await carol.close()

    run(scenario())
