"""Faults on the real containers, with Docker's own means: kill -9, pause, a cut network,
a server restart. Each test says what it injected and what it checked; nothing a peer
was promised (PROTOCOL.md, section 8) may be missing, doubled or out of order.
"""

from __future__ import annotations

import re
import time

from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network

from .containers import (
    Peer,
    log_of,
    memory_mib,
    start_client,
    start_probe,
    start_server,
    texts_from,
    wait_counted,
    wait_for_log,
)

#: Full speed for the tests: the server's flood control (per peer and per address)
#: would pace the load.
FAST = (("PEERCHAT_FLOOD_RATE", "0"), ("PEERCHAT_ADDRESS_FLOOD_RATE", "0"))
#: A client that comes back by itself, noticing a dead network within 2 s.
RECONNECTING = ("--reconnect", "--keepalive", "1", "--linger", "600")


def numbers(texts: list[str], name: str) -> list[int]:
    """The sequence numbers in ``name#n`` lines."""
    pattern = re.compile(rf"^{re.escape(name)}#(\d+)")
    return [int(m.group(1)) for t in texts if (m := pattern.match(t))]


def test_kill_9_of_a_client_mid_stream_frees_it_and_the_others_lose_nothing(
    network: Network, cleanup: list[DockerContainer | Peer]
) -> None:
    total = 20_000
    server = start_server(network, *FAST)
    cleanup.append(server)
    counter = start_probe(network, "count", "ann", ready="[PROBE] counting")
    cleanup.append(counter)
    victim = start_client(network, "vic", "--linger", "600")
    cleanup.append(victim)
    ann = start_probe(network, "flood", "ann", str(total), "100", "2000")  # 10 s of traffic
    cleanup.append(ann)
    wait_counted(counter, "ann", 2_000)
    victim.container.get_wrapped_container().kill(signal="SIGKILL")  # mid-stream
    wait_for_log(server, "vic (")  # named in the log as it goes
    wait_for_log(server, "removed from peers list")
    ann.wait_for_text(f"[FLOOD] ann sent {total}")
    assert wait_counted(counter, "ann", total) == [total, 0, 0]  # all, none twice, in order
    assert "Traceback" not in log_of(server)
    print(f"kill -9: 1 client killed mid-stream; {total} messages checked, 0 lost")


def test_a_paused_client_is_dropped_the_others_get_everything_and_it_catches_up(
    network: Network, cleanup: list[DockerContainer | Peer]
) -> None:
    total = 60_000  # 12 MB: far more than the paused peer's socket buffers and send queue
    server = start_server(network, *FAST, ("PEERCHAT_MAX_SEND_BUFFER", "524288"))
    cleanup.append(server)
    counter = start_probe(network, "count", "ann", ready="[PROBE] counting")
    cleanup.append(counter)
    pat = start_client(network, "pat", *RECONNECTING)
    cleanup.append(pat)
    pat.container.get_wrapped_container().pause()
    # 5,000 lines a second: a healthy reader keeps up (a flat-out sender would outrun
    # even a healthy reader on 2 cores, which is then rightly dropped as slow too).
    ann = start_probe(network, "flood", "ann", str(total), "200", "5000")
    cleanup.append(ann)
    wait_for_log(server, "[DROPPED] Peer pat", wait=60)
    ann.wait_for_text(f"[FLOOD] ann sent {total}")
    assert wait_counted(counter, "ann", total, wait=60) == [total, 0, 0]
    memory = memory_mib(server)
    assert memory < 200, f"server memory {memory:.0f} MiB"
    pat.container.get_wrapped_container().unpause()
    pat.wait_for_text("[RECONNECTED]")
    pat.wait_for_text("More was said while you were away than the server keeps")
    ann.type("")  # a line to sync on: ann's probe ignores stdin until it closes
    seen = numbers(texts_from(pat, "ann"), "ann")
    pat.wait_until(
        lambda p: total in numbers(texts_from(p, "ann"), "ann"), "the last message to arrive"
    )
    seen = numbers(texts_from(pat, "ann"), "ann")
    assert seen == sorted(set(seen)), "pat got a message twice or out of order"
    assert seen[-1000:] == list(range(total - 999, total + 1))  # the catch-up: the last 1,000
    print(
        f"pause: 1 client paused; {total} messages checked at the healthy peer, 0 lost; "
        f"server {memory:.0f} MiB; the paused one dropped, then caught up on the last 1,000"
    )


def test_a_cut_network_is_noticed_and_the_client_catches_up_in_order_none_twice(
    network: Network, cleanup: list[DockerContainer | Peer]
) -> None:
    server = start_server(network, *FAST)
    cleanup.append(server)
    ann = start_client(network, "ann", "--linger", "600")
    cleanup.append(ann)
    pat = start_client(network, "pat", *RECONNECTING)
    cleanup.append(pat)
    ann.wait_for_event(type="join", nick="pat")
    ann.type(*(f"before {n}" for n in range(5)))
    pat.wait_for_event(type="message", text="before 4")
    pat_id = pat.container.get_wrapped_container().id
    net = network._unwrap_network
    net.disconnect(pat_id)
    ann.type(*(f"during {n}" for n in range(20)))
    pat.wait_for_text("[DISCONNECTED] No answer from")
    net.connect(pat_id)
    pat.wait_for_text("[RECONNECTED]")
    ann.type("after")
    pat.wait_for_event(type="message", text="after")
    expected = [f"before {n}" for n in range(5)] + [f"during {n}" for n in range(20)] + ["after"]
    assert texts_from(pat, "ann") == expected
    assert "resumed the session of pat" in log_of(server)
    print("network: 1 disconnect/connect; 26 messages checked, 0 lost, 0 twice, in order")


def test_a_server_restart_under_load_is_survived_and_nothing_typed_is_lost_unnoticed(
    network: Network, cleanup: list[DockerContainer | Peer]
) -> None:
    # A restarted server cannot check the sessions of the run before, so what bob may
    # catch up on after it is what a newcomer's history holds (SECURITY.md): make that
    # room for all 41 lines, in case bob is back after ann has sent the lot.
    history = ("PEERCHAT_HISTORY", "100")
    server = start_server(network, *FAST, ("PEERCHAT_SHUTDOWN_TIMEOUT", "3"), history)
    cleanup.append(server)
    ann = start_client(network, "ann", *RECONNECTING)
    cleanup.append(ann)
    bob = start_client(network, "bob", *RECONNECTING)
    cleanup.append(bob)
    ann.wait_for_event(type="join", nick="bob")
    typed = [f"line {n}" for n in range(40)]
    ann.type(*typed[:20])
    began = time.monotonic()
    wrapped = server.get_wrapped_container()
    wrapped.stop(timeout=10)  # SIGTERM: as `docker compose restart server` does
    ann.wait_for_text("[DISCONNECTED]")
    ann.type(*typed[20:])  # typed while the server is down
    ann.wait_for_text("will be sent once reconnected")
    wrapped.start()
    ann.wait_for_text("[RECONNECTED]")
    bob.wait_for_text("[RECONNECTED]")
    took = time.monotonic() - began
    ann.type("after the restart")
    bob.wait_for_event(type="message", text="after the restart")
    got = texts_from(bob, "ann")
    warned = ann.output()
    # A line not delivered must be in a warning: named (up to 20), or counted in it.
    missing = [t for t in typed if t not in got and repr(t) not in warned]
    counted = sum(int(n) for n in re.findall(r"confirming (\d+) of your lines", warned))
    assert len(missing) <= max(0, counted - 20), (
        f"lost without a notice: {missing}\nann:\n{ann.output()[-3000:]}\n"
        f"server:\n{log_of(server)[-3000:]}"
    )
    assert len(got) == len(set(got)), "bob got a line twice"
    assert [t for t in got if t in typed] == [t for t in typed if t in got], "out of order"
    delivered = len([t for t in typed if t in got])
    print(
        f"restart: server stopped and started under load; both clients back {took:.1f} s "
        f"after the stop began; {len(typed)} typed lines checked: {delivered} delivered, "
        f"{len(typed) - delivered} named to the user, 0 lost unnoticed"
    )
