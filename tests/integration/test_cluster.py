"""Replicas sharing one chat through Redis (issue 9), on the real images: Redis, two
replicas, HAProxy in front, real clients; then Redis stopped, then a replica killed."""

from __future__ import annotations

from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network

from .containers import (
    Peer,
    log_of,
    start_balancer,
    start_client,
    start_redis,
    start_replica,
    texts_from,
    wait_for_log,
)

RECONNECTING = ("--reconnect", "--keepalive", "1", "--linger", "600")


def on(replica: str, nick: str, network: Network, *extra: str) -> Peer:
    """A real client connected straight to one replica."""
    return start_client(network, nick, "--host", replica, "--linger", "600", *extra)


def ann_behind_the_balancer(
    network: Network, cleanup: list[DockerContainer | Peer]
) -> tuple[dict[str, DockerContainer], Peer, str, str]:
    """Redis, replica-a and replica-b, HAProxy, and ann connected through it (reconnecting):
    (the replicas by name, ann, the replica ann is on, the other one)."""
    cleanup.append(start_redis(network))
    replicas = {name: start_replica(network, name) for name in ("replica-a", "replica-b")}
    cleanup += list(replicas.values())
    cleanup.append(start_balancer(network))
    ann = start_client(network, "ann", *RECONNECTING)  # through the balancer ("server")
    cleanup.append(ann)
    home = next(name for name, c in replicas.items() if "is now ann" in log_of(c))
    return replicas, ann, home, "replica-b" if home == "replica-a" else "replica-a"


def test_clients_on_two_replicas_see_each_other_once_in_order_and_in_who(
    network: Network, cleanup: list[DockerContainer | Peer]
) -> None:
    cleanup.append(start_redis(network))
    cleanup.append(start_replica(network, "replica-a"))
    cleanup.append(start_replica(network, "replica-b"))
    ann = on("replica-a", "ann", network)
    cleanup.append(ann)
    bob = on("replica-b", "bob", network)
    cleanup.append(bob)
    ann.wait_for_event(type="join", nick="bob")
    ann.type(*(f"ann {n}" for n in range(20)))
    bob.type(*(f"bob {n}" for n in range(20)))
    bob.wait_for_event(type="message", text="ann 19")
    ann.wait_for_event(type="message", text="bob 19")
    assert texts_from(bob, "ann") == [f"ann {n}" for n in range(20)]
    assert texts_from(ann, "bob") == [f"bob {n}" for n in range(20)]
    assert texts_from(ann, "ann") == []
    assert texts_from(bob, "bob") == []
    bob.type("/who")
    roster = bob.wait_for_event(type="roster")
    assert {p["nick"] for p in roster["peers"]} == {"ann", "bob"}


def test_without_redis_each_replica_chats_alone_and_they_join_up_again(
    network: Network, cleanup: list[DockerContainer | Peer]
) -> None:
    redis = start_redis(network)
    cleanup.append(redis)
    cleanup.append(start_replica(network, "replica-a"))
    cleanup.append(start_replica(network, "replica-b"))
    ann, amy = on("replica-a", "ann", network), on("replica-a", "amy", network)
    bob = on("replica-b", "bob", network)
    cleanup += [ann, amy, bob]
    ann.wait_for_event(type="join", nick="bob")
    redis.get_wrapped_container().stop(timeout=5)
    for peer in (ann, amy, bob):
        peer.wait_for_text("link to the other chat servers is down")
    ann.type("only replica a hears this")
    amy.wait_for_event(type="message", text="only replica a hears this")
    redis.get_wrapped_container().start()
    for peer in (ann, amy, bob):
        peer.wait_for_text("link to the other chat servers is back")
    ann.type("together again")
    bob.wait_for_event(type="message", text="together again")
    assert "only replica a hears this" not in texts_from(bob, "ann")


def test_a_killed_replica_s_clients_come_back_through_the_balancer_and_carry_on(
    network: Network, cleanup: list[DockerContainer | Peer]
) -> None:
    replicas, ann, home, other = ann_behind_the_balancer(network, cleanup)
    bob = on(other, "bob", network)
    cleanup.append(bob)
    ann.wait_for_event(type="join", nick="bob")
    replicas[home].get_wrapped_container().kill(signal="SIGKILL")
    ann.wait_for_text("[RECONNECTED]")
    wait_for_log(replicas[other], "is now ann")
    ann.type("still here")
    bob.wait_for_event(type="message", text="still here")
    welcomes = [e for e in ann.events() if e["type"] == "welcome"]
    assert welcomes[-1]["nick"] == "ann"  # its name, not ann_2
    print(f"cluster: replica {home} killed; ann back on {other} as ann")


def test_a_client_moved_to_the_other_replica_catches_up_by_id(
    network: Network, cleanup: list[DockerContainer | Peer]
) -> None:
    """Issue 21: the replicas share one id sequence per room (Redis numbers the lines).
    ann's network is cut and its replica killed while bob talks; ann comes back through
    the balancer to the other replica and gets exactly what it missed, by id: once, in
    order, with no gap, under the ids everyone else saw."""
    replicas, ann, home, other = ann_behind_the_balancer(network, cleanup)
    bob, cid = on(other, "bob", network), on(other, "cid", network)
    cleanup += [bob, cid]
    ann.wait_for_event(type="join", nick="cid")
    bob.type("before")
    ann.wait_for_event(type="message", text="before")
    ann_id = ann.container.get_wrapped_container().id
    network._unwrap_network.disconnect(ann_id)
    replicas[home].get_wrapped_container().kill(signal="SIGKILL")
    bob.type(*(f"while away {n}" for n in range(10)))
    cid.wait_for_event(type="message", text="while away 9")
    network._unwrap_network.connect(ann_id)
    ann.wait_for_text("[RECONNECTED]")
    wait_for_log(replicas[other], "is now ann")
    bob.type("after")
    ann.wait_for_event(type="message", text="after")
    welcomes = [e for e in ann.events() if e["type"] == "welcome"]
    assert welcomes[0]["epoch"] == welcomes[-1]["epoch"]  # one sequence on both replicas
    back = welcomes[-1]  # (a JSON event leaves out what is false or empty)
    assert (back["nick"], back.get("missed"), back.get("gap", False)) == ("ann", 10, False)
    said = [(e["text"], e["id"]) for e in ann.events() if e["type"] == "message"]
    seen = [(e["text"], e["id"]) for e in cid.events() if e["type"] == "message"]
    expected = ["before", *(f"while away {n}" for n in range(10)), "after"]
    assert [text for text, _ in said] == expected  # once each, in order
    assert said == [pair for pair in seen if pair[0] in expected]  # the same ids
    print(f"cluster: {home} killed; ann caught up by id on {other}: 10 of 10, gap false")
