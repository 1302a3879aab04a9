"""The ``peerchat-client`` command: options, environment variables, prompts, exit codes.

Exit status: 0 after quitting (or, in scripting mode, at the end of input);
1 when the server cannot be reached or goes away; 2 for a bad option or a
listen port that cannot be used; 130 when interrupted before the chat starts.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from typing import Any

import click
import colorama

from peerchat_protocol import nick_problem

from . import __version__
from .app import run
from .config import (
    DEFAULT_DELAY,
    DEFAULT_HOST,
    DEFAULT_KEEPALIVE,
    DEFAULT_LINGER,
    DEFAULT_PORT,
    DEFAULT_WAIT,
    ClientConfig,
)
from .console import Console, Display
from .dial import check_listen_port
from .errors import ListenPortTaken

#: Wrong answers to one prompt before giving up (a prompt loop must end).
MAX_PROMPT_ATTEMPTS = 5


def _nick_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None or value == "":
        return None
    problem = nick_problem(value)
    if problem is not None:
        raise click.BadParameter(problem)
    return value


def _ask(status: Console, text: str, parse: Callable[[str], int | str | None]) -> int | str | None:
    """Ask until ``parse`` accepts the answer (it raises ValueError with the reason)."""
    for _ in range(MAX_PROMPT_ATTEMPTS):
        # Prompts go to stderr when stdout is redirected, so they never land in a log.
        answer = click.prompt(text, default="", show_default=False, err=not sys.stdout.isatty())
        answer = answer.strip()
        try:
            return parse(answer)
        except ValueError as exc:
            status.error(str(exc))
    raise click.UsageError(f"no valid answer after {MAX_PROMPT_ATTEMPTS} tries")


def _port_parser(*, allow_zero: bool) -> Callable[[str], int]:
    low = 0 if allow_zero else 1

    def parse(answer: str) -> int:
        if answer == "":  # Enter alone: any local port, or the server's default port
            return 0 if allow_zero else DEFAULT_PORT
        if not answer.isdigit() or not low <= int(answer) <= 65535:
            raise ValueError(f"Not a port number: {answer!r} (use {low}-65535)")
        return int(answer)

    return parse


def _parse_nick(answer: str) -> str | None:
    if not answer:
        return None
    problem = nick_problem(answer)
    if problem is not None:
        raise ValueError(f"Cannot use {answer!r}: {problem}")
    return answer


SECONDS = click.FloatRange(min=0)


class OneLineErrors(click.Command):
    """Usage errors as one ``[ERROR]`` line and exit status 2; Ctrl-C at a question quits."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            return super().main(*args, **kwargs)
        except click.UsageError as exc:
            hint = "" if exc.ctx is None else f" (see {exc.ctx.command_path} --help)"
            click.echo(f"[ERROR] {exc.format_message()}{hint}", err=True)
            sys.exit(2)
        except click.Abort:  # Ctrl-C or Ctrl-D at one of the questions
            click.echo("\n[INFO] Quitting...", err=True)
            sys.exit(130)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)


@click.command(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--host",
    envvar="PEERCHAT_HOST",
    default=DEFAULT_HOST,
    show_default=True,
    help="Server host name or address. [env: PEERCHAT_HOST]",
)
@click.option(
    "--port",
    envvar="PEERCHAT_PORT",
    type=click.IntRange(1, 65535),
    help="Server port (asked for in a terminal when missing). [env: PEERCHAT_PORT]",
)
@click.option(
    "--listen-port",
    envvar="PEERCHAT_LISTEN_PORT",
    type=click.IntRange(0, 65535),
    help="Local port our connection comes from, as the server and /who show it; "
    "0 for any. [env: PEERCHAT_LISTEN_PORT]",
)
@click.option(
    "--nick",
    envvar="PEERCHAT_NICK",
    callback=_nick_option,
    help="Nickname to ask for; the server picks one when unset or taken. [env: PEERCHAT_NICK]",
)
@click.option(
    "--tls",
    envvar="PEERCHAT_TLS",
    is_flag=True,
    help="Talk TLS, checking the server's certificate. [env: PEERCHAT_TLS=1]",
)
@click.option(
    "--ca-file",
    envvar="PEERCHAT_CA_FILE",
    type=click.Path(exists=True, dir_okay=False),
    help="Check the server's certificate against this CA (PEM) instead of the system's; "
    "implies --tls. [env: PEERCHAT_CA_FILE]",
)
@click.option(
    "--insecure",
    envvar="PEERCHAT_INSECURE",
    is_flag=True,
    help="With TLS, do not check the server's certificate (self-signed demos only); "
    "implies --tls. [env: PEERCHAT_INSECURE=1]",
)
@click.option(
    "--password",
    envvar="PEERCHAT_PASSWORD",
    help="The server's password, if it has one. [env: PEERCHAT_PASSWORD]",
)
@click.option(
    "--password-file",
    envvar="PEERCHAT_PASSWORD_FILE",
    type=click.Path(dir_okay=False),
    help="Read the password from this file's first line (a compose secret), so it is "
    "in no command line or environment. [env: PEERCHAT_PASSWORD_FILE]",
)
@click.option(
    "--wait",
    envvar="PEERCHAT_WAIT",
    type=SECONDS,
    default=DEFAULT_WAIT,
    show_default=True,
    help="Seconds to keep looking for a server that is not up yet. [env: PEERCHAT_WAIT]",
)
@click.option(
    "--delay",
    envvar="PEERCHAT_DELAY",
    type=SECONDS,
    default=DEFAULT_DELAY,
    show_default=True,
    help="Seconds to wait after connecting before taking input (the original program "
    "waited 10). "
    "[env: PEERCHAT_DELAY]",
)
@click.option(
    "--linger",
    envvar="PEERCHAT_LINGER",
    type=SECONDS,
    default=DEFAULT_LINGER,
    show_default=True,
    help="Scripting mode: seconds to keep receiving after the end of stdin. [env: PEERCHAT_LINGER]",
)
@click.option(
    "--json",
    "json_output",
    is_flag=True,
    help="Scripting mode, printing one JSON object per received event on stdout.",
)
@click.option(
    "--timestamps/--no-timestamps",
    envvar="PEERCHAT_TIMESTAMPS",
    default=True,
    show_default=True,
    help="Show the local time (HH:MM) before each message. [env: PEERCHAT_TIMESTAMPS=0|1]",
)
@click.option(
    "--bell/--no-bell",
    envvar="PEERCHAT_BELL",
    default=True,
    show_default=True,
    help="In a terminal, ring the bell for a message naming you or a private message. "
    "[env: PEERCHAT_BELL=0|1]",
)
@click.option(
    "--reconnect/--no-reconnect",
    envvar="PEERCHAT_RECONNECT",
    default=None,
    help="After a lost connection, reconnect by itself, get your name, room and the "
    "messages you missed back, and send what you typed meanwhile. "
    "[default: on in a terminal, off in scripting mode] [env: PEERCHAT_RECONNECT=0|1]",
)
@click.option(
    "--keepalive",
    envvar="PEERCHAT_KEEPALIVE",
    type=SECONDS,
    default=DEFAULT_KEEPALIVE,
    show_default=True,
    help="Ping the server after this many quiet seconds; call the connection dead after "
    "twice as many with no answer (0: never). [env: PEERCHAT_KEEPALIVE]",
)
@click.version_option(__version__, "-V", "--version", prog_name="peerchat-client")
def main(
    host: str,
    port: int | None,
    listen_port: int | None,
    nick: str | None,
    tls: bool,
    ca_file: str | None,
    insecure: bool,
    password: str | None,
    password_file: str | None,
    wait: float,
    delay: float,
    linger: float,
    json_output: bool,
    timestamps: bool,
    bell: bool,
    reconnect: bool | None,
    keepalive: float,
) -> None:
    """Chat through a peerchat server.

    In a terminal: type a line to send it; q or /quit leaves; /help lists the
    commands (/msg, /me, /join, /leave, /rooms, /who, /nick...). With stdin not
    a terminal (a pipe, a file, docker compose run -T): every line of stdin is
    sent, every event received is printed, and the client exits once input ends
    and --linger has passed.
    """
    colorama.just_fix_windows_console()
    terminal = sys.stdin.isatty()
    interactive = terminal and sys.stdout.isatty() and not json_output
    display = Display(timestamps=timestamps, bell=bell and interactive)
    # Scripting mode keeps stdout for what is received; our own notices go to stderr.
    status = Console(display=display) if interactive else Console(sys.stderr, display=display)

    password = _read_password_file(password_file) if password_file else password
    if listen_port is None:
        listen_port = 0
        if terminal:
            asked = _ask(status, "Enter the listen port number", _port_parser(allow_zero=True))
            listen_port = int(asked or 0)
    if listen_port:
        try:
            check_listen_port(listen_port)
        except ListenPortTaken as exc:
            status.error(exc.message)
            sys.exit(exc.exit_code)
        status.success(f"Local port {listen_port} is free: our connection will come from it")
    if port is None:
        if not terminal:
            port = DEFAULT_PORT  # never ask without a terminal: the server's default
        else:
            port = int(
                _ask(
                    status,
                    "Enter the server port number",  # the seed's words; Enter alone means 8080
                    _port_parser(allow_zero=False),
                )
                or DEFAULT_PORT
            )
    if nick is None and terminal:
        answer = _ask(status, "Enter your nickname (Enter: let the server choose)", _parse_nick)
        nick = str(answer) if answer else None

    config = ClientConfig(
        port=port,
        host=host,
        listen_port=listen_port,
        nick=nick,
        wait=wait,
        delay=delay,
        linger=linger,
        json=json_output,
        timestamps=timestamps,
        bell=bell,
        tls=tls or bool(ca_file) or insecure,
        ca_file=ca_file,
        insecure=insecure,
        password=password,
        reconnect=reconnect,
        keepalive=keepalive,
    )
    try:
        code = asyncio.run(run(config, status, interactive=interactive))
    except KeyboardInterrupt:
        status.info("Quitting...")
        code = 130
    except BrokenPipeError:
        # Whoever read our stdout has gone (`| head`): nothing left to say.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = 1
    sys.exit(code)


def _read_password_file(path: str) -> str:
    """The first line of ``path``; a usage error that says why if it cannot be read."""
    try:
        with open(path, encoding="utf-8") as secret:
            first = secret.readline().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.UsageError(f"cannot read the password file {path!r}: {exc}") from None
    if not first:
        raise click.UsageError(
            f"the password file {path!r} is empty: put the password on its first line"
        )
    return first
