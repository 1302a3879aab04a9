"""Text hygiene: stripping terminal escapes from untrusted text, and the nickname rules."""

from __future__ import annotations

import re
from functools import lru_cache

from .limits import NAME_MAX_LENGTH, NICK_MAX_LENGTH, ROOM_MAX_LENGTH

# Terminal escape sequences: CSI (colours, cursor moves), OSC (window titles,
# hyperlinks, clipboard writes), DCS/SOS/PM/APC strings and two-byte ESC forms.
# They are removed whole, so no fragment such as "[31m" is left behind.
_ESCAPE_SEQUENCE = re.compile(
    r"""
      \x1b\[[0-?]*[ -/]*[@-~]?             # CSI ... final byte
    | \x9b[0-?]*[ -/]*[@-~]?               # 8-bit CSI
    | \x1b\][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?   # OSC ... BEL or ST
    | \x9d[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?     # 8-bit OSC
    | \x1b[PX^_][^\x1b\x9c]*(?:\x1b\\|\x9c)?        # DCS, SOS, PM, APC
    | \x1b[ -/]*[0-~]?                     # other ESC sequences (ESC c, ESC ( B ...)
    """,
    re.VERBOSE,
)

# What else is stripped: the text policy of PROTOCOL.md, section 3.1. Code points
# are listed as inclusive ranges; the character class is built from them once.
#
# Default_Ignorable_Code_Point, copied from Unicode 15.0.0 DerivedCoreProperties.txt
# (https://www.unicode.org/Public/15.0.0/ucd/DerivedCoreProperties.txt; Python's
# unicodedata has no such property). These draw nothing, so they hide look-alikes,
# smuggle data (tag characters spell hidden ASCII) or reorder text on screen.
_DEFAULT_IGNORABLE: tuple[tuple[int, int], ...] = (
    (0x00AD, 0x00AD),  # soft hyphen
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x061C, 0x061C),  # Arabic letter mark
    (0x115F, 0x1160),  # Hangul choseong and jungseong fillers
    (0x17B4, 0x17B5),  # Khmer inherent vowels (deprecated)
    (0x180B, 0x180F),  # Mongolian free variation selectors, vowel separator
    (0x200B, 0x200F),  # zero width space, (non-)joiner, LRM, RLM
    (0x202A, 0x202E),  # bidi embeddings and overrides ("Trojan Source")
    (0x2060, 0x206F),  # word joiner, invisible operators, bidi isolates, deprecated formats
    (0x3164, 0x3164),  # Hangul filler
    (0xFE00, 0xFE0F),  # variation selectors 1-16
    (0xFEFF, 0xFEFF),  # zero width no-break space (byte order mark)
    (0xFFA0, 0xFFA0),  # halfwidth Hangul filler
    (0xFFF0, 0xFFF8),  # unassigned
    (0x1BCA0, 0x1BCA3),  # shorthand format controls
    (0x1D173, 0x1D17A),  # musical symbol beams, ties, slurs, phrases
    (0xE0000, 0xE0FFF),  # tag characters, variation selectors 17-256, unassigned
)
# Format characters (general category Cf, Unicode 15.0.0 UnicodeData.txt) that are not
# default-ignorable: prepended concatenation marks, interlinear annotation, Egyptian
# hieroglyph format controls. All of Cf goes, so no format control is left to a terminal.
_OTHER_FORMAT: tuple[tuple[int, int], ...] = (
    (0x0600, 0x0605),  # Arabic number signs
    (0x06DD, 0x06DD),  # Arabic end of ayah
    (0x070F, 0x070F),  # Syriac abbreviation mark
    (0x0890, 0x0891),  # Arabic pound and piastre marks above
    (0x08E2, 0x08E2),  # Arabic disputed end of ayah
    (0xFFF9, 0xFFFB),  # interlinear annotation anchor, separator, terminator
    (0x110BD, 0x110BD),  # Kaithi number sign
    (0x110CD, 0x110CD),  # Kaithi number sign above
    (0x13430, 0x1343F),  # Egyptian hieroglyph format controls
)
# The rest: C0 and C1 controls and DEL (tab and newline are handled apart), line and
# paragraph separators, lone surrogates (not encodable as UTF-8), and the braille
# pattern blank, a printable character that draws nothing (the Hangul fillers, its
# kin, are default-ignorable above).
_OTHER_UNSAFE: tuple[tuple[int, int], ...] = (
    (0x00, 0x08),
    (0x0B, 0x1F),
    (0x7F, 0x9F),
    (0x2028, 0x2029),
    (0x2800, 0x2800),
    (0xD800, 0xDFFF),
)
#: Kept although default-ignorable or format characters: zero width non-joiner and
#: joiner (emoji sequences, Persian, Indic scripts need them) and variation selectors
#: 15 and 16 (text or emoji presentation: "❤️" is U+2764 U+FE0F).
KEPT_INVISIBLES = frozenset("\u200c\u200d\ufe0e\ufe0f")


def _char_class(ranges: tuple[tuple[int, int], ...], *, printable_only: bool = False) -> str:
    """A regular expression character class for ``ranges`` less :data:`KEPT_INVISIBLES`
    (with ``printable_only``, only those of them that ``str.isprintable`` accepts)."""
    points = sorted(
        cp
        for low, high in ranges
        for cp in range(low, high + 1)
        if chr(cp) not in KEPT_INVISIBLES and (chr(cp).isprintable() or not printable_only)
    )
    runs: list[list[int]] = []
    for cp in points:
        if runs and runs[-1][1] == cp - 1:
            runs[-1][1] = cp
        else:
            runs.append([cp, cp])
    parts = (
        re.escape(chr(low)) if low == high else f"{re.escape(chr(low))}-{re.escape(chr(high))}"
        for low, high in runs
    )
    return f"[{''.join(parts)}]"


_STRIPPED = (*_DEFAULT_IGNORABLE, *_OTHER_FORMAT, *_OTHER_UNSAFE)
_UNSAFE_KEEP_NEWLINES = re.compile(_char_class(_STRIPPED))
_UNSAFE = re.compile(_char_class((*_STRIPPED, (0x0A, 0x0A))))  # and newlines
# The few of them that str.isprintable() accepts (fillers, variation selectors, the
# combining grapheme joiner, the braille blank), the only ones printable text can hold:
# it has no control character, hence no escape sequence either, so this smaller class
# (about twice as fast to scan) is all it needs.
_PRINTABLE_UNSAFE = re.compile(_char_class(_STRIPPED, printable_only=True))

_ROOM = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.\-]{{0,{ROOM_MAX_LENGTH - 1}}}")
_NICK = re.compile(rf"[A-Za-z0-9_][A-Za-z0-9_.\-]{{0,{NICK_MAX_LENGTH - 1}}}")

#: Names nobody may take: they would pass for the server talking. Look-alikes are
#: refused too (see :func:`nick_problem`).
RESERVED_NICKS = frozenset({"server", "peerchat", "system"})

# Confusable characters of the nickname alphabet (A-Z a-z 0-9 _ - .): every row of
# Unicode's confusables.txt (UTS #39, data version 13.0.0,
# https://www.unicode.org/Public/security/13.0.0/confusables.txt) whose source is one
# of them. The rows with an ASCII source are the same in version 10.0.0 and in the
# table confusable_homoglyphs 3.3.1 ships (2024):
#   0030 ; 004F ;      MA # ( 0 → O ) DIGIT ZERO → LATIN CAPITAL LETTER O
#   0031 ; 006C ;      MA # ( 1 → l ) DIGIT ONE → LATIN SMALL LETTER L
#   0049 ; 006C ;      MA # ( I → l ) LATIN CAPITAL LETTER I → LATIN SMALL LETTER L
#   006D ; 0072 006E ; MA # ( m → rn ) LATIN SMALL LETTER M → LATIN SMALL LETTER R, ... N
# Its other ASCII rows (` → ', " → '', | → l, % → º/₀) have sources no nickname holds.
_CONFUSABLE_ASCII = str.maketrans({"0": "O", "1": "l", "I": "l", "m": "rn"})
_SEPARATORS = str.maketrans("", "", "_-.")


def sanitize(text: str, *, keep_newlines: bool = False) -> str:
    """Return ``text`` safe to show on a terminal or write to a log.

    Escape sequences are removed whole, tabs become spaces, and every control,
    format, reordering or invisible character is dropped (the list is in
    PROTOCOL.md, section 3.1); zero width (non-)joiners and the emoji and text
    variation selectors stay. ``keep_newlines`` keeps ``\\n`` (multi-line notices);
    everywhere else a newline is dropped so one event stays one line. The result is
    clean (:func:`is_clean`), so sanitizing twice changes nothing more.
    """
    if text.isprintable():  # fast path: every relayed line comes here
        return text if text.isascii() else _PRINTABLE_UNSAFE.sub("", text)
    text = _ESCAPE_SEQUENCE.sub("", text).replace("\t", " ")
    pattern = _UNSAFE_KEEP_NEWLINES if keep_newlines else _UNSAFE
    return pattern.sub("", text)


def is_clean(text: str, *, keep_newlines: bool = False) -> bool:
    """True when :func:`sanitize` would leave ``text`` unchanged."""
    if text.isprintable():
        return text.isascii() or _PRINTABLE_UNSAFE.search(text) is None
    # Every escape sequence starts with a stripped character (ESC, or C1 CSI or OSC),
    # so text without tabs and stripped characters has no sequence either.
    pattern = _UNSAFE_KEEP_NEWLINES if keep_newlines else _UNSAFE
    return "\t" not in text and pattern.search(text) is None


def lines_clean(text: str) -> bool:
    """True when every ``\n``-separated line of ``text`` is printable text that
    :func:`sanitize` leaves unchanged: the one check a block of chat lines takes
    (False may still be clean: a tab, a no-break space; check such lines one by one)."""
    if not text.replace("\n", " ").isprintable():
        return False
    return text.isascii() or _PRINTABLE_UNSAFE.search(text) is None


@lru_cache(maxsize=4096)
def nick_problem(nick: str) -> str | None:
    """Why ``nick`` cannot be chosen as a nickname, or ``None`` when it can."""
    if not nick:
        return "a nickname cannot be empty"
    if len(nick) > NICK_MAX_LENGTH:
        return f"a nickname has at most {NICK_MAX_LENGTH} characters"
    if not _NICK.fullmatch(nick):
        return (
            "a nickname uses only letters A-Z, digits, '_', '-' and '.', "
            "and starts with a letter, digit or '_'"
        )
    if fold(nick) in RESERVED_NICKS:
        return f"the name {nick!r} is reserved"
    like = _reserved_look_alike(nick)
    if like is not None:
        return f"the name {nick!r} is reserved: it looks like {like!r}"
    return None


def _reserved_look_alike(nick: str) -> str | None:
    """The reserved name ``nick`` would pass for once its ``_ - .`` are taken out
    (``Server.``, ``s_e_r_v_e_r``, ``SYSTEM_``, ``5erver`` is not one), or ``None``."""
    bare = nick.translate(_SEPARATORS)
    for word in sorted(RESERVED_NICKS):
        if fold(bare) == word or skeleton(bare) == skeleton(word):
            return word
    return None


@lru_cache(maxsize=4096)  # names recur on every message: check each one once
def name_problem(name: str) -> str | None:
    """Why ``name`` cannot label a peer in an event, or ``None`` when it can.

    Looser than :func:`nick_problem`: the server also names peers by address
    (``127.0.0.1:53122``, ``[::1]:5000``), which users cannot pick as nicknames.
    """
    if not name:
        return "a name cannot be empty"
    if len(name) > NAME_MAX_LENGTH:
        return f"a name has at most {NAME_MAX_LENGTH} characters"
    if not name.isprintable() or any(ch.isspace() for ch in name):
        return "a name has no spaces or control characters"
    return None


def fold(name: str) -> str:
    """The key under which names are compared: case-insensitive.

    Two names clash when their :func:`fold` or their :func:`skeleton` is the same.
    """
    return name.casefold()


def skeleton(name: str) -> str:
    """The key under which names that look alike are the same: ``aIice`` (capital i),
    ``a1ice`` and ``alice`` have one skeleton, and so do ``b0b`` and ``bob``.

    Unicode TS #39's skeleton (section 4, "Confusable Detection") restricted to our
    ASCII nickname alphabet, then case-folded, as the IRC server Ergo does it
    (``Skeleton``: width fold, confusables skeleton, then case fold). Each character
    is mapped once by confusables.txt: ``0`` → ``O``, ``1`` → ``l``, ``I`` → ``l``,
    ``m`` → ``rn``. NFD and Ergo's width fold change nothing in ASCII; other
    characters pass unchanged (nicknames are ASCII, :func:`nick_problem`).

    Mappings kept and dropped: none of the table's rows for our alphabet is dropped.
    Ergo's ``SkeletonTweaked`` drops ``m`` → ``rn`` as an "ASCII-to-ASCII mapping"
    (and has dropping ``I``/``1`` → ``l`` and ``0`` → ``O`` written out but disabled).
    We keep it: a false clash costs little here, where a name only clashes with one
    online at the same time, while ``rn`` for ``m`` is a classic spoof, and one
    column more in a terminal is easily missed.

    The case fold comes after the mapping, as in Ergo (folding first would turn
    ``I`` into ``i`` and lose its likeness to ``l``). So a skeleton is not a function
    of :func:`fold`: compute it from the name as given. The price: ``I``, ``l`` and
    ``L`` share a skeleton, so ``IAN`` clashes with ``LAN``, as ``lan`` does by case.
    """
    return name.translate(_CONFUSABLE_ASCII).casefold()


@lru_cache(maxsize=1024)
def room_problem(room: str) -> str | None:
    """Why ``room`` cannot name a room, or ``None`` when it can (without its '#')."""
    if not room:
        return "a room name cannot be empty"
    if len(room) > ROOM_MAX_LENGTH:
        return f"a room name has at most {ROOM_MAX_LENGTH} characters"
    if not _ROOM.fullmatch(room):
        return (
            "a room name uses only letters A-Z, digits, '_', '-' and '.', "
            "and starts with a letter or digit"
        )
    return None
