"""IRC messages as bytes: parsing and formatting (RFC 1459/2812, Modern IRC, IRCv3 tags).

Sans-I/O and a leaf: a line in, an :class:`IrcMessage` out; a message in, a line out.
A message is ``[@tags ][:source ]COMMAND [params...] [:trailing]`` and at most 512
bytes with its CRLF, tags not counted (a client's tags may take 4,096 bytes more).
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: The longest line without tags, CRLF included (RFC 1459 §2.3).
LINE_BYTES = 512
#: The longest tags part a client may send (IRCv3 message-tags).
TAG_BYTES = 4096

_TAG_UNESCAPE = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}
_TAG_ESCAPE = str.maketrans({";": "\\:", " ": "\\s", "\\": "\\\\", "\r": "\\r", "\n": "\\n"})


class IrcSyntaxError(ValueError):
    """A line that is no IRC message."""


@dataclass(frozen=True, slots=True)
class IrcMessage:
    command: str
    params: tuple[str, ...] = ()
    source: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def param(self, index: int) -> str | None:
        return self.params[index] if index < len(self.params) else None


def parse(line: str) -> IrcMessage:
    """One line (without CRLF) as a message; IrcSyntaxError if it is none."""
    tags: dict[str, str] = {}
    rest = line.lstrip(" ")
    if rest.startswith("@"):
        raw, _, rest = rest[1:].partition(" ")
        tags = _parse_tags(raw)
        rest = rest.lstrip(" ")
    source = None
    if rest.startswith(":"):
        source, _, rest = rest[1:].partition(" ")
        rest = rest.lstrip(" ")
    trailing = None
    if " :" in rest:
        rest, trailing = rest.split(" :", 1)
    elif rest.startswith(":"):
        rest, trailing = "", rest[1:]
    words = rest.split()
    if not words:
        raise IrcSyntaxError("no command")
    command, params = words[0].upper(), words[1:]
    if not (command.isalpha() or (command.isdigit() and len(command) == 3)):
        raise IrcSyntaxError(f"not a command: {command[:20]!r}")
    if trailing is not None:
        params.append(trailing)
    return IrcMessage(command, tuple(params), source, tags)


def _parse_tags(raw: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for item in raw.split(";"):
        if not item:
            continue
        key, _, value = item.partition("=")
        out, escaped = [], False
        for char in value:
            if escaped:
                out.append(_TAG_UNESCAPE.get(char, char))
                escaped = False
            elif char == "\\":
                escaped = True
            else:
                out.append(char)
        tags[key] = "".join(out)
    return tags


def line(
    command: str,
    *params: str,
    source: str | None = None,
    tags: dict[str, str] | None = None,
    trailing: bool = True,
) -> bytes:
    """The bytes of one message, CRLF included. The last parameter is sent as a
    trailing one (``:``), as servers send text; with ``trailing=False`` only when it
    must be (empty, with a space, or starting with a colon): ``JOIN #room``."""
    parts = []
    if tags:
        parts.append("@" + ";".join(_tag(key, value) for key, value in tags.items()))
    if source:
        parts.append(":" + source)
    parts.append(command)
    if params:
        *middle, last = params
        parts.extend(middle)
        must = not last or " " in last or last[0] == ":"
        parts.append(":" + last if (trailing or must) else last)
    return (" ".join(parts) + "\r\n").encode()


def _tag(key: str, value: str) -> str:
    return f"{key}={value.translate(_TAG_ESCAPE)}" if value else key


def split_utf8(text: str, limit: int) -> list[str]:
    """``text`` in pieces of at most ``limit`` UTF-8 bytes each, never cutting a
    character (and preferring to cut at a space); at least one piece."""
    data = text.encode()
    if len(data) <= limit:
        return [text]
    pieces: list[str] = []
    while len(data) > limit:
        cut = limit
        while cut > 0 and (data[cut] & 0xC0) == 0x80:  # inside a character
            cut -= 1
        space = data.rfind(b" ", 0, cut)
        if space > limit // 2:
            cut = space + 1
        pieces.append(data[:cut].decode().rstrip(" ") or data[:cut].decode())
        data = data[cut:]
    if data:
        pieces.append(data.decode())
    return pieces
