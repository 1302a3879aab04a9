"""The client gives the server's password in its hello; without it, a clear error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .harness import ClientProcess, RawPeer, run, running_server
from .pty_client import PtyClient

SECRET = "open sesame"


def test_the_password_option_gets_the_client_in() -> None:
    async def scenario() -> None:
        async with running_server(password=SECRET) as server:
            carol = await RawPeer.connect(server.port)
            await carol.say(f"/pass {SECRET}")
            await carol.lines.wait_text("Password accepted")
            async with await ClientProcess.start(
                "--port", str(server.port), "--nick", "alice", "--password", SECRET,
                "--linger", "0",
            ) as alice:  # fmt: skip
                await alice.send("let me in")
                assert await carol.lines.wait_text("<alice>") == ["<alice> let me in"]
                alice.close_stdin()
                assert await alice.wait() == 0
            await carol.close()

    run(scenario())


def test_a_wrong_password_is_one_clear_error_and_status_1() -> None:
    async def scenario() -> None:
        async with running_server(password=SECRET) as server:
            async with await ClientProcess.start(
                "--port", str(server.port), "--nick", "mallory", "--password", "guess",
            ) as mallory:  # fmt: skip
                assert await mallory.wait() == 1
            errors = [line for line in mallory.stderr.lines if line.startswith("[ERROR]")]
            assert len(errors) == 1
            assert "wrong password" in errors[0]
            assert "guess" not in "\n".join(mallory.stderr.lines + mallory.stdout.lines)

    run(scenario())


def test_the_password_file_gets_the_client_in_and_a_missing_one_is_one_line(
    tmp_path: Path,
) -> None:
    secret = tmp_path / "secret"
    secret.write_text(SECRET + "\n")

    async def scenario() -> None:
        async with running_server(password=SECRET) as server:
            carol = await RawPeer.connect(server.port)
            await carol.say(f"/pass {SECRET}")
            await carol.lines.wait_text("Password accepted")
            async with await ClientProcess.start(
                "--port", str(server.port), "--nick", "filed", "--password-file",
                str(secret), "--linger", "0",
            ) as filed:  # fmt: skip
                await filed.send("from a file")
                assert await carol.lines.wait_text("<filed>") == ["<filed> from a file"]
                filed.close_stdin()
                assert await filed.wait() == 0
            await carol.close()

    run(scenario())
    missing = subprocess.run(
        [sys.executable, "-m", "peerchat_client", "--password-file", str(tmp_path / "none")],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert missing.returncode == 2
    assert "cannot read the password file" in missing.stderr


def test_dash_v_prints_the_version() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "peerchat_client", "-V"], capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0
    assert shown.stdout.startswith("peerchat-client, version ")


def test_at_a_terminal_the_password_is_asked_for_and_not_shown() -> None:
    async def scenario() -> None:
        async with running_server(password=SECRET, auth_failures=0) as server:
            carol = await RawPeer.connect(server.port)
            await carol.say(f"/pass {SECRET}")
            await carol.lines.wait_text("Password accepted")
            async with await PtyClient.start(
                "--port", str(server.port), "--nick", "asked", "--listen-port", "0",
            ) as asked:  # fmt: skip
                at = await asked.wait_for("Password (the server needs one; it is not shown): ")
                asked.type(SECRET + "\r")
                await asked.wait_for("[SUCCESS] Connected to server", after=at)
                assert SECRET not in asked.text
                asked.type("q\r")
                assert await asked.wait() == 0
            await carol.close()

    run(scenario())
