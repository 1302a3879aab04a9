"""A real terminal IRC client in the compose demo: Debian's irssi, headless in tmux,
chatting with `docker compose run client` through the published IRC port."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from .stack import ROOT, WAIT, Stack, wait_in


class Irssi:
    """irssi in a detached tmux session: keys in, the screen out."""

    def __init__(self, session: str) -> None:
        self.session = session

    def type(self, text: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.session, "-l", text], check=True)
        subprocess.run(["tmux", "send-keys", "-t", self.session, "Enter"], check=True)

    def screen(self) -> str:
        shown = subprocess.run(
            ["tmux", "capture-pane", "-p", "-J", "-S", "-200", "-t", self.session],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return shown.stdout

    def wait_for(self, text: str) -> str:
        """Until ``text`` is on the screen (a bounded number of looks at it)."""
        deadline = time.monotonic() + WAIT
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.2)  # (a terminal has no event to wait on: look again)
        raise AssertionError(f"{text!r} never on irssi's screen:\n{screen}")


@contextmanager
def irssi(port: int, nick: str, home: Path) -> Iterator[Irssi]:
    for tool in ("irssi", "tmux"):
        if shutil.which(tool) is None:
            pytest.fail(
                f"{tool} is missing: the IRC test needs Debian's irssi and tmux "
                "(apt-get install irssi tmux, as .ci/run does).",
                pytrace=False,
            )
    session = f"peerchat-irssi-{uuid.uuid4().hex[:8]}"
    command = f"irssi --home={home} -c 127.0.0.1 -p {port} -n {nick}"
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "160", "-y", "48", command],
        check=True,
    )
    try:
        yield Irssi(session)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)


def test_irssi_chats_with_a_terminal_client_in_the_compose_demo(
    stack: Stack, tmp_path: Path
) -> None:
    logs = stack.run("logs", "server").stdout
    assert f"[INFO] IRC at 127.0.0.1:{stack.irc_port}" in logs
    with irssi(stack.irc_port, "irssiuser", tmp_path) as irc:
        irc.wait_for("Welcome to the peerchat IRC network")
        irc.wait_for("#lobby")
        irc.type("/window goto #lobby")  # the channel's own window
        irc.wait_for("[#lobby]")
        client = subprocess.Popen(
            stack.compose("run", "--rm", "-T", "client", "--nick", "termy", "--linger", "30"),
            cwd=ROOT, env=stack.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        assert client.stdin is not None
        assert client.stdout is not None
        try:
            irc.wait_for("termy")  # joined #lobby
            client.stdin.write("hello from the terminal\n")
            client.stdin.flush()
            irc.wait_for("hello from the terminal")
            irc.type("/msg #lobby hello from irssi")
            wait_in(client.stdout, "hello from irssi")
            irc.type("/me waves from irssi")
            wait_in(client.stdout, "waves from irssi")
            client.stdin.write("/quit\n")
            client.stdin.flush()
            client.stdin.close()
            assert client.wait(timeout=WAIT) == 0
        finally:
            if client.poll() is None:
                client.kill()
                client.wait()
        irc.type("/quit bye from irssi")
