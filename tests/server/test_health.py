"""The container health check: listening or not, without connecting."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import pytest

from peerchat_server import health

from .peers import running_server


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


async def test_with_a_metrics_port_healthy_means_healthz_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with running_server(metrics_port=0) as server:
        assert server.metrics is not None
        monkeypatch.setenv("PEERCHAT_METRICS_PORT", str(server.metrics.port))
        assert await asyncio.to_thread(health.main) == 0
        # A stuck event loop does not answer: unhealthy (the check gives up after 2 s).
        checking = asyncio.ensure_future(asyncio.to_thread(health.main))
        await asyncio.sleep(0)
        asyncio.get_running_loop().call_soon(time.sleep, 3.0)
        assert await checking == 1
    assert health.main() == 1  # and a server that is gone
