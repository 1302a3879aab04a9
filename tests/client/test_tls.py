"""TLS: the client checks the server's certificate; a wrong CA is refused, --insecure warns."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from .harness import ClientProcess, run, running_server

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(good, other): two demo CAs, each with a server certificate, made by our script."""
    made = []
    for name in ("good", "other"):
        folder = tmp_path_factory.mktemp(name)
        subprocess.run([ROOT / "docker" / "make-tls-cert.sh", str(folder)], check=True, timeout=60)
        made.append(folder)
    return made[0], made[1]


class TlsPeer:
    """What `openssl s_client -connect 127.0.0.1:PORT` gives a person: lines over TLS."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int, ca: Path) -> TlsPeer:
        context = ssl.create_default_context(cafile=str(ca))
        return cls(*await asyncio.open_connection("127.0.0.1", port, ssl=context))

    async def expect(self, text: str) -> str:
        for _ in range(100):
            line = (await asyncio.wait_for(self.reader.readline(), 15)).decode()
            assert line, f"closed before {text!r}"
            if text in line:
                return line.rstrip("\r\n")
        raise AssertionError(text)


def test_a_client_that_trusts_the_ca_chats_over_tls(certs: tuple[Path, Path]) -> None:
    good, _ = certs

    async def scenario() -> None:
        tls = {"tls_cert": str(good / "server.crt"), "tls_key": str(good / "server.key")}
        async with running_server(**tls) as server:
            watcher = await TlsPeer.connect(server.port, good / "ca.crt")
            await watcher.expect("Welcome to peerchat")
            async with await ClientProcess.start(
                "--port", str(server.port), "--nick", "alice", "--ca-file",
                str(good / "ca.crt"), "--linger", "0",
            ) as alice:  # fmt: skip
                await alice.send("over tls")
                assert await watcher.expect("<alice>") == "<alice> over tls"
                alice.close_stdin()
                assert await alice.wait() == 0
            watcher.writer.close()

    run(scenario())


def test_a_certificate_from_another_ca_is_refused(certs: tuple[Path, Path]) -> None:
    good, other = certs

    async def scenario() -> None:
        tls = {"tls_cert": str(good / "server.crt"), "tls_key": str(good / "server.key")}
        async with running_server(**tls) as server:
            async with await ClientProcess.start(
                "--port", str(server.port), "--nick", "alice", "--ca-file", str(other / "ca.crt"),
            ) as alice:  # fmt: skip
                assert await alice.wait() == 1
            errors = [line for line in alice.stderr.lines if line.startswith("[ERROR]")]
            assert len(errors) == 1
            assert "could not be verified" in errors[0]
            assert "--ca-file" in errors[0]
            # And without any CA option, the system's CAs do not know our demo CA either.
            async with await ClientProcess.start(
                "--port", str(server.port), "--tls"
            ) as plain_trust:
                assert await plain_trust.wait() == 1

    run(scenario())


def test_insecure_connects_to_a_self_signed_server_and_warns(certs: tuple[Path, Path]) -> None:
    good, _ = certs

    async def scenario() -> None:
        tls = {"tls_cert": str(good / "server.crt"), "tls_key": str(good / "server.key")}
        async with running_server(**tls) as server:
            async with await ClientProcess.start(
                "--port", str(server.port), "--insecure", "--linger", "0"
            ) as demo:
                await demo.stderr.wait_text("[SUCCESS] Connected to server")
                demo.close_stdin()
                assert await demo.wait() == 0
            assert any(line.startswith("[WARNING] --insecure") for line in demo.stderr.lines)

    run(scenario())


def test_the_server_refuses_a_missing_key_in_one_line(certs: tuple[Path, Path]) -> None:
    good, _ = certs
    result = subprocess.run(
        [sys.executable, "-m", "peerchat_server", "--port", "0", "--tls-cert",
         str(good / "server.crt"), "--tls-key", str(good / "nope.key")],
        capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 2
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("[ERROR] Cannot use the TLS certificate")
