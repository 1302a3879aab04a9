"""Rooms, private messages, /me, history and timestamps, from rich and plain peers."""

from __future__ import annotations

import re

from peerchat_protocol import (
    Entered,
    Error,
    ErrorCode,
    Info,
    Joined,
    JoinRoom,
    LeaveRoom,
    Left,
    ListRooms,
    Message,
    Renamed,
    Rooms,
    Roster,
    Say,
    Who,
)

from .peers import (
    JOINS,
    MEMBERSHIP,
    PlainPeer,
    RichPeer,
    console_of,
    membership_line,
    running_server,
)


async def test_rooms_keep_their_messages_apart() -> None:
    async with running_server() as server:
        lobby_rich = await RichPeer.connect(server.port, "stay")
        lobby_plain = await PlainPeer.connect(server.port)
        gamer = await RichPeer.connect(server.port, "gamer")
        nc = await PlainPeer.connect(server.port)
        await nc.say("/nick ncgamer")
        await gamer.send(JoinRoom("games"))
        entered = await gamer.expect(Entered, skip=MEMBERSHIP)
        assert (entered.room, entered.online) == ("games", 1)
        assert (
            await lobby_plain.expect("went to", skip=membership_line)
            == "*** gamer left: went to #games (3 online)"
        )
        await nc.say("/join #games")
        assert (
            await nc.expect("You are now in", skip=membership_line)
        ) == "*** You are now in #games: 2 online:"
        rows = {await nc.line(), await nc.line()}
        assert rows == {f"***   gamer ({gamer.welcome.addr})", f"***   ncgamer ({nc.addr})"}  # type: ignore[union-attr]
        joined = await gamer.expect(Joined)
        assert (joined.nick, joined.room, joined.online) == ("ncgamer", "games", 2)

        await gamer.send(Say("in games"))
        await lobby_rich.send(Say("in lobby"))
        assert await nc.expect("<") == "<gamer> in games"
        got = await lobby_plain.expect("<", skip=membership_line)
        assert got == "<stay> in lobby"  # not the games line, which came first
        await nc.say("from nc in games")
        message = await gamer.expect(Message)
        assert (message.text, message.room) == ("from nc in games", "games")
        await lobby_plain.say("lobby again")
        lobby_message = await lobby_rich.expect(Message, skip=MEMBERSHIP)
        assert lobby_message.text == "lobby again"  # no games message reached the lobby

        await gamer.send(Who())
        roster = await gamer.expect(Roster)
        assert roster.room == "games"
        assert {p.nick for p in roster.peers} == {"gamer", "ncgamer"}
        await lobby_plain.say("/rooms")
        assert await lobby_plain.expect("rooms:", skip=membership_line) == "*** 2 rooms:"
        assert {await lobby_plain.line(), await lobby_plain.line()} == {
            "***   #lobby (2 online)",
            "***   #games (2 online)",
        }


async def test_leave_goes_back_to_the_lobby_and_empty_rooms_vanish() -> None:
    async with running_server() as server:
        alice = await RichPeer.connect(server.port, "alice")
        watcher = await PlainPeer.connect(server.port)
        await alice.send(JoinRoom("quiet"))
        await alice.expect(Entered)
        await alice.send(LeaveRoom())
        entered = await alice.expect(Entered)
        assert entered.room == "lobby"
        assert await watcher.expect("left") == "*** alice left: went to #quiet (1 online)"
        assert await watcher.expect("joined") == "*** alice joined (2 online)"
        await alice.send(ListRooms())
        rooms = await alice.expect(Rooms)
        assert [(r.name, r.online) for r in rooms.rooms] == [("lobby", 2)]
        await alice.send(LeaveRoom())
        assert "the room everyone starts in" in (await alice.expect(Info)).text
        await alice.send(JoinRoom("LOBBY"))
        assert "already in #lobby" in (await alice.expect(Info)).text


async def test_private_messages_reach_only_their_target() -> None:
    async with running_server() as server:
        alice = await RichPeer.connect(server.port, "alice")
        bob = await RichPeer.connect(server.port, "bob")
        nc = await PlainPeer.connect(server.port)
        await nc.say("/nick carol")
        assert (await alice.expect(Joined)).nick == "bob"
        await nc.say("/msg BOB psst, bob")
        private = await bob.expect(Message, skip=MEMBERSHIP)
        assert (private.nick, private.text, private.to) == ("carol", "psst, bob", "bob")
        await bob.send(Say("hi carol", to="carol"))
        assert await nc.expect("PM", skip=membership_line) == "[PM from bob] hi carol"
        await nc.say("/msg nobody hello?")
        assert "nobody called 'nobody' is online" in await nc.expect("!")
        await alice.send(Say("to myself", to="alice"))
        assert (await alice.expect(Error, skip=MEMBERSHIP)).code == ErrorCode.BAD_COMMAND
        await bob.send(Say("public now"))
        assert (await alice.expect(Message)).text == "public now"  # alice saw no PM
        assert await nc.expect("<") == "<bob> public now"
        log = "\n".join(console_of(server).lines)
        assert "[PRIVATE] From carol" in log
        assert "psst" not in log  # private text stays out of the log


async def test_private_messages_cross_rooms() -> None:
    async with running_server() as server:
        alice = await RichPeer.connect(server.port, "alice")
        bob = await RichPeer.connect(server.port, "bob")
        await bob.send(JoinRoom("elsewhere"))
        await bob.expect(Entered)
        await alice.send(Say("found you", to="bob"))
        assert (await bob.expect(Message)).to == "bob"


async def test_me_is_an_action() -> None:
    async with running_server() as server:
        nc = await PlainPeer.connect(server.port)
        await nc.say("/nick dan")
        rich = await RichPeer.connect(server.port, "erin")
        await nc.say("/me waves")
        action = await rich.expect(Message)
        assert (action.nick, action.text, action.action) == ("dan", "waves", True)
        await rich.send(Say("bows", action=True))
        assert await nc.expect("bows", skip=membership_line) == "* erin bows"
        await console_of(server).wait_for("[RECEIVED] From erin (")


async def test_late_joiner_gets_exactly_the_last_20_messages_in_order() -> None:
    async with running_server() as server:
        talker = await PlainPeer.connect(server.port)
        await talker.say("/nick talker")
        for i in range(25):
            await talker.say(f"message {i}")
        await talker.say("/who")  # answered after every message above was relayed
        await talker.expect("online:", skip=membership_line)
        late = await RichPeer.connect(server.port, "late")
        history = [await late.expect(Message) for _ in range(20)]
        assert [m.text for m in history] == [f"message {i}" for i in range(5, 25)]
        assert all(m.history and m.nick == "talker" and m.room == "lobby" for m in history)
        assert [m.id for m in history] == sorted(m.id for m in history)
        await talker.say("live")
        live = await late.expect(Message)
        assert (live.text, live.history) == ("live", False)

        plain = await PlainPeer.connect(server.port, banner=False)
        lines = [await plain.line() for _ in range(2 + 1 + 20 + 1)]
        assert lines[2] == "*** Last 20 messages in #lobby:"
        assert lines[3:23] == [f"<talker> message {i}" for i in range(6, 25)] + ["<talker> live"]
        assert lines[23] == "*** End of history."


async def test_history_is_per_room_and_bounded_in_bytes() -> None:
    async with running_server(history_bytes=300) as server:
        talker = await RichPeer.connect(server.port, "talker")
        await talker.send(JoinRoom("books"))
        await talker.expect(Entered)
        for i in range(10):
            await talker.send(Say(f"{i}" * 100))
        await talker.send(Who())
        await talker.expect(Roster)
        reader = await RichPeer.connect(server.port, "reader")
        await reader.send(JoinRoom("books"))
        await reader.expect(Entered)
        kept = [await reader.expect(Message) for _ in range(2)]
        assert [m.text for m in kept] == [
            "8" * 100,
            "9" * 100,
        ]  # 300 bytes hold two (149 each in memory)
        assert all(m.history for m in kept)
        await reader.send(LeaveRoom())
        await reader.expect(Entered)
        await reader.send(Who())
        # The lobby had nothing to replay: the next event is the roster answer.
        assert isinstance(await reader.event(), Roster)


async def test_timestamps_for_plain_peers() -> None:
    async with running_server() as server:
        nc = await PlainPeer.connect(server.port)
        rich = await RichPeer.connect(server.port, "ts")
        await nc.say("/timestamps on")
        assert await nc.expect("Timestamps", skip=JOINS) == "*** Timestamps (UTC) are on."
        await rich.send(Say("what time is it"))
        stamped = await nc.expect("what time")
        assert re.fullmatch(r"\[\d\d:\d\d\] <ts> what time is it", stamped), stamped
        await nc.say("/timestamps off")
        await nc.expect("Timestamps are off")
        await rich.send(Say("no stamp"))
        assert await nc.expect("no stamp") == "<ts> no stamp"


async def test_version_1_clients_still_work() -> None:
    async with running_server() as server:
        talker = await RichPeer.connect(server.port, "talker")
        await talker.send(Say("said before"))
        await talker.send(Who())
        await talker.expect(Roster)
        old = await RichPeer.connect(server.port, "old", version=1)
        assert old.welcome is not None
        assert old.welcome.version == 1
        assert old.welcome.room is None  # a version 2 member, not sent to version 1
        await talker.send(Say("psst", to="old"))
        private = await old.expect(Message)  # history was not replayed to it
        assert (private.text, private.to) == ("(private) psst", None)
        await talker.send(Say("waves", action=True))
        assert (await old.expect(Message)).text == "* talker waves"
        old.writer.write(b'{"type":"join_room","room":"games"}\n')
        assert (await old.expect(Error)).code == ErrorCode.UNKNOWN_TYPE


async def test_nick_changes_are_heard_in_the_room_only() -> None:
    # One peer renaming must not cost every peer on the server a line (SECURITY.md).
    async with running_server() as server:
        alice = await RichPeer.connect(server.port, "alice")
        bob = await RichPeer.connect(server.port, "bob")
        await bob.send(JoinRoom("other"))
        await bob.expect(Entered)
        assert (await alice.expect(Joined)).nick == "bob"
        assert (await alice.expect(Left)).reason == "went to #other"
        nc = await PlainPeer.connect(server.port)
        await nc.say("/nick carol")
        assert (await alice.expect(Renamed, skip=Joined)).new == "carol"
        await bob.expect_none()
