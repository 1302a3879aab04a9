"""The web chat of the compose demo, in a real browser: Debian's chromium, headless,
driven by Playwright, against `docker compose up server` and `docker compose run client`.

It also takes the README's screenshot (docs/web.png). Nothing sleeps: the browser's
waits are Playwright's ``expect`` (which polls to its deadline), the rest bounded reads.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from .stack import ROOT, WAIT, Stack, wait_in

CHROMIUM = os.environ.get("PEERCHAT_CHROMIUM", "/usr/bin/chromium")
SCREENSHOT = ROOT / "docs" / "web.png"
XSS = "<img src=x onerror=alert(1)>"

expect.set_options(timeout=30_000)  # a server restart and the page's backoff


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"No browser at {CHROMIUM}: the web tests need Debian's chromium "
            "(apt-get install chromium, as .ci/run does) or PEERCHAT_CHROMIUM.",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        yield _launch(playwright)


def _launch(playwright: Playwright) -> Browser:
    # As root (CI, containers) Chromium's sandbox cannot start: --no-sandbox.
    return playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])


class NcPeer:
    """A plain-text peer on the host, through the published chat port."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        self.lines: list[str] = []
        self._rest = b""

    def say(self, text: str) -> None:
        self.sock.sendall(text.encode() + b"\n")

    def wait_for(self, text: str) -> str:
        deadline = time.monotonic() + WAIT
        for line in self.lines:
            if text in line:
                return line
        while time.monotonic() < deadline:  # bounded by the deadline
            self.sock.settimeout(max(0.1, deadline - time.monotonic()))
            data = self.sock.recv(65536)
            assert data, f"closed before {text!r}: {self.lines!r}"
            *done, self._rest = (self._rest + data).split(b"\n")
            fresh = [raw.decode().rstrip("\r") for raw in done]
            self.lines += fresh
            for line in fresh:
                if text in line:
                    return line
        raise AssertionError(f"no {text!r} in {self.lines!r}")

    def close(self) -> None:
        self.sock.close()


def log_line(page: Page, pattern: str):  # type: ignore[no-untyped-def]
    return page.locator("#log div.line").filter(has_text=re.compile(pattern))


def test_a_browser_and_a_terminal_client_chat_in_the_compose_demo(
    stack: Stack, browser: Browser
) -> None:
    started = time.monotonic()
    page = browser.new_page(viewport={"width": 880, "height": 560})
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    client: subprocess.Popen[str] | None = None
    try:
        logs = stack.run("logs", "server").stdout
        assert f"[INFO] Web chat at http://127.0.0.1:{stack.ws_port}/" in logs
        page.goto(stack.web_url)
        page.fill("#nick", "webster")
        page.click("#join")
        expect(page.locator("#status")).to_have_attribute("data-state", "connected")
        client = subprocess.Popen(
            stack.compose("run", "--rm", "-T", "client", "--nick", "termy", "--linger", "30"),
            cwd=ROOT, env=stack.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        assert client.stdin is not None
        assert client.stdout is not None
        expect(log_line(page, r"termy joined")).to_have_count(1)

        client.stdin.write("hello from the terminal\n")
        client.stdin.flush()
        expect(log_line(page, r"\[RECEIVED\].*<termy> hello from the terminal")).to_have_count(1)
        page.fill("#say", "hello from the browser")
        page.press("#say", "Enter")
        wait_in(client.stdout, "hello from the browser")

        # A line of HTML from a peer shows as text, and runs nothing.
        client.stdin.write(XSS + "\n")
        client.stdin.flush()
        expect(log_line(page, re.escape(XSS))).to_have_count(1)
        assert page.locator("#log img").count() == 0
        assert dialogs == []

        page.fill("#say", "/me waves at termy")
        page.press("#say", "Enter")
        wait_in(client.stdout, "waves at termy")
        page.screenshot(path=str(SCREENSHOT))
        client.stdin.write("/quit\n")
        client.stdin.flush()
        client.stdin.close()
        assert client.wait(timeout=WAIT) == 0
    finally:
        if client is not None and client.poll() is None:
            client.kill()
            client.wait()
    print(f"browser chat: {time.monotonic() - started:.1f} s")


def test_the_page_comes_back_by_itself_after_a_server_restart(
    stack: Stack, browser: Browser
) -> None:
    started = time.monotonic()
    page = browser.new_page()
    page.goto(stack.web_url)
    page.fill("#nick", "stayer")
    page.click("#join")
    status = page.locator("#status")
    expect(status).to_have_attribute("data-state", "connected")

    stopped = stack.run("stop", "server")
    assert stopped.returncode == 0, stopped.stderr
    expect(status).to_have_attribute("data-state", "disconnected")
    expect(log_line(page, r"\[DISCONNECTED\]")).not_to_have_count(0)
    page.fill("#say", "typed while the server was away")
    page.press("#say", "Enter")

    up = stack.run("up", "--detach", "--wait", "server")
    assert up.returncode == 0, up.stdout + up.stderr
    nc = NcPeer(stack.port)
    try:
        expect(status).to_have_attribute("data-state", "connected")
        expect(log_line(page, r"\[RECONNECTED\]")).not_to_have_count(0)
        nc.wait_for("typed while the server was away")
        page.fill("#say", "and after")
        page.press("#say", "Enter")
        nc.wait_for("<stayer> and after")
        # Once: live, or (if the page was back before nc) in the history, never twice.
        assert sum("typed while the server was away" in line for line in nc.lines) == 1
    finally:
        nc.close()
    print(f"browser restart: {time.monotonic() - started:.1f} s")
