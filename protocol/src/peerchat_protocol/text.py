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

# What remains forbidden once sequences are gone: C0 and C1 controls, DEL, bidi
# marks, overrides and isolates (they reorder text on screen: "Trojan Source"),
# invisible zero-width space, word joiner and BOM (they hide look-alikes), line and
# paragraph separators, and lone surrogates (not encodable as UTF-8). Zero-width
# (non-)joiners stay: emoji sequences and several scripts need them.
_UNSAFE_CHARS = (
    "\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u202a-\u202e"
    "\u2060\u2066-\u2069\u2028\u2029\ufeff\ud800-\udfff"
)
_UNSAFE = re.compile(f"[{_UNSAFE_CHARS}]")
_UNSAFE_KEEP_NEWLINES = re.compile(f"[{_UNSAFE_CHARS.replace(chr(0x0A) + '-', chr(0x0B) + '-')}]")

_ROOM = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.\-]{{0,{ROOM_MAX_LENGTH - 1}}}")
_NICK = re.compile(rf"[A-Za-z0-9_][A-Za-z0-9_.\-]{{0,{NICK_MAX_LENGTH - 1}}}")

#: Names nobody may take: they would pass for the server talking.
RESERVED_NICKS = frozenset({"server", "peerchat", "system"})


def sanitize(text: str, *, keep_newlines: bool = False) -> str:
    """Return ``text`` safe to show on a terminal or write to a log.

    Escape sequences are removed, tabs become spaces, and every other control or
    reordering character is dropped. ``keep_newlines`` keeps ``\\n`` (multi-line
    notices); everywhere else a newline is dropped so one event stays one line.
    """
    if text.isprintable():  # fast path: plain printable text, the common case
        return text
    text = _ESCAPE_SEQUENCE.sub("", text).replace("\t", " ")
    pattern = _UNSAFE_KEEP_NEWLINES if keep_newlines else _UNSAFE
    return pattern.sub("", text)


def is_clean(text: str, *, keep_newlines: bool = False) -> bool:
    """True when :func:`sanitize` would leave ``text`` unchanged."""
    return text.isprintable() or sanitize(text, keep_newlines=keep_newlines) == text


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
    if nick.casefold() in RESERVED_NICKS:
        return f"the name {nick!r} is reserved"
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
    """The key under which names are compared: case-insensitive."""
    return name.casefold()


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
