"""Interactive mode through a real pseudo-terminal, against the real server."""

from __future__ import annotations

import sys

import pytest

from .harness import RawPeer, run, running_server
from .pty_client import PtyClient

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pty")

# prompt_toolkit may draw the prompt's trailing space as a cursor move: match without it.
PROMPT = "[INPUT] Enter your message (or 'q' to quit):"


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
                "--port", str(server.port), "--nick", "alice", "--listen-port", "0"
            ) as alice:
                await alice.wait_for(f"[SUCCESS] Connected to server at 127.0.0.1:{server.port}")
                at = await alice.wait_for(PROMPT)
                alice.type("hel")
                at = await alice.wait_for("hel", after=at)
                await carol.say("a message while you type")
                at = await alice.wait_for("[RECEIVED] <carol> a message while you type", after=at)
                # The prompt is redrawn below the message with the half-typed text.
                prompt_end = await alice.wait_for(PROMPT, after=at)
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
                await client.wait_for(PROMPT)
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
                await client.wait_for(PROMPT)
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
                "--port", str(server.port), "--nick", "cmd", "--listen-port", "0"
            ) as client:
                at = await client.wait_for(PROMPT)
                client.type("/who\r")
                at = await client.wait_for("[INFO] 2 online: ", after=at)
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
            await client.wait_for(PROMPT)
            client.type("q\r")
            assert await client.wait() == 0

    run(scenario())
