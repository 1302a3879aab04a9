"""Encoding events to JSON lines and decoding JSON lines to events: rich peers' form.

Rich peers speak JSON lines (:func:`encode_json`, :func:`parse_json_object` then
:func:`from_wire`); plain-text peers' form is :mod:`.plain`'s. These are pure
functions; :class:`peerchat_protocol.Connection` applies them to a byte stream, and
a server fanning one event out to many peers calls the encoders once and reuses the
bytes.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from .errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from .events import (
    Event,
    Info,
    Message,
    PeerInfo,
    RoomInfo,
)
from .limits import MAX_VERSION
from .text import sanitize

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode

# Fields whose text may hold newlines when sanitized (multi-line notices).
_MULTILINE_FIELDS = {(Info, "text")}


def to_wire(event: Event, version: int = MAX_VERSION) -> dict[str, Any]:
    """The JSON object for ``event`` as protocol ``version`` has it.

    Absent values (``None``, and ``false`` for flags) are left out, and so are
    members newer than ``version`` (``MEMBERS_SINCE``). For version 1 the members
    version 2 added are dropped, and a private message or action is
    folded into its text so an old client still shows what it is.
    """
    if version < event.SINCE:
        raise LocalProtocolError(
            ErrorCode.UNEXPECTED, f"{event.TYPE!r} does not exist in protocol version {version}"
        )
    obj: dict[str, Any] = {"type": event.TYPE}
    newer = event.MEMBERS_SINCE
    for f in dataclasses.fields(event):  # type: ignore[arg-type]
        value = getattr(event, f.name)
        if value is None or value is False or newer.get(f.name, 0) > version:
            continue
        if f.name == "peers":
            value = [{"nick": p.nick, "addr": p.addr} for p in value]
        elif f.name == "rooms":
            value = [{"name": r.name, "online": r.online} for r in value]
        obj[f.name] = value
    if version < 2:
        _downgrade_to_v1(event, obj)
    return obj


def _downgrade_to_v1(event: Event, obj: dict[str, Any]) -> None:
    for name in ("room", "to", "action", "history"):
        obj.pop(name, None)
    if isinstance(event, Message):
        if event.to is not None:
            obj["text"] = f"(private) {event.text}"
        elif event.action:
            obj["text"] = f"* {event.nick} {event.text}"


def encode_json(event: Event, version: int = MAX_VERSION) -> bytes:
    """One JSON line (with its ``\\n``) for ``event``, in protocol ``version``."""
    return (_dumps(to_wire(event, version)) + "\n").encode("utf-8")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json_object(line: bytes) -> dict[str, Any]:
    """Decode one line as a JSON object, or raise RemoteProtocolError."""
    text = decode_utf8(line)
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise RemoteProtocolError(ErrorCode.BAD_JSON, f"not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise RemoteProtocolError(ErrorCode.BAD_JSON, "each line must be one JSON object")
    return obj


def from_wire(
    obj: Mapping[str, Any], known: Mapping[str, type[Event]], version: int = MAX_VERSION
) -> Event:
    """Build the event ``obj`` describes, if its type is in ``known`` and ``version``.

    Unknown members are ignored (a newer peer may add some), ``null`` counts as
    absent, text is sanitized; a missing or invalid member raises RemoteProtocolError.
    """
    kind, cls = _frame_type(obj, known, version)
    kwargs: dict[str, Any] = {}
    newer = cls.MEMBERS_SINCE
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        value = obj.get(f.name)
        if newer.get(f.name, 0) > version:
            continue  # a member this version does not have: ignored, like unknown ones
        if value is None:
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            if required or f.name in getattr(cls, "WIRE_REQUIRED", ()):
                raise RemoteProtocolError(
                    ErrorCode.BAD_FRAME, f"a {kind!r} frame needs the member {f.name!r}"
                )
            continue
        if isinstance(value, str):
            value = sanitize(value, keep_newlines=(cls, f.name) in _MULTILINE_FIELDS)
        elif f.name == "peers":
            value = _peers_from_wire(value)
        elif f.name == "rooms":
            value = _rooms_from_wire(value)
        kwargs[f.name] = value
    try:
        return cls(**kwargs)
    except LocalProtocolError as exc:
        raise RemoteProtocolError(exc.code, exc.message) from None


def _frame_type(
    obj: Mapping[str, Any], known: Mapping[str, type[Event]], version: int
) -> tuple[str, type[Event]]:
    """The frame's ``type`` member and the event class it names in ``known`` and ``version``."""
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise RemoteProtocolError(ErrorCode.BAD_FRAME, "a frame needs a string field 'type'")
    cls = known.get(kind)
    if cls is None or version < cls.SINCE:
        raise RemoteProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown frame type {kind[:40]!r}")
    return kind, cls


def _peers_from_wire(value: object) -> tuple[PeerInfo, ...]:
    if not isinstance(value, list):
        raise RemoteProtocolError(ErrorCode.BAD_FRAME, "peers must be a list")
    peers = []
    for item in value:
        nick = item.get("nick") if isinstance(item, dict) else None
        addr = item.get("addr") if isinstance(item, dict) else None
        if not isinstance(nick, str) or not isinstance(addr, str):
            raise RemoteProtocolError(ErrorCode.BAD_FRAME, "each peer needs a 'nick' and 'addr'")
        try:
            peers.append(PeerInfo(sanitize(nick), sanitize(addr)))
        except LocalProtocolError as exc:
            raise RemoteProtocolError(exc.code, exc.message) from None
    return tuple(peers)


def _rooms_from_wire(value: object) -> tuple[RoomInfo, ...]:
    if not isinstance(value, list):
        raise RemoteProtocolError(ErrorCode.BAD_FRAME, "rooms must be a list")
    rooms = []
    for item in value:
        name = item.get("name") if isinstance(item, dict) else None
        online = item.get("online") if isinstance(item, dict) else None
        if not isinstance(name, str):
            raise RemoteProtocolError(ErrorCode.BAD_FRAME, "each room needs a 'name' and 'online'")
        try:
            rooms.append(RoomInfo(sanitize(name), online))  # type: ignore[arg-type]
        except LocalProtocolError as exc:
            raise RemoteProtocolError(exc.code, exc.message) from None
    return tuple(rooms)


def decode_utf8(line: bytes) -> str:
    """Strict UTF-8, or a RemoteProtocolError saying where it broke."""
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RemoteProtocolError(
            ErrorCode.BAD_UTF8,
            f"invalid UTF-8 at byte {exc.start}: the line was discarded; send text as UTF-8",
        ) from None
