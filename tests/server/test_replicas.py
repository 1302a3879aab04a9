"""The book of other replicas' peers: names, replicas, silence."""

from __future__ import annotations

from peerchat_server.replicas import RemotePeer, Replicas


def test_peers_are_found_by_name_in_any_case_and_only_their_replica_removes_them() -> None:
    book = Replicas()
    assert book.add(RemotePeer("Ann", "10.0.0.1:1", "lobby", "r1")) is None
    assert book.find("ann") is not None
    assert book.remove("ann", "r2") is None  # r2 does not hold ann
    assert book.remove("ANN", "r1") is not None
    assert book.find("ann") is None


def test_a_replica_that_falls_silent_is_named_and_dropped_with_its_peers() -> None:
    book = Replicas()
    book.add(RemotePeer("ann", "a", "lobby", "r1"))
    book.add(RemotePeer("bob", "b", "games", "r1"))
    book.add(RemotePeer("cat", "c", "lobby", "r2"))
    book.heard("r1", now=0.0)
    book.heard("r2", now=3.0)
    assert book.silent(now=4.5, after=4.0) == ["r1"]
    gone = book.drop_replica("r1")
    assert {p.nick for p in gone} == {"ann", "bob"}
    assert len(book) == 1
    assert book.silent(now=4.5, after=4.0) == []
    assert [p.nick for p in book.clear()] == ["cat"]
    assert len(book) == 0
