"""Scripting mode against the real server in-process (127.0.0.1, port 0)."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import sys

from .harness import ClientProcess, RawPeer, free_port, run, running_server, within


def _timed(pattern: str, lines: list[str]) -> bool:
    """Whether a line is ``pattern`` with ``{}`` standing for a time HH:MM."""
    regex = re.compile(re.escape(pattern).replace(r"\{\}", r"\d\d:\d\d"))
    return any(regex.fullmatch(line) for line in lines)


def _no_traceback(client: ClientProcess) -> None:
    everything = "\n".join(client.stdout.lines + client.stderr.lines)
    assert "Traceback" not in everything


def test_scripting_mode_sends_and_receives() -> None:
    async def scenario() -> None:
        async with running_server() as server:
            carol = await RawPeer.connect(server.port)
            await carol.say("/nick carol")
            await carol.lines.wait_text("is now known as carol")
            async with await ClientProcess.start(
                "--port", str(server.port), "--nick", "alice", "--linger", "0"
            ) as alice:
                await alice.stderr.wait_text("[SUCCESS] Connected to server at")
                await alice.send("hello from a pipe")
                assert await carol.lines.wait_text("<alice>") == ["<alice> hello from a pipe"]
                await carol.say("hello back")
                await alice.stdout.wait_text("hello back")
                alice.close_stdin()
                assert await alice.wait() == 0
                # stdout holds what was received, one line each, with the local time
                # (HH:MM) it was said; our notices are on stderr.
                assert _timed("[RECEIVED] {} <carol> hello back", alice.stdout.lines)
                assert _timed("[SENT] {} hello from a pipe", alice.stderr.lines)
                assert f"[INFO] Server detected at 127.0.0.1:{server.port}" in alice.stderr.lines
                _no_traceback(alice)
            await carol.close()

    run(scenario())


def test_json_output_parses() -> None:
    async def scenario() -> None:
        async with running_server() as server:
            carol = await RawPeer.connect(server.port)
            await carol.say("/nick carol")
            await carol.lines.wait_text("is now known as carol")
            async with await ClientProcess.start(
                "--port", str(server.port), "--nick", "bot", "--json", "--linger", "0"
            ) as bot:
                await bot.stdout.wait_text('"welcome"')
                # The session secret the server gave the bot (a bearer secret):
                (session,) = [s for s in server.relay.registry if s.name == "bot"]
                assert session.resumable is not None
                secret = session.resumable.token
                await carol.say("ping the bot")
                await bot.stdout.wait_text("ping the bot")
                await bot.send("/who")
                await bot.stdout.wait_text('"roster"')
                bot.close_stdin()
                assert await bot.wait() == 0
            events = [json.loads(line) for line in bot.stdout.lines]
            assert all(isinstance(e, dict) and "type" in e for e in events)
            assert events[0]["type"] == "welcome"
            assert events[0]["nick"] == "bot"
            assert events[0]["epoch"] == server.relay.epoch  # the rest of it is there...
            assert "session" not in events[0]  # ...but not the secret, anywhere
            assert secret not in "\n".join(bot.stdout.lines + bot.stderr.lines)
            message = next(e for e in events if e["type"] == "message")
            assert (message["nick"], message["text"]) == ("carol", "ping the bot")
            assert isinstance(message["id"], int)
            assert isinstance(message["ts"], int)
            roster = next(e for e in events if e["type"] == "roster")
            assert {p["nick"] for p in roster["peers"]} == {"carol", "bot"}
            await carol.close()

    run(scenario())


def test_listen_port_binding_shows_in_who() -> None:
    async def scenario() -> None:
        listen = free_port()
        async with running_server() as server:
            async with await ClientProcess.start(
                "--port", str(server.port), "--listen-port", str(listen), "--nick", "pinned",
                "--json", "--linger", "0",
            ) as client:  # fmt: skip
                welcome = json.loads((await client.stdout.wait_text('"welcome"'))[0])
                assert welcome["addr"] == f"127.0.0.1:{listen}"
                await client.send("/who")
                roster = json.loads((await client.stdout.wait_text('"roster"'))[0])
                assert {"nick": "pinned", "addr": f"127.0.0.1:{listen}"} in roster["peers"]
                client.close_stdin()
                assert await client.wait() == 0
            assert f"[SUCCESS] Local port {listen} is free" in "\n".join(client.stderr.lines)

    run(scenario())


def test_listen_port_reusable_right_after_a_run() -> None:
    # The previous run's connection may linger in TIME_WAIT; a restart on the same
    # --listen-port must still work (SO_REUSEADDR, and the server closing first).
    async def scenario() -> None:
        listen = free_port()
        async with running_server() as server:
            for _ in range(2):
                async with await ClientProcess.start(
                    "--port", str(server.port), "--listen-port", str(listen), "--linger", "0"
                ) as client:
                    client.close_stdin()
                    assert await client.wait() == 0, client.stderr.lines

    run(scenario())


def test_taken_listen_port_fails_cleanly() -> None:
    async def scenario() -> None:
        with socket.socket() as squatter:
            squatter.bind(("127.0.0.1", 0))
            squatter.listen()
            taken = squatter.getsockname()[1]
            async with (
                running_server() as server,
                await ClientProcess.start(
                    "--port", str(server.port), "--listen-port", str(taken)
                ) as client,
            ):
                assert await client.wait() == 2
            assert client.stdout.lines == []
            assert client.stderr.lines == [
                f"[ERROR] local port {taken} is already in use: pick another --listen-port, "
                "or 0 to let the system choose"
            ]

    run(scenario())


def test_waits_for_a_server_that_starts_late() -> None:
    async def scenario() -> None:
        port = free_port()
        async with await ClientProcess.start(
            "--port", str(port), "--nick", "early", "--wait", "20", "--linger", "0"
        ) as client:
            await client.stderr.wait_text(f"[WAIT] No server at 127.0.0.1:{port} yet")
            server = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "peerchat_server", "--host", "127.0.0.1",
                "--port", str(port),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            try:
                await client.stderr.wait_text(f"[SUCCESS] Connected to server at 127.0.0.1:{port}")
                client.close_stdin()
                assert await client.wait() == 0
            finally:
                server.send_signal(signal.SIGTERM)
                await within(server.communicate())
            assert server.returncode == 0
            assert f"[INFO] Server detected at 127.0.0.1:{port}" in client.stderr.lines

    run(scenario())


def test_gives_up_when_no_server_comes() -> None:
    async def scenario() -> None:
        port = free_port()
        async with await ClientProcess.start("--port", str(port), "--wait", "0.5") as client:
            assert await client.wait() == 1
        assert client.stderr.lines[-1] == (
            f"[ERROR] No server at 127.0.0.1:{port} after 0.5 s (connection refused): check "
            "that it is running (peerchat-server, or make up / docker compose up server) "
            "and the host and port"
        )
        _no_traceback(client)

    run(scenario())


def test_server_shutdown_ends_the_client_cleanly() -> None:
    async def scenario() -> None:
        async with (
            running_server() as server,
            await ClientProcess.start("--port", str(server.port)) as client,
        ):
            await client.stderr.wait_text("[SUCCESS] Connected")
            await server.stop()  # stdin stays open: the client is mid-chat
            assert await client.wait() == 1
        assert client.stderr.lines[-1] == (
            "[ERROR] The server closed the connection: "
            "The server is shutting down. Reconnect when it is back."
        )
        _no_traceback(client)

    run(scenario())


def test_nothing_read_before_end_of_input_is_lost() -> None:
    async def scenario() -> None:
        async with running_server() as server:
            carol = await RawPeer.connect(server.port)
            await carol.say("/nick carol")
            await carol.lines.wait_text("is now known as carol")
            count = 200
            async with await ClientProcess.start(
                "--port", str(server.port), "--nick", "burst", "--linger", "0"
            ) as client:
                # Everything is written before the client has even connected.
                await client.send(*(f"line {i}" for i in range(count)))
                client.close_stdin()
                assert await client.wait() == 0
            got = await carol.lines.wait_text("<burst>", count)
            assert got == [f"<burst> line {i}" for i in range(count)]
            await carol.close()

    run(scenario())


def test_q_is_text_in_scripting_mode_and_slash_quit_ends() -> None:
    async def scenario() -> None:
        async with running_server() as server:
            carol = await RawPeer.connect(server.port)
            await carol.say("/nick carol")
            await carol.lines.wait_text("is now known as carol")
            async with await ClientProcess.start(
                "--port", str(server.port), "--nick", "dave", "--linger", "30"
            ) as client:
                await client.send("q", "//who is there", "/bogus", "/quit done here", "never sent")
                assert await client.wait() == 0
            assert await carol.lines.wait_text("<dave>", 2) == ["<dave> q", "<dave> /who is there"]
            await carol.lines.wait_text("dave left")
            assert not any("never sent" in line for line in carol.lines.lines)
            assert any(
                line.startswith("[ERROR] unknown command /bogus") for line in client.stderr.lines
            )
            await carol.close()

    run(scenario())


def test_missing_port_without_a_terminal_never_prompts() -> None:
    async def scenario() -> None:
        # 127.0.0.3 (loopback, nothing listens there): a demo on 127.0.0.1:8080 is left alone.
        async with await ClientProcess.start("--host", "127.0.0.3", "--wait", "0") as client:
            client.close_stdin()
            assert await client.wait() == 1
        assert "Enter" not in "\n".join(client.stdout.lines + client.stderr.lines)
        assert any("No server at 127.0.0.3:8080" in line for line in client.stderr.lines)

    run(scenario())


def test_environment_variables_configure_the_client() -> None:
    async def scenario() -> None:
        from .harness import client_env

        async with running_server() as server:
            env = client_env(
                PEERCHAT_HOST="127.0.0.1", PEERCHAT_PORT=str(server.port),
                PEERCHAT_NICK="envy", PEERCHAT_LINGER="0",
            )  # fmt: skip
            async with await ClientProcess.start("--json", env=env) as client:
                client.close_stdin()
                assert await client.wait() == 0
            assert json.loads(client.stdout.lines[0])["nick"] == "envy"

    run(scenario())


def test_keeps_receiving_after_end_of_input_until_the_server_closes() -> None:
    async def scenario() -> None:
        async with running_server() as server:
            carol = await RawPeer.connect(server.port)
            await carol.say("/nick carol")
            await carol.lines.wait_text("is now known as carol")
            async with await ClientProcess.start(
                "--port", str(server.port), "--nick", "late", "--linger", "30"
            ) as client:
                await client.send("last words")
                client.close_stdin()
                await carol.lines.wait_text("<late> last words")
                await carol.say("an answer after your end of input")
                await client.stdout.wait_text("an answer after your end of input")
                await client.stderr.wait_text("End of input: still receiving")
                await server.stop()  # ends the linger early: still a clean run
                assert await client.wait() == 0
            assert client.stderr.lines[-1].startswith(
                "[INFO] The server closed the connection: The server is shutting down"
            )
            await carol.close()

    run(scenario())


def test_a_taken_nickname_is_reported_and_another_assigned() -> None:
    async def scenario() -> None:
        async with running_server() as server:
            common = ("--port", str(server.port), "--nick", "twin", "--json", "--linger", "0")
            async with await ClientProcess.start(*common) as first:
                await first.stdout.wait_text('"welcome"')
                async with await ClientProcess.start(*common) as second:
                    await second.stdout.wait_text('"nick_taken"')
                    welcome = json.loads(second.stdout.lines[0])
                    assert welcome["type"] == "welcome"
                    assert welcome["nick"] != "twin"
                    second.close_stdin()
                    assert await second.wait() == 0
                assert json.loads(first.stdout.lines[0])["nick"] == "twin"
                first.close_stdin()
                assert await first.wait() == 0

    run(scenario())
