"""The compose demo keeps history and sessions on its volume (issue 21).

`docker compose restart server` under chatting clients: a newcomer gets the room's
history and a client that was away catches up exactly, by id. Then `docker compose
kill -s SIGKILL server` and `up`: what was lost is counted (PROTOCOL.md §8: at most the
last loop pass, here one line), ids are not given twice, and the catch-up says `gap`.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from .stack import WAIT, Stack, running_stack


class Plain:
    """A plain-text peer on the host, as `nc` is."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def into(cls, port: int, room: str) -> Plain:
        peer = cls(*await asyncio.open_connection("127.0.0.1", port))
        await peer.say(f"/join {room}")
        await peer.until(f"You are now in #{room}")
        return peer

    async def say(self, text: str) -> None:
        self.writer.write(text.encode() + b"\n")
        await self.writer.drain()

    async def until(self, needle: str) -> list[str]:
        """Lines up to and including the first with ``needle``."""
        lines = []
        for _ in range(2000):
            line = (await asyncio.wait_for(self.reader.readline(), WAIT)).decode()
            assert line, f"closed before {needle!r}; got {lines[-10:]!r}"
            lines.append(line.rstrip("\r\n"))
            if needle in line:
                return lines
        raise AssertionError(f"no {needle!r}")

    async def settled(self) -> None:
        """Everything this peer said before has been handled (commands go in order)."""
        await self.say("/timestamps off")
        await self.until("Timestamps are off.")

    def close(self) -> None:
        self.writer.close()


class Rich:
    """A JSON (protocol v3) peer on the host."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def hello(cls, port: int, **hello: Any) -> tuple[Rich, dict[str, Any]]:
        peer = cls(*await asyncio.open_connection("127.0.0.1", port))
        await peer.send({"type": "hello", "version": 3, **hello})
        return peer, await peer.next("welcome")

    async def send(self, frame: dict[str, Any]) -> None:
        self.writer.write(json.dumps(frame).encode() + b"\n")
        await self.writer.drain()

    async def next(self, kind: str) -> dict[str, Any]:
        """The next frame of ``kind``, passing over notices."""
        for _ in range(2000):
            line = await asyncio.wait_for(self.reader.readline(), WAIT)
            assert line, f"closed before a {kind}"
            if not line.startswith(b"{"):  # the banner, sent before the hello was read
                assert line.startswith(b"*** "), line
                continue
            frame: dict[str, Any] = json.loads(line)
            if frame["type"] == kind:
                return frame
            assert frame["type"] not in ("bye", "error"), frame
        raise AssertionError(f"no {kind}")


async def scenario(stack: Stack, room: str) -> None:
    port = stack.port
    talker = await Plain.into(port, room)
    away, welcome = await Rich.hello(port, nick="away", room=room)
    for text in ("before 1", "before 2"):
        await talker.say(text)
    seen = [await away.next("message") for _ in range(2)]
    away.writer.transport.abort()  # its connection dies; its session waits
    for text in ("while away 1", "while away 2"):
        await talker.say(text)
    await talker.settled()

    restart = await asyncio.to_thread(stack.run, "restart", "server")
    assert restart.returncode == 0, restart.stdout + restart.stderr
    await up(stack)

    back, again = await Rich.hello(
        port, nick="away", room=room, resume=welcome["session"], epoch=welcome["epoch"],
        last_id=seen[-1]["id"],
    )  # fmt: skip
    assert (again["resumed"], again["nick"], again["room"], again["missed"]) == (
        True, "away", room, 2,
    )  # fmt: skip
    assert not again.get("gap")
    caught = [await back.next("message") for _ in range(2)]
    assert [(m["text"], m["history"]) for m in caught] == [
        ("while away 1", True), ("while away 2", True),
    ]  # fmt: skip
    newcomer = await Plain.into(port, room)
    history = await newcomer.until("End of history")
    assert [line.rsplit("> ", 1)[-1] for line in history[-5:-1]] == [
        "before 1", "before 2", "while away 1", "while away 2",
    ]  # fmt: skip

    # kill -9 under a chatting client: one line per loop pass, each seen arrive.
    talker = await Plain.into(port, room)
    said = []
    for n in range(20):
        await talker.say(f"kill {n}")
        said.append(await back.next("message"))
    mark = said[9]["id"]  # where the client that resumes below had got to
    kill = await asyncio.to_thread(stack.run, "kill", "-s", "SIGKILL", "server")
    assert kill.returncode == 0, kill.stdout + kill.stderr
    await up(stack)

    last, resumed = await Rich.hello(
        port, nick="away", room=room, resume=welcome["session"], epoch=welcome["epoch"],
        last_id=mark,
    )  # fmt: skip
    assert resumed["resumed"]
    assert resumed["gap"]  # a kill may have lost what it missed: it is told
    kept = [(await last.next("message"))["text"] for _ in range(resumed["missed"])]
    lost = [m["text"] for m in said[10:] if m["text"] not in kept]
    assert kept == [m["text"] for m in said[10:] if m["text"] not in lost]
    print(f"kill -9: {len(lost)} of 20 lines lost: {lost}")
    assert len(lost) <= 1, lost
    await last.send({"type": "say", "text": "after the kill", "seq": 1})
    ack = await last.next("ack")
    assert ack["id"] > said[-1]["id"]  # no id is given twice, even one that was lost


def test_history_and_catch_up_survive_a_restart_and_a_kill() -> None:
    with running_stack() as stack:
        asyncio.run(asyncio.wait_for(scenario(stack, f"keep-{uuid.uuid4().hex[:6]}"), 300))


async def up(stack: Stack) -> None:
    started = await asyncio.to_thread(stack.run, "up", "--detach", "--wait", "server")
    assert started.returncode == 0, started.stdout + started.stderr
