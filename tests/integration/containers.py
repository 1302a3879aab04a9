"""Helpers for the container tests: the real images on a private network.

Every container and network carries the label ``peerchat.test`` (and the
testcontainers session label), so a failed run can be cleaned up by label
(`make clean`). Waits are bounded polls of what a container printed.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The reaper (Ryuk) is an image from a registry; ours has none. We clean up by label.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network
from testcontainers.core.wait_strategies import (
    HealthcheckWaitStrategy,
    LogMessageWaitStrategy,
)

SERVER_IMAGE = os.environ.get("PEERCHAT_SERVER_IMAGE", "peerchat-server:latest")
CLIENT_IMAGE = os.environ.get("PEERCHAT_CLIENT_IMAGE", "peerchat-client:latest")
LABELS = {"peerchat.test": "integration"}

#: Longest a container may take to show what a test waits for.
WAIT = 30.0

# A plain-text peer for a container, as `nc server 8080` would be: stdin lines go
# to the server, every received line is printed.
NC_SCRIPT = r"""
import socket, sys, threading
sock = socket.create_connection(("server", 8080))
def pump():
    for line in sys.stdin:
        sock.sendall(line.encode())
threading.Thread(target=pump, daemon=True).start()
for raw in sock.makefile("rb"):
    print(raw.decode().rstrip("\r\n"), flush=True)
print("[EOF]", flush=True)
"""


def new_network() -> Network:
    return Network(docker_network_kw={"labels": dict(LABELS)})


def start_server(network: Network, *env: tuple[str, str]) -> DockerContainer:
    container = (
        DockerContainer(SERVER_IMAGE)
        .with_network(network)
        .with_network_aliases("server")
        .with_kwargs(labels=dict(LABELS), init=True)
        .waiting_for(HealthcheckWaitStrategy().with_startup_timeout(WAIT))
    )
    for key, value in env:
        container.with_env(key, value)
    return started(container)


def started(container: DockerContainer) -> DockerContainer:
    """Start ``container``; if it never gets ready, remove it before failing."""
    try:
        return container.start()
    except BaseException:
        container.stop()
        raise


class Peer:
    """A container we can type into (its stdin) and read from (its output)."""

    def __init__(self, container: DockerContainer) -> None:
        self.container = container
        raw = container.get_wrapped_container().attach_socket(params={"stdin": 1, "stream": 1})
        self._stdin: socket.socket = raw._sock

    def type(self, *lines: str) -> None:
        self._stdin.sendall("".join(f"{line}\n" for line in lines).encode())

    def end_input(self) -> None:
        self._stdin.shutdown(socket.SHUT_WR)

    def output(self) -> str:
        stdout, stderr = self.container.get_logs()
        return stdout.decode(errors="replace") + stderr.decode(errors="replace")

    def lines(self) -> list[str]:
        return self.output().splitlines()

    def events(self) -> list[dict[str, Any]]:
        """The JSON events a `--json` client printed."""
        out = []
        for line in self.lines():
            if line.startswith("{"):
                out.append(json.loads(line))
        return out

    def wait_until(self, check: Callable[[Peer], bool], what: str) -> None:
        deadline = time.monotonic() + WAIT
        while not check(self):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; output:\n{self.output()}")
            time.sleep(0.1)

    def wait_for_text(self, text: str) -> None:
        self.wait_until(lambda p: text in p.output(), repr(text))

    def wait_for_event(self, **fields: Any) -> dict[str, Any]:
        def matching(p: Peer) -> list[dict[str, Any]]:
            return [e for e in p.events() if all(e.get(k) == v for k, v in fields.items())]

        self.wait_until(lambda p: bool(matching(p)), f"event {fields}")
        return matching(self)[0]

    def exit_code(self) -> int:
        result = self.container.get_wrapped_container().wait(timeout=WAIT)
        return int(result["StatusCode"])

    def stop(self) -> None:
        self.container.stop()


def start_client(network: Network, nick: str, *extra: str) -> Peer:
    """A real peerchat-client in scripting mode, printing JSON events."""
    command = ["--host", "server", "--port", "8080", "--nick", nick, "--json", *extra]
    container = (
        DockerContainer(CLIENT_IMAGE)
        .with_network(network)
        .with_command(command)
        .with_kwargs(labels=dict(LABELS), stdin_open=True, init=True)
        .waiting_for(
            LogMessageWaitStrategy(re.compile(r'"type": ?"welcome"')).with_startup_timeout(WAIT)
        )
    )
    return Peer(started(container))


def start_nc(network: Network) -> Peer:
    """A plain-text peer: raw socket, lines in and out, no protocol package."""
    container = (
        DockerContainer(CLIENT_IMAGE)
        .with_network(network)
        .with_kwargs(
            labels=dict(LABELS), stdin_open=True, init=True, entrypoint=["python3", "-u", "-c"]
        )
        .with_command([NC_SCRIPT])
        .waiting_for(
            LogMessageWaitStrategy(re.escape("*** Welcome to peerchat!")).with_startup_timeout(WAIT)
        )
    )
    return Peer(started(container))


PROBE_SOURCE = (Path(__file__).parent / "probe.py").read_text()
COUNT_LINE = re.compile(r"^\[COUNT\] (.*)$", re.MULTILINE)


def start_probe(network: Network, *args: str, ready: str | None = None) -> Peer:
    """A load or checking peer (``probe.py``) in the client image."""
    container = (
        DockerContainer(CLIENT_IMAGE)
        .with_network(network)
        .with_kwargs(
            labels=dict(LABELS), stdin_open=True, init=True, entrypoint=["python3", "-u", "-c"]
        )
        .with_command([PROBE_SOURCE, *args])
    )
    if ready is not None:
        container.waiting_for(LogMessageWaitStrategy(re.escape(ready)).with_startup_timeout(WAIT))
    return Peer(started(container))


def counted(counter: Peer) -> dict[str, list[int]]:
    """Ask a ``probe.py count`` peer for its tally: name -> [received, duplicates, skipped]."""
    before = len(COUNT_LINE.findall(counter.output()))
    counter.type("")
    counter.wait_until(lambda p: len(COUNT_LINE.findall(p.output())) > before, "a [COUNT] line")
    tally: dict[str, list[int]] = json.loads(COUNT_LINE.findall(counter.output())[-1])
    return tally


def wait_counted(counter: Peer, name: str, at_least: int, wait: float = WAIT) -> list[int]:
    """Poll a counter until ``name`` has ``at_least`` lines; returns its tally entry."""
    deadline = time.monotonic() + wait
    while True:
        entry = counted(counter)[name]
        if entry[0] >= at_least:
            return entry
        if time.monotonic() > deadline:
            raise AssertionError(f"{name}: only {entry} after {wait:g} s")
        time.sleep(0.2)


def log_of(container: DockerContainer) -> str:
    stdout, stderr = container.get_logs()
    return stdout.decode(errors="replace") + stderr.decode(errors="replace")


def wait_for_log(container: DockerContainer, text: str, wait: float = WAIT) -> None:
    deadline = time.monotonic() + wait
    while text not in log_of(container):
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} not in the log:\n{log_of(container)[-4000:]}")
        time.sleep(0.1)


def memory_mib(container: DockerContainer) -> float:
    """The container's memory use now (cgroup, as `docker stats` shows it), in MiB."""
    stats = container.get_wrapped_container().stats(stream=False)
    memory = stats["memory_stats"]
    usage = memory.get("usage", 0) - memory.get("stats", {}).get("inactive_file", 0)
    return float(usage) / (1024 * 1024)


def texts_from(peer: Peer, nick: str) -> list[str]:
    """The texts of every message from ``nick`` a ``--json`` client printed, in order."""
    return [e["text"] for e in peer.events() if e["type"] == "message" and e["nick"] == nick]


def aux_image(kind: str) -> str:
    """The Redis or HAProxy image `make cluster-images` chose (official or built here)."""
    import docker

    explicit = os.environ.get(f"PEERCHAT_{kind.upper()}_IMAGE")
    candidates = [explicit] if explicit else []
    candidates += {"redis": ["redis:7-bookworm", "peerchat-redis:bookworm"],
                   "haproxy": ["haproxy:2.6", "peerchat-haproxy:bookworm"]}[kind]  # fmt: skip
    client = docker.from_env()
    for image in candidates:
        try:
            client.images.get(image)
            return image
        except docker.errors.ImageNotFound:
            continue
    raise AssertionError(f"no {kind} image: run `make cluster-images` first")


def start_redis(network: Network) -> DockerContainer:
    container = (
        DockerContainer(aux_image("redis"))
        .with_network(network)
        .with_network_aliases("redis")
        .with_command(
            [
                "redis-server",
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
                "--bind",
                "0.0.0.0",
            ]
        )
        .with_kwargs(labels=dict(LABELS), init=True, user="10001:10001", working_dir="/tmp")
        .waiting_for(
            LogMessageWaitStrategy("Ready to accept connections").with_startup_timeout(WAIT)
        )
    )
    return started(container)


def start_replica(network: Network, name: str, *env: tuple[str, str]) -> DockerContainer:
    """A server with --bus, reachable as ``name`` and, with the others, as ``replica``."""
    container = (
        DockerContainer(SERVER_IMAGE)
        .with_network(network)
        .with_network_aliases(name, "replica")
        .with_env("PEERCHAT_BUS", "redis://redis:6379/0")
        .with_env("PEERCHAT_STORE", "memory")  # (the image's sqlite is for one server)
        .with_env("PEERCHAT_MAX_PER_ADDRESS", "0")
        .with_kwargs(labels=dict(LABELS), init=True)
        .waiting_for(LogMessageWaitStrategy("Connected to Redis").with_startup_timeout(WAIT))
    )
    for key, value in env:
        container.with_env(key, value)
    return started(container)


HAPROXY_CFG = Path(__file__).resolve().parents[2] / "docker" / "cluster" / "haproxy.cfg"


def start_balancer(network: Network) -> DockerContainer:
    """HAProxy with the cluster's own configuration, reachable as ``server``."""
    container = (
        DockerContainer(aux_image("haproxy"))
        .with_network(network)
        .with_network_aliases("server")
        .with_volume_mapping(str(HAPROXY_CFG), "/etc/peerchat/haproxy.cfg", "ro")
        .with_command(["haproxy", "-f", "/etc/peerchat/haproxy.cfg"])
        .with_kwargs(labels=dict(LABELS), init=True, user="10001:10001")
    )
    return started(container)
