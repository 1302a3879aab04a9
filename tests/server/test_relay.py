"""The relay in-process: real sockets on 127.0.0.1, plain peers as nc, rich peers as JSON."""

from __future__ import annotations

import asyncio
import socket

from peerchat_protocol import (
    DEFAULT_ROOM,
    MAX_VERSION,
    Bye,
    ChangeNick,
    Error,
    ErrorCode,
    Hello,
    Help,
    Info,
    Joined,
    Left,
    Message,
    Quit,
    Renamed,
    Roster,
    Say,
    Welcome,
    Who,
)

from .peers import JOINS, PlainPeer, RichPeer, console_of, raw_reader, running_server


async def test_three_plain_peers_broadcast_without_echo() -> None:
    async with running_server() as server:
        a, b, c = [await PlainPeer.connect(server.port) for _ in range(3)]
        await a.say("from a")
        assert await b.expect("<", skip=JOINS) == f"<{a.addr}> from a"
        assert await c.expect("<", skip=JOINS) == f"<{a.addr}> from a"
        await b.say("from b")
        # a's next chat line is b's: its own never came back.
        assert await a.expect("<", skip=JOINS) == f"<{b.addr}> from b"
        assert await c.expect("<", skip=JOINS) == f"<{b.addr}> from b"
        await c.say("from c")
        assert await a.expect("<", skip=JOINS) == f"<{c.addr}> from c"
        assert await b.expect("<", skip=JOINS) == f"<{c.addr}> from c"
        await a.say("last")
        assert await b.expect("<", skip=JOINS) == f"<{a.addr}> last"
        assert await c.expect("<", skip=JOINS) == f"<{a.addr}> last"
        for peer in (a, b, c):
            await peer.close()


async def test_rich_and_plain_peers_share_one_room() -> None:
    async with running_server() as server:
        plain = await PlainPeer.connect(server.port)
        alice = await RichPeer.connect(server.port, "alice")
        bob = await RichPeer.connect(server.port, "bob")
        await plain.say("hi from nc")
        for rich in (alice, bob):
            got = await rich.expect(Message, skip=Joined)
            assert (got.nick, got.text) == (plain.addr, "hi from nc")
            assert got.ts > 1_600_000_000_000
        await alice.send(Say("hi from alice"))
        assert await plain.expect("<alice>", skip=JOINS) == "<alice> hi from alice"
        got = await bob.expect(Message, skip=Joined)
        assert (got.nick, got.text) == ("alice", "hi from alice")
        await bob.send(Say("and bob"))
        mine = await alice.expect(Message, skip=Joined)
        assert mine.nick == "bob"  # alice's own message never came back
        assert mine.id > got.id


async def test_2000_messages_arrive_complete_and_in_order() -> None:
    async with running_server(quiet=True) as server:
        sender = await PlainPeer.connect(server.port)
        plain = await PlainPeer.connect(server.port)
        rich = await RichPeer.connect(server.port, "reader")
        burst = "".join(f"message {i:04d} " + "x" * 80 + "\n" for i in range(2000))
        await sender.send(burst)
        for i in range(2000):
            assert (
                await plain.expect("<", skip=JOINS)
                == f"<{sender.addr}> message {i:04d} " + "x" * 80
            )
        for i in range(2000):
            got = await rich.expect(Message, skip=Joined)
            assert got.text == f"message {i:04d} " + "x" * 80


async def test_unicode_crlf_split_segments_and_two_lines_per_segment() -> None:
    async with running_server() as server:
        sender = await PlainPeer.connect(server.port)
        reader = await RichPeer.connect(server.port, "reader")
        await sender.send("héllo wörld 🙂 中文\r\n")
        assert (await reader.expect(Message, skip=Joined)).text == "héllo wörld 🙂 中文"
        data = "split across segments 🙂\n".encode()
        for i in range(len(data)):  # one byte per segment, cutting the emoji apart
            await sender.send(data[i : i + 1])
        assert (await reader.expect(Message)).text == "split across segments 🙂"
        await sender.send("first\nsecond\r\n")
        assert (await reader.expect(Message)).text == "first"
        assert (await reader.expect(Message)).text == "second"


async def test_oversize_line_gets_an_error_and_the_peer_carries_on() -> None:
    async with running_server(max_line_bytes=1024) as server:
        sender = await PlainPeer.connect(server.port)
        other = await PlainPeer.connect(server.port)
        await sender.send("z" * 5000 + "\nfine after\n")
        error = await sender.expect("!", skip=JOINS)
        assert "line too long" in error
        assert "1024" in error
        assert await other.expect("<", skip=JOINS) == f"<{sender.addr}> fine after"
        await console_of(server).wait_for("line_too_long")


async def test_line_of_exactly_the_limit_is_relayed() -> None:
    async with running_server(max_line_bytes=1024) as server:
        sender = await PlainPeer.connect(server.port)
        reader = await RichPeer.connect(server.port)
        await sender.send("k" * 1024 + "\r\n")
        assert (await reader.expect(Message, skip=Joined)).text == "k" * 1024


async def test_invalid_utf8_and_binary_junk_get_errors_not_relayed() -> None:
    async with running_server() as server:
        sender = await PlainPeer.connect(server.port)
        other = await PlainPeer.connect(server.port)
        await sender.send(b"caf\xe9\n\x00\xff\xfe\x01\x02\n")
        assert "invalid UTF-8" in await sender.expect("!", skip=JOINS)
        assert "invalid UTF-8" in await sender.expect("!", skip=JOINS)
        await sender.say("ok now")
        assert await other.expect("<", skip=JOINS) == f"<{sender.addr}> ok now"


async def test_escape_sequences_never_reach_another_screen_or_the_log() -> None:
    async with running_server() as server:
        sender = await PlainPeer.connect(server.port)
        other = await PlainPeer.connect(server.port)
        rich = await RichPeer.connect(server.port)
        await sender.send(b"\x1b]0;owned\x07\x1b[2Jcolour \x1b[31mred\x1b[0m\x07\n")
        assert await other.expect("<", skip=JOINS) == f"<{sender.addr}> colour red"
        assert (await rich.expect(Message, skip=Joined)).text == "colour red"
        logged = await console_of(server).wait_for("[RECEIVED]")
        assert logged == [f"[RECEIVED] From {sender.addr}: colour red"]
        # Bidirectional overrides and invisible characters go too.
        await sender.send("txt.\u202eexe\u202c zero\u200bwidth\ufeff\n".encode())
        assert await other.expect("<") == f"<{sender.addr}> txt.exe zerowidth"
        assert (await rich.expect(Message)).text == "txt.exe zerowidth"
        logged = await console_of(server).wait_for("[RECEIVED]", count=2)
        assert logged[1] == f"[RECEIVED] From {sender.addr}: txt.exe zerowidth"


async def test_too_many_bad_lines_disconnect_that_peer_only() -> None:
    async with running_server(max_errors=3) as server:
        junk = await PlainPeer.connect(server.port)
        other = await PlainPeer.connect(server.port)
        await junk.send(b"\xff\n" * 10)
        lines = await junk.eof()
        assert sum(line.startswith("! invalid UTF-8") for line in lines) == 4
        assert "disconnected after 4 bad lines" in lines[-1]
        await other.say("still here")
        await console_of(server).wait_for("too many bad lines")
        await junk.close()
        await console_of(server).wait_for(f"[DISCONNECTED] {junk.addr}")
        assert len(server.relay.registry) == 1


async def test_listen_only_peer_receives_and_is_announced() -> None:
    async with running_server(announce_delay=0.05) as server:
        talker = await PlainPeer.connect(server.port)
        listener = await PlainPeer.connect(server.port)
        assert await talker.expect("joined") == f"*** {listener.addr} joined (2 online)"
        await talker.say("anyone there?")
        assert await listener.expect("<", skip=JOINS) == f"<{talker.addr}> anyone there?"


async def test_silent_peer_is_served_at_once_not_after_the_announce_delay() -> None:
    # With a long announce delay, a listen-only peer still gets messages immediately.
    async with running_server(announce_delay=30) as server:
        listener = await PlainPeer.connect(server.port)
        talker = await PlainPeer.connect(server.port)
        await talker.say("instant")
        assert await listener.expect("<", skip=JOINS) == f"<{talker.addr}> instant"


async def test_rich_peer_whose_hello_was_in_flight_gets_what_it_missed() -> None:
    async with running_server() as server:
        talker = await PlainPeer.connect(server.port)
        late = await PlainPeer.connect(server.port)  # raw socket: no hello yet
        await talker.say("before your hello")
        assert await late.expect("<", skip=JOINS) == f"<{talker.addr}> before your hello"
        rich = RichPeer(late.reader, late.writer)
        await rich.send(Hello(nick="late"))
        # Everything it was sent as plain text comes again as JSON, in order, after the
        # welcome; the plain-text lines before the welcome are skipped by the client.
        assert isinstance(await rich.event(), Welcome)
        assert await rich.event() == Joined(talker.addr, 2, room=DEFAULT_ROOM)
        replayed = await rich.event()
        assert isinstance(replayed, Message)
        assert replayed.text == "before your hello"
        await talker.say("after")
        assert (await rich.expect(Message)).text == "after"
        await rich.expect_none()


async def test_welcome_lists_who_is_online() -> None:
    async with running_server(announce_delay=0) as server:
        plain = await PlainPeer.connect(server.port)  # (announced at once)
        alice = await RichPeer.connect(server.port, "alice")
        assert alice.welcome is not None
        assert alice.welcome.online == 2
        listed = {(p.nick, p.addr) for p in alice.welcome.peers}
        assert (plain.addr, plain.addr) in listed
        assert ("alice", alice.welcome.addr) in listed
        assert alice.welcome.max_line == server.config.max_line_bytes


async def test_joins_leaves_and_renames_are_announced() -> None:
    async with running_server() as server:
        watcher = await RichPeer.connect(server.port, "watcher")
        nc = await PlainPeer.connect(server.port)
        await nc.say("/nick bob")
        assert (await watcher.expect(Joined)).nick == nc.addr
        renamed = await watcher.expect(Renamed)
        assert (renamed.old, renamed.new) == (nc.addr, "bob")
        assert await nc.expect("now known") == f"*** {nc.addr} is now known as bob"
        alice = await RichPeer.connect(server.port, "alice")
        joined = await watcher.expect(Joined)
        assert (joined.nick, joined.online) == ("alice", 3)
        assert await nc.expect("joined") == "*** alice joined (3 online)"
        await alice.send(Quit("lunch"))
        bye = await alice.expect(Bye)
        assert "Goodbye" in bye.reason
        assert await alice.event() is None
        left = await watcher.expect(Left)
        assert (left.nick, left.online, left.reason) == ("alice", 2, "quit: lunch")
        assert await nc.expect("left") == "*** alice left: quit: lunch (2 online)"


async def test_nicknames_are_unique_case_insensitively() -> None:
    async with running_server() as server:
        alice = await RichPeer.connect(server.port, "alice")
        nc = await PlainPeer.connect(server.port)
        await nc.say("/nick ALICE")
        assert "is taken" in await nc.expect("!")
        await nc.say("/nick bad name")
        assert "/nick NAME" in await nc.expect("!")
        second = await RichPeer.connect(server.port, "Alice")
        assert second.nick == "Alice_2"
        error = await second.expect(Error)
        assert error.code == ErrorCode.NICK_TAKEN
        assert "Alice_2" in error.message
        await second.send(ChangeNick("alice"))
        assert (await second.expect(Error)).code == ErrorCode.NICK_TAKEN
        await alice.send(ChangeNick("Alice"))  # changing only the case of your own nick is fine
        renamed = await second.expect(Renamed)
        assert (renamed.old, renamed.new) == ("alice", "Alice")


async def test_who_help_and_quit_for_plain_peers() -> None:
    async with running_server() as server:
        alice = await RichPeer.connect(server.port, "alice")
        nc = await PlainPeer.connect(server.port)
        await nc.say("/who")
        assert await nc.expect("online:") == "*** 2 online:"
        rows = {await nc.line(), await nc.line()}
        assert rows == {f"***   alice ({alice.welcome.addr})", f"***   {nc.addr}"}  # type: ignore[union-attr]
        await nc.say("/help")
        await nc.expect("*** Commands:")
        await nc.say("/quit gotta go")
        lines = await nc.eof()
        assert lines[-1] == "*** You left the chat. Goodbye!"
        assert (await alice.expect(Joined)).nick == nc.addr  # at its first line, /who
        left = await alice.expect(Left)
        assert left.reason == "quit: gotta go"


async def test_who_help_and_errors_for_rich_peers() -> None:
    async with running_server() as server:
        alice = await RichPeer.connect(server.port, "alice")
        await alice.send(Who())
        roster = await alice.expect(Roster)
        assert roster.online == 1
        assert roster.peers[0].nick == "alice"
        await alice.send(Help())
        assert "/nick" in (await alice.expect(Info)).text
        alice.writer.write(b'{"type":"say"}\nnot json\n')
        assert (await alice.expect(Error)).code == ErrorCode.BAD_FRAME
        assert (await alice.expect(Error)).code == ErrorCode.BAD_JSON


async def test_unsupported_version_gets_a_clear_error_and_close() -> None:
    async with running_server() as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b'{"type":"hello","version":0}\n')
        data = await asyncio.wait_for(reader.read(), 10)
        lines = [line for line in data.decode().splitlines() if line.startswith("{")]
        assert '"code":"unsupported_version"' in lines[0]
        assert "upgrade your client" in lines[0]
        assert '"type":"bye"' in lines[1]
        writer.close()


async def test_newer_client_is_welcomed_with_the_version_we_speak() -> None:
    async with running_server() as server:
        peer = await RichPeer.connect(server.port, "future", version=99)
        assert peer.welcome is not None
        assert peer.welcome.version == MAX_VERSION


async def test_reset_mid_line_is_logged_and_relays_nothing() -> None:
    async with running_server() as server:
        watcher = await RichPeer.connect(server.port, "watcher")
        victim = await PlainPeer.connect(server.port)
        await victim.say("/nick victim")
        assert (await watcher.expect(Joined)).nick == victim.addr
        assert (await watcher.expect(Renamed)).new == "victim"
        await victim.send("half a li")
        victim.reset()
        await console_of(server).wait_for("[CONNECTION RESET] Peer victim")
        await console_of(server).wait_for("[DISCONNECTED] victim")
        # The very next event is the leave: the half line was never relayed...
        left = await watcher.expect(Left)
        assert (left.nick, left.reason, left.online) == ("victim", "connection reset", 1)
        await watcher.expect_none()  # ...nor after it.
        assert "half a li" not in "\n".join(console_of(server).lines)
        assert len(server.relay.registry) == 1
        assert console_of(server).lines[-1] == "[ACTIVE CONNECTIONS] 1"


async def test_end_of_stream_relays_the_last_unterminated_line() -> None:
    async with running_server() as server:
        watcher = await RichPeer.connect(server.port, "watcher")
        nc = await PlainPeer.connect(server.port)
        await nc.send("no newline at the end")
        nc.writer.write_eof()
        assert (await watcher.expect(Joined)).nick == nc.addr
        assert (await watcher.expect(Message)).text == "no newline at the end"
        left = await watcher.expect(Left)
        assert left.reason is None
        await console_of(server).wait_for(f"[DISCONNECTED] {nc.addr} removed from peers list.")


async def test_peer_that_never_reads_is_dropped_and_others_get_everything() -> None:
    async with running_server(max_send_buffer=256 * 1024, quiet=True, announce_delay=0) as server:
        stalled = await raw_reader(server.port, 4096)
        healthy = await RichPeer.connect(server.port, "healthy")
        sender = await PlainPeer.connect(server.port)
        # 12 MB in rounds of 100 lines: past every kernel buffer on the way to the
        # stalled peer, while the healthy one reads each round before the next.
        line = "p" * 1000
        chunk = "".join(f"{line}\n" for _ in range(100))
        left: list[Left] = []
        for _ in range(120):
            await sender.send(chunk)
            received = 0
            for _ in range(200):  # 100 messages, and maybe join and leave notices
                event = await healthy.event()
                if isinstance(event, Left):
                    left.append(event)
                    continue
                if isinstance(event, Joined):
                    continue
                assert isinstance(event, Message)
                assert event.text == line
                received += 1
                if received == 100:
                    break
            assert received == 100
        await console_of(server).wait_for("stopped reading")
        assert [event.reason for event in left] == ["dropped: not reading its messages"]
        assert len(server.relay.registry) == 2
        stalled.close()


async def test_keepalive_is_on_for_every_peer() -> None:
    async with running_server() as server:
        await PlainPeer.connect(server.port)
        for session in server.relay.registry:
            assert session.transport is not None
            sock = session.transport.get_extra_info("socket")
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1


async def test_active_connection_count_stays_true() -> None:
    async with running_server() as server:
        console = console_of(server)
        peers = [await PlainPeer.connect(server.port) for _ in range(5)]
        await console.wait_for("[ACTIVE CONNECTIONS] 5")
        peers[0].reset()
        await peers[1].close()
        await peers[2].say("/quit")
        await console.wait_for("[DISCONNECTED]", count=3)
        assert len(server.relay.registry) == 2
        assert console.lines[-1] == "[ACTIVE CONNECTIONS] 2"


async def test_shutdown_says_goodbye_to_everyone() -> None:
    async with running_server() as server:
        port = server.port
        nc = await PlainPeer.connect(port)
        rich = await RichPeer.connect(port, "rich")
        await server.stop()
        assert (await nc.eof())[-1] == "! The server is shutting down. Reconnect when it is back."
        bye = await rich.expect(Bye)
        assert bye.code == "shutdown"
        assert await rich.event() is None
        # New connections are refused once the server has stopped.
        try:
            await PlainPeer.connect(port)
        except OSError:
            pass
        else:
            raise AssertionError("server still accepting")


async def test_the_goodbye_reaches_a_peer_that_is_still_sending() -> None:
    # docs/fault-tolerance.md: the goodbye is a lingering close, so it is not lost to the
    # reset a plain close with unread input would cause.
    async with running_server(quiet=True) as server:
        alice = await RichPeer.connect(server.port, "alice")
        server.relay.stop_reading()  # as a stopping server does: what comes stays unread
        burst = b"".join(alice.conn.send(Say(f"still typing {n}")) for n in range(2000))
        alice.writer.write(burst)
        await alice.writer.drain()  # ~50 KB now wait, unread, at the server
        await server.stop()
        bye = await alice.expect(Bye)  # a reset instead would fail here
        assert bye.code == "shutdown"
        await alice.close()


async def test_a_hello_in_flight_gets_at_most_256_events_again_and_is_told_of_the_rest() -> None:
    # PROTOCOL.md: what was sent before the hello comes again "up to 256 of them; if
    # more were sent, an info says how many".
    async with running_server(quiet=True) as server:
        talker = await PlainPeer.connect(server.port)
        late = await PlainPeer.connect(server.port)  # raw socket: no hello yet
        await talker.send("".join(f"early {n}\n" for n in range(256)))
        assert await late.expect("joined") == f"*** {talker.addr} joined (2 online)"
        for n in range(256):
            assert await late.line() == f"<{talker.addr}> early {n}"
        rich = RichPeer(late.reader, late.writer)
        await rich.send(Hello(nick="late"))
        await rich.expect(Welcome)
        assert (await rich.expect(Joined)).nick == talker.addr  # 1 of the 257 sent
        replayed = [(await rich.expect(Message)).text for _ in range(255)]
        assert replayed == [f"early {n}" for n in range(255)]
        info = await rich.expect(Info)
        assert info.text == "1 messages sent before your hello could not be repeated."
