"""The client gives the server's password in its hello; without it, a clear error."""

from __future__ import annotations

from .harness import ClientProcess, RawPeer, run, running_server

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
