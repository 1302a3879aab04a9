"""An IRC peer: irssi, WeeChat, HexChat or an IRC bot, in the same rooms as every peer.

Another kind of peer, not a bridge: a :class:`~.session.Session` whose connection is
an :class:`~.irccodec.IrcConnection`, so reading, flood control, the room's pace, the
password and output are the line protocol's. Each IRC command is one small handler
in irccommands.HANDLERS (after Ergo's table): most become peerchat's own commands
(``PRIVMSG`` is ``say``, ``JOIN`` is ``join_room``, registration is the ``hello``);
the rest are answered here, as a conforming server answers them.
"""

from __future__ import annotations

from typing import cast

from peerchat_protocol import (
    Bye,
    Connection,
    Error,
    ErrorCode,
    Event,
    Hello,
    PeerKind,
)

from .commands import COMMANDS
from .irccodec import IrcConnection, IrcLine
from .irccommands import HANDLERS
from .ircform import SILENT, form_for
from .peer import ChatPeer
from .relay import Relay
from .session import Session

#: The peerchat protocol version an IRC client is served as (see try_register).
IRC_VERSION = 2


class IrcSession(Session):
    """One IRC client: registration, then its commands through :data:`HANDLERS`."""

    __slots__ = ("away", "irc", "negotiating", "password", "user")

    def __init__(self, relay: Relay) -> None:
        irc = IrcConnection()
        # (IrcConnection has the surface of Connection that the session uses.)
        super().__init__(relay, cast(Connection, irc))
        self.irc = irc
        self.user: str | None = None
        self.password: str | None = None
        self.negotiating = False  # CAP LS until CAP END
        self.away = False
        self.form = SILENT

    peer_kind = "irc"

    def reform(self) -> None:
        if self.irc.kind is not PeerKind.RICH:
            self.form = SILENT
        else:
            self.form = form_for(self.irc.caps)

    @property
    def registered(self) -> bool:
        return self.irc.kind is PeerKind.RICH

    # --- what it is sent ------------------------------------------------------------------

    def _sync(self) -> None:
        """Numerics and prefixes name the peer by the name the relay gave it."""
        if self.irc.welcomed:
            self.irc.nick = self.name

    def send(self, event: Event) -> None:
        if self._closing:
            return
        self._sync()
        if not self.registered and not isinstance(event, Bye | Error):
            return  # before registration: only IRC's own answers, errors and ERROR
        self.relay.outbox.drain()
        self._queue(self.irc.send(event))

    def reply(self, code: str, *params: str) -> None:
        """A numeric for this peer (after what is queued)."""
        self._sync()
        if not self._closing:
            self.relay.outbox.drain()
            self._queue(self.irc.numeric(code, *params))

    def reply_line(self, data: bytes) -> None:
        if not self._closing:
            self.relay.outbox.drain()
            self._queue(data)

    def close(self, bye: Bye | None = None, *, log_reason: str = "", linger: bool = False) -> None:
        if bye is not None and bye.code == ErrorCode.BAD_PASSWORD and not self._closing:
            self.reply("464", "Password incorrect")
        super().close(bye, log_reason=log_reason, linger=linger)

    # --- registration -----------------------------------------------------------------------

    SILENT_LISTENERS = False  # it registers (Session._announce_later)

    def _auth_timed_out(self) -> None:
        self._never_introduced()  # (with a password: the same words, PASS among them)

    def _never_introduced(self) -> None:
        if not self.registered and not self._closing:
            timeout = self.relay.config.auth_timeout
            why = f"not registered in {timeout:g} s"
            what = "PASS, NICK and USER" if self.relay.config.password else "NICK and USER"
            bye = Bye(f"{why}: send {what} (and CAP END)", code=ErrorCode.AUTH_TIMEOUT)
            self.close(bye, log_reason=why)

    def try_register(self) -> None:
        irc = self.irc
        if self.registered or self.negotiating or irc.nick == "*" or self.user is None:
            return
        if self.relay.registry.name_taken(irc.nick, self):
            self.reply("433", irc.nick, "Nickname is already in use")
            return
        # Version 2: rooms and history, but no resumable session (an IRC client could
        # never resume it; its name would only be held for nobody).
        irc.kind, irc.version = PeerKind.RICH, IRC_VERSION
        self.reform()
        self.said_what_it_is()  # what its room said since it connected, after its JOIN
        hello = Hello(IRC_VERSION, irc.nick, client="irc", password=self.password)
        COMMANDS[Hello].handle(self.relay, cast(ChatPeer, self), hello)

    # --- dispatch -------------------------------------------------------------------------

    def _dispatch(self, event: Event) -> None:
        if not isinstance(event, IrcLine):
            super()._dispatch(event)
            return
        message = event.message
        handler = HANDLERS.get(message.command)
        if handler is None:
            if message.command.isdigit():
                return  # a numeric from a client: nothing to answer
            self.reply("421", message.command, "Unknown command")
            return
        if len(message.params) < handler.min_params:
            self.reply("461", message.command, "Not enough parameters")
            return
        if handler.registered and not self.registered:
            self.reply("451", "You have not registered")
            return
        handler.handle(self, message)

    def chat(self, event: Event) -> None:
        """A peerchat command, as a peer of any kind sends it."""
        super()._dispatch(event)
