"""sanitize() and the nickname rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerchat_protocol import nick_problem, sanitize
from peerchat_protocol.text import is_clean, name_problem


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("hello", "hello"),
        ("héllo wörld ✓ 🙂 中文", "héllo wörld ✓ 🙂 中文"),
        ("red \x1b[31mtext\x1b[0m", "red text"),
        ("\x1b[2J\x1b[Hcleared", "cleared"),
        ("title\x1b]0;pwned\x07!", "title!"),
        ("link \x1b]8;;http://x\x1b\\here\x1b]8;;\x1b\\", "link here"),
        ("dcs \x1bPq#0;2;0;0;0\x1b\\end", "dcs end"),
        ("c1 \x9b31mcsi", "c1 csi"),
        ("bell\x07 back\x08space nul\x00", "bell backspace nul"),
        ("tab\there", "tab here"),
        ("new\nline\rcr", "newlinecr"),
        ("bidi \u202eevil\u202c \u2066iso\u2069", "bidi evil iso"),
        ("sep\u2028arator", "separator"),
        ("lone \ud800 surrogate", "lone  surrogate"),
        ("del\x7f", "del"),
        ("esc at end \x1b", "esc at end "),
        ("reset \x1bc done", "reset  done"),
        ("zero\u200bwidth\u2060join\ufeffbom\u061cmark", "zerowidthjoinbommark"),
        ("family 👨\u200d👩\u200d👧 stays", "family 👨\u200d👩\u200d👧 stays"),
    ],
)
def test_sanitize(raw: str, clean: str) -> None:
    assert sanitize(raw) == clean


def test_sanitize_can_keep_newlines() -> None:
    assert sanitize("a\nb\x1b[1m\r", keep_newlines=True) == "a\nb"


@pytest.mark.parametrize("text", ["plain", "two\nlines", "tab\there", "bold\x1b[1m", "é 🙂"])
def test_is_clean_means_sanitize_leaves_it_alone(text: str) -> None:
    assert is_clean(text) == (sanitize(text) == text)
    assert is_clean(text, keep_newlines=True) == (sanitize(text, keep_newlines=True) == text)


@given(st.text())
def test_sanitized_text_is_clean_and_stable(text: str) -> None:
    once = sanitize(text)
    assert is_clean(once)
    assert sanitize(once) == once
    assert "\x1b" not in once
    assert "\n" not in once
    once.encode("utf-8")  # never a lone surrogate


@pytest.mark.parametrize("nick", ["alice", "Bob_2", "x", "_under", "a.b-c", "a" * 32, "9lives"])
def test_valid_nicks(nick: str) -> None:
    assert nick_problem(nick) is None


@pytest.mark.parametrize(
    ("nick", "why"),
    [
        ("", "empty"),
        ("a" * 33, "at most 32"),
        ("has space", "letters"),
        ("-dash", "starts with"),
        (".dot", "starts with"),
        ("ünï", "letters"),
        ("a:b", "letters"),
        ("evil\x1b[31m", "letters"),
        ("server", "reserved"),
        ("SERVER", "reserved"),
        ("PeerChat", "reserved"),
    ],
)
def test_invalid_nicks(nick: str, why: str) -> None:
    problem = nick_problem(nick)
    assert problem is not None
    assert why in problem


def test_names_may_be_addresses_but_not_whitespace() -> None:
    assert name_problem("127.0.0.1:53122") is None
    assert name_problem("[::1]:5000") is None
    assert name_problem("a b") is not None
    assert name_problem("") is not None
    assert name_problem("x" * 65) is not None
