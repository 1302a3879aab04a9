"""Coming in: the password gate, and the hello (a new session, or one resumed).

A hello goes through a few named steps: the password (if the server has one), which
session it is (new, resumed here, or moved from another replica), its name and room,
what it missed, the welcome, and what it is sent after it (catch-up, history, or the
replay of what it was sent before the hello arrived).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from peerchat_protocol import (
    Bye,
    Error,
    ErrorCode,
    Hello,
    Info,
    Message,
    Pass,
    Welcome,
    fold,
)

from .frames import Frames
from .peer import ChatPeer, Peer
from .relay import Relay
from .resume import Resumable
from .room import Room
from .tokens import digest

# --- the password -------------------------------------------------------------------------


def password_ok(relay: Relay, given: str | None) -> bool:
    expected = relay.config.password.encode()
    # Constant time, so the comparison tells nothing about how much was right.
    return given is not None and hmac.compare_digest(given.encode(), expected)


def reject_password(relay: Relay, peer: ChatPeer, given: str | None) -> None:
    """A wrong (or no) password: the peer goes, and its address waits longer each time."""
    why = "no password given" if given is None else "wrong password"
    relay.stats.password_failures += 1
    relay.console.line("AUTH FAILED", f"Peer {peer.addr}: {why}.", who=peer)  # never the secret
    # Guessing costs time: each wrong password makes the address wait longer
    # before its next connection, and too many lock it out for a while.
    address = peer.address
    wait, lockout = relay.registry.addresses.password_failed(address)
    if lockout:
        relay.console.line(
            "AUTH FAILED", f"{address.failures} wrong passwords from "
            f"{address.key}: its new connections are refused for {wait:g} s.",
            who=peer, event="auth_lockout",
        )  # fmt: skip
    if wait >= relay.config.auth_lockout:
        why += f"; too many from your address: try again in {wait:g} s"
    elif wait:
        why += f"; your address must wait {wait:g} s before it connects again"
    peer.close(
        Bye(
            f"disconnected: {why}; this server needs its password "
            "(/pass PASSWORD, or the client's --password)",
            code=ErrorCode.BAD_PASSWORD,
        ),
        log_reason=why,
        linger=True,
    )


def admit(relay: Relay, peer: ChatPeer) -> None:
    """The password is right: the peer comes into the default room."""
    peer.authenticate()
    relay.admit(peer)
    relay.console.line("AUTH", f"Peer {peer.addr} gave the password.", who=peer)


def password_timed_out(relay: Relay, peer: ChatPeer) -> None:
    """No password within ``--auth-timeout``: the peer goes."""
    timeout = relay.config.auth_timeout
    relay.console.line("AUTH FAILED", f"Peer {peer.addr}: no password in {timeout:g} s.", who=peer)
    peer.close(
        Bye(
            f"disconnected: no password within {timeout:g} s (send /pass PASSWORD as "
            "your first line, or give it in your hello); reconnect and try again",
            code=ErrorCode.AUTH_TIMEOUT,
        ),
        log_reason="no password in time",
        linger=True,
    )


def on_pass(relay: Relay, peer: ChatPeer, given: Pass) -> None:
    if peer.authenticated:
        peer.send(Info("You are already in."))
        return
    if not password_ok(relay, given.password):
        reject_password(relay, peer, given.password)
        return
    admit(relay, peer)
    peer.send(Info(f"Password accepted. {peer.room.count()} online; /help lists commands."))
    send_history(relay, peer)
    peer.announce()


# --- what a peer coming into a room is sent --------------------------------------------


def greet(relay: Relay, peer: ChatPeer) -> None:
    """A new connection's first lines: who it is, and what to do next."""
    if not peer.authenticated:
        peer.send(
            Info(
                f"Welcome to peerchat! You are {peer.addr}.\n"
                "This server needs a password: send /pass PASSWORD as your first line."
            )
        )
        return
    peer.send(
        Info(
            f"Welcome to peerchat! You are {peer.addr}; {len(relay.registry)} online.\n"
            "Type a message and press Enter to send it to everyone; /help lists commands."
        )
    )
    send_history(relay, peer)


def send_history(relay: Relay, peer: ChatPeer) -> None:
    """The room's recent messages, marked as history; framed in notices for plain peers."""
    peer.history_sent = True
    history = relay.history(peer.room)
    if not history or peer.version == 1:  # version 1 has no history mark
        return
    plain = peer.version is None
    if plain:
        peer.send(Info(f"Last {len(history)} messages in #{peer.room.name}:"))
    for message in history:
        peer.deliver(Frames(message))
    if plain:
        peer.send(Info("End of history."))


# --- the hello ----------------------------------------------------------------------------


@dataclass
class Arrival:
    """What a hello turned out to be, step by step."""

    hello: Hello
    v3: bool  # protocol version 3 or later: sessions, epochs and catch-up
    start_room: Room[Peer]
    record: Resumable[Peer] | None = None  # the session, once known
    took_over: bool = False  # the hello resumed a session of this server
    moved_here: bool = False  # ... or one of another replica
    wanted: str | None = None  # the name it asked for (or its session's)
    catch_up: tuple[list[Message], bool] | None = None


def on_hello(relay: Relay, peer: ChatPeer, hello: Hello) -> None:
    if not peer.authenticated:
        if not password_ok(relay, hello.password):
            reject_password(relay, peer, hello.password)
            return
        admit(relay, peer)
    assert peer.version is not None  # a hello made it a JSON peer of a known version
    arrival = Arrival(hello, peer.version >= 3, peer.room)
    room_name = _which_session(relay, peer, arrival)
    _settle_name(relay, peer, arrival.wanted)
    if room_name is not None and fold(room_name) != fold(peer.room.name):
        relay.move(peer, room_name)
    if arrival.v3 and arrival.record is None:
        # A session that moved here from another replica keeps its secret: it is how
        # that replica recognises the person and lets its old connection go.
        token = hello.resume if arrival.moved_here else None
        key = peer.address.key
        arrival.record = relay.registry.book.open(peer, peer.name, peer.room.name, token, key)
        relay.came_in(arrival.record)
    peer.resumable = arrival.record
    if arrival.v3:
        arrival.catch_up = _what_was_missed(relay, peer, arrival)
    _welcome(relay, peer, arrival)
    _send_backlog(relay, peer, arrival)
    if arrival.took_over and arrival.record is not None and arrival.record.announced:
        peer.announced = True  # the room never saw it leave: no join notice
    peer.announce()


def _which_session(relay: Relay, peer: ChatPeer, arrival: Arrival) -> str | None:
    """Resume the session the hello names, if this server keeps it; else note the name
    it wants. Returns the room to be in (None: stay)."""
    hello = arrival.hello
    if arrival.v3 and hello.resume:
        arrival.record = relay.registry.book.find(hello.resume, relay.loop_time())
    if arrival.record is not None:
        arrival.took_over = True
        relay.stats.resumes += 1
        take_over(relay, peer, arrival.record)
        arrival.wanted = arrival.record.nick
        return arrival.record.room
    arrival.wanted = hello.nick
    if arrival.v3 and hello.nick is not None:
        arrival.moved_here = relay.replication.claim_from_elsewhere(hello.nick, hello.resume)
    return hello.room if arrival.v3 else None


def take_over(relay: Relay, peer: ChatPeer, record: Resumable[Peer]) -> None:
    """``peer`` becomes the connection of ``record``'s session."""
    old = record.session
    record.announced = False
    if old is not None and old is not peer:
        # Its earlier connection is still open here (half-open: the client saw it
        # die first). It goes without a leave notice: the peer is back already.
        record.announced = old.announced
        record.nick, record.room = old.name, old.room.name
        if old.room is not peer.room:
            relay.move(peer, old.room.name)  # first, so the room and its log stay
        old.replaced()
    relay.registry.book.take_over(record, peer)
    relay.console.line(
        "RESUMED", f"Peer {peer.addr} resumed the session of {record.nick}.",
        who=peer, nick=record.nick, room=record.room,
    )  # fmt: skip


def _settle_name(relay: Relay, peer: ChatPeer, wanted: str | None) -> None:
    """Take the name ``wanted``, or the first free one like it."""
    if wanted is None or wanted == peer.name:
        return
    registry = relay.registry
    nick = registry.free_variant(wanted)
    was = peer.label
    old = registry.rename(peer, nick)
    relay.console.line("NICK", f"Peer {was} is now {nick}.", who=peer, old_nick=old)
    if peer.announced:  # the others knew it by its address; the welcome tells it
        relay.announce_rename(peer, old, exclude=peer)


def _what_was_missed(
    relay: Relay, peer: ChatPeer, arrival: Arrival
) -> tuple[list[Message], bool] | None:
    """The catch-up: for a session that proves it was in this room (its secret names a
    session of ours, or one another replica vouches for), from when it came in; anyone
    else gets no more than a newcomer's history."""
    hello = arrival.hello
    # Its own lines are left out, even from a session the server no longer keeps: the
    # secret it gives back says which were its own.
    mine = digest(hello.resume) if hello.resume else peer.origin
    floor: int | None = None
    if arrival.took_over and arrival.record is not None:
        floor = arrival.record.entered_id
    elif (vouch := relay.replication.vouched(hello.resume)) is not None:
        room_there, since = vouch
        if fold(room_there) == fold(peer.room.name):
            floor = since
    if peer.resumable is not None and floor is not None:
        # What it had, for what its room's log in Redis brings late (following.py): only
        # for a session that proved it was there, as for the catch-up itself.
        peer.resumable.seen_ts = hello.last_ts or 0
        if hello.last_id and hello.epoch == relay.epoch:
            peer.resumable.seen_id = max(hello.last_id, floor)
    return relay.missed(peer.room, hello.epoch, hello.last_id, hello.last_ts, mine, floor=floor)


def _welcome(relay: Relay, peer: ChatPeer, arrival: Arrival) -> None:
    record, catch_up = arrival.record, arrival.catch_up
    assert peer.version is not None
    peer.send(
        Welcome(
            version=peer.version,
            nick=peer.name,
            addr=peer.addr,
            online=peer.room.count(),
            peers=peer.room.peers(me=peer),
            server=relay.config.name,
            max_line=peer.max_line,
            room=peer.room.name,
            session=record.token if record is not None else None,
            epoch=relay.epoch if arrival.v3 else None,
            resumed=arrival.took_over,
            acked=record.last_seq if arrival.took_over and record is not None else None,
            missed=len(catch_up[0]) if catch_up is not None else None,
            gap=catch_up[1] if catch_up is not None else False,
        )
    )
    wanted = arrival.wanted
    if wanted is not None and wanted != peer.name:
        peer.send(
            Error(
                ErrorCode.NICK_TAKEN,
                f"the nickname {wanted!r} {relay.registry.why_taken(wanted, relay.loop_time())}, "
                f"so you are {peer.name!r}; pick another with /nick NAME",
            )
        )


def _send_backlog(relay: Relay, peer: ChatPeer, arrival: Arrival) -> None:
    """After the welcome: the catch-up, or the history and the replay."""
    moved = peer.room is not arrival.start_room
    if arrival.catch_up is not None or moved:
        # What was sent as text before this hello was said in the lobby: either a
        # part of the catch-up below, or about a room the peer is no longer in.
        peer.drop_replay()
    if arrival.catch_up is not None:
        for message in arrival.catch_up[0]:  # everything said since the peer's last message
            peer.deliver(Frames(message))
        return
    if not peer.history_sent or moved:
        send_history(relay, peer)
    peer.flush_replay()
