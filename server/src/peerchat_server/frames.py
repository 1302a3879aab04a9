"""An event's bytes, encoded once per form and shared by every recipient of that form.

No server imports (a leaf module): the fan-out, a session's own queue and, next, other
kinds of peer all take their bytes from here.
"""

from __future__ import annotations

from peerchat_protocol import Connection, Event, PeerKind, encode_json, encode_plain


class Frames:
    """One event's bytes, each form encoded on first use and then shared."""

    __slots__ = ("_forms", "event")

    def __init__(self, event: Event) -> None:
        self.event = event
        self._forms: dict[object, bytes] = {}

    def for_form(self, form: object) -> bytes:
        """The bytes for one form: a JSON protocol version (int), "plain" or "plain+ts"."""
        data = self._forms.get(form)
        if data is None:
            if isinstance(form, int):
                data = encode_json(self.event, form)
            else:
                data = encode_plain(self.event, timestamps=form == PLAIN_TS)
            self._forms[form] = data
        return data


#: The plain-text forms of :class:`Frames`.
PLAIN = "plain"
PLAIN_TS = "plain+ts"


def form_of(conn: Connection) -> object:
    """Which form of an event ``conn``'s peer gets."""
    if conn.kind is PeerKind.RICH:
        return conn.version
    return PLAIN_TS if conn.timestamps else PLAIN
