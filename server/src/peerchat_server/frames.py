"""An event's bytes, encoded once per form and shared by every recipient of that form.

No server imports (a leaf module). A *form* is how one kind of peer wants an event
written: JSON lines of one protocol version, plain text lines with or without
timestamps, and next WebSocket frames or IRC lines. Each form is one object with an
``encode`` method; fan-out asks a peer for its form and never for its kind, so a new
kind of peer brings its own form and touches no fan-out code.
"""

from __future__ import annotations

from typing import Protocol

from peerchat_protocol import (
    MAX_VERSION,
    MIN_VERSION,
    Connection,
    Event,
    Message,
    PeerKind,
    encode_json,
    encode_plain,
    encode_plain_said,
)


class Form(Protocol):
    """How one kind of peer gets events: bytes for one event.

    Forms are compared by identity (each is made once), which keeps the per-recipient
    lookup in :class:`Frames` as cheap as a dict lookup can be.
    """

    def encode(self, event: Event) -> bytes: ...

    def encode_said(self, said: Said) -> bytes:
        """The bytes of all of ``said``'s messages, one after the other."""
        ...


class JsonForm:
    """One JSON object per line, in one protocol version."""

    __slots__ = ("version",)

    def __init__(self, version: int) -> None:
        self.version = version

    def encode(self, event: Event) -> bytes:
        return encode_json(event, self.version)

    def encode_said(self, said: Said) -> bytes:
        version = self.version
        return b"".join([encode_json(message, version) for message in said.messages])


class PlainForm:
    """The seed's text lines, with or without a timestamp."""

    __slots__ = ("timestamps",)

    def __init__(self, timestamps: bool) -> None:
        self.timestamps = timestamps

    def encode(self, event: Event) -> bytes:
        return encode_plain(event, timestamps=self.timestamps)

    def encode_said(self, said: Said) -> bytes:
        if self.timestamps:  # each line its own time
            return b"".join([encode_plain(m, timestamps=True) for m in said.messages])
        return encode_plain_said(said.nick, said.texts)  # the prefix in one join


#: The forms of the line protocol (plain text and JSON lines), made once each.
PLAIN = PlainForm(timestamps=False)
PLAIN_TS = PlainForm(timestamps=True)
JSON = {version: JsonForm(version) for version in range(MIN_VERSION, MAX_VERSION + 1)}


class Frames:
    """One event's bytes, each form encoded on first use and then shared."""

    __slots__ = ("_forms", "event")

    def __init__(self, event: Event) -> None:
        self.event = event
        self._forms: dict[Form, bytes] = {}

    def for_form(self, form: Form) -> bytes:
        """The bytes of this event for ``form``."""
        data = self._forms.get(form)
        if data is None:
            data = self._forms[form] = form.encode(self.event)
        return data

    @property
    def parts(self) -> tuple[Frames]:
        """The events, one Frames each (this one)."""
        return (self,)


class Said:
    """Chat lines one peer said in its room together (the lines of one read), broadcast
    as one: each form's bytes for all of them are made at once (for plain text, the
    sender's prefix goes before every line in one join), then shared like Frames'.
    """

    __slots__ = ("_forms", "messages", "nick", "texts")

    def __init__(self, nick: str, texts: list[str], messages: list[Message]) -> None:
        self.nick = nick
        self.texts = texts  # each message's text, in order
        self.messages = messages
        self._forms: dict[Form, bytes] = {}

    def for_form(self, form: Form) -> bytes:
        """The bytes of all the messages for ``form``."""
        data = self._forms.get(form)
        if data is None:
            data = self._forms[form] = form.encode_said(self)
        return data

    @property
    def parts(self) -> list[Frames]:
        """The messages, one Frames each (for what is kept per message: a replay)."""
        return [Frames(message) for message in self.messages]


#: What a fan-out sends: one event, or chat lines said together.
Broadcast = Frames | Said


def form_of(conn: Connection) -> Form:
    """Which form of an event the line-protocol peer at ``conn`` gets."""
    if conn.kind is PeerKind.RICH:
        return JSON[conn.version or MAX_VERSION]
    return PLAIN_TS if conn.timestamps else PLAIN
