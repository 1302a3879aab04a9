"""peerchat-server as a real process: startup, errors, the port prompt, SIGTERM."""

from __future__ import annotations

import asyncio
import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
import time

import pytest

from peerchat_protocol import Bye

from .peers import WAIT, PlainPeer, RichPeer, membership_line

SERVER = [sys.executable, "-m", "peerchat_server"]
STARTED = re.compile(r"\[SUCCESS\] Server started on 127\.0\.0\.1:(\d+)")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PEERCHAT_", "FORCE_COLOR"))}
    env.update(extra)
    return env


async def start_server(*args: str) -> tuple[asyncio.subprocess.Process, int]:
    proc = await asyncio.create_subprocess_exec(
        *SERVER, "--port", "0", *args,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env=clean_env(),
    )  # fmt: skip
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), WAIT)).decode()
    match = STARTED.search(line)
    assert match, line
    return proc, int(match.group(1))


async def test_sigterm_says_goodbye_and_exits_0() -> None:
    proc, port = await start_server()
    nc = await PlainPeer.connect(port)
    rich = await RichPeer.connect(port, "rich")
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert (await nc.eof())[-1] == "! The server is shutting down. Reconnect when it is back."
    assert (await rich.expect(Bye)).code == "shutdown"
    assert await rich.event() is None
    assert await asyncio.wait_for(proc.wait(), WAIT) == 0
    assert time.monotonic() - started < 5
    assert proc.stdout is not None
    output = (await proc.stdout.read()).decode()
    assert "[SHUTDOWN] SIGTERM received: closing 2 connections." in output
    assert "[STOPPED] Server stopped." in output
    assert "Traceback" not in output


async def test_sigint_with_nobody_connected_exits_0() -> None:
    proc, _ = await start_server()
    proc.send_signal(signal.SIGINT)
    assert await asyncio.wait_for(proc.wait(), WAIT) == 0


async def test_console_keeps_the_seed_tags() -> None:
    proc, port = await start_server()
    nc = await PlainPeer.connect(port)
    other = await PlainPeer.connect(port)
    await nc.say("Hello from Client 1!")
    await other.expect("Hello from Client 1!", skip=membership_line)
    nc.reset()
    await other.expect("left")
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(proc.wait(), WAIT) == 0
    assert proc.stdout is not None
    output = (await proc.stdout.read()).decode()
    for expected in (
        f"[NEW CONNECTION] Peer {nc.addr} connected.",
        "[ACTIVE CONNECTIONS] 2",
        f"[RECEIVED] From {nc.addr}: Hello from Client 1!",
        f"[CONNECTION RESET] Peer {nc.addr} forcibly closed the connection.",
        f"[DISCONNECTED] {nc.addr} removed from peers list.",
        "[ACTIVE CONNECTIONS] 1",
    ):
        assert expected in output
    assert "\x1b" not in output  # no colour when not on a terminal


def test_port_in_use_is_one_clear_line_and_status_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*SERVER, "--port", str(port)], capture_output=True, text=True, timeout=WAIT,
            stdin=subprocess.DEVNULL, env=clean_env(),
        )  # fmt: skip
    assert result.returncode == 2
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert lines == [
        f"[ERROR] Port {port} on 127.0.0.1 is already in use. Stop the program using it, "
        "or choose another port with --port."
    ]


@pytest.mark.parametrize(
    ("args", "env", "needle"),
    [
        (["--port", "abc"], {}, "'abc' is not a valid integer"),
        (["--port", "70000"], {}, "70000 is not in the range 0<=x<=65535"),
        ([], {"PEERCHAT_PORT": "-1"}, "-1 is not in the range"),
        (["--host", "no.such.host.invalid"], {}, "unknown host"),
        (["--bogus"], {}, "--bogus"),
    ],
)
def test_bad_values_are_one_clear_line_and_status_2(
    args: list[str], env: dict[str, str], needle: str
) -> None:
    result = subprocess.run(
        [*SERVER, *args], capture_output=True, text=True, timeout=WAIT,
        stdin=subprocess.DEVNULL, env=clean_env(**env),
    )  # fmt: skip
    assert result.returncode == 2
    output = (result.stdout + result.stderr).strip()
    assert len(output.splitlines()) == 1, output
    assert output.startswith("[ERROR] ")
    assert needle in output
    assert "Traceback" not in output


def _read_until(fd: int, needle: bytes, deadline: float) -> bytes:
    seen = b""
    while needle not in seen:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"{needle!r} not seen in {seen!r}"
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
    return seen


def test_asks_for_the_port_on_a_terminal() -> None:
    main, child = pty.openpty()
    proc = subprocess.Popen(SERVER, stdin=child, stdout=child, stderr=child, env=clean_env())
    os.close(child)
    try:
        deadline = time.monotonic() + WAIT
        assert b"Enter the port number" in _read_until(main, b"Enter the port number", deadline)
        os.write(main, b"0\r")
        output = _read_until(main, b"Server started on", deadline)
        assert b"[SUCCESS]" in output
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=WAIT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(main)


def test_never_prompts_without_a_terminal() -> None:
    # Port given by nobody and no terminal: the default port, no question asked. On
    # 127.0.0.3 (loopback too), so a demo running on 127.0.0.1:8080 is left alone.
    proc = subprocess.Popen(
        [*SERVER, "--host", "127.0.0.3"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, env=clean_env(),
    )  # fmt: skip
    assert proc.stdout is not None
    first = proc.stdout.readline().decode()
    proc.send_signal(signal.SIGTERM)
    rest = proc.communicate(timeout=WAIT)[0].decode()
    assert "Enter the port number" not in first + rest
    # Either it started on 8080, or 8080 was busy on this machine: both prove no prompt.
    assert "127.0.0.3:8080" in first or "Port 8080 on 127.0.0.3 is already in use" in first


def test_env_vars_configure_the_server() -> None:
    result = subprocess.run(
        [*SERVER, "--help"], capture_output=True, text=True, timeout=WAIT, env=clean_env()
    )
    assert result.returncode == 0
    for name in ("PEERCHAT_HOST", "PEERCHAT_PORT", "PEERCHAT_MAX_LINE_BYTES", "PEERCHAT_QUIET"):
        assert name in result.stdout
