"""What a typed (or piped) line means: a message, a command, or a local complaint.

Pure functions, no I/O: the interactive and scripting loops act on the result.
"""

from __future__ import annotations

from dataclasses import dataclass

from peerchat_protocol import ChangeNick, Event, Help, Quit, Say, Who, nick_problem, sanitize
from peerchat_protocol.limits import SHORT_TEXT_MAX_LENGTH

#: Shown with the server's own help: what this client adds, per mode.
LOCAL_HELP_INTERACTIVE = (
    "This client also understands: q alone on a line quits, and so do Ctrl-D and Ctrl-C.",
    "Start a line with // to send text beginning with '/'.",
)
LOCAL_HELP_SCRIPT = (
    "Scripting mode: every line is sent (even q); /quit ends the run, as does end of input.",
    "Start a line with // to send text beginning with '/'.",
)


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``event``; ``echo`` is the text to show as ``[SENT] ...`` (messages only)."""

    event: Event
    echo: str | None = None


@dataclass(frozen=True, slots=True)
class Leave:
    """Quit the chat."""

    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Complain:
    """Nothing is sent: tell the user what was wrong with the line."""

    message: str


Action = Send | Leave | Complain


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
        return Send(Say(text[1:]), echo=text[1:])
    if not text.startswith("/"):
        return Send(Say(text), echo=text)
    name, _, args = text[1:].partition(" ")
    args = args.strip()
    command = name.lower()
    if command == "quit":
        return Leave(args[:SHORT_TEXT_MAX_LENGTH] or None)
    if command == "nick":
        if not args:
            return Complain("usage: /nick NAME")
        problem = nick_problem(args)
        if problem is not None:
            return Complain(f"cannot use {args!r} as a nickname: {problem}")
        return Send(ChangeNick(args))
    if command == "who":
        return Send(Who())
    if command == "help":
        return Send(Help())
    return Complain(
        f"unknown command /{name[:32]}: type /help for the list "
        "(start a line with // to send it as text)"
    )


def quit_event(action: Leave) -> Quit:
    return Quit(action.reason)
