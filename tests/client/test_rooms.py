"""Rooms, private messages, /me, history and timestamps from real clients in scripting
mode (plain and --json), against the real server in-process."""

from __future__ import annotations

import json
import re
from typing import Any

from .harness import ClientProcess, client_env, run, running_server

TIME = r"\d\d:\d\d"


def _events(client: ClientProcess) -> list[dict[str, Any]]:
    return [json.loads(line) for line in client.stdout.lines]


def _matching(lines: list[str], pattern: str) -> list[str]:
    return [line for line in lines if re.fullmatch(pattern, line)]


def test_every_new_command_from_plain_and_json_clients() -> None:
    async def scenario() -> None:
        async with running_server() as server:
            common = ("--port", str(server.port), "--linger", "0")
            async with (
                await ClientProcess.start(*common, "--nick", "alice") as alice,
                await ClientProcess.start(*common, "--nick", "bob", "--json") as bob,
            ):
                await alice.stderr.wait_text("[INFO] You are alice (")
                await bob.stdout.wait_text('"welcome"')
                assert _events(bob)[0]["room"] == "lobby"

                # /join with a leading '#'; the room is created; the lobby hears she went.
                await alice.send("/join #games")
                await alice.stdout.wait_text("[INFO] You are now in #games: 1 online: alice")
                left = json.loads((await bob.stdout.wait_text('"went to #games"'))[0])
                assert (left["type"], left["nick"], left["room"]) == ("leave", "alice", "lobby")
                # Said before bob comes: he gets it as history. The /who answer shows
                # the server has handled both lines (it handles a peer's lines in order).
                await alice.send("first in games", "/me sets up the board", "/who")
                await alice.stdout.wait_text("[INFO] #games: 1 online: alice")

                await bob.send("/join games")
                entered = json.loads((await bob.stdout.wait_text('"entered"'))[0])
                assert (entered["room"], entered["online"]) == ("games", 2)
                await alice.stdout.wait_text("[INFO] bob joined #games (2 online)")
                await bob.stdout.wait_text("sets up the board")
                replayed = [e for e in _events(bob) if e.get("history")]
                assert [(e["text"], e.get("action", False)) for e in replayed] == [
                    ("first in games", False),
                    ("sets up the board", True),
                ]
                assert all(e["room"] == "games" for e in replayed)

                # /msg: private on both sides; never echoed back to the sender.
                await bob.send("/msg alice psst")
                received = await alice.stdout.wait_text("[PM from bob]")
                assert _matching(received, rf"\[RECEIVED\] {TIME} \[PM from bob\] psst")
                await bob.stderr.wait_text("[PM to alice] psst")
                assert _matching(bob.stderr.lines, rf"\[SENT\] {TIME} \[PM to alice\] psst")
                await alice.send("/msg bob back at you")
                pm = json.loads((await bob.stdout.wait_text('"back at you"'))[0])
                assert (pm["nick"], pm["to"]) == ("alice", "bob")
                await alice.stderr.wait_text("[PM to bob] back at you")
                # An unknown nick: the server's clear error.
                await bob.send("/msg nobody hello?")
                error = json.loads((await bob.stdout.wait_text('"no_such_nick"'))[0])
                assert "nobody called 'nobody' is online" in error["message"]
                await alice.send("/msg nobody hello?")
                await alice.stdout.wait_text("[ERROR] nobody called 'nobody' is online")

                # /me, both ways.
                await bob.send("/me rolls the dice")
                received = await alice.stdout.wait_text("* bob rolls the dice")
                assert _matching(received, rf"\[RECEIVED\] {TIME} \* bob rolls the dice")
                await alice.send("/me wins")
                action = json.loads((await bob.stdout.wait_text('"wins"'))[0])
                assert action["action"] is True
                assert "history" not in action  # live, not replayed
                sent = await alice.stderr.wait_text("* alice wins")
                assert _matching(sent, rf"\[SENT\] {TIME} \* alice wins")

                # /rooms and /who.
                await alice.send("/rooms")
                await alice.stdout.wait_text("[INFO] 2 rooms: #games (2 online), #lobby (0 online)")
                await bob.send("/rooms")
                rooms = json.loads((await bob.stdout.wait_text('"rooms"'))[0])
                assert rooms["rooms"] == [
                    {"name": "games", "online": 2},
                    {"name": "lobby", "online": 0},
                ]
                await alice.send("/who")
                roster = await alice.stdout.wait_text("[INFO] #games: 2 online: alice (127.0.0.1:")
                assert "bob (127.0.0.1:" in roster[0]

                # Local complaints: nothing sent, the reason and what to do on stderr.
                await alice.send("/join bad!room", "/msg", "/me")
                await alice.stderr.wait_text("[ERROR] usage: /me ACTION")
                assert any(
                    line.startswith("[ERROR] cannot use 'bad!room' as a room name:")
                    and line.endswith("for example: /join games")
                    for line in alice.stderr.lines
                )
                assert "[ERROR] usage: /msg NICK TEXT (for example: /msg bob see you at 5)" in (
                    alice.stderr.lines
                )

                # /leave: back to the lobby, whose history (empty) and head count come back.
                await bob.send("/leave")
                back = json.loads((await bob.stdout.wait_text('"room": "lobby", "online"'))[0])
                assert back["type"] == "entered"
                await alice.stdout.wait_text("[INFO] bob left #games: went to #lobby (1 online)")

                # /help: the full list, locally; /timestamps off hides the times.
                await alice.send("/help")
                await alice.stderr.wait_text("Scripting mode: every line is sent")
                help_text = "\n".join(alice.stderr.lines)
                for usage in ("/msg NICK TEXT", "/me ACTION", "/join ROOM", "/leave", "/rooms"):
                    assert f"[INFO]   {usage} " in help_text
                await alice.send("/timestamps off")
                await alice.stderr.wait_text("[INFO] Timestamps are off.")
                await bob.send("/msg alice untimed")
                await alice.stdout.wait_text("untimed")
                assert "[RECEIVED] [PM from bob] untimed" in alice.stdout.lines

                alice.close_stdin()
                bob.close_stdin()
                assert await alice.wait() == 0
                assert await bob.wait() == 0
            everything = alice.stdout.lines + alice.stderr.lines + bob.stderr.lines
            assert "Traceback" not in "\n".join(everything)

    run(scenario())


def test_history_is_marked_in_plain_output_and_timestamps_can_be_hidden() -> None:
    async def scenario() -> None:
        async with running_server() as server:
            common = ("--port", str(server.port), "--linger", "0")
            async with await ClientProcess.start(*common, "--nick", "early") as early:
                await early.send("said before you came", "/me waited")
                await early.stderr.wait_text("waited")
                # Replayed after the welcome: the lobby's last messages.
                env = client_env(PEERCHAT_TIMESTAMPS="0")
                async with await ClientProcess.start(*common, "--nick", "late", env=env) as late:
                    await late.stdout.wait_text("[HISTORY] * early waited")
                    async with await ClientProcess.start(*common, "--nick", "timed") as timed:
                        await timed.stdout.wait_text("* early waited")
                        await early.send("live now")
                        await late.stdout.wait_text("live now")
                        await timed.stdout.wait_text("live now")
                        timed.close_stdin()
                        assert await timed.wait() == 0
                    await late.stdout.wait_text("timed left")
                    late.close_stdin()
                    assert await late.wait() == 0
                early.close_stdin()
                assert await early.wait() == 0
            assert late.stdout.lines == [
                "[HISTORY] <early> said before you came",
                "[HISTORY] * early waited",
                "[INFO] timed joined #lobby (3 online)",
                "[RECEIVED] <early> live now",
                "[INFO] timed left #lobby: quit (2 online)",
            ]
            assert _matching(
                timed.stdout.lines, rf"\[HISTORY\] {TIME} <early> said before you came"
            )
            assert _matching(timed.stdout.lines, rf"\[RECEIVED\] {TIME} <early> live now")

    run(scenario())
