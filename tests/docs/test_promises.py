"""What the documents promise in numbers and names is what the code does.

Each figure a user reads in README.md, SECURITY.md, PROTOCOL.md, docs/ or the client's
README is checked against the value the code uses, and each option table against the
real command line: change either side alone and a test here fails. (What the figures
*do* is tested where the behaviour is: the limit tests use these same settings.)
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pytest

from peerchat_client import cli as client_cli
from peerchat_client import ledger, link
from peerchat_protocol import DEFAULT_MAX_LINE_BYTES, text
from peerchat_server import addresses, config, console, options, rooms, sqlstore, tokens
from peerchat_server import cli as server_cli

from . import test_layout

ROOT = Path(__file__).resolve().parents[2]
KiB = 1024


def read(name: str) -> str:
    """A document with its line breaks folded into spaces, so a phrase may span lines."""
    return re.sub(r"\s+", " ", (ROOT / name).read_text(encoding="utf-8"))


def default_of(command: click.Command, option: str) -> Any:
    return next(p for p in command.params if option in p.opts).default


# (document, phrase the user reads, value in the code, value the phrase states)
PROMISES: list[tuple[str, str, object, object]] = [
    # README.md
    ("README.md", "the last 20 messages of a room for whoever comes in",
     config.DEFAULT_HISTORY_MESSAGES, 20),
    ("README.md", "each peer may send a burst of 20 lines, then 5 a second",
     (config.DEFAULT_FLOOD_BURST, config.DEFAULT_FLOOD_RATE), (20, 5)),
    ("README.md", "a peer that keeps flooding for 30 seconds is disconnected",
     config.DEFAULT_FLOOD_KICK_AFTER, 30),
    ("README.md", "a quarter second at first, at most 8 s between tries, for up to 15 minutes",
     (link.RECONNECT_FIRST, link.RECONNECT_CAP, link.RECONNECT_GIVE_UP), (0.25, 8, 15 * 60)),
    ("README.md", "the server keeps a session for 5 minutes after its connection is lost",
     config.DEFAULT_RESUME_WINDOW, 5 * 60),
    ("README.md", "every room keeps its last 1,000 (`--catch-up`)",
     config.DEFAULT_CATCH_UP_MESSAGES, 1000),
    ("README.md", "lines typed while disconnected (up to 100)", ledger.QUEUE_LINES, 100),
    ("README.md", "(`--keepalive`, 15 s) and calls the connection dead after twice that",
     default_of(client_cli.main, "--keepalive"), 15),
    ("README.md", "within `--wait` seconds (default 10)",
     default_of(client_cli.main, "--wait"), 10),
    ("README.md", "for `--linger` seconds (default 2)", default_of(client_cli.main, "--linger"), 2),
    # SECURITY.md
    ("SECURITY.md", "letters, digits, `_ - .`, 1 to 32 characters", text.NICK_MAX_LENGTH, 32),
    ("SECURITY.md", "`server`, `peerchat` and `system` are reserved",
     text.RESERVED_NICKS, {"server", "peerchat", "system"}),
    ("SECURITY.md", "| line length `--max-line-bytes` | 16,384 bytes |",
     DEFAULT_MAX_LINE_BYTES, 16_384),
    ("SECURITY.md", "| bad lines `--max-errors` | 20 |", config.DEFAULT_MAX_ERRORS, 20),
    ("SECURITY.md", "| send buffer `--max-send-buffer` | 1 MiB |",
     config.DEFAULT_MAX_SEND_BUFFER, 1024 * KiB),
    ("SECURITY.md", "| flood `--flood-burst`, `--flood-rate` | 20 lines, then 5 a second; "
     "a line counts one more per KiB past its first, and a blank line counts as a line |",
     (config.DEFAULT_FLOOD_BURST, config.DEFAULT_FLOOD_RATE, config.FLOOD_BYTES_PER_TOKEN),
     (20, 5, KiB)),
    ("SECURITY.md", "`--address-flood-rate` | 40 lines, then 10 a second",
     (config.DEFAULT_ADDRESS_FLOOD_BURST, config.DEFAULT_ADDRESS_FLOOD_RATE), (40, 10)),
    ("SECURITY.md", "`--connect-rate` | 10 at once, then 1 a second |",
     (config.DEFAULT_CONNECT_BURST, config.DEFAULT_CONNECT_RATE), (10, 1)),
    ("SECURITY.md", "in one line every 10 s |", addresses.REFUSAL_LOG_PERIOD, 10),
    ("SECURITY.md", "`--rename-rate` | 5 at once, then one every 5 s |",
     (config.DEFAULT_RENAME_BURST, 1 / config.DEFAULT_RENAME_RATE), (5, 5)),
    ("SECURITY.md", "(1 s, 2 s, 4 s ...); the 10th refuses it for 600 s |",
     (config.DEFAULT_AUTH_FAILURES, config.DEFAULT_AUTH_LOCKOUT), (10, 600)),
    ("SECURITY.md", "`--ipv6-prefix` | IPv4 /32, IPv6 /64 |",
     (config.DEFAULT_IPV4_PREFIX, config.DEFAULT_IPV6_PREFIX), (32, 64)),
    ("SECURITY.md", "| all rooms' logs `--catch-up-total-bytes` | 64 MiB |",
     config.DEFAULT_CATCH_UP_TOTAL_BYTES, 64 * KiB * KiB),
    ("SECURITY.md", "`--max-sessions-per-address` | 32 |",
     config.DEFAULT_MAX_SESSIONS_PER_ADDRESS, 32),
    ("README.md", "40 lines then 10 a second, 10 new connections then 1 a second, 5 renames "
     "then one every 5 s",
     (config.DEFAULT_ADDRESS_FLOOD_BURST, config.DEFAULT_ADDRESS_FLOOD_RATE,
      config.DEFAULT_CONNECT_BURST, config.DEFAULT_CONNECT_RATE,
      config.DEFAULT_RENAME_BURST, 1 / config.DEFAULT_RENAME_RATE), (40, 10, 10, 1, 5, 5)),
    ("README.md", "(a long line counts one more per KiB past its first)",
     config.FLOOD_BYTES_PER_TOKEN, KiB),
    ("SECURITY.md", "| persistent flood `--flood-kick-after` | 30 s over its own rate |",
     config.DEFAULT_FLOOD_KICK_AFTER, 30),
    ("SECURITY.md", "| connections `--max-connections` | 10,000 |",
     config.DEFAULT_MAX_CONNECTIONS, 10_000),
    ("SECURITY.md", "| per address `--max-per-address` | 16 |", config.DEFAULT_MAX_PER_ADDRESS, 16),
    ("SECURITY.md", "| ping after 60 s, drop 30 s later |",
     (config.DEFAULT_PING_AFTER, config.DEFAULT_PING_TIMEOUT), (60, 30)),
    ("SECURITY.md", "off (TCP keepalive finds dead peers after about 2 minutes)",
     (config.DEFAULT_IDLE_TIMEOUT,
      config.KEEPALIVE_IDLE + config.KEEPALIVE_INTERVAL * config.KEEPALIVE_COUNT), (0, 120)),
    ("SECURITY.md", "| time to give it `--auth-timeout` | 10 s |", config.DEFAULT_AUTH_TIMEOUT, 10),
    ("SECURITY.md", "| 20 messages, 32 KiB per room |",
     (config.DEFAULT_HISTORY_MESSAGES, config.DEFAULT_HISTORY_BYTES), (20, 32 * KiB)),
    ("SECURITY.md", "| 1,000 messages, 256 KiB of text per room |",
     (config.DEFAULT_CATCH_UP_MESSAGES, config.DEFAULT_CATCH_UP_BYTES), (1000, 256 * KiB)),
    ("SECURITY.md", "| 300 s after a connection is lost;", config.DEFAULT_RESUME_WINDOW, 300),
    ("SECURITY.md", "| join notices `--join-notices-up-to` | rooms of 1,000 |",
     config.DEFAULT_JOIN_NOTICES_UP_TO, 1000),
    ("SECURITY.md", "| console | 10,000 queued lines |", console.QUEUE_LINES, 10_000),
    ("SECURITY.md", "a session secret (128 random bits from `secrets`)",
     tokens.TOKEN_BYTES * 8, 128),
    ("SECURITY.md", "dies when the client quits or 5 minutes after its connection is lost",
     config.DEFAULT_RESUME_WINDOW, 5 * 60),
    # PROTOCOL.md, section 1
    ("protocol/PROTOCOL.md", "server allows a burst of 20 lines, then 5 a second (a long line "
     "counts one more per KiB past its first, a blank line counts as a line)",
     (config.DEFAULT_FLOOD_BURST, config.DEFAULT_FLOOD_RATE, config.FLOOD_BYTES_PER_TOKEN),
     (20, 5, KiB)),
    ("protocol/PROTOCOL.md", "stays over its own rate for 30 seconds",
     config.DEFAULT_FLOOD_KICK_AFTER, 30),
    # PROTOCOL.md, section 8
    ("protocol/PROTOCOL.md", "a secret (at least 128 random bits)", tokens.TOKEN_BYTES * 8, 128),
    ("protocol/PROTOCOL.md", "(default 300 seconds)", config.DEFAULT_RESUME_WINDOW, 300),
    ("protocol/PROTOCOL.md", "Each room keeps its last 1,000 messages (at most 256 KiB of text",
     (config.DEFAULT_CATCH_UP_MESSAGES, config.DEFAULT_CATCH_UP_BYTES), (1000, 256 * KiB)),
    ("protocol/PROTOCOL.md", "new members still get only the last 20 as history",
     config.DEFAULT_HISTORY_MESSAGES, 20),
    ("protocol/PROTOCOL.md", "(peerchat's client: 15 s)",
     default_of(client_cli.main, "--keepalive"), 15),
    ("protocol/PROTOCOL.md", "(up to 256 of them; if more were sent, an `info` says how many",
     config.REPLAY_LIMIT, 256),
    ("protocol/PROTOCOL.md", "or after a short delay (0.5 s by default)",
     config.ANNOUNCE_DELAY, 0.5),
    # docs/fault-tolerance.md
    ("docs/fault-tolerance.md", "within the resume window (5 minutes)",
     config.DEFAULT_RESUME_WINDOW, 5 * 60),
    ("docs/fault-tolerance.md", "more than the server keeps (1,000 messages per room)",
     config.DEFAULT_CATCH_UP_MESSAGES, 1000),
    ("docs/fault-tolerance.md", "(`--keepalive`, 15 s)",
     default_of(client_cli.main, "--keepalive"), 15),
    ("docs/fault-tolerance.md", "jittered exponential backoff (0.25 s up to 8 s)",
     (link.RECONNECT_FIRST, link.RECONNECT_CAP), (0.25, 8)),
    ("docs/fault-tolerance.md", "then those typed while away (up to 100)", ledger.QUEUE_LINES, 100),
    # docs/architecture.md
    ("docs/architecture.md", "its 51 options as one table", len(options.OPTIONS), 51),
    # the store (issue 21)
    ("SECURITY.md", "| a store too slow for the chat | 50,000 messages waiting to be written |",
     sqlstore.MAX_BEHIND, 50_000),
    ("SECURITY.md", "(at most 10,000 such rooms, the quietest go first)",
     rooms.ENDED_ROOMS_KEPT, 10_000),
    ("docs/architecture.md", "passes about 400 lines (410 at most;",
     test_layout.MAX_MODULE_LINES, 410),
    ("docs/architecture.md", "McCabe complexity 10 or less",
     tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]["mccabe"][
         "max-complexity"], 10),
    # client/README.md
    ("client/README.md", "backoff 0.25 s doubling to 8 s, with jitter, for up to 15 minutes",
     (link.RECONNECT_FIRST, link.RECONNECT_CAP, link.RECONNECT_GIVE_UP), (0.25, 8, 15 * 60)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("document", "phrase", "actual", "stated"),
    PROMISES,
    ids=[f"{doc}: {phrase[:50]}" for doc, phrase, _, _ in PROMISES],
)
def test_a_stated_figure_is_the_one_the_code_uses(
    document: str, phrase: str, actual: object, stated: object
) -> None:
    assert phrase in read(document), f"{document} no longer says {phrase!r}: update this test"
    assert actual == stated, f"{document} says {phrase!r}, the code has {actual!r}"


# --- option tables ---------------------------------------------------------------------


def table_rows(document: str, heading: str) -> list[list[str]]:
    """The cells of the first table after ``heading`` (a line of the document)."""
    lines = (ROOT / document).read_text(encoding="utf-8").splitlines()
    start = lines.index(heading)
    rows = []
    for line in lines[start + 1 :]:
        if rows and not line.startswith("|"):
            break
        if line.startswith("|") and not set(line) <= set("|- "):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows[1:]  # without the header


def ticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]*)`", cell)


def check_table(
    command: click.Command, rows: list[list[str]], default_check: Callable[[Any, str], None]
) -> None:
    documented: set[str] = set()
    for option_cell, env_cell, default_cell, _meaning in rows:
        options = [opt.split()[0] for opt in ticked(option_cell)]
        envs = [env for env in ticked(env_cell) if env.startswith("PEERCHAT_")]
        params = []
        for option in options:
            found = [p for p in command.params if option in p.opts + p.secondary_opts]
            assert found, f"the table documents {option}, which the command does not have"
            params.append(found[0])
        documented.update(p.name for p in params if p.name)
        wanted_envs = sorted({p.envvar for p in params if p.envvar})
        assert sorted(set(envs)) == wanted_envs, option_cell
        for param in {p.name: p for p in params}.values():
            default_check(param.default, default_cell)
    undocumented = (
        {p.name for p in command.params if isinstance(p, click.Option) and not p.hidden}
        - documented
        - {"version", "help"}
    )
    assert not undocumented, f"options missing from the table: {sorted(undocumented)}"


def test_the_readme_lists_every_server_option_with_its_variable_and_default() -> None:
    def same_default(default: Any, cell: str) -> None:
        shown = ticked(cell)
        if not shown:  # blank or "off": no value
            assert not default or default is click.core.UNSET or cell == "off", (default, cell)
        elif isinstance(default, int | float) and not isinstance(default, bool):
            assert float(shown[0]) == default, (default, cell)
        else:
            assert shown[0] == default, (default, cell)

    check_table(server_cli.main, table_rows("README.md", "## Server options"), same_default)


def test_the_client_readme_lists_every_client_option_with_its_variable() -> None:
    def same_default(default: Any, cell: str) -> None:
        shown = ticked(cell)
        if len(shown) == 1 and cell == f"`{shown[0]}`" and isinstance(default, float):
            assert float(shown[0]) == default, (default, cell)

    check_table(client_cli.main, table_rows("client/README.md", "# peerchat-client"), same_default)


# --- the tests the documents point to ---------------------------------------------------


@pytest.mark.parametrize(
    "document",
    [
        "README.md",
        "SECURITY.md",
        "docs/fault-tolerance.md",
        "docs/architecture.md",
        "protocol/PROTOCOL.md",
    ],
)
def test_every_test_a_document_names_exists(document: str) -> None:
    words = (ROOT / document).read_text(encoding="utf-8")
    tests = ROOT / "tests"
    named = set(re.findall(r"\b(?:tests/[\w/]*)?test_\w+\.py(?:::test_\w+)?", words))
    for reference in named:
        file, _, function = reference.partition("::")
        candidates = [ROOT / file] if "/" in file else list(tests.rglob(file))
        found = [path for path in candidates if path.is_file()]
        assert found, f"{document} names {file}, which does not exist"
        if function:
            source = "\n".join(path.read_text(encoding="utf-8") for path in found)
            assert re.search(rf"def {function}\(", source), f"{document} names {reference}"


def test_the_compose_demo_keeps_its_store_on_a_volume_for_30_days() -> None:
    """README: the demo keeps history in /data/peerchat.db on the peerchat-data volume,
    30 days (PEERCHAT_RETENTION); the cluster's replicas keep memory."""
    compose = read("docker-compose.yml")
    assert "PEERCHAT_STORE: ${PEERCHAT_STORE:-sqlite:////data/peerchat.db}" in compose
    assert "PEERCHAT_RETENTION: ${PEERCHAT_RETENTION:-30}" in compose
    assert "- peerchat-data:/data" in compose
    assert "PEERCHAT_STORE: memory" in read("docker-compose.cluster.yml")
    readme = read("README.md")
    assert "`/data/peerchat.db` on the `peerchat-data` volume" in readme
    assert "a message older than 30 days is deleted" in readme
