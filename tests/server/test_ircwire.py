"""IRC message syntax (ircwire.py): no I/O, every branch."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerchat_server.ircwire import IrcMessage, IrcSyntaxError, line, parse, split_utf8


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("NICK alice", IrcMessage("NICK", ("alice",))),
        ("privmsg #lobby :hi there", IrcMessage("PRIVMSG", ("#lobby", "hi there"))),
        (":a!b@c PRIVMSG #x :", IrcMessage("PRIVMSG", ("#x", ""), "a!b@c")),
        ("USER u 0 * :Real Name", IrcMessage("USER", ("u", "0", "*", "Real Name"))),
        ("  PING   token  ", IrcMessage("PING", ("token",))),
        (":src TRAILING", IrcMessage("TRAILING", (), "src")),
        (
            "CAP REQ :server-time message-tags",
            IrcMessage("CAP", ("REQ", "server-time message-tags")),
        ),
        ("001 me :welcome", IrcMessage("001", ("me", "welcome"))),
        (
            "@time=2026-01-01T00:00:00.000Z;+x=a\\sb\\:c\\\\ TAGMSG #lobby",
            IrcMessage(
                "TAGMSG", ("#lobby",), None, {"time": "2026-01-01T00:00:00.000Z", "+x": "a b;c\\"}
            ),
        ),
        ("@flag :src QUIT :gone now", IrcMessage("QUIT", ("gone now",), "src", {"flag": ""})),
    ],
)
def test_parse(raw: str, expected: IrcMessage) -> None:
    assert parse(raw) == expected


@pytest.mark.parametrize("raw", ["", "   ", ":source", "@tags", "12 34", "NI-CK x", "1234 x"])
def test_what_is_no_message(raw: str) -> None:
    with pytest.raises(IrcSyntaxError):
        parse(raw)


def test_line_puts_text_last_as_trailing_and_joins_and_nicks_bare() -> None:
    assert line("PRIVMSG", "#lobby", "hi", source="a!a@h") == b":a!a@h PRIVMSG #lobby :hi\r\n"
    assert line("JOIN", "#lobby", source="a!a@h", trailing=False) == b":a!a@h JOIN #lobby\r\n"
    assert line("PART", "#x", "", trailing=False) == b"PART #x :\r\n"
    assert line("NICK", ":odd", trailing=False) == b"NICK ::odd\r\n"
    assert line("PING") == b"PING\r\n"
    tagged = line("PRIVMSG", "#x", "t", tags={"time": "now", "k": "a b;c"})
    assert tagged == b"@time=now;k=a\\sb\\:c PRIVMSG #x :t\r\n"
    assert parse(tagged.decode().removesuffix("\r\n")).tags == {"time": "now", "k": "a b;c"}


def test_split_keeps_short_text_whole_and_prefers_spaces() -> None:
    assert split_utf8("short", 10) == ["short"]
    assert split_utf8("aaaa bbbb cccc", 10) == ["aaaa bbbb", "cccc"]
    assert split_utf8("é" * 5, 4) == ["éé", "éé", "é"]


@given(st.text(min_size=1, max_size=400), st.integers(min_value=4, max_value=120))
def test_split_never_cuts_a_character_nor_passes_the_limit(text: str, limit: int) -> None:
    pieces = split_utf8(text, limit)
    assert all(len(piece.encode()) <= limit for piece in pieces)
    assert "".join(pieces).replace(" ", "") == text.replace(" ", "")
