"""``peerchat-server``: options, environment variables, the seed's port prompt."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import click
from click.core import ParameterSource

from . import __version__
from .config import DEFAULT_PORT, ServerConfig
from .console import LEVELS, Console
from .options import server_options
from .server import ChatServer, StartupError


class OneLineErrors(click.Command):
    """Usage errors as one clear line and exit status 2, instead of click's usage block."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            return super().main(*args, **kwargs)
        except click.UsageError as exc:
            click.echo(f"[ERROR] {_describe(exc)}", err=True)
            sys.exit(2)
        except click.Abort:  # Ctrl-C or Ctrl-D at the port prompt
            click.echo("", err=True)
            sys.exit(130)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)


def _describe(exc: click.UsageError) -> str:
    """One line: what was wrong, naming the environment variable when it came from one."""
    hint = "" if exc.ctx is None else f" (see {exc.ctx.command_path} --help)"
    param = getattr(exc, "param", None)
    if (
        isinstance(exc, click.BadParameter)
        and exc.ctx is not None
        and isinstance(param, click.Option)
        and param.name is not None
        and exc.ctx.get_parameter_source(param.name) is ParameterSource.ENVIRONMENT
    ):
        envvar = param.envvar if isinstance(param.envvar, str) else "the environment"
        return f"Invalid value in {envvar}: {exc.message}{hint}"
    return f"{exc.format_message()}{hint}"


def read_password(password: str, path: str | None) -> str:
    """The password given, or the first line of ``path`` (a Docker secret, say)."""
    if not path:
        return password
    try:
        with open(path, encoding="utf-8") as secret:
            first = secret.readline().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.UsageError(f"cannot read the password file {path!r}: {exc}") from None
    if not first:
        raise click.UsageError(f"the password file {path!r} is empty")
    return first


def ask_port() -> int:
    """The seed's question, asked again (a few times at most) until the answer is a port."""
    for _ in range(10):
        answer = click.prompt(
            "Enter the port number", default=str(DEFAULT_PORT), show_default=True
        ).strip()
        if answer.isdigit() and int(answer) <= 65535:
            return int(answer)
        click.echo(f"[ERROR] Not a port number: {answer!r}. Use 1-65535, or 0 for any free port.")
    raise click.UsageError("no port number given")


@click.command(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@server_options
@click.version_option(__version__, "-V", "--version", prog_name="peerchat-server")
@click.pass_context
def main(
    ctx: click.Context,
    host: str,
    port: int,
    max_line_bytes: int,
    max_send_buffer: int,
    max_errors: int,
    shutdown_timeout: float,
    flood_burst: int,
    flood_rate: float,
    flood_kick_after: float,
    address_flood_burst: int,
    address_flood_rate: float,
    history: int,
    history_bytes: int,
    catch_up: int,
    catch_up_total_bytes: int,
    resume_window: float,
    store: str,
    retention: float,
    join_notices_up_to: int,
    max_connections: int,
    max_per_address: int,
    connect_burst: int,
    connect_rate: float,
    ipv4_prefix: int,
    ipv6_prefix: int,
    rename_burst: int,
    rename_rate: float,
    address_wait_rate: float,
    ping_after: float,
    ping_timeout: float,
    idle_timeout: float,
    tls_cert: str,
    tls_key: str,
    password: str,
    password_file: str | None,
    auth_timeout: float,
    auth_failures: int,
    auth_lockout: float,
    max_sessions_per_address: int,
    advertise: str,
    ws_port: int | None,
    ws_origins: str,
    ws_advertise: str,
    irc_port: int | None,
    irc_advertise: str,
    metrics_port: int | None,
    bus: str,
    quiet: bool,
    log_format: str,
    log_level: str,
    no_log_messages: bool,
) -> None:
    """Relay every chat message to all other connected peers.

    Peers are peerchat clients or anything that speaks lines of text:
    `nc 127.0.0.1 8080` is enough to chat.
    """
    if ctx.get_parameter_source("port") is ParameterSource.DEFAULT and sys.stdin.isatty():
        port = ask_port()
    config = ServerConfig(
        host=host,
        port=port,
        max_line_bytes=max_line_bytes,
        max_send_buffer=max_send_buffer,
        max_errors=max_errors,
        shutdown_timeout=shutdown_timeout,
        flood_burst=flood_burst,
        flood_rate=flood_rate,
        flood_kick_after=flood_kick_after,
        address_flood_burst=address_flood_burst,
        address_flood_rate=address_flood_rate,
        connect_burst=connect_burst,
        connect_rate=connect_rate,
        ipv4_prefix=ipv4_prefix,
        ipv6_prefix=ipv6_prefix,
        rename_burst=rename_burst,
        rename_rate=rename_rate,
        address_wait_rate=address_wait_rate,
        auth_failures=auth_failures,
        auth_lockout=auth_lockout,
        max_sessions_per_address=max_sessions_per_address,
        history_messages=history,
        history_bytes=history_bytes,
        catch_up_messages=catch_up,
        catch_up_total_bytes=catch_up_total_bytes,
        resume_window=resume_window,
        store=store,
        retention=retention * 86400,
        join_notices_up_to=join_notices_up_to,
        max_connections=max_connections,
        max_per_address=max_per_address,
        ping_after=ping_after,
        ping_timeout=ping_timeout,
        idle_timeout=idle_timeout,
        tls_cert=tls_cert,
        tls_key=tls_key,
        password=read_password(password, password_file),
        auth_timeout=auth_timeout,
        name=f"peerchat-server/{__version__}",
        advertise=advertise,
        ws_port=ws_port,
        ws_origins=tuple(o.strip().rstrip("/") for o in ws_origins.split(",") if o.strip()),
        ws_advertise=ws_advertise,
        irc_port=irc_port,
        irc_advertise=irc_advertise,
        metrics_port=metrics_port,
        bus=bus,
    )
    # Console lines are written by a thread: a terminal or pipe that stops reading
    # must never stall the relay.
    console = Console(
        quiet=quiet,
        background=True,
        log_format=log_format.lower(),
        level=LEVELS[log_level.lower()],
        log_messages=not no_log_messages,
    )
    server = ChatServer(config, console)
    try:
        asyncio.run(server.serve())
    except StartupError as exc:
        console.line("ERROR", str(exc))
        console.close()
        sys.exit(2)
    console.close()
