"""--metrics-port: /metrics parsed as Prometheus parses it, /healthz from the event loop."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from peerchat_protocol import Bye, Hello, Message, Say, Welcome
from peerchat_server.server import ChatServer

from .peers import JOINS, MEMBERSHIP, PlainPeer, RichPeer, WsPeer, console_of, running_server


@asynccontextmanager
async def metered(**overrides: Any) -> AsyncIterator[ChatServer]:
    async with running_server(metrics_port=0, ws_port=0, **overrides) as server:
        yield server


def get(server: ChatServer, path: str, timeout: float = 5.0) -> tuple[int, str]:
    assert server.metrics is not None
    url = f"http://127.0.0.1:{server.metrics.port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def scrape(server: ChatServer) -> dict[str, float]:
    """Every sample of /metrics, by name and labels, as Prometheus reads them."""
    status, text = await asyncio.to_thread(get, server, "/metrics")
    assert status == 200
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


async def test_a_scripted_chat_is_counted() -> None:
    async with metered() as server:
        plain = await PlainPeer.connect(server.port)
        rich = await RichPeer.connect(server.port, "jay")
        web = await WsPeer.connect(server.ws_port, "webby")
        await plain.say("one")
        await plain.say("two")
        await rich.send(Say("three"))
        for text in ("one", "two", "three"):
            await web.expect(Message, lambda m, t=text: m.text == t, skip=MEMBERSHIP)
        await plain.expect("<jay> three", skip=JOINS)
        before = await scrape(server)
        assert before["peerchat_messages_relayed_total"] == 3
        # Each message to the two others; and the joins each member heard.
        assert before["peerchat_deliveries_total"] >= 6
        assert before["peerchat_bytes_out_total"] > 0
        assert before["peerchat_peers{kind=plain}"] == 1
        assert before["peerchat_peers{kind=json}"] == 1
        assert before["peerchat_peers{kind=websocket}"] == 1
        assert before["peerchat_peers{kind=irc}"] == 0
        assert before["peerchat_rooms"] == 1
        await web.send(Say("four"))
        await plain.expect("<webby> four", skip=JOINS)
        after = await scrape(server)
        assert after["peerchat_messages_relayed_total"] == 4
        assert after["peerchat_deliveries_total"] == before["peerchat_deliveries_total"] + 2
        assert "peerchat_bus_up" not in after  # no --bus


async def test_password_failures_and_resumes_are_counted() -> None:
    async with metered(password="sesame") as server:
        first = await RichPeer.connect(server.port, "first", password="sesame")
        assert first.welcome is not None
        wrong = RichPeer(*await asyncio.open_connection("127.0.0.1", server.port))
        await wrong.send(Hello(version=3, nick="x", password="nope"))
        await wrong.expect(Bye, skip=lambda e: True)
        first.writer.transport.abort()
        await console_of(server).wait_for("[DISCONNECTED] first")
        back = RichPeer(*await asyncio.open_connection("127.0.0.1", server.port))
        welcome = first.welcome
        await back.send(
            Hello(version=3, nick="first", password="sesame", resume=welcome.session,
                  room=welcome.room, epoch=welcome.epoch)
        )  # fmt: skip
        assert (await back.expect(Welcome, skip=lambda e: True)).resumed
        samples = await scrape(server)
        assert samples["peerchat_password_failures_total"] == 1
        assert samples["peerchat_resumes_total"] == 1


async def test_refused_connections_are_counted_on_every_port() -> None:
    async with metered(max_per_address=1) as server:
        first = await PlainPeer.connect(server.port)
        refused = PlainPeer(*await asyncio.open_connection("127.0.0.1", server.port))
        assert "refused" in await refused.line()
        with pytest.raises(Exception, match="503"):
            await WsPeer.open(server.ws_port)
        samples = await scrape(server)
        assert samples["peerchat_refused_connections_total"] == 2
        await first.close()


async def test_flood_slowdowns_and_kicks_are_counted() -> None:
    async with metered(flood_burst=2, flood_rate=1, flood_kick_after=0.5) as server:
        flooder = await PlainPeer.connect(server.port)
        await flooder.send("".join(f"line {n}\n" for n in range(40)))
        await console_of(server).wait_for("flooding")
        samples = await scrape(server)
        assert samples["peerchat_flood_slowdowns_total"] >= 1
        assert samples["peerchat_flood_kicks_total"] == 1


async def test_healthz_answers_from_the_event_loop_and_not_when_it_is_stuck() -> None:
    async with metered() as server:
        assert await asyncio.to_thread(get, server, "/healthz") == (
            200, "ok: the relay's event loop answered\n",
        )  # fmt: skip
        assert (await asyncio.to_thread(get, server, "/nothing"))[0] == 404
        reader, writer = await asyncio.open_connection("127.0.0.1", server.metrics.port)
        writer.write(b"POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await reader.read()).startswith(b"HTTP/1.1 405 ")
        writer.close()
        loop = asyncio.get_running_loop()
        stuck = asyncio.to_thread(get, server, "/healthz", 0.5)
        asking = asyncio.ensure_future(stuck)
        await asyncio.sleep(0)  # (let the request start)
        loop.call_soon(time.sleep, 2.0)  # the loop is stuck: nobody answers
        with pytest.raises((TimeoutError, urllib.error.URLError)):
            await asking
        assert (await asyncio.to_thread(get, server, "/healthz"))[0] == 200
        assert f"[INFO] Metrics at http://127.0.0.1:{server.metrics.port}/metrics" in (
            console_of(server).lines
        )
