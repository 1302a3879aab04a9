"""IRC commands, one small handler each (after Ergo's table), and :data:`HANDLERS`.

Most become peerchat's own commands through :meth:`IrcPeer.chat` (``PRIVMSG`` is
``say``, ``JOIN`` is ``join_room``, ``NICK`` and ``USER`` complete registration, which
is the ``hello``); the rest are answered here, as a conforming server answers them:
numerics for what peerchat has not got (modes, operators, topics).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, Protocol, cast

from peerchat_protocol import (
    ChangeNick,
    Event,
    JoinRoom,
    LeaveRoom,
    ListRooms,
    Ping,
    Pong,
    Quit,
    Say,
    Who,
    fold,
    nick_problem,
    room_problem,
    sanitize,
)

from .irccodec import CAPABILITIES, IrcConnection, irc_host
from .ircform import SERVER, channel, room_of, source
from .ircwire import IrcMessage, line
from .peer import Peer
from .relay import Relay


class IrcPeer(Protocol):
    """What the handlers need of an IRC peer (irc.IrcSession)."""

    relay: Relay
    irc: IrcConnection
    user: str | None
    password: str | None
    negotiating: bool
    away: bool

    @property
    def registered(self) -> bool: ...

    def reply(self, code: str, *params: str) -> None: ...

    def reply_line(self, data: bytes) -> None: ...

    def chat(self, event: Event) -> None: ...

    def try_register(self) -> None: ...

    def reform(self) -> None: ...


# --- the handlers, one per command ----------------------------------------------------------


class Handler(NamedTuple):
    handle: Callable[[IrcPeer, IrcMessage], None]
    min_params: int = 0
    registered: bool = True  # only once registered (else 451)


def on_cap(peer: IrcPeer, msg: IrcMessage) -> None:
    sub = (msg.param(0) or "").upper()
    irc = peer.irc
    if sub == "LS":
        peer.negotiating = not peer.registered
        peer.reply_line(line("CAP", irc.nick, "LS", " ".join(CAPABILITIES), source=SERVER))
    elif sub == "LIST":
        peer.reply_line(line("CAP", irc.nick, "LIST", " ".join(sorted(irc.caps)), source=SERVER))
    elif sub == "REQ":
        peer.negotiating = peer.negotiating or not peer.registered  # (until CAP END)
        wanted = (msg.param(1) or "").split()
        if wanted and all(cap.lstrip("-") in CAPABILITIES for cap in wanted):
            for cap in wanted:
                if cap.startswith("-"):
                    irc.caps.discard(cap[1:])
                else:
                    irc.caps.add(cap)
            peer.reform()
            peer.reply_line(line("CAP", irc.nick, "ACK", " ".join(wanted), source=SERVER))
        else:
            peer.reply_line(line("CAP", irc.nick, "NAK", " ".join(wanted), source=SERVER))
    elif sub == "END":
        peer.negotiating = False
        peer.try_register()
    else:
        peer.reply("410", sub or "*", "Invalid CAP command")


def on_pass(peer: IrcPeer, msg: IrcMessage) -> None:
    if peer.registered:
        peer.reply("462", "You may not reregister")
        return
    peer.password = msg.params[0]


def on_nick(peer: IrcPeer, msg: IrcMessage) -> None:
    wanted = msg.param(0)
    if not wanted:
        peer.reply("431", "No nickname given")
        return
    problem = nick_problem(wanted)
    if problem is not None:
        peer.reply("432", wanted, f"Erroneous nickname: {problem}")
        return
    if fold(wanted) == fold(peer.irc.nick) and wanted == peer.irc.nick:
        return  # its own name: nothing to do
    if peer.relay.registry.name_taken(wanted, cast("Peer", peer)):
        peer.reply("433", wanted, "Nickname is already in use")
        return
    peer.irc.asked_about["432"] = peer.irc.asked_about["433"] = wanted
    if not peer.registered:
        peer.irc.nick = wanted
        peer.try_register()
        return
    peer.chat(ChangeNick(wanted))


def on_user(peer: IrcPeer, msg: IrcMessage) -> None:
    if peer.registered:
        peer.reply("462", "You may not reregister")
        return
    peer.user = msg.params[0]
    peer.try_register()


def on_ping(peer: IrcPeer, msg: IrcMessage) -> None:
    token = sanitize(msg.param(0) or "")[:64]
    if peer.registered:
        peer.chat(Ping(token))
    else:
        peer.reply_line(line("PONG", SERVER, token or SERVER, source=SERVER))


def on_pong(peer: IrcPeer, msg: IrcMessage) -> None:
    if peer.registered:
        peer.chat(Pong(sanitize(msg.params[-1] if msg.params else "")[:64]))


def on_quit(peer: IrcPeer, msg: IrcMessage) -> None:
    peer.chat(Quit(sanitize(msg.param(0) or "")[:200] or None))


def on_join(peer: IrcPeer, msg: IrcMessage) -> None:
    names = msg.params[0].split(",")
    if names == ["0"]:
        peer.chat(LeaveRoom())
        return
    first, others = names[0], names[1:]
    for other in others:
        peer.reply("405", other, "You may be in one channel at a time here")
    if not first.startswith("#") or room_problem(room_of(first)) is not None:
        peer.reply("479", first, "Illegal channel name")
        return
    if first.lower() != (peer.irc.channel or "").lower():
        peer.chat(JoinRoom(room_of(first)))


def on_part(peer: IrcPeer, msg: IrcMessage) -> None:
    for name in msg.params[0].split(","):
        if name.lower() != (peer.irc.channel or "").lower():
            peer.reply("442", name, "You're not on that channel")
        elif name.lower() == "#lobby":
            peer.reply_line(
                line(
                    "NOTICE", peer.irc.nick, "#lobby is where everyone is: you stay", source=SERVER
                )
            )
        else:
            peer.chat(LeaveRoom())


def on_privmsg(peer: IrcPeer, msg: IrcMessage, *, quiet: bool = False) -> None:
    """A message to the channel or to a nick; a NOTICE (``quiet``) gets no error back."""
    said = _said(peer, msg, quiet)
    if said is None:
        return
    target, text, action = said
    if "," in target:  # MAXTARGETS=1
        if not quiet:
            peer.reply("407", target, "Too many targets: one at a time")
        return
    if not target.startswith("#"):
        if nick_problem(target) is not None:
            if not quiet:
                peer.reply("401", target, "No such nick/channel")
            return
        if fold(target) == fold(peer.irc.nick):  # to itself: back to itself, as servers do
            word = "NOTICE" if quiet else "PRIVMSG"
            body = f"\x01ACTION {text}\x01" if action else text
            peer.reply_line(line(word, target, body, source=source(peer.irc.nick)))
            return
        peer.irc.asked_about["401"] = target
        peer.chat(Say(text, to=target, action=action))
    elif target.lower() == (peer.irc.channel or "").lower():
        peer.chat(Say(text, action=action))
    elif not quiet:
        peer.reply("404", target, "Cannot send to channel (you are not in it)")


def _said(peer: IrcPeer, msg: IrcMessage, quiet: bool) -> tuple[str, str, bool] | None:
    """The target, text and whether it is an action (CTCP ACTION); None if nothing to say."""
    if len(msg.params) < 2 or not msg.params[1]:
        if not quiet:
            peer.reply(*(("412", "No text to send") if msg.params else ("411", "No recipient")))
        return None
    target, text = msg.params[0], msg.params[1]
    action = False
    if text.startswith("\x01"):
        body = text.strip("\x01")
        if not body.upper().startswith("ACTION "):
            return None  # other CTCP (VERSION, PING...): nobody here answers them
        text, action = body[7:], True
    text = sanitize(text)  # IRC's colour and bold codes are control characters
    if not text.strip():
        if not quiet:
            peer.reply("412", "No text to send")
        return None
    return target, text, action


def on_notice(peer: IrcPeer, msg: IrcMessage) -> None:
    on_privmsg(peer, msg, quiet=True)  # a NOTICE is never answered automatically


def on_names(peer: IrcPeer, msg: IrcMessage) -> None:
    wanted = msg.param(0)
    if wanted and wanted.lower() != (peer.irc.channel or "").lower():
        peer.reply("366", wanted, "End of /NAMES list")
        return
    peer.irc.asked.append("NAMES")
    peer.chat(Who())


def on_who(peer: IrcPeer, msg: IrcMessage) -> None:
    """WHO for your channel lists its members; for a nick, that peer; else nothing."""
    mask = msg.param(0) or peer.irc.channel or "*"
    if mask.lower() == (peer.irc.channel or "").lower():
        peer.irc.asked.append("WHO")
        peer.chat(Who())
        return
    found = peer.relay.registry.find(mask) if not mask.startswith("#") else None
    if found is not None:
        room = channel(found.room.name)
        host = irc_host(found.addr)
        peer.reply("352", room, found.name, host, SERVER, found.name, "H", f"0 {found.name}")
    peer.reply("315", mask, "End of /WHO list")


def on_whois(peer: IrcPeer, msg: IrcMessage) -> None:
    nick = msg.params[-1]
    found = peer.relay.registry.find(nick)
    if found is None:
        peer.reply("401", nick, "No such nick")
    else:
        host = irc_host(found.addr)
        peer.reply("311", found.name, found.name, host, "*", found.name)
        peer.reply("312", found.name, SERVER, "peerchat")
        peer.reply("319", found.name, channel(found.room.name))
        peer.reply("338", found.name, found.addr, "is connecting from")
    peer.reply("318", nick, "End of /WHOIS list")


def on_list(peer: IrcPeer, msg: IrcMessage) -> None:
    peer.chat(ListRooms())


def on_topic(peer: IrcPeer, msg: IrcMessage) -> None:
    name = msg.params[0]
    if name.lower() != (peer.irc.channel or "").lower():
        peer.reply("442", name, "You're not on that channel")
    elif len(msg.params) > 1:
        peer.reply("482", name, "Topics are not kept here (read-only)")
    else:
        peer.reply("331", name, "No topic is set")


def on_mode(peer: IrcPeer, msg: IrcMessage) -> None:
    target = msg.params[0]
    if target.startswith("#") and target.lower() != (peer.irc.channel or "").lower():
        peer.reply("442", target, "You're not on that channel")
    elif not target.startswith("#") and fold(target) != fold(peer.irc.nick):
        peer.reply("502", "Can't change mode for other users")
    elif target.startswith("#"):
        if len(msg.params) == 1:
            peer.reply("324", target, "+")
        elif msg.params[1] in ("b", "+b"):
            peer.reply("368", target, "End of channel ban list")
        else:
            mode = msg.params[1].lstrip("+-")[:1] or "*"
            peer.reply("472", mode, "Channel modes are not supported here")
    elif len(msg.params) == 1:
        peer.reply("221", "+")
    elif msg.params[1] in ("+i", "-i", "+iw", "+w", "-w"):
        # What clients set at connect (irssi's usermode): nothing to do here, said once.
        peer.reply_line(line("MODE", peer.irc.nick, msg.params[1], source=peer.irc.nick))
    else:
        peer.reply("501", "User modes are not supported here")


def on_away(peer: IrcPeer, msg: IrcMessage) -> None:
    peer.away = bool(msg.param(0))
    if peer.away:
        peer.reply("306", "You have been marked as being away")
    else:
        peer.reply("305", "You are no longer marked as being away")


def on_motd(peer: IrcPeer, msg: IrcMessage) -> None:
    for row in peer.irc.motd():
        peer.reply_line(row)


def on_userhost(peer: IrcPeer, msg: IrcMessage) -> None:
    found = [peer.relay.registry.find(nick) for nick in msg.params[:5]]
    peer.reply("302", " ".join(f"{p.name}=+{p.name}@peerchat" for p in found if p is not None))


def on_ison(peer: IrcPeer, msg: IrcMessage) -> None:
    nicks = " ".join(msg.params).split()
    peer.reply("303", " ".join(n for n in nicks if peer.relay.registry.find(n) is not None))


def on_tagmsg(peer: IrcPeer, msg: IrcMessage) -> None:
    """Client-only tags (typing notices...): nothing here carries them on."""


def on_whowas(peer: IrcPeer, msg: IrcMessage) -> None:
    peer.reply("406", msg.params[0], "There was no such nickname (no history of names)")
    peer.reply("369", msg.params[0], "End of WHOWAS")


def on_not_privileged(peer: IrcPeer, msg: IrcMessage) -> None:
    if msg.command == "OPER":
        peer.reply("491", "No operators here")
    elif msg.command in ("KICK", "INVITE"):
        where = msg.params[1] if msg.command == "INVITE" and len(msg.params) > 1 else None
        where = where or (msg.params[0] if msg.params else "*")
        peer.reply("482", where, "No channel operators here")
    else:
        peer.reply("481", "Permission Denied- no operators here")


#: Every IRC command this server knows, and its handler.
HANDLERS: dict[str, Handler] = {
    "CAP": Handler(on_cap, 1, registered=False),
    "PASS": Handler(on_pass, 1, registered=False),
    "NICK": Handler(on_nick, 0, registered=False),
    "USER": Handler(on_user, 4, registered=False),
    "PING": Handler(on_ping, 1, registered=False),
    "PONG": Handler(on_pong, 0, registered=False),
    "QUIT": Handler(on_quit, 0, registered=False),
    "JOIN": Handler(on_join, 1),
    "PART": Handler(on_part, 1),
    "PRIVMSG": Handler(on_privmsg),
    "NOTICE": Handler(on_notice),
    "NAMES": Handler(on_names),
    "WHO": Handler(on_who),
    "WHOIS": Handler(on_whois, 1),
    "LIST": Handler(on_list),
    "TOPIC": Handler(on_topic, 1),
    "MODE": Handler(on_mode, 1),
    "AWAY": Handler(on_away),
    "MOTD": Handler(on_motd),
    "USERHOST": Handler(on_userhost, 1),
    "ISON": Handler(on_ison, 1),
    "TAGMSG": Handler(on_tagmsg, 1),
    "WHOWAS": Handler(on_whowas, 1),
    "OPER": Handler(on_not_privileged),
    "KICK": Handler(on_not_privileged),
    "INVITE": Handler(on_not_privileged),
    "KILL": Handler(on_not_privileged),
}
