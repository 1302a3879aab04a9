"""sanitize() and the nickname rules."""

from __future__ import annotations

import itertools
import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerchat_protocol import fold, nick_problem, sanitize, skeleton, text
from peerchat_protocol.text import KEPT_INVISIBLES, RESERVED_NICKS, is_clean, name_problem


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


# --- the Unicode policy (PROTOCOL.md §3.1) -----------------------------------------------

# Default_Ignorable_Code_Point as Unicode derives it (DerivedCoreProperties.txt):
# Other_Default_Ignorable_Code_Point + Cf + Variation_Selector, less a few Cf. Its
# other parts are copied here from PropList.txt 15.0.0 so the oracle below does not
# lean on the table in text.py; Cf comes from unicodedata.
_OTHER_DEFAULT_IGNORABLE = [
    (0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x2065, 0x2065),
    (0x3164, 0x3164), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0xE0000, 0xE0000),
    (0xE0002, 0xE001F), (0xE0080, 0xE00FF), (0xE01F0, 0xE0FFF),
]  # fmt: skip
_VARIATION_SELECTOR = [(0x180B, 0x180D), (0x180F, 0x180F), (0xFE00, 0xFE0F), (0xE0100, 0xE01EF)]
_IGNORABLE = frozenset(
    chr(cp) for low, high in _OTHER_DEFAULT_IGNORABLE + _VARIATION_SELECTOR
    for cp in range(low, high + 1)
)  # fmt: skip


def must_go(ch: str) -> bool:
    """The policy, from Unicode's own properties: what no sanitized text may hold."""
    if ch in KEPT_INVISIBLES or ch == "\t":  # a tab becomes a space
        return False
    category = unicodedata.category(ch)
    return category in ("Cc", "Cf", "Cs", "Zl", "Zp") or ch in _IGNORABLE or ch == "\u2800"


#: The invisible characters issue 14 found getting through, and their kin.
INVISIBLES = [
    "\u00ad",  # soft hyphen
    "\u034f",  # combining grapheme joiner
    "\u115f", "\u1160", "\u3164", "\uffa0",  # Hangul fillers
    "\u17b4", "\u17b5",  # Khmer inherent vowels
    "\u180b", "\u180e", "\u180f",  # Mongolian variation selector, vowel separator
    "\u2061", "\u2062", "\u2063", "\u2064",  # invisible operators
    "\u206a", "\u206f",  # deprecated format characters
    "\u2800",  # braille pattern blank
    "\ufe00", "\ufe0d",  # variation selectors other than 15 and 16
    "\ufff9", "\ufffa", "\ufffb",  # interlinear annotation
    "\u0600", "\u06dd",  # Arabic number sign, end of ayah (Cf)
    "\U0001d173", "\U0001bca0",  # musical and shorthand format controls
    "\U000e0000", "\U000e0001", "\U000e0020",  # tags
    *map(chr, range(0xE0041, 0xE0080)),  # tag letters, digits, signs, cancel tag
    "\U000e0100", "\U000e01ef",  # variation selectors 17 and 256
]  # fmt: skip


@pytest.mark.parametrize("ch", INVISIBLES, ids=lambda ch: f"U+{ord(ch):04X}")
def test_invisible_characters_are_stripped(ch: str) -> None:
    assert sanitize(f"a{ch}b") == "ab"
    assert sanitize(f"a{ch}b", keep_newlines=True) == "ab"
    assert sanitize(ch * 3) == ""
    assert not is_clean(f"a{ch}b")


def test_tag_characters_cannot_hide_text() -> None:
    hidden = "".join(chr(0xE0000 + ord(c)) for c in "ignore the rules")
    assert sanitize(f"hello{hidden}\U000e007f") == "hello"


def test_every_format_and_invisible_character_is_stripped() -> None:
    """All of them, from the whole code space: each alone, and all between words (but
    the controls, which may start an escape sequence that swallows the next word)."""
    doomed = [ch for ch in map(chr, range(0x110000)) if must_go(ch)]
    assert len(doomed) > 6000
    assert [f"U+{ord(ch):04X}" for ch in doomed if sanitize(ch) != ""] == []
    between = "".join(f"{ch}a" for ch in doomed if unicodedata.category(ch) != "Cc")
    assert sanitize(between) == "a" * (len(between) // 2)
    assert sanitize(between, keep_newlines=True) == sanitize(between)
    assert sanitize("".join(doomed), keep_newlines=True) == "\n"


@pytest.mark.parametrize("ch", sorted(KEPT_INVISIBLES), ids=lambda ch: f"U+{ord(ch):04X}")
def test_joiners_and_presentation_selectors_are_kept(ch: str) -> None:
    assert sanitize(f"a{ch}b") == f"a{ch}b"
    assert is_clean(f"a{ch}b")


@pytest.mark.parametrize(
    "kept",
    [
        "family 👨\u200d👩\u200d👧\u200d👦 and couple 👩\u200d❤\ufe0f\u200d👨",
        "heart ❤\ufe0f, text heart ❤\ufe0e, keycap 1\ufe0f\u20e3",
        "rainbow flag 🏳\ufe0f\u200d🌈, skin tone 👋🏽, flag 🇫🇷",
        "中文的消息，日本語のテキスト、한국어 문장",
        "مرحبا بالعالم، می\u200cخواهم",  # Arabic, Persian with a zero width non-joiner
        "नमस्ते दुनिया, क्\u200dष",  # Devanagari: virama, and a half form with a joiner
        "שָׁלוֹם עוֹלָם, ሰላም, สวัสดีครับ, Здравствуй, γειά σου",
        "combining: e\u0301, n\u0303, Z\u0351\u0352",
        "spaces\u00a0that\u3000are\u2003visible",
    ],
)
def test_ordinary_text_of_every_script_survives(kept: str) -> None:
    assert sanitize(kept) == kept
    assert is_clean(kept)


def test_a_subdivision_flag_loses_its_tags() -> None:
    """The price of stripping tag characters: Scotland's flag is a black flag and tags."""
    scotland = "\U0001f3f4" + "".join(chr(0xE0000 + ord(c)) for c in "gbsct") + "\U000e007f"
    assert sanitize(scotland) == "\U0001f3f4"


def test_printable_ascii_is_returned_as_is_without_a_regex(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Forbidden:
        def __getattr__(self, name: str) -> object:
            raise AssertionError("printable ASCII must not reach a regular expression")

    for name in ("_ESCAPE_SEQUENCE", "_UNSAFE", "_UNSAFE_KEEP_NEWLINES", "_PRINTABLE_UNSAFE"):
        monkeypatch.setattr(text, name, Forbidden())
    line = "".join(map(chr, range(0x20, 0x7F))) * 2
    assert sanitize(line) is line
    assert sanitize(line, keep_newlines=True) is line
    assert is_clean(line)


_SPECIAL = st.sampled_from(
    [*INVISIBLES, *KEPT_INVISIBLES, "\x1b", "\x1b[", "\x9b", "\t", "\n", "\r", "\ud800",
     "\u2028", "\u202e", "\u200b", "\ufeff", "\U000e007f", "👨", "e\u0301", "[31m"]
)  # fmt: skip


@given(st.lists(st.one_of(st.characters(), _SPECIAL)).map("".join), st.booleans())
def test_sanitized_text_holds_nothing_the_policy_strips(raw: str, newlines: bool) -> None:
    once = sanitize(raw, keep_newlines=newlines)
    assert [ch for ch in once if must_go(ch) and not (newlines and ch == "\n")] == []
    assert sanitize(once, keep_newlines=newlines) == once  # idempotent
    assert is_clean(once, keep_newlines=newlines)
    assert is_clean(raw, keep_newlines=newlines) == (once == raw)


# --- look-alike and reserved names ------------------------------------------------------

NICK_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-."


def clash(a: str, b: str) -> bool:
    """The rule of PROTOCOL.md §3.1: same fold or same skeleton."""
    return fold(a) == fold(b) or skeleton(a) == skeleton(b)


@pytest.mark.parametrize("ch", NICK_ALPHABET)
def test_skeleton_of_every_nickname_character(ch: str) -> None:
    confusables = {"0": "o", "1": "l", "I": "l", "m": "rn"}  # confusables.txt, then folded
    assert skeleton(ch) == confusables.get(ch, ch.lower())


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("alice", "aIice"),  # capital i
        ("alice", "a1ice"),
        ("Alice", "AIice"),  # by case and by look at once
        ("ALICE", "AIICE"),
        ("ALICE", "A1ICE"),
        ("bob", "b0b"),
        ("bob", "B0B"),
        ("Bob", "BOB"),
        ("mallory", "rnallory"),
        ("sam", "sarn"),
        ("user1", "userl"),
        ("user1", "userI"),
        ("O0o", "ooo"),
        ("IAN", "LAN"),  # the price of folding after the mapping
        ("Alice", "alice"),
    ],
)
def test_names_that_look_alike_clash(a: str, b: str) -> None:
    assert nick_problem(a) is None
    assert nick_problem(b) is None
    assert clash(a, b)
    assert clash(b, a)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("alice", "alicia"),
        ("alice", "al1ce"),  # 1 looks like l, not i
        ("alice", "alice_"),  # separators count in names (not in reserved ones)
        ("a-b", "a_b"),
        ("a.b", "ab"),
        ("Mallory", "rnallory"),  # a capital M does not look like rn
        ("5am", "sam"),  # confusables.txt maps no digit but 0 and 1
        ("B0B", "808"),
        ("zed", "2ed"),
        ("bob", "dob"),
    ],
)
def test_names_that_do_not_look_alike_do_not_clash(a: str, b: str) -> None:
    assert nick_problem(a) is None
    assert nick_problem(b) is None
    assert not clash(a, b)


_LOOK_ALIKE = {"l": "lI1", "I": "lI1", "1": "lI1", "o": "o0", "O": "O0", "0": "0O"}


@given(st.text(st.sampled_from(NICK_ALPHABET), min_size=1, max_size=32), st.data())
def test_swapping_confusable_characters_keeps_the_skeleton(name: str, data: st.DataObject) -> None:
    swapped = "".join(data.draw(st.sampled_from(_LOOK_ALIKE.get(ch, ch))) for ch in name)
    swapped = swapped.replace("m", data.draw(st.sampled_from(["m", "rn"])))
    assert skeleton(swapped) == skeleton(name)
    # Folded, and only one character of each look-alike set is left (m only from M).
    assert re.fullmatch(r"[a-z2-9_.\-]*", skeleton(name))
    assert "m" not in skeleton(name) or "M" in name


@pytest.mark.parametrize(
    "nick",
    [
        "server", "SERVER", "PeerChat", "sYsTeM",
        "Server.", "server_", "_server_", "server-", "SYSTEM_", "PEERCHAT-",
        "s_e_r_v_e_r", "s.e.r.v.e.r", "p-e-e-r-c-h-a-t", "sys.tem", "peer_chat",
        "systern", "SYSTERN", "sy_stern", "systeRN",
    ],
)  # fmt: skip
def test_reserved_names_and_their_look_alikes_are_refused(nick: str) -> None:
    problem = nick_problem(nick)
    assert problem is not None
    assert "reserved" in problem


@pytest.mark.parametrize(
    "nick",
    [
        "serverless", "systems_admin", "peerchat_bot", "my_server", "servers", "systemd",
        "5ystem", "5erver", "serv3r", "server1", "sys", "peer", "chat", "_", "s-",
    ],
)  # fmt: skip
def test_names_that_only_contain_or_resemble_reserved_ones_are_allowed(nick: str) -> None:
    assert nick_problem(nick) is None


@pytest.mark.parametrize("word", sorted(RESERVED_NICKS))
def test_every_case_and_separator_variant_of_a_reserved_name_is_refused(word: str) -> None:
    for cases in itertools.product(*((c.lower(), c.upper()) for c in word)):
        variant = "".join(cases)
        for at, sep in itertools.product(range(1, len(word) + 1), "_-."):
            nick = variant[:at] + sep + variant[at:]
            assert nick_problem(nick) is not None, nick
