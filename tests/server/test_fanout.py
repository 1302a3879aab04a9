"""The batched fan-out keeps every peer's stream in the order things happened."""

from __future__ import annotations

from peerchat_protocol import Entered, Joined, JoinRoom, Message, Renamed, Roster, Say, Who
from peerchat_server.frames import Frames

from .peers import PlainPeer, RichPeer, running_server


async def test_a_room_message_then_a_private_one_arrive_in_that_order() -> None:
    async with running_server() as server:
        alice = await PlainPeer.connect(server.port)
        bob = await RichPeer.connect(server.port, "bob")
        await alice.send("to everyone\n/msg bob to bob alone\nto everyone again\n")
        assert (await bob.expect(Joined)).nick == alice.addr  # at its first line
        got = [await bob.expect(Message) for _ in range(3)]
        assert [(m.text, m.to) for m in got] == [
            ("to everyone", None),
            ("to bob alone", "bob"),
            ("to everyone again", None),
        ]


async def test_a_reply_never_overtakes_what_was_said_before_it() -> None:
    async with running_server() as server:
        alice = await RichPeer.connect(server.port, "alice")
        bob = await PlainPeer.connect(server.port)
        await bob.say("/nick bob")
        assert await bob.expect("now known") == f"*** {bob.addr} is now known as bob"
        assert (await alice.expect(Joined)).nick == bob.addr
        assert (await alice.expect(Renamed)).new == "bob"
        await alice.send(Say("first"))
        assert await bob.expect("<alice>") == "<alice> first"
        await bob.send("after\n/who\n")
        assert await bob.expect("online:") == "*** 2 online:"
        assert (await alice.expect(Message)).text == "after"


async def test_someone_joining_in_the_same_pass_gets_a_message_once() -> None:
    async with running_server() as server:
        talker = await RichPeer.connect(server.port, "talker")
        joiner = await RichPeer.connect(server.port, "joiner")
        await joiner.send(JoinRoom("side"))
        await joiner.expect(Entered)
        await joiner.send(Who())
        sessions = {s.name: s for s in server.relay.registry}
        # Within one loop pass: a line is said in the lobby, then joiner moves there.
        server.relay.say(sessions["talker"], Say("said just before you came"))
        server.relay.move(sessions["joiner"], "lobby")
        sessions["joiner"].send(server.relay.entered(sessions["joiner"].room))
        for message in server.relay.history(sessions["joiner"].room):
            sessions["joiner"].deliver(Frames(message))
        # The answer to its /who may come before or after the move made here directly.
        await joiner.expect(Entered, lambda e: e.room == "lobby", skip=Roster)
        replay = await joiner.expect(Message, skip=Roster)
        assert (replay.text, replay.history) == ("said just before you came", True)
        await talker.send(Say("live"))
        following = await joiner.expect(Message, skip=Roster)
        assert (following.text, following.history) == ("live", False)  # no live duplicate


async def test_crowded_rooms_announce_no_joins() -> None:
    async with running_server(join_notices_up_to=2) as server:
        first = await RichPeer.connect(server.port, "first")
        second = await RichPeer.connect(server.port, "second")
        assert (await first.expect(Joined)).nick == "second"
        third = await RichPeer.connect(server.port, "third")  # now 3 > 2 members
        assert (second.nick, third.nick) == ("second", "third")
        await first.send(Who())
        after = await first.event()
        assert after is not None
        assert after.TYPE == "roster"  # no join notice came before the answer
