"""A plain-text peer's chat lines read as one block give exactly what reading them one by
one gives, and anything that needs a closer look is left to the line-by-line path."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from peerchat_protocol import (
    NEED_DATA,
    Connection,
    LineFramer,
    Message,
    PeerKind,
    RemoteProtocolError,
    Role,
    Say,
    decode_chat_block,
    encode_plain,
    encode_plain_said,
)
from peerchat_protocol.text import lines_clean


def plain_server(max_line: int = 64) -> Connection:
    conn = Connection(Role.SERVER, max_line=max_line)
    conn.receive_data(b"first\n")
    assert conn.next_event() == Say("first")
    assert conn.kind is PeerKind.PLAIN
    return conn


# --- the framer's peek -----------------------------------------------------------------


def test_peek_gives_the_complete_lines_without_taking_them() -> None:
    framer = LineFramer(100)
    framer.feed(b"a\nbb\r\nccc\npart")
    assert framer.peek_lines(10) == (b"a\nbb\r\nccc\n", 3)
    assert framer.peek_lines(2) == (b"a\nbb\r\n", 2)
    assert framer.next_line() == b"a"  # nothing was taken
    framer.skip(len(b"bb\r\n"))
    assert framer.next_line() == b"ccc"
    assert framer.peek_lines(10) == (b"", 0)
    framer.feed(b"ial\n")
    assert framer.next_line() == b"partial"


def test_peek_stays_out_of_an_over_long_line_being_skipped() -> None:
    framer = LineFramer(4)
    framer.feed(b"toolong")
    with pytest.raises(RemoteProtocolError):
        framer.next_line()  # reported before its end comes: its tail is skipped
    framer.feed(b"tail\nok\nok2\n")
    assert framer.peek_lines(10) == (b"", 0)  # "tail" must not pass for a line
    assert framer.next_line() == b"ok"
    assert framer.peek_lines(10) == (b"ok2\n", 1)


def test_a_complete_over_long_line_is_peeked_as_it_came_for_the_caller_to_refuse() -> None:
    framer = LineFramer(4)
    framer.feed(b"toolong\nok\n")
    block, count = framer.peek_lines(10)
    assert (block, count) == (b"toolong\nok\n", 2)
    assert decode_chat_block(block, 4) is None


def test_has_lines_says_whether_a_peek_would_give_that_many() -> None:
    framer = LineFramer(100)
    framer.feed(b"a\nb")
    assert framer.has_lines(1)
    assert not framer.has_lines(2)
    framer.feed(b"\n")
    assert framer.has_lines(2)
    assert framer.peek_lines(10)[1] == 2


def test_peek_with_no_room_gives_nothing() -> None:
    framer = LineFramer(10)
    framer.feed(b"a\nb\n")
    assert framer.peek_lines(0) == (b"", 0)


# --- the block check -------------------------------------------------------------------


def test_ordinary_lines_come_out_as_their_texts() -> None:
    block = "hello\nhéllo ❤️ wörld\nx\n".encode()
    assert decode_chat_block(block, 100) == ["hello", "héllo ❤️ wörld", "x"]


def test_crlf_lines_lose_their_cr() -> None:
    assert decode_chat_block(b"a\r\nb\r\n", 100) == ["a", "b"]


def test_lines_that_need_a_closer_look_are_left_to_the_line_by_line_path() -> None:
    for block in (
        b"/nick bob\nhi\n",  # a command
        b"hi\n/me waves\n",
        b"hi\n//slash\n",  # text that starts with '/'
        b"hi\n\nthere\n",  # a blank line
        b"hi\n   \n",  # a line of spaces
        b" indented\nhi\n",  # the first line starts with a space
        b"hi\n\tx\n",  # a tab (becomes a space)
        b"hi\n\x1b[31mred\n",  # an escape sequence
        b"hi\nbell\x07\n",  # a control character
        b"hi\nlone\rcr\n",  # a \r that ends no line
        b"hi\n\xff\xfe\n",  # invalid UTF-8
        "hi\nzero\u200bwidth\n".encode(),  # stripped by the text policy
        "hi\nno\u00a0break\n".encode(),  # kept, but not by the fast check
        "hi\nfill\u3164er\n".encode(),  # printable, yet stripped (Hangul filler)
        b"hi\n" + b"x" * 101 + b"\n",  # over the limit
    ):
        assert decode_chat_block(block, 100) is None, block


def test_the_limit_counts_bytes_after_the_cr_goes() -> None:
    assert decode_chat_block(b"a" * 100 + b"\r\nb\n", 100) == ["a" * 100, "b"]
    assert decode_chat_block("é".encode() * 51 + b"\nb\n", 100) is None  # 102 bytes


def test_lines_clean_agrees_with_the_per_line_check() -> None:
    assert lines_clean("a\nb c\nü")
    assert not lines_clean("a\n\x00")
    assert not lines_clean("a\n\u2800")  # braille blank: printable, stripped


# --- the connection --------------------------------------------------------------------


def test_the_connection_reads_a_block_of_chat_lines_at_once() -> None:
    conn = plain_server()
    conn.receive_data(b"one\ntwo\nthree\n/who\nfour\n")
    assert conn.next_chat_lines(2) == ["one", "two"]
    assert conn.next_chat_lines(10) is None  # "/who" is in the block: one by one
    assert conn.next_event() == Say("three")
    assert conn.next_event().TYPE == "who"
    assert conn.next_chat_lines(10) is None  # a single line: as cheap one by one
    assert conn.next_event() == Say("four")
    assert conn.next_event() is NEED_DATA


def test_lines_that_needed_a_closer_look_are_read_one_by_one_then_blocks_resume() -> None:
    conn = plain_server()
    conn.receive_data(b"/who\na\nb\n")
    assert conn.next_chat_lines(10) is None  # the command is in the block
    assert conn.next_event().TYPE == "who"
    assert conn.next_chat_lines(10) is None  # not looked at again: one by one
    assert [conn.next_event(), conn.next_event()] == [Say("a"), Say("b")]
    conn.receive_data(b"c\nd\n")
    assert conn.next_chat_lines(10) == ["c", "d"]


def test_only_a_plain_peer_on_the_server_side_reads_blocks() -> None:
    unknown = Connection(Role.SERVER)
    unknown.receive_data(b"a\nb\n")
    assert unknown.next_chat_lines(10) is None  # its first line still says what it is
    assert unknown.next_event() == Say("a")
    client = Connection(Role.CLIENT)
    client.receive_data(b"a\nb\n")
    assert client.next_chat_lines(10) is None


lines = st.lists(
    st.one_of(
        st.text(alphabet=st.sampled_from("ab/ \té\x1b\r\u200b"), max_size=4),
        st.text(max_size=12),
        st.sampled_from(["/who", "//x", "", " ", "\t", "\x1b[1m", "\u200b", "é" * 40]),
    ),
    min_size=1,
    max_size=12,
)


def one_by_one(conn: Connection) -> list[object]:
    got: list[object] = []
    for _ in range(1000):
        try:
            event = conn.next_event()
        except RemoteProtocolError as exc:
            got.append(exc.code)
            continue
        if event is NEED_DATA:
            return got
        got.append(event)
    raise AssertionError("no end")


@settings(max_examples=500, deadline=None)
@example(["", "x"], b"\n", 5)
@example(["x", "", "y"], b"\r\n", 5)
@example(["x", "  "], b"\n", 5)
@given(lines, st.sampled_from([b"\n", b"\r\n"]), st.integers(min_value=1, max_value=20))
def test_a_block_gives_what_line_by_line_reading_gives(
    texts: list[str], ending: bytes, limit: int
) -> None:
    data = b"".join(t.encode("utf-8", "surrogatepass") + ending for t in texts) + b"tail"
    fast, slow = plain_server(), plain_server()
    fast.receive_data(data)
    slow.receive_data(data)
    got: list[object] = []
    for _ in range(100):
        block = fast.next_chat_lines(limit)
        if block is None:
            break
        assert 2 <= len(block) <= limit
        got.extend(Say(text) for text in block)
    got.extend(one_by_one(fast))
    assert got == one_by_one(slow)
    for conn in (fast, slow):
        conn.receive_data(b"\n")
    assert one_by_one(fast) == one_by_one(slow) == [Say("tail")]


# --- what the block's messages are sent as ------------------------------------------------


def test_the_joined_form_is_each_message_encoded_then_joined() -> None:
    texts = ["hi", "héllo", "* not an action"]
    messages = [Message.said(i, t, "bob", 0, None) for i, t in enumerate(texts, 1)]
    assert encode_plain_said("bob", texts) == b"".join(encode_plain(m) for m in messages)


def test_a_message_said_equals_one_built_and_checked() -> None:
    assert Message.said(7, "hi", "bob", 5, "lobby") == Message(
        id=7, nick="bob", text="hi", ts=5, room="lobby"
    )
