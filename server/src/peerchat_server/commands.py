"""The chat commands: one table, each event type to its handler, and whether a peer may
send it before giving the password.

Handlers are plain functions of the relay, the peer and the event: any kind of peer
(line protocol today, WebSocket and IRC next) that provides :class:`~.peer.ChatPeer`
gets every command by dispatching through :data:`COMMANDS`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

from peerchat_protocol import (
    Bye,
    ChangeNick,
    Error,
    ErrorCode,
    Event,
    Hello,
    Help,
    History,
    Info,
    JoinRoom,
    LeaveRoom,
    ListRooms,
    Pass,
    Ping,
    Pong,
    Quit,
    RemoteProtocolError,
    Say,
    Timestamps,
    Who,
    fold,
    plain_help,
)

from . import admission
from .frames import Frames
from .peer import ChatPeer
from .relay import Relay


def on_say(relay: Relay, peer: ChatPeer, say: Say) -> None:
    record = peer.resumable
    if say.seq is not None and record is not None:
        peer.acknowledge(say.seq)
        if say.seq <= record.last_seq:
            return  # sent again after a reconnect, but handled already: not twice
        record.last_seq = say.seq
        relay.registry.book.changed(record)  # (a store keeps what it handled)
    if say.to is None:
        seq = say.seq if record is not None else None
        if seq is None:
            relay.say(peer, say)
            return
        peer.hold_ack(seq)  # acknowledged once relayed: now, or once the bus delivered it
        message_id = relay.say(peer, say, partial(peer.acknowledge_late, seq))
        if message_id is not None:
            peer.acknowledge_late(seq, message_id)
        return
    registry = relay.registry
    target = registry.find(say.to)
    if target is None:
        _whisper_elsewhere(relay, peer, say, say.to)
    elif target is peer:
        peer.send(Error(ErrorCode.BAD_COMMAND, "that is you: /msg is for someone else"))
    else:
        relay.whisper(peer, target, say)


def _whisper_elsewhere(relay: Relay, peer: ChatPeer, say: Say, to: str) -> None:
    """A private message for someone not connected here: on another replica, away for
    a moment, or nobody."""
    registry = relay.registry
    if (elsewhere := registry.remote.find(to)) is not None:
        relay.whisper_remote(peer, elsewhere, say)
    elif (away := registry.waiting_as(to)) is not None:
        peer.send(
            Error(
                ErrorCode.NO_SUCH_NICK,
                f"{away.nick} lost their connection and may be back soon, so the message "
                "was not sent; try again when they are back (/who lists who is here)",
            )
        )
    else:
        peer.send(
            Error(
                ErrorCode.NO_SUCH_NICK,
                f"nobody called {to!r} is online, so the message was not sent; "
                "/who lists who is in your room",
            )
        )


def on_join_room(relay: Relay, peer: ChatPeer, join: JoinRoom) -> None:
    if fold(join.room) == fold(peer.room.name):
        peer.send(Info(f"You are already in #{peer.room.name}."))
        return
    _enter(relay, peer, join.room)


def on_leave_room(relay: Relay, peer: ChatPeer, _: LeaveRoom) -> None:
    lobby = relay.rooms.lobby
    if peer.room is lobby:
        peer.send(
            Info(
                f"You are in #{lobby.name}, the room everyone starts in; /join ROOM goes elsewhere."
            )
        )
        return
    _enter(relay, peer, lobby.name)


def _enter(relay: Relay, peer: ChatPeer, name: str) -> None:
    room = relay.move(peer, name)
    peer.send(relay.entered(room))
    admission.send_history(relay, peer)


def on_list_rooms(relay: Relay, peer: ChatPeer, _: ListRooms) -> None:
    peer.send(relay.room_list())


def on_history(relay: Relay, peer: ChatPeer, request: History) -> None:
    """/history [N]: what was said in the peer's room, up to all that is kept."""
    room = peer.room
    limit = request.limit or relay.config.catch_up_messages or relay.config.history_messages
    messages = relay.rooms.history(room, limit)
    if not messages:
        peer.send(Info(f"Nothing said in #{room.name} is kept; what is said from now on will be."))
        return
    if peer.version is None:  # plain text: framed like the history on joining
        peer.send(Info(f"Last {len(messages)} messages in #{room.name}:"))
    for message in messages:
        peer.deliver(Frames(message))
    kept = len(room.log)
    more = "" if len(messages) >= kept else f"; /history {kept} shows all {kept} kept"
    peer.send(Info(f"End of history: {len(messages)} messages of #{room.name}{more}."))


def on_timestamps(relay: Relay, peer: ChatPeer, choice: Timestamps) -> None:
    peer.set_timestamps(choice.on)
    peer.send(Info("Timestamps (UTC) are on." if choice.on else "Timestamps are off."))


def on_nick(relay: Relay, peer: ChatPeer, change: ChangeNick) -> None:
    registry = relay.registry
    if change.nick == peer.name:
        peer.send(Info(f"You are already {peer.name}."))
        return
    if registry.name_taken(change.nick, by=peer):
        why = registry.why_taken(change.nick, relay.loop_time())
        peer.send(
            Error(
                ErrorCode.NICK_TAKEN,
                f"the nickname {change.nick!r} {why}: choose another with /nick NAME",
            )
        )
        return
    renames = peer.address.renames
    if not renames.take():
        cfg = relay.config
        peer.send(
            Error(
                ErrorCode.FLOODING,
                f"too many renames from your address (more than {cfg.rename_burst} at "
                f"once, then one every {1 / cfg.rename_rate:g} s): you are still "
                f"{peer.name}; try again in {renames.wait():.0f} s",
            )
        )
        return
    was = peer.label
    old = registry.rename(peer, change.nick)
    relay.console.line("NICK", f"Peer {was} is now {peer.name}.", who=peer, old_nick=old)
    if peer.announced:
        relay.announce_rename(peer, old)
    else:
        peer.send(Info(f"You are now known as {peer.name}."))


def on_who(relay: Relay, peer: ChatPeer, _: Who) -> None:
    peer.send(relay.roster(peer.room))


def on_help(relay: Relay, peer: ChatPeer, _: Help) -> None:
    peer.send(Info(plain_help()))


def on_quit(relay: Relay, peer: ChatPeer, quit_: Quit) -> None:
    if peer.resumable is not None:
        relay.registry.book.forget(peer.resumable)  # a deliberate leave: nothing to resume
        peer.resumable = None
    reason = f"quit: {quit_.reason}" if quit_.reason else "quit"
    peer.leave(reason[:200], Bye("You left the chat. Goodbye!"))  # no [CLOSING] line


def on_ping(relay: Relay, peer: ChatPeer, ping: Ping) -> None:
    peer.send(Pong(ping.token))


def on_pong(relay: Relay, peer: ChatPeer, _: Pong) -> None:
    pass  # liveness is all a pong tells; the read itself proved it


def bad_line(relay: Relay, peer: ChatPeer, exc: RemoteProtocolError) -> None:
    """A line that is no command (bad JSON, invalid UTF-8, too long...): the peer is told
    why; past ``--max-errors`` of them, or after a fatal one, it is disconnected."""
    relay.console.line(
        "PROTOCOL ERROR", f"Peer {peer.label}: {exc.message} ({exc.code}).", who=peer, code=exc.code
    )
    peer.send(Error(exc.code, exc.message))
    if exc.fatal:
        bye = Bye(f"disconnected: {exc.message}", code=exc.code)
        peer.close(bye, log_reason=exc.code, linger=True)
    elif peer.errors > relay.config.max_errors:
        why = (
            f"disconnected after {peer.errors} bad lines: send UTF-8 text lines of at most "
            f"{peer.max_line} bytes"
        )
        bye = Bye(why, code=ErrorCode.TOO_MANY_ERRORS)
        peer.close(bye, log_reason="too many bad lines", linger=True)


class Command(NamedTuple):
    """A handler, and whether a peer may use it before it gives the password."""

    handle: Callable[[Relay, ChatPeer, Any], None]
    before_password: bool = False


#: Every event a peer may send, and what handles it.
COMMANDS: dict[type[Event], Command] = {
    Hello: Command(admission.on_hello, before_password=True),
    Pass: Command(admission.on_pass, before_password=True),
    Quit: Command(on_quit, before_password=True),
    Ping: Command(on_ping, before_password=True),
    Pong: Command(on_pong, before_password=True),
    Help: Command(on_help, before_password=True),
    Say: Command(on_say),
    ChangeNick: Command(on_nick),
    Who: Command(on_who),
    JoinRoom: Command(on_join_room),
    LeaveRoom: Command(on_leave_room),
    ListRooms: Command(on_list_rooms),
    Timestamps: Command(on_timestamps),
    History: Command(on_history),
}
