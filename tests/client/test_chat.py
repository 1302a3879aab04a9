"""Two real ``peerchat-client`` processes and one ``nc``-style raw socket, one server."""

from __future__ import annotations

import json

from .harness import ClientProcess, RawPeer, run, running_server


def test_two_clients_and_a_raw_peer_see_each_other_and_not_themselves() -> None:
    async def scenario() -> None:
        async with running_server() as server:
            nc = await RawPeer.connect(server.port)
            await nc.say("/nick netcat")
            await nc.lines.wait_text("is now known as netcat")
            common = ("--port", str(server.port), "--json", "--linger", "0")
            async with (
                await ClientProcess.start(*common, "--nick", "alice") as alice,
                await ClientProcess.start(*common, "--nick", "bob") as bob,
            ):
                await alice.stdout.wait_text('"welcome"')
                await bob.stdout.wait_text('"welcome"')
                await alice.stdout.wait_text('"nick": "bob"')  # bob's join reached alice
                await nc.lines.wait_text("*** bob joined")

                await alice.send("hi from alice")
                await bob.send("hi from bob")
                await nc.say("hi from netcat")

                await nc.lines.wait_text("<alice> hi from alice")
                await nc.lines.wait_text("<bob> hi from bob")
                # Each client's stream is FIFO: a sync line sent after everything
                # above arrives after any echo of a client's own message would have.
                await nc.say("sync")
                for me, others in ((alice, ("bob", "netcat")), (bob, ("alice", "netcat"))):
                    await me.stdout.wait_text('"text": "sync"')
                    messages = [
                        (e["nick"], e["text"])
                        for e in map(json.loads, me.stdout.lines)
                        if e["type"] == "message"
                    ]
                    for other in others:
                        assert (other, f"hi from {other}") in messages
                    assert not [m for m in messages if m[0] not in others], messages
                # The raw peer never got its own line back either.
                assert not any(line.startswith("<netcat>") for line in nc.lines.lines)

                alice.close_stdin()
                bob.close_stdin()
                assert await alice.wait() == 0
                assert await bob.wait() == 0
            await nc.lines.wait_text("alice left")
            await nc.lines.wait_text("bob left")
            await nc.close()

    run(scenario())
