"""The IRC peer kind: IRC clients in the same rooms as nc, JSON and WebSocket peers.

Two kinds of IRC client: pydle (an IRC client library from PyPI, which nobody here
wrote) for what a real client does, and raw lines for the numerics, each asserted.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pydle

from peerchat_protocol import Joined, Left, Message, Renamed, Say
from peerchat_server.server import ChatServer

from .peers import (
    JOINS,
    MEMBERSHIP,
    WAIT,
    PlainPeer,
    RichPeer,
    WsPeer,
    console_of,
    running_server,
)

ROOT = Path(__file__).resolve().parents[2]


@asynccontextmanager
async def irc_server(**overrides: Any) -> AsyncIterator[ChatServer]:
    async with running_server(irc_port=0, **overrides) as server:
        yield server


class IrcPeer:
    """An IRC client speaking raw lines: every line the server sends is kept."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.lines: list[str] = []

    @classmethod
    async def connect(cls, port: int, nick: str | None = None, **register: str) -> IrcPeer:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        peer = cls(reader, writer)
        if nick is not None:
            await peer.register(nick, **register)
        return peer

    async def register(self, nick: str, password: str | None = None, caps: str = "") -> None:
        if caps:
            await self.send("CAP LS 302", f"CAP REQ :{caps}")
        if password is not None:
            await self.send(f"PASS {password}")
        await self.send(f"NICK {nick}", f"USER {nick} 0 * :{nick} here")
        if caps:
            await self.send("CAP END")
        await self.expect(" 366 ")  # the end of the NAMES of the channel it is put in

    async def send(self, *lines: str | bytes) -> None:
        for item in lines:
            self.writer.write(item if isinstance(item, bytes) else item.encode() + b"\r\n")
        await self.writer.drain()

    async def line(self) -> str:
        raw = await asyncio.wait_for(self.reader.readline(), WAIT)
        assert raw.endswith(b"\r\n") or raw == b"", raw
        assert len(raw) <= 512 or raw.startswith(b"@"), f"over 512 bytes: {raw!r}"
        text = raw.decode().removesuffix("\r\n")
        self.lines.append(text)
        return text

    async def expect(self, match: str | Callable[[str], bool], limit: int = 200) -> str:
        """The next line containing ``match`` (or satisfying it); earlier ones are kept
        in :attr:`lines`."""
        for _ in range(limit):
            text = await self.line()
            if (match in text) if isinstance(match, str) else match(text):
                return text
            if text == "" and self.reader.at_eof():
                break
        raise AssertionError(f"no line with {match!r}; got {self.lines[-30:]!r}")

    async def close(self) -> None:
        self.writer.close()


def numeric(text: str) -> str:
    """The command (or numeric) of a line from the server."""
    words = text.split(" ")
    if words[0].startswith("@"):
        words = words[1:]
    return words[1] if words[0].startswith(":") else words[0]


# --- registration and the numerics ---------------------------------------------------------


async def test_registration_gets_001_to_005_the_motd_and_the_lobby() -> None:
    async with irc_server() as server:
        irc = await IrcPeer.connect(server.irc_port)
        await irc.send("CAP LS 302")
        assert await irc.line() == ":peerchat CAP * LS :server-time message-tags"
        await irc.send("NICK ircy", "USER ircy 0 * :Irc Y")
        await irc.send("CAP END")
        await irc.expect(" 366 ")
        got = [numeric(text) for text in irc.lines]
        assert got[1:] == [
            "001", "002", "003", "004", "005", "375", "372", "372", "372", "376",
            "JOIN", "353", "366",
        ]  # fmt: skip
        isupport = irc.lines[5].split(" ")
        for token in ("CASEMAPPING=ascii", "CHANTYPES=#", "NICKLEN=32", "CHANNELLEN=33",
                      "LINELEN=512"):  # fmt: skip
            assert token in isupport
        assert irc.lines[11] == ":ircy!ircy@peerchat JOIN #lobby"


async def test_server_time_tags_history_and_the_room_on_join() -> None:
    async with irc_server() as server:
        plain = await PlainPeer.connect(server.port)
        await plain.say("said before")
        await console_of(server).wait_for("said before")
        tagged = await IrcPeer.connect(server.irc_port, "tagged", caps="server-time")
        untagged = await IrcPeer.connect(server.irc_port, "untagged")
        history = await tagged.expect("said before")
        assert history.startswith("@time=")
        assert "PRIVMSG #lobby :said before" in history
        old = await untagged.expect("said before")
        assert old.startswith(":")
        assert " UTC] said before" in old
        await plain.say("live now")
        assert (await tagged.expect("live now")).startswith("@time=")
        assert (await untagged.expect("live now")).endswith("PRIVMSG #lobby :live now")


async def test_what_was_said_while_registering_follows_the_join_once() -> None:
    async with irc_server() as server:
        plain = await PlainPeer.connect(server.port)
        await plain.say("before")
        await console_of(server).wait_for("before")
        irc = await IrcPeer.connect(server.irc_port)
        await console_of(server).wait_for("NEW CONNECTION", count=2)
        await plain.say("meanwhile")
        await console_of(server).wait_for("meanwhile")
        await irc.register("late")
        await irc.expect("meanwhile")
        said = [text.split(" :", 1)[1] for text in irc.lines if " PRIVMSG #lobby :" in text]
        assert [text.split("] ")[-1] for text in said] == ["before", "meanwhile"]
        await irc.send("PING :check")
        await irc.expect("PONG")
        assert sum("meanwhile" in text for text in irc.lines) == 1


async def test_the_errors_numerics_of_a_conforming_server() -> None:
    async with irc_server() as server:
        first = await IrcPeer.connect(server.irc_port, "first")
        irc = await IrcPeer.connect(server.irc_port)
        await irc.send("PRIVMSG #lobby :too early")
        assert numeric(await irc.line()) == "451"  # not registered
        await irc.send("NICK first")
        assert numeric(await irc.line()) == "433"  # taken
        await irc.send("NICK bad!nick")
        assert numeric(await irc.line()) == "432"  # invalid
        await irc.send("NICK second", "USER second 0 * :s")
        await irc.expect(" 366 ")
        for sent, expected in [
            ("FROBNICATE", "421"),
            ("USER x", "461"),
            ("JOIN", "461"),
            ("USER a b c :d", "462"),
            ("PRIVMSG nobody :hi", "401"),
            ("PRIVMSG #elsewhere :hi", "404"),
            ("PRIVMSG #lobby", "412"),
            ("PART #elsewhere", "442"),
            ("TOPIC #lobby", "331"),
            ("TOPIC #lobby :new", "482"),
            ("MODE #lobby", "324"),
            ("MODE #lobby +o first", "472"),
            ("MODE second", "221"),
            ("MODE second +x", "501"),
            ("AWAY :lunch", "306"),
            ("AWAY", "305"),
            ("OPER a b", "491"),
            ("KICK #lobby first", "482"),
            ("JOIN #bad!room", "479"),
            ("PRIVMSG a,b :hi", "407"),
            ("PING", "461"),
            ("NICK first", "433"),
        ]:
            await irc.send(sent)
            assert numeric(await irc.line()) == expected, (sent, irc.lines[-1])
        await irc.send("WHOWAS gone")
        assert [numeric(await irc.line()) for _ in range(2)] == ["406", "369"]
        await irc.send("TAGMSG #lobby", "JOIN #a,#b")
        assert numeric(await irc.line()) == "405"  # (and nothing for the TAGMSG)
        assert (await irc.line()).endswith("PART #lobby :went to #a")
        await irc.send("JOIN 0")
        assert (await irc.expect("PART")).endswith("PART #a :went to #lobby")
        await first.close()


async def test_who_whois_names_list_ping_and_quit() -> None:
    async with irc_server() as server:
        rich = await RichPeer.connect(server.port, "jay")
        irc = await IrcPeer.connect(server.irc_port, "ircy")
        await irc.send("WHO #lobby")
        rows = [await irc.line() for _ in range(3)]
        assert [numeric(r) for r in rows] == ["352", "352", "315"]
        await irc.send("WHOIS jay")
        whois = [await irc.line() for _ in range(5)]
        assert [numeric(r) for r in whois] == ["311", "312", "319", "338", "318"]
        assert rich.welcome is not None
        assert rich.welcome.addr in whois[3]  # the address, as /who gives it
        await irc.send("NAMES #lobby")
        names = await irc.line()
        assert numeric(names) == "353"
        assert set(names.rsplit(":", 1)[1].split()) == {"jay", "ircy"}
        assert numeric(await irc.line()) == "366"
        await irc.send("USERHOST jay nobody", "ISON jay nobody ircy", "MOTD")
        assert (await irc.line()) == ":peerchat 302 ircy :jay=+jay@peerchat"
        assert (await irc.line()) == ":peerchat 303 ircy :jay ircy"
        assert [numeric(await irc.line()) for _ in range(5)] == ["375", "372", "372", "372", "376"]
        await irc.send("LIST")
        assert [numeric(await irc.line()) for _ in range(3)] == ["321", "322", "323"]
        await irc.send("PING :token-1")
        assert (await irc.line()) == ":peerchat PONG peerchat :token-1"
        await irc.send("QUIT :lunch time")
        assert (await irc.line()).startswith("ERROR :")
        left = await rich.expect(Left, skip=(Joined,))
        assert (left.nick, left.reason) == ("ircy", "quit: lunch time")


async def test_the_server_pings_a_quiet_client_and_drops_one_that_does_not_answer() -> None:
    async with irc_server(ping_after=0.3, ping_timeout=0.5) as server:
        awake = await IrcPeer.connect(server.irc_port, "awake")
        asleep = await IrcPeer.connect(server.irc_port, "asleep")
        ping = await awake.expect("PING")
        await awake.send("PONG :" + ping.split(":", 1)[1] if ":" in ping else "PONG x")
        assert (await asleep.expect("ERROR")).startswith("ERROR :Closing link: disconnected")
        await awake.expect(":asleep!asleep@peerchat QUIT")


# --- every kind in one room ------------------------------------------------------------------


async def test_irc_nc_and_json_peers_chat_both_ways() -> None:
    async with irc_server() as server:
        irc = await IrcPeer.connect(server.irc_port, "ircy")
        plain = await PlainPeer.connect(server.port)
        rich = await RichPeer.connect(server.port, "jay")
        joins = {await irc.expect(" JOIN #lobby"), await irc.expect(" JOIN #lobby")}
        assert ":jay!jay@peerchat JOIN #lobby" in joins  # and the nc peer's

        await irc.send("PRIVMSG #lobby :hello from irc")
        assert (await plain.expect("<ircy>", skip=JOINS)) == "<ircy> hello from irc"
        got = await rich.expect(Message, skip=MEMBERSHIP)
        assert (got.nick, got.text) == ("ircy", "hello from irc")
        await irc.send("PRIVMSG #lobby :\x01ACTION waves\x01")
        assert (await plain.expect("ircy", skip=JOINS)) == "* ircy waves"
        assert (await rich.expect(Message)).action

        await rich.send(Say("hi irc"))
        assert (await irc.expect("hi irc")) == ":jay!jay@peerchat PRIVMSG #lobby :hi irc"
        await rich.send(Say("psst", to="ircy"))
        assert (await irc.expect("psst")) == ":jay!jay@peerchat PRIVMSG ircy :psst"
        await rich.send(Say("dances", action=True))
        assert (await irc.expect("dances")).endswith("PRIVMSG #lobby :\x01ACTION dances\x01")
        await irc.send("PRIVMSG jay :just you")
        private = await rich.expect(Message)
        assert (private.text, private.to) == ("just you", "jay")


async def test_nick_changes_and_moving_rooms_are_seen_by_everyone() -> None:
    async with irc_server() as server:
        irc = await IrcPeer.connect(server.irc_port, "ircy")
        rich = await RichPeer.connect(server.port, "jay")
        await irc.send("NICK ircy2")
        assert await irc.expect("NICK") == ":ircy!ircy@peerchat NICK ircy2"
        assert (await rich.expect(Renamed, skip=(Joined,))).new == "ircy2"
        await irc.send("JOIN #games")
        assert await irc.expect("PART") == ":ircy2!ircy2@peerchat PART #lobby :went to #games"
        assert await irc.line() == ":ircy2!ircy2@peerchat JOIN #games"
        left = await rich.expect(Left, skip=(Message,))
        assert left.reason == "went to #games"
        await irc.send("PART #games")
        assert (await irc.expect("PART")).endswith("PART #games :went to #lobby")
        assert await irc.line() == ":ircy2!ircy2@peerchat JOIN #lobby"


async def test_a_long_message_is_split_to_fit_512_bytes_without_breaking_utf8() -> None:
    async with irc_server(max_line_bytes=4096) as server:
        irc = await IrcPeer.connect(server.irc_port, "ircy")
        plain = await PlainPeer.connect(server.port)
        await irc.expect("JOIN #lobby")
        text = "é" * 700 + " the end"
        await plain.say(text)
        pieces = []
        for _ in range(10):
            row = await irc.expect("PRIVMSG #lobby :")
            assert len(row.encode()) + 2 <= 512
            pieces.append(row.split("PRIVMSG #lobby :", 1)[1])
            if pieces[-1].endswith("the end"):
                break
        assert "".join(pieces).replace(" ", "") == text.replace(" ", "")


# --- a real client library -------------------------------------------------------------------


class Pydle(pydle.Client):  # type: ignore[misc]
    """pydle, recording what it is told."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.said: asyncio.Queue[tuple[str, str, str]] = asyncio.Queue()
        self.joined: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self.ready = asyncio.Event()

    async def on_connect(self) -> None:
        await super().on_connect()
        self.ready.set()

    async def on_message(self, target: str, by: str, message: str) -> None:
        await self.said.put((target, by, message))

    async def on_join(self, channel: str, user: str) -> None:
        await self.joined.put((channel, user))


async def test_pydle_registers_joins_chats_gets_history_renames_parts_and_quits() -> None:
    async with irc_server() as server:
        plain = await PlainPeer.connect(server.port)
        await plain.say("/nick nico")
        await plain.expect("nico")
        await plain.say("history for pydle")
        await console_of(server).wait_for("history for pydle")
        rich = await RichPeer.connect(server.port, "jay")

        bot = Pydle("pyd", realname="pydle bot")
        await asyncio.wait_for(bot.connect("127.0.0.1", server.irc_port, tls=False), WAIT)
        try:
            await asyncio.wait_for(bot.ready.wait(), WAIT)
            assert await asyncio.wait_for(bot.joined.get(), WAIT) == ("#lobby", "pyd")
            target, by, text = await asyncio.wait_for(bot.said.get(), WAIT)
            assert (target, by) == ("#lobby", "nico")
            assert text.endswith(" UTC] history for pydle")  # (it asked for no server-time)
            await rich.expect(Joined, lambda j: j.nick == "pyd", skip=(Message,))
            await plain.say("hello pydle")
            assert (await asyncio.wait_for(bot.said.get(), WAIT))[1:] == ("nico", "hello pydle")
            assert (await rich.expect(Message)).text == "hello pydle"
            await bot.message("#lobby", "hello from pydle")
            assert (await plain.expect("<pyd>", skip=JOINS)) == "<pyd> hello from pydle"
            assert (await rich.expect(Message)).text == "hello from pydle"
            await bot.set_nickname("pydle2")
            assert (await rich.expect(Renamed)).new == "pydle2"
            await bot.join("#games")
            assert (await rich.expect(Left)).reason == "went to #games"
            assert await asyncio.wait_for(bot.joined.get(), WAIT) == ("#games", "pydle2")
            await bot.part("#games")
            assert (await rich.expect(Joined)).nick == "pydle2"  # back in #lobby
            await bot.quit("done")
            await console_of(server).wait_for("pydle2 (")
        finally:
            if bot.connected:
                await bot.disconnect()


# --- abuse ---------------------------------------------------------------------------------------


async def test_over_long_lines_and_junk_get_an_answer_and_the_chat_goes_on() -> None:
    async with irc_server() as server:
        irc = await IrcPeer.connect(server.irc_port, "ircy")
        plain = await PlainPeer.connect(server.port)
        await irc.expect("JOIN #lobby")
        await irc.send("PRIVMSG #lobby :" + "x" * 600)
        assert numeric(await irc.line()) == "417"
        await irc.send(b"\xff\xfe junk\r\n", b":only-a-source\r\n", b"12 34\r\n")
        answers = [numeric(await irc.line()) for _ in range(2)]
        assert answers == ["NOTICE", "421"]
        await irc.send("PRIVMSG #lobby :still fine")
        assert (await plain.expect("<ircy>", skip=JOINS)) == "<ircy> still fine"


async def test_registration_never_finished_is_dropped_after_the_auth_timeout() -> None:
    async with irc_server(auth_timeout=0.5) as server:
        irc = await IrcPeer.connect(server.irc_port)
        await irc.send("NICK halfway")
        assert (await irc.expect("ERROR")).startswith("ERROR :Closing link: not registered")
        await irc.expect(lambda text: text == "")  # and closed


async def test_the_password_through_pass() -> None:
    async with irc_server(password="sesame", auth_failures=0) as server:
        wrong = await IrcPeer.connect(server.irc_port)
        await wrong.send("PASS nope", "NICK guess", "USER guess 0 * :g")
        assert numeric(await wrong.expect(" 464 ")) == "464"
        assert (await wrong.line()).startswith("ERROR :")
        right = await IrcPeer.connect(server.irc_port, "knows", password="sesame")
        assert any(" 001 knows " in text for text in right.lines)


async def test_floods_of_join_and_nick_are_paced_like_any_lines() -> None:
    async with irc_server(flood_burst=5, flood_rate=2) as server:
        irc = await IrcPeer.connect(server.irc_port, "flood")
        await irc.send(*[f"NICK flood{n}" for n in range(30)])
        await console_of(server).wait_for("[FLOOD] Peer flood")
        assert "sending more than 2 lines a second" in await irc.expect("NOTICE")
        joiner = await IrcPeer.connect(server.irc_port, "joiner")
        await joiner.send(*[f"JOIN #room{n}" for n in range(30)])
        await console_of(server).wait_for("[FLOOD] Peer joiner")


# --- TLS -----------------------------------------------------------------------------------------


async def test_the_irc_and_web_ports_serve_tls_with_the_servers_certificate(
    tmp_path: Path,
) -> None:
    made = await asyncio.create_subprocess_exec(
        str(ROOT / "docker" / "make-tls-cert.sh"), str(tmp_path),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert await asyncio.wait_for(made.wait(), 60) == 0
    tls = {"tls_cert": str(tmp_path / "server.crt"), "tls_key": str(tmp_path / "server.key")}
    trust = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
    async with irc_server(ws_port=0, **tls) as server:
        lines = console_of(server).lines
        assert any(f"IRC at 127.0.0.1:{server.irc_port} with TLS" in line for line in lines)
        assert f"[INFO] Web chat at https://127.0.0.1:{server.ws_port}/" in lines
        reader, writer = await asyncio.open_connection("127.0.0.1", server.irc_port, ssl=trust)
        irc = IrcPeer(reader, writer)
        await irc.register("secure")
        assert any(" 001 secure " in text for text in irc.lines)
        web = await WsPeer.connect(server.ws_port, "websecure", ssl=trust, scheme="wss")
        assert web.nick == "websecure"


# --- found in review -----------------------------------------------------------------------------


async def test_formatting_codes_and_missing_parameters_break_nothing() -> None:
    async with irc_server() as server:
        irc = await IrcPeer.connect(server.irc_port, "colours")
        await irc.send("PONG", "PING :\x02bold", "PRIVMSG a\x02b :hi", "JOIN #a,")
        assert (await irc.line()).endswith("PONG peerchat :bold")
        assert (await irc.line()) == ":peerchat 401 colours a\x02b :No such nick/channel"
        assert (
            await irc.line()
        ) == ":peerchat 405 colours * :You may be in one channel at a time here"
        await irc.send("QUIT :\x0304red\x03 quit")
        assert (await irc.expect("ERROR")).startswith("ERROR :Closing link")
        left = [line for line in console_of(server).lines if "Internal error" in line]
        assert left == []


async def test_an_irc_nick_is_free_again_once_its_client_is_gone() -> None:
    async with irc_server() as server:
        first = await IrcPeer.connect(server.irc_port, "alice")
        first.writer.transport.abort()  # no QUIT: a dropped network
        await console_of(server).wait_for("[DISCONNECTED] alice")
        again = await IrcPeer.connect(server.irc_port, "alice")
        assert any(" 001 alice " in text for text in again.lines)


async def test_connections_that_have_not_said_who_they_are_are_not_listed() -> None:
    async with irc_server() as server:
        pending = await IrcPeer.connect(server.irc_port)  # registers later
        await console_of(server).wait_for("NEW CONNECTION")
        irc = await IrcPeer.connect(server.irc_port, "lister")
        assert [text for text in irc.lines if " 353 " in text] == [
            ":peerchat 353 lister = #lobby :lister"
        ]
        await pending.register("later")
        assert (await irc.expect("JOIN")) == ":later!later@peerchat JOIN #lobby"


async def test_errors_name_their_subject_and_who_takes_a_nick() -> None:
    async with irc_server() as server:
        other = await IrcPeer.connect(server.irc_port, "other")
        irc = await IrcPeer.connect(server.irc_port, "asker")
        await irc.send("PRIVMSG nobody :hi")
        assert (await irc.line()).startswith(":peerchat 401 asker nobody :")
        await irc.send("WHO other")
        assert (await irc.line()).startswith(":peerchat 352 asker #lobby other 127.0.0.1 ")
        assert (await irc.line()) == ":peerchat 315 asker other :End of /WHO list"
        await irc.send("PRIVMSG asker :note to self")
        assert (await irc.line()) == ":asker!asker@peerchat PRIVMSG asker :note to self"
        await irc.send("MODE other", "MODE #lobby +o other", "INVITE other #lobby")
        assert numeric(await irc.line()) == "502"
        assert (await irc.line()).startswith(":peerchat 472 asker o :")
        assert (await irc.line()).startswith(":peerchat 482 asker #lobby :")
        await other.close()


async def test_tags_only_as_enabled_and_a_split_message_has_one_msgid() -> None:
    async with irc_server(max_line_bytes=4096) as server:
        both = await IrcPeer.connect(server.irc_port, "both", caps="server-time message-tags")
        time_only = await IrcPeer.connect(server.irc_port, "timeonly", caps="server-time")
        plain = await PlainPeer.connect(server.port)
        await plain.say("x" * 1200)
        rows = [await both.expect("PRIVMSG") for _ in range(3)]
        assert ["msgid=" in row for row in rows] == [True, False, False]
        assert all(row.startswith("@time=") for row in rows)
        row = await time_only.expect("PRIVMSG")
        assert row.startswith("@time=")
        assert "msgid" not in row


async def test_cap_req_alone_holds_registration_until_cap_end() -> None:
    async with irc_server() as server:
        irc = await IrcPeer.connect(server.irc_port)
        await irc.send("CAP REQ :server-time", "NICK held", "USER held 0 * :h")
        assert (await irc.line()).endswith("CAP * ACK :server-time")
        await irc.send("PING :still-registering")
        assert (await irc.line()).endswith("PONG peerchat :still-registering")
        await irc.send("CAP END")
        assert numeric(await irc.line()) == "001"
