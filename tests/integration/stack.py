"""The demo as the README runs it: docker-compose.yml under a unique project name and
free host ports, so two runs cannot collide; torn down even when a test fails."""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[2]
WAIT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Stack:
    def __init__(self) -> None:
        self.project = f"peerchat-test-{uuid.uuid4().hex[:8]}"
        self.port = free_port()
        self.ws_port = free_port()
        self.irc_port = free_port()
        self.metrics_port = free_port()
        self.env = {
            **os.environ,
            "PEERCHAT_PORT": str(self.port),
            "PEERCHAT_WS_PORT": str(self.ws_port),
            "PEERCHAT_IRC_PORT": str(self.irc_port),
            "PEERCHAT_METRICS_PORT": str(self.metrics_port),
            "PEERCHAT_NICK": "",
        }

    @property
    def web_url(self) -> str:
        """The web chat, where the server's start line says it is."""
        return f"http://127.0.0.1:{self.ws_port}/"

    def compose(self, *args: str) -> list[str]:
        return ["docker", "compose", "-p", self.project, *args]

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.compose(*args), cwd=ROOT, env=self.env, capture_output=True, text=True,
            timeout=timeout, stdin=subprocess.DEVNULL,
        )  # fmt: skip


@contextmanager
def running_stack(**settings: str) -> Iterator[Stack]:
    """`docker compose up server` (with ``settings``, as if in .env), then down."""
    stack = Stack()
    stack.env.update(settings)
    # Build from the compose file under its own project name, as `make build` does, so
    # the (cached) build reuses the same image instead of relabelling it per test run.
    build = subprocess.run(
        ["docker", "compose", "--profile", "client", "build"], cwd=ROOT, env=stack.env,
        capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout + build.stderr
    try:
        up = stack.run("up", "--detach", "--wait", "server")
        assert up.returncode == 0, up.stdout + up.stderr
        yield stack
    finally:
        down = stack.run("--profile", "client", "down", "--remove-orphans", "--volumes")
        assert down.returncode == 0, down.stdout + down.stderr


def wait_in(stream: IO[str], text: str) -> str:
    """Read a client's output until a line with ``text`` (at most 500 lines)."""
    for _ in range(500):
        line = stream.readline()
        assert line, f"the client ended before {text!r}"
        if text in line:
            return line
    raise AssertionError(f"no {text!r} in 500 lines")
