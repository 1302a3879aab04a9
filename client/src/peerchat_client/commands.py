"""What a typed (or piped) line means: a message, a command, or a local complaint.

Pure functions, no I/O: the interactive and scripting loops act on the result.
The command list (:data:`COMMANDS`) is the client's own: ``/help`` shows it
without asking the server, and completion offers the same names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from peerchat_protocol import (
    DEFAULT_ROOM,
    ChangeNick,
    Event,
    History,
    JoinRoom,
    LeaveRoom,
    ListRooms,
    Say,
    Who,
    name_problem,
    nick_problem,
    room_problem,
    sanitize,
)
from peerchat_protocol.limits import SHORT_TEXT_MAX_LENGTH


@dataclass(frozen=True, slots=True)
class CommandHelp:
    """One line of ``/help``: how to type a command and what it does."""

    usage: str
    summary: str
    #: Shown only in interactive mode (in scripting mode every line is sent).
    interactive_only: bool = False

    @property
    def name(self) -> str | None:
        """``/join`` for ``/join ROOM``; ``None`` for what is not a /command."""
        word = self.usage.split(" ", 1)[0]
        return word if word.startswith("/") and not word.startswith("//") else None


#: Every command this client understands, in the order ``/help`` lists them.
COMMANDS: tuple[CommandHelp, ...] = (
    CommandHelp("/msg NICK TEXT", "send a private message to one person"),
    CommandHelp("/me ACTION", "say what you are doing: /me waves shows * you waves"),
    CommandHelp("/join ROOM", "go to a room, created if new (#ROOM works too)"),
    CommandHelp("/leave", f"go back to #{DEFAULT_ROOM}, the room everyone starts in"),
    CommandHelp("/rooms", "list the rooms and how many people are in each"),
    CommandHelp("/who", "list who is in your room, with their addresses"),
    CommandHelp("/nick NAME", "change your nickname"),
    CommandHelp("/history [N]", "show the last N messages of your room (all that is kept)"),
    CommandHelp("/timestamps on|off", "show or hide the local time before messages"),
    CommandHelp("/pass PASSWORD", "not needed here: the client gives --password when it connects"),
    CommandHelp("/help", "show this list"),
    CommandHelp("/quit [REASON]", "leave the chat"),
    CommandHelp("q", "leave the chat (so do Ctrl-D and Ctrl-C)", interactive_only=True),
    CommandHelp("//TEXT", "send TEXT with its leading '/' (//who sends /who)"),
)

#: The /command words, for completion.
COMMAND_NAMES: tuple[str, ...] = tuple(c.name for c in COMMANDS if c.name is not None)


def help_lines(*, interactive: bool) -> tuple[str, ...]:
    """``/help``: every command with a one-line description, then mode notes."""
    shown = [c for c in COMMANDS if interactive or not c.interactive_only]
    width = max(len(c.usage) for c in shown) + 2
    lines = ["Commands:", *(f"  {c.usage.ljust(width)}{c.summary}" for c in shown)]
    lines.append("Anything else you type goes to everyone in your room.")
    if interactive:
        lines.append(
            "Tab completes commands, nicknames (after /msg) and rooms (after /join); "
            "Up and Down recall earlier lines."
        )
    else:
        lines.append("Scripting mode: every line is sent (even q); /quit or end of input ends.")
    return tuple(lines)


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``event``; a chat line (:class:`Say`) is also shown as ``[SENT] ...``."""

    event: Event


@dataclass(frozen=True, slots=True)
class Leave:
    """Quit the chat."""

    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Complain:
    """Nothing is sent: tell the user what was wrong with the line."""

    message: str


@dataclass(frozen=True, slots=True)
class ShowHelp:
    """List the commands (the client's own list: nothing is sent)."""


@dataclass(frozen=True, slots=True)
class SetTimestamps:
    """Show or hide message times; local, since this client formats its own lines."""

    on: bool


Action = Send | Leave | Complain | ShowHelp | SetTimestamps


def _nick(args: str) -> Action:
    if not args:
        return Complain("usage: /nick NAME")
    problem = nick_problem(args)
    if problem is not None:
        return Complain(f"cannot use {args!r} as a nickname: {problem}")
    return Send(ChangeNick(args))


def _msg(args: str) -> Action:
    to, _, text = args.partition(" ")
    text = text.strip()
    if not to or not text:
        return Complain("usage: /msg NICK TEXT (for example: /msg bob see you at 5)")
    # name_problem, not nick_problem: a peer without a nickname is named by its
    # address (127.0.0.1:5001), and a private message may still go to it.
    problem = name_problem(to)
    if problem is not None:
        return Complain(f"cannot send to {to!r}: {problem}; /who lists who is in your room")
    return Send(Say(text, to=to))


def _me(args: str) -> Action:
    if not args:
        return Complain("usage: /me ACTION (for example: /me waves)")
    return Send(Say(args, action=True))


def _join(args: str) -> Action:
    room = args.removeprefix("#")
    if not room:
        return Complain("usage: /join ROOM (for example: /join games)")
    problem = room_problem(room)
    if problem is not None:
        return Complain(f"cannot use {args!r} as a room name: {problem}; for example: /join games")
    return Send(JoinRoom(room))


def _timestamps(args: str) -> Action:
    choice = args.lower()
    if choice not in ("on", "off"):
        return Complain("usage: /timestamps on|off")
    return SetTimestamps(choice == "on")


def _history(args: str) -> Action:
    if not args:
        return Send(History())
    if not (args.isascii() and args.isdigit()) or not 0 < int(args) < 10**9:
        return Complain("usage: /history [N], N a number of messages (for example: /history 50)")
    return Send(History(int(args)))


def _quit(args: str) -> Action:
    return Leave(args[:SHORT_TEXT_MAX_LENGTH] or None)


def _always(action: Action) -> Callable[[str], Action]:
    def build(args: str) -> Action:
        return action

    return build


_PARSERS: dict[str, Callable[[str], Action]] = {
    "msg": _msg,
    "me": _me,
    "join": _join,
    "leave": _always(Send(LeaveRoom())),
    "rooms": _always(Send(ListRooms())),
    "who": _always(Send(Who())),
    "nick": _nick,
    "timestamps": _timestamps,
    "history": _history,
    "help": _always(ShowHelp()),
    "quit": _quit,
    # The password goes in the hello (--password); by now this client is in, or was
    # turned away. Say so instead of sending it as a message by mistake.
    "pass": _always(
        Complain("this client gives the server's password when it connects: use --password")
    ),
}


def parse_line(line: str, *, bare_q_quits: bool = True) -> Action | None:
    """The action a line stands for, or ``None`` for a blank line.

    ``q`` alone quits when ``bare_q_quits`` (interactive mode, as in the seed);
    scripting mode sends every line, so there a ``q`` is a message and ``/quit``
    ends the run. ``//text`` sends ``/text``.
    """
    text = sanitize(line.rstrip("\r\n"))
    if not text.strip():
        return None
    if bare_q_quits and text.strip() == "q":
        return Leave()
    if text.startswith("//"):
        return Send(Say(text[1:]))
    if not text.startswith("/"):
        return Send(Say(text))
    name, _, args = text[1:].partition(" ")
    parse = _PARSERS.get(name.lower())
    if parse is None:
        return Complain(
            f"unknown command /{name[:32]}: type /help for the list "
            "(start a line with // to send it as text)"
        )
    return parse(args.strip())
