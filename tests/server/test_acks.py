"""When lines are acknowledged (acks.py): once per batch, never covering a line that
waits for the replicas' bus (PROTOCOL.md §8, guarantee 4)."""

from __future__ import annotations

from peerchat_protocol import Ack
from peerchat_server.acks import Acks


def test_a_batch_is_acknowledged_once_up_to_its_newest_line() -> None:
    acks = Acks()
    acks.reading = True
    for seq in (1, 2, 3):
        acks.handled(seq, 100 + seq)
    acks.reading = False
    assert acks.due() == Ack(3, 103)
    assert acks.due() is None  # said once


def test_no_ack_covers_a_line_that_waits_and_it_comes_once_the_line_is_out() -> None:
    acks = Acks()
    acks.reading = True
    acks.handled(1, 11)
    acks.hold(2)
    acks.handled(3)  # a private message after it
    acks.reading = False
    assert acks.due() == Ack(1, 11)  # not 3: line 2 waits
    assert acks.release(2, 22) == Ack(3, None)  # line 2 out: everything up to 3
    assert acks.due() is None


def test_lines_released_in_a_batch_are_acknowledged_at_its_end() -> None:
    acks = Acks()
    acks.reading = True
    acks.hold(1)
    assert acks.release(1, 7) is None  # (relayed at once: no bus)
    acks.reading = False
    assert acks.due() == Ack(1, 7)


def test_lines_out_of_order_wait_for_the_oldest() -> None:
    acks = Acks()
    acks.hold(1)
    acks.hold(2)
    assert acks.release(2, 20) is None  # 1 still waits
    assert acks.release(1, 10) == Ack(2, 20)
    assert acks.due() is None


def test_nothing_handled_is_nothing_acknowledged() -> None:
    acks = Acks()
    acks.hold(5)
    assert acks.due() is None  # not Ack(4): lines 1-4 were never seen here
