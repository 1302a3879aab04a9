"""The soak (`make soak`): real clients chat with numbered lines for a few minutes while
faults are injected, then a checker proves every line reached every other peer exactly
once, in its sender's order.

Faults, one every FAULT_EVERY seconds on a random client: a cut network (docker network
disconnect, then connect) or a freeze (docker pause, then unpause), each for a few
seconds. Both are ones a client recovers from by itself (keepalive, reconnect, resume,
catch-up), so the promise of PROTOCOL.md section 8 holds in full: nothing lost, nothing
twice, per-sender order. Every SERVER_FAULT_EVERY-th fault is the server's instead,
taking turns: a restart (SIGTERM, then start), which loses nothing either, and a
`kill -9` (then start), which may lose, or relay twice, the lines of the server's last
loop pass (PROTOCOL.md §8): those are counted apart, and there may be no more of them
than one pass can hold (a line from each client). Bounded: SOAK_SECONDS of chat
(default 180), then at most SETTLE seconds for the last lines to arrive.
"""

from __future__ import annotations

import itertools
import os
import random
import re
import time
from dataclasses import dataclass, field

import pytest
from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network

from ..integration.containers import Peer, start_client, start_server

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "180"))
CLIENTS = int(os.environ.get("SOAK_CLIENTS", "6"))
#: Lines a second each client types (under the server's flood limit of 5 a second).
RATE = 2.0
FAULT_EVERY = 12.0
SERVER_FAULT_EVERY = 5
#: Seconds before a kill -9 in which a line may have been in the server's last pass.
KILL_WINDOW = 1.0
SETTLE = 90.0
LINE = re.compile(r"^(c\d+)#(\d+)$")


def received(peer: Peer) -> dict[str, list[int]]:
    """Sender -> the line numbers ``peer`` printed from it, in the order they came."""
    got: dict[str, list[int]] = {}
    for event in peer.events():
        if event["type"] != "message":
            continue
        match = LINE.match(event["text"])
        if match and match.group(1) == event["nick"]:
            got.setdefault(event["nick"], []).append(int(match.group(2)))
    return got


def present(peer: Peer) -> set[str]:
    """Who ``peer`` has been told is in the room: its welcome's list, then joins."""
    names: set[str] = set()
    for event in peer.events():
        if event["type"] == "welcome":
            names.update(p["nick"] for p in event.get("peers", []))
        elif event["type"] == "join":
            names.add(event["nick"])
    return names


def hit_server(server: DockerContainer, kill: bool, log: list[str]) -> float:
    """Restart the server (gracefully, or by kill -9 and a start); returns when it was hit."""
    container = server.get_wrapped_container()
    hit = time.monotonic()
    if kill:
        container.kill(signal="SIGKILL")
        container.start()
        log.append("server killed (-9) and started")
    else:
        container.restart(timeout=10)
        log.append("server restarted")
    return hit


def inject(rng: random.Random, net: Network, peer: Peer, log: list[str]) -> None:
    """One fault on ``peer``, lasting a few seconds; recovered before returning."""
    container = peer.container.get_wrapped_container()
    how_long = rng.uniform(2.0, 5.0)
    if rng.random() < 0.5:
        net._unwrap_network.disconnect(container.id)
        time.sleep(how_long)  # the fault's duration is the point here, not a wait for an event
        net._unwrap_network.connect(container.id)
        log.append(f"network cut {how_long:.1f} s")
    else:
        container.pause()
        time.sleep(how_long)
        container.unpause()
        log.append(f"paused {how_long:.1f} s")


@dataclass
class Tally:
    """What the checker found, over every (receiver, sender) pair."""

    lost: int = 0
    duplicated: int = 0
    disordered: int = 0
    checked: int = 0
    problems: list[str] = field(default_factory=list)
    #: Lines (sender, number) lost or relayed twice that were typed just before a kill -9.
    to_kills: set[tuple[str, int]] = field(default_factory=set)


def start_clients(network: Network, peers: dict[str, Peer]) -> None:
    """Start the clients into ``peers`` (filled as they start, so that the caller stops
    every one started), then wait until each has seen all the others join."""
    for k in range(CLIENTS):
        nick = f"c{k}"
        peers[nick] = start_client(
            network, nick, "--reconnect", "--keepalive", "1", "--linger", "900"
        )
    for nick, peer in peers.items():  # everyone is in before anyone speaks
        others = set(peers) - {nick}
        peer.wait_until(lambda p, o=others: o <= present(p), f"{nick} to see everyone")


@dataclass
class Run:
    """What was typed (and when), and when the server was killed."""

    typed: dict[str, int]
    typed_at: dict[tuple[str, int], float] = field(default_factory=dict)
    kills: list[float] = field(default_factory=list)

    def near_a_kill(self, line: tuple[str, int]) -> bool:
        at = self.typed_at[line]
        return any(kill - KILL_WINDOW <= at <= kill for kill in self.kills)


def chat(
    rng: random.Random, server: DockerContainer, network: Network, peers: dict[str, Peer],
    faults: list[str],
) -> tuple[Run, float]:  # fmt: skip
    """SOAK_SECONDS of numbered lines from every client, a fault every FAULT_EVERY
    seconds; what each typed, and the seconds it took."""
    run = Run(dict.fromkeys(peers, 0))
    typed = run.typed
    began = time.monotonic()
    next_fault = began + FAULT_EVERY
    tick = 1.0 / RATE
    for step in range(int(SOAK_SECONDS * RATE)):  # bounded: one turn per tick
        for nick, peer in peers.items():
            typed[nick] += 1
            run.typed_at[nick, typed[nick]] = time.monotonic()
            peer.type(f"{nick}#{typed[nick]}")
        if time.monotonic() >= next_fault:
            if (len(faults) + 1) % SERVER_FAULT_EVERY == 0:
                kill = (len(faults) + 1) % (2 * SERVER_FAULT_EVERY) == 0
                hit = hit_server(server, kill, faults)
                if kill:
                    run.kills.append(hit)
            else:
                inject(rng, network, peers[rng.choice(list(peers))], faults)
            next_fault = time.monotonic() + FAULT_EVERY
        delay = began + (step + 1) * tick - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    return run, time.monotonic() - began


def await_last_lines(peers: dict[str, Peer], typed: dict[str, int]) -> None:
    """Wait (SETTLE seconds at most) until every last line reached every other peer."""
    settle_until = time.monotonic() + SETTLE
    while time.monotonic() < settle_until:  # until every last line reached every peer
        if all(
            typed[other] in received(peer).get(other, [])
            for nick, peer in peers.items()
            for other in peers
            if other != nick
        ):
            break
        time.sleep(1.0)


def check(peers: dict[str, Peer], run: Run) -> Tally:
    """Every line to every other peer exactly once, in its sender's order; none back.
    A line typed just before a kill -9 may be lost or come twice: counted apart."""
    tally = Tally()
    for nick, peer in peers.items():
        got = received(peer)
        assert nick not in got, f"{nick} got its own lines back"
        for other in peers:
            if other == nick:
                continue
            numbers = got.get(other, [])
            want = list(range(1, run.typed[other] + 1))
            tally.checked += len(want)
            killed = {n for n in want if run.near_a_kill((other, n))}
            gone = set(want) - set(numbers)
            doubled = {n for n in numbers if numbers.count(n) > 1}
            tally.to_kills |= {(other, n) for n in (gone | doubled) & killed}
            numbers = [n for n in numbers if n not in killed]
            missing = len(gone - killed)
            twice = len(numbers) - len(set(numbers))
            unordered = sum(1 for a, b in itertools.pairwise(numbers) if b <= a)
            tally.lost += missing
            tally.duplicated += twice
            tally.disordered += unordered
            if missing or twice or unordered:
                tally.problems.append(f"{nick} from {other}: {missing} lost, {twice} twice, "
                                      f"{unordered} out of order")  # fmt: skip
    return tally


def stop_all(peers: dict[str, Peer], server: DockerContainer) -> None:
    """Stop every client (unpausing a frozen one first) and the server."""
    for peer in peers.values():
        container = peer.container.get_wrapped_container()
        container.reload()
        if container.status == "paused":
            container.unpause()
        peer.stop()
    server.stop()


@pytest.mark.timeout(SOAK_SECONDS + 600)  # the chat, then starting and checking six clients
def test_soak(network: Network) -> None:
    rng = random.Random(int(os.environ.get("SOAK_SEED", "1")))
    server = start_server(network)
    peers: dict[str, Peer] = {}
    try:
        start_clients(network, peers)
        faults: list[str] = []
        run, chatted = chat(rng, server, network, peers, faults)
        typed = run.typed
        await_last_lines(peers, typed)
        t = check(peers, run)
        reconnects = sum(peer.output().count("[RECONNECTED]") for peer in peers.values())
        print(
            f"\nsoak: {CLIENTS} clients, {chatted:.0f} s of chat, {sum(typed.values())} lines "
            f"typed, {t.checked} deliveries checked; {len(faults)} faults injected "
            f"({sum('network' in f for f in faults)} network cuts, "
            f"{sum('paused' in f for f in faults)} pauses, "
            f"{sum('restarted' in f for f in faults)} server restarts, {len(run.kills)} "
            f"server kills), {reconnects} reconnects; lost {t.lost}, duplicated "
            f"{t.duplicated}, out of order {t.disordered}; lines lost or relayed twice "
            f"by the kills: {len(t.to_kills)} {sorted(t.to_kills)}"
        )
        assert not t.problems, t.problems
        # One loop pass holds at most a line from each client: no more per kill.
        assert len(t.to_kills) <= CLIENTS * len(run.kills), t.to_kills
    finally:
        stop_all(peers, server)
