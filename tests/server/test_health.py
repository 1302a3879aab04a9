"""The container health check: listening or not, without connecting."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from peerchat_server import health


def test_sees_a_listening_port_and_not_a_closed_one(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        ports = health.listening_ports()
        assert ports is not None
        assert port in ports
        monkeypatch.setenv("PEERCHAT_PORT", str(port))
        assert health.main() == 0
    monkeypatch.setenv("PEERCHAT_PORT", str(port))
    assert health.main() == 1


def test_falls_back_to_connecting_without_proc(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert health.listening_ports((str(tmp_path / "missing"),)) is None
    monkeypatch.setattr(health, "listening_ports", lambda: None)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        monkeypatch.setenv("PEERCHAT_PORT", str(sock.getsockname()[1]))
        assert health.main() == 0
