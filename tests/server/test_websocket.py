"""The WebSocket peer kind: browsers and bots in the same rooms as JSON-lines and nc peers.

Real sockets on 127.0.0.1, the websockets library's own client on the other end.
"""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from peerchat_protocol import (
    Ack,
    Bye,
    Entered,
    Error,
    ErrorCode,
    Hello,
    Info,
    Joined,
    JoinRoom,
    Left,
    ListRooms,
    Message,
    Ping,
    Pong,
    Rooms,
    Say,
    Welcome,
    Who,
)
from peerchat_server import reading, websocket, wsframes
from peerchat_server.config import ServerConfig
from peerchat_server.page import Site
from peerchat_server.server import ChatServer
from peerchat_server.wsframes import close_frame, text_frame

from .peers import (
    JOINS,
    MEMBERSHIP,
    WAIT,
    PlainPeer,
    RichPeer,
    WsPeer,
    console_of,
    raw_reader,
    running_server,
)


@asynccontextmanager
async def web_server(**overrides: Any) -> AsyncIterator[ChatServer]:
    async with running_server(ws_port=0, **overrides) as server:
        yield server


def own(server: ChatServer) -> str:
    """The origin of the server's own page, as a browser that loaded it says."""
    return f"http://127.0.0.1:{server.ws_port}"


async def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any, bytes]:
    def get() -> tuple[int, Any, bytes]:
        request = urllib.request.Request(url, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=WAIT) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers, exc.read()

    return await asyncio.to_thread(get)


# --- every kind of peer in one room ---------------------------------------------------------


async def test_browser_json_and_nc_peers_chat_both_ways() -> None:
    async with web_server() as server:
        web = await WsPeer.connect(server.ws_port, "webby", origin=own(server))
        rich = await RichPeer.connect(server.port, "jay")
        await web.expect(Joined, lambda j: j.nick == "jay")
        plain = await PlainPeer.connect(server.port)
        await web.expect(Joined, skip=MEMBERSHIP)
        await rich.expect(Joined, skip=MEMBERSHIP)

        await web.send(Say("from the browser <b>&amp;</b>", seq=1))
        ack = await web.expect(Ack)
        assert ack.seq == 1
        assert ack.id is not None
        got = await rich.expect(Message)
        assert (got.nick, got.text) == ("webby", "from the browser <b>&amp;</b>")
        await plain.expect("<webby> from the browser <b>&amp;</b>", skip=JOINS)

        await rich.send(Say("from json"))
        await plain.say("from nc")
        texts = [(await web.expect(Message)).text for _ in range(2)]
        assert sorted(texts) == ["from json", "from nc"]
        await web.expect_none()  # and never its own line back
        for peer in (web, rich, plain):
            await peer.close()


async def test_a_private_message_and_an_action_reach_a_browser() -> None:
    async with web_server() as server:
        web = await WsPeer.connect(server.ws_port, "webby")
        rich = await RichPeer.connect(server.port, "jay")
        await rich.send(Say("psst", to="webby"))
        await rich.send(Say("waves", action=True))
        private = await web.expect(Message, skip=MEMBERSHIP)
        assert (private.text, private.to) == ("psst", "webby")
        action = await web.expect(Message)
        assert action.action
        assert action.text == "waves"


async def test_a_browser_moves_between_rooms_with_the_other_kinds() -> None:
    async with web_server() as server:
        web = await WsPeer.connect(server.ws_port, "webby")
        plain = await PlainPeer.connect(server.port)
        await plain.say("/join games")
        await plain.expect("games", skip=JOINS)
        await web.send(JoinRoom("games"))
        entered = await web.expect(Entered, skip=MEMBERSHIP)
        assert entered.room == "games"
        assert entered.online == 2
        await web.send(ListRooms())
        rooms = await web.expect(Rooms, skip=MEMBERSHIP)
        assert {room.name: room.online for room in rooms.rooms}["games"] == 2
        await web.send(Say("in games"))
        notices = "***"  # its room's roster, and webby coming in
        assert (await plain.expect("<webby>", skip=notices)).endswith("in games")


async def test_a_browser_that_comes_late_gets_the_rooms_history() -> None:
    async with web_server() as server:
        plain = await PlainPeer.connect(server.port)
        await plain.say("said before")
        await console_of(server).wait_for("said before")
        web = await WsPeer.connect(server.ws_port, "late")
        old = await web.expect(Message)
        assert old.history
        assert old.text == "said before"


async def test_a_browser_resumes_its_session_and_catches_up_by_id() -> None:
    async with web_server() as server:
        web = await WsPeer.connect(server.ws_port, "webby")
        plain = await PlainPeer.connect(server.port)
        await plain.say("one")
        first = await web.expect(Message, skip=MEMBERSHIP)
        welcome = web.welcome
        assert welcome is not None
        assert welcome.session
        web.ws.transport.abort()  # a dropped connection: no close frame
        await console_of(server).wait_for("webby (")
        await plain.say("two")
        await plain.say("three")
        await console_of(server).wait_for("three")

        back = WsPeer(await WsPeer.open(server.ws_port))
        await back.send(
            Hello(
                version=3, nick="webby", resume=welcome.session, room=welcome.room,
                epoch=welcome.epoch, last_id=first.id,
            )
        )  # fmt: skip
        again = await back.expect(Welcome)
        assert again.resumed
        assert again.nick == "webby"
        assert again.missed == 2
        assert [(await back.expect(Message)).text for _ in range(2)] == ["two", "three"]


# --- the page --------------------------------------------------------------------------------


async def test_the_page_is_served_with_a_strict_content_security_policy() -> None:
    async with web_server() as server:
        base = f"http://127.0.0.1:{server.ws_port}"
        status, headers, body = await http_get(base + "/")
        assert status == 200
        assert headers["Content-Type"].startswith("text/html")
        assert body == (websocket.Site(server.config).files["index.html"])
        csp = headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp
        assert f"connect-src ws://127.0.0.1:{server.ws_port}/ws;" in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        for path, kind in (("/app.js", "text/javascript"), ("/app.css", "text/css")):
            status, headers, _ = await http_get(base + path)
            assert status == 200
            assert headers["Content-Type"].startswith(kind)
        status, _, body = await http_get(base + "/etc/passwd")
        assert status == 404
        assert b"the chat is at /" in body
        assert f"[INFO] Web chat at {base}/" in console_of(server).lines


def test_the_page_is_three_files_that_load_nothing_from_elsewhere() -> None:
    files = Site(ServerConfig()).files
    assert sorted(files) == ["app.css", "app.js", "index.html"]
    html = files["index.html"].decode()
    assert re.findall(r"<(?:script|link)[^>]*>", html) == [
        '<link rel="stylesheet" href="app.css">',
        '<script src="app.js" defer>',
    ]
    assert "style=" not in html
    assert not re.search(r"<[^>]+\son[a-z]+=", html)  # no inline handlers
    for name, data in files.items():
        assert b"://" not in data, name  # no absolute URL: nothing from another host


async def test_page_requests_are_no_peers() -> None:
    async with web_server() as server:
        await http_get(f"http://127.0.0.1:{server.ws_port}/")
        assert len(server.relay.registry) == 0
        assert not any("NEW CONNECTION" in line for line in console_of(server).lines)


# --- origins ---------------------------------------------------------------------------------


async def test_a_page_of_another_site_may_not_open_the_websocket() -> None:
    async with web_server() as server:
        with pytest.raises(InvalidStatus) as refused:
            await WsPeer.open(server.ws_port, origin="http://evil.example")
        assert refused.value.response.status_code == 403
        assert b"may not be opened from http://evil.example" in refused.value.response.body
        assert len(server.relay.registry) == 0


async def raw_handshake(port: int, host: str, origin: str) -> bytes:
    """The status line a WebSocket handshake with these headers gets."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        f"Origin: {origin}\r\n\r\n".encode()
    )
    status = await asyncio.wait_for(reader.readline(), WAIT)
    writer.close()
    return status


async def test_a_name_rebound_to_the_server_is_not_its_own_origin() -> None:
    # DNS rebinding: evil.example resolves to this server, so the browser sends
    # Host: evil.example:PORT and Origin: http://evil.example:PORT, which match.
    async with web_server() as server:
        port = server.ws_port
        host = f"evil.example:{port}"
        assert b" 403 " in await raw_handshake(port, host, f"http://{host}")
        own_host = f"127.0.0.1:{port}"
        assert b" 101 " in await raw_handshake(port, own_host, f"http://{own_host}")
        assert b" 101 " in await raw_handshake(
            port, f"localhost:{port}", f"http://localhost:{port}"
        )


async def test_listed_origins_and_clients_without_one_are_let_in() -> None:
    async with web_server(ws_origins=("https://chat.example",)) as server:
        listed = await WsPeer.connect(server.ws_port, "a", origin="https://chat.example")
        bot = await WsPeer.connect(server.ws_port, "b")  # no Origin: not a browser
        assert (listed.nick, bot.nick) == ("a", "b")


# --- bad frames --------------------------------------------------------------------------------


async def test_bad_frames_get_a_clear_error_and_the_chat_goes_on() -> None:
    async with web_server(max_line_bytes=1024) as server:
        web = await WsPeer.connect(server.ws_port, "webby")
        plain = await PlainPeer.connect(server.port)
        await web.expect(Joined)

        await web.ws.send(b"\x00\x01binary")
        error = await web.expect(Error)
        assert error.code == ErrorCode.BAD_FRAME
        assert "JSON text frame" in error.message
        await web.ws.send("{not json")
        assert (await web.expect(Error)).code == ErrorCode.BAD_JSON
        await web.ws.send(json.dumps({"type": "say", "text": "x" * 2000}))
        assert (await web.expect(Error)).code == ErrorCode.LINE_TOO_LONG
        await web.ws.send(json.dumps({"type": "no_such_thing"}))
        assert (await web.expect(Error)).code == ErrorCode.UNKNOWN_TYPE
        await web.ws.send('{"type": "say",\n  "text": "pretty-printed"}')

        assert (await plain.expect("<webby>", skip=JOINS)).endswith("pretty-printed")
        await plain.say("still here")
        assert (await web.expect(Message)).text == "still here"


async def test_a_fragmented_message_is_one_event() -> None:
    async with web_server() as server:
        web = await WsPeer.connect(server.ws_port, "webby")
        plain = await PlainPeer.connect(server.port)
        await web.expect(Joined)
        await web.ws.send(iter(['{"type":"say",', '"text":"in three ', 'pieces"}']))
        assert (await plain.expect("<webby>", skip=JOINS)).endswith("in three pieces")


async def test_a_message_far_over_the_limit_ends_that_connection_only() -> None:
    async with web_server(max_line_bytes=1024) as server:
        web = await WsPeer.connect(server.ws_port, "webby", max_size=None)
        other = await WsPeer.connect(server.ws_port, "other")
        await web.expect(Joined)
        await web.ws.send("y" * (websocket.OVERSIZE_FACTOR * 1024 + 1))
        bye = await web.expect(Bye)
        assert bye.code == ErrorCode.LINE_TOO_LONG
        assert "1024 bytes" in bye.reason
        assert (await web.closed())[0] == wsframes.TOO_BIG
        await other.expect(Left, lambda left: left.nick == "webby")
        await other.expect_none()


async def test_the_first_frame_must_be_a_hello() -> None:
    async with web_server() as server:
        web = WsPeer(await WsPeer.open(server.ws_port))
        await web.ws.send(json.dumps({"type": "say", "text": "hi"}))
        error = await web.expect(Error)
        assert error.code == ErrorCode.UNEXPECTED
        assert '"type":"hello"' in error.message
        await web.expect(Bye)
        assert (await web.closed())[0] == wsframes.POLICY


async def test_a_websocket_that_never_says_hello_is_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with web_server(auth_timeout=0.5) as server:
        web = WsPeer(await WsPeer.open(server.ws_port))
        bye = await web.expect(Bye)
        assert bye.code == ErrorCode.AUTH_TIMEOUT
        assert "first frame is its JSON hello" in bye.reason
        await web.closed()
        assert len(server.relay.registry) == 0


async def test_a_connection_that_never_finishes_its_request_is_cut(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(websocket, "HANDSHAKE_TIMEOUT", 0.3)
    async with web_server() as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.ws_port)
        writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and no end of headers
        assert await asyncio.wait_for(reader.read(), WAIT) == b""
        writer.close()


async def test_a_close_frame_is_a_clean_leave() -> None:
    async with web_server() as server:
        web = await WsPeer.connect(server.ws_port, "webby")
        rich = await RichPeer.connect(server.port, "jay")
        await web.expect(Joined)
        await web.close()
        left = await rich.expect(Left)
        assert left.nick == "webby"
        assert not left.reason
        received = web.ws.protocol.close_rcvd
        assert received is not None
        assert received.code == wsframes.NORMAL


# --- the same limits ----------------------------------------------------------------------------


async def test_the_password_applies_to_websocket_peers() -> None:
    async with web_server(password="sesame", auth_failures=0) as server:
        web = WsPeer(await WsPeer.open(server.ws_port))
        await web.send(Hello(version=3, nick="x", password="wrong"))
        bye = await web.expect(Bye, skip=(Error,))
        assert bye.code == ErrorCode.BAD_PASSWORD
        good = await WsPeer.connect(server.ws_port, "y", password="sesame")
        assert good.nick == "y"


async def test_connections_per_address_count_websockets_and_handshakes() -> None:
    async with web_server(max_per_address=2) as server:
        first = await WsPeer.connect(server.ws_port, "one")
        reader, writer = await asyncio.open_connection("127.0.0.1", server.ws_port)
        await console_of(server).wait_for("NEW CONNECTION")  # (the first one)
        # The half-open handshake holds the second: a third is refused, as HTTP.
        with pytest.raises(InvalidStatus) as refused:
            await WsPeer.open(server.ws_port)
        assert refused.value.response.status_code == 503
        assert b"too many connections" in refused.value.response.body
        writer.close()
        assert await asyncio.wait_for(reader.read(), WAIT) == b""
        await first.close()


async def test_the_connect_rate_holds_across_page_loads_and_websockets() -> None:
    async with web_server(connect_burst=2, connect_rate=0.01) as server:
        await WsPeer.connect(server.ws_port, "a")
        await WsPeer.connect(server.ws_port, "b")
        third = WsPeer(await WsPeer.open(server.ws_port))
        bye = await third.expect(Bye)
        assert bye.code == ErrorCode.TOO_MANY_CONNECTIONS
        assert "too many new" in bye.reason
        assert (await third.closed())[0] == wsframes.POLICY


async def test_flood_control_paces_a_browser_like_any_peer() -> None:
    async with web_server(flood_burst=3, flood_rate=2) as server:
        web = await WsPeer.connect(server.ws_port, "webby")
        plain = await PlainPeer.connect(server.port)
        await web.expect(Joined)
        for n in range(6):
            await web.send(Say(f"line {n}", seq=n + 1))
        notice = await web.expect(Info, skip=(Ack,))
        assert "more than 2 lines a second" in notice.text
        for n in range(6):  # all of them, in order, none dropped
            assert (await plain.expect("<webby>", skip=JOINS)).endswith(f"line {n}")


async def test_a_browser_that_stops_reading_is_dropped_and_the_others_go_on() -> None:
    async with web_server(max_send_buffer=256 * 1024, quiet=True) as server:
        # A small receive buffer, and a client that stops reading its socket once one
        # message waits unread (max_queue=1): a browser tab that hangs.
        sock = await raw_reader(server.ws_port, 4096)
        await WsPeer.connect(server.ws_port, "stalled", sock=sock, max_queue=1)
        healthy = await WsPeer.connect(server.ws_port, "healthy")
        sender = await PlainPeer.connect(server.port)
        await healthy.expect(Joined, skip=MEMBERSHIP)
        line = "p" * 1000
        chunk = "".join(f"{line}\n" for _ in range(100))
        left: list[Left] = []
        for _ in range(120):  # 12 MB, past every kernel buffer on the way
            await sender.send(chunk)
            for _ in range(100):
                message = await healthy.expect(Message, skip=lambda e: _note(e, left))
                assert message.text == line
        await console_of(server).wait_for("stopped reading")
        assert [event.nick for event in left] == ["stalled"]
        assert [event.reason for event in left] == ["dropped: not reading its messages"]


def _note(event: object, left: list[Left]) -> bool:
    """Pass over membership notices, keeping the leaves."""
    if isinstance(event, Left):
        left.append(event)
    return isinstance(event, MEMBERSHIP)


# --- the frames it is sent ----------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 200_000])
def test_text_frames_parse_as_one_final_unmasked_text_frame(size: int) -> None:
    payload = b"x" * size
    reader = StreamReader()
    reader.feed_data(text_frame(payload + b"\n"))
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
        raise AssertionError("the frame was incomplete")
    except StopIteration as done:
        frame = done.value
    assert (frame.opcode, frame.fin, bytes(frame.data)) == (Opcode.TEXT, True, payload)
    # RFC 6455 §5.2: the length in the fewest bytes that hold it.
    header = 2 if size < 126 else 4 if size < 65536 else 10
    assert len(text_frame(payload)) == header + size


def test_a_close_frame_reason_is_cut_to_fit_without_breaking_utf8() -> None:
    data = close_frame(1008, "é" * 100)
    assert data[0] == 0x88
    assert data[1] <= 125
    assert data[4:].decode()  # still UTF-8


# --- PROTOCOL.md §9, promise by promise -----------------------------------------------------


async def test_what_the_room_said_before_the_hello_follows_the_welcome() -> None:
    async with web_server() as server:
        web = WsPeer(await WsPeer.open(server.ws_port))
        await console_of(server).wait_for("NEW CONNECTION")
        plain = await PlainPeer.connect(server.port)
        await plain.say("while you were connecting")
        await console_of(server).wait_for("while you were connecting")
        await web.send(Hello(version=3, nick="late"))
        raw = await asyncio.wait_for(web.ws.recv(), WAIT)
        assert json.loads(raw)["type"] == "welcome"  # the very first frame: nothing before
        web.conn.receive_data(str(raw).encode() + b"\n")
        await web.expect(Welcome)
        message = await web.expect(Message, skip=MEMBERSHIP)
        assert message.text == "while you were connecting"


async def test_websocket_pings_are_answered_and_quiet_peers_get_a_json_ping() -> None:
    async with web_server(ping_after=0.2, ping_timeout=30) as server:
        web = await WsPeer.connect(server.ws_port, "quiet")
        pong_waiter = await web.ws.ping(b"are you there")
        await asyncio.wait_for(pong_waiter, WAIT)
        ping = await web.expect(Ping)
        await web.send(Pong(ping.token))
        await web.expect_none()


async def test_a_shutdown_says_bye_then_closes_with_going_away() -> None:
    async with web_server() as server:
        web = await WsPeer.connect(server.ws_port, "stayer")
        await server.stop()
        bye = await web.expect(Bye, skip=(Info,))
        assert bye.code == ErrorCode.SHUTDOWN
        assert (await web.closed())[0] == wsframes.GOING_AWAY


async def test_a_server_error_closes_with_internal_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setitem(reading.COMMANDS, Who, reading.COMMANDS[Who]._replace(handle=broken))
    async with web_server() as server:
        web = await WsPeer.connect(server.ws_port, "unlucky")
        await web.send(Who())
        assert (await web.expect(Bye)).code == ErrorCode.INTERNAL
        assert (await web.closed())[0] == wsframes.INTERNAL


async def test_bad_frames_count_towards_too_many_errors() -> None:
    async with web_server(max_errors=2) as server:
        web = await WsPeer.connect(server.ws_port, "junk")
        for _ in range(3):
            await web.ws.send(b"\xff")
        bye = await web.expect(Bye, skip=(Error,))
        assert bye.code == ErrorCode.TOO_MANY_ERRORS


async def test_the_advertised_host_is_the_pages_own_origin() -> None:
    async with web_server(ws_advertise="chat.example:8081") as server:
        port = server.ws_port
        status = await raw_handshake(port, "chat.example:8081", "http://chat.example:8081")
        assert b" 101 " in status
        assert b" 403 " in await raw_handshake(port, "other.example", "http://other.example")
        assert "[INFO] Web chat at http://chat.example:8081/" in console_of(server).lines


# --- found in review ---------------------------------------------------------------------------


async def raw_websocket(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A WebSocket opened by hand, for frames no well-behaved client library sends."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
    assert head.startswith(b"HTTP/1.1 101 "), head
    return reader, writer


def frame(opcode: Opcode, data: bytes = b"", fin: bool = True) -> bytes:
    return Frame(opcode, data, fin).serialize(mask=True, extensions=[])


async def frames_until_closed(reader: asyncio.StreamReader) -> list[Frame]:
    """Every frame the server sends until it closes the connection."""
    stream = StreamReader()
    stream.feed_data(await asyncio.wait_for(reader.read(), WAIT))  # (to its end)
    found: list[Frame] = []
    for _ in range(1000):
        if not stream.buffer:
            return found
        parser = Frame.parse(stream.read_exact, mask=False)
        try:
            next(parser)
        except StopIteration as done:
            found.append(done.value)
    raise AssertionError("too many frames")


async def test_two_origin_headers_are_refused_and_leave_no_connection_counted() -> None:
    async with web_server(max_per_address=2) as server:
        for _ in range(5):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.ws_port)
            writer.write(
                b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                b"Sec-WebSocket-Version: 13\r\nOrigin: http://a\r\nOrigin: http://b\r\n\r\n"
            )
            assert (await asyncio.wait_for(reader.read(), WAIT)).startswith(b"HTTP/1.1 400 ")
            writer.close()
        web = await WsPeer.connect(server.ws_port, "still-welcome")
        assert web.nick == "still-welcome"
        assert not any("Internal error" in line for line in console_of(server).lines)


async def test_two_host_headers_are_refused() -> None:
    async with web_server() as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.ws_port)
        writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\n\r\n")
        assert (await asyncio.wait_for(reader.read(), WAIT)).startswith(b"HTTP/1.1 400 ")
        writer.close()


async def test_an_empty_first_fragment_is_part_of_the_message() -> None:
    async with web_server() as server:
        web = await WsPeer.connect(server.ws_port, "webby")
        plain = await PlainPeer.connect(server.port)
        await web.expect(Joined)
        await web.ws.send(iter(["", '{"type":"say","text":"after an empty fragment"}']))
        assert (await plain.expect("<webby>", skip=JOINS)).endswith("after an empty fragment")


async def test_nothing_follows_the_close_frame_after_a_goodbye() -> None:
    async with web_server(max_errors=2) as server:
        reader, writer = await raw_websocket(server.ws_port)
        writer.write(frame(Opcode.TEXT, b'{"type":"hello","version":3,"nick":"junk"}'))
        writer.write(b"".join(frame(Opcode.BINARY, b"\xff") for _ in range(3)))
        writer.write(frame(Opcode.PING, b"and a ping"))
        sent = await frames_until_closed(reader)
        assert sent[-1].opcode is Opcode.CLOSE
        bye = json.loads(bytes(sent[-2].data))
        assert (bye["type"], bye["code"]) == ("bye", "too_many_errors")
        assert not any("Internal error" in line for line in console_of(server).lines)


async def test_a_flood_of_pings_is_paced_like_lines() -> None:
    async with web_server(flood_burst=5, flood_rate=1) as server:
        _, writer = await raw_websocket(server.ws_port)
        writer.write(frame(Opcode.TEXT, b'{"type":"hello","version":3,"nick":"pinger"}'))
        writer.write(b"".join(frame(Opcode.PING, b"x") for _ in range(50)))
        await console_of(server).wait_for("[FLOOD] Peer pinger")
        writer.close()


async def test_a_binary_first_frame_is_no_hello() -> None:
    async with web_server() as server:
        web = WsPeer(await WsPeer.open(server.ws_port))
        await web.ws.send(b"\x00")
        error = await web.expect(Error)
        assert error.code == ErrorCode.UNEXPECTED
        await web.expect(Bye)
        assert (await web.closed())[0] == wsframes.POLICY
