"""The client's resume ledger, sans-I/O: every transition, with no socket, loop or clock."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from peerchat_client import ledger as ledger_module
from peerchat_client.ledger import QUEUE_LINES, UNACKED_LINES, Ledger, Resume, Tracked
from peerchat_protocol import (
    Ack,
    Bye,
    ChangeNick,
    Event,
    Info,
    Joined,
    Message,
    Say,
    Welcome,
)


def welcome(epoch: str | None = "e1", session: str | None = "secret", **extra: Any) -> Welcome:
    return Welcome(
        version=3, nick="alice", addr="10.0.0.1:1", online=1, room="lobby",
        session=session, epoch=epoch, **extra,
    )  # fmt: skip


def message(id: int, ts: int = 0, *, history: bool = False) -> Message:
    return Message(id, "bob", f"line {id}", ts, "lobby", history=history)


def texts(lines: tuple[Event, ...] | list[Say]) -> list[str]:
    return [e.text for e in lines if isinstance(e, Say)]


def sent(ledger: Ledger, *lines: str) -> list[Say]:
    """Track each of ``lines`` as a chat line sent now; the numbered lines."""
    out = []
    for text in lines:
        tracked = ledger.track(Say(text))
        assert isinstance(tracked.event, Say)
        out.append(tracked.event)
    return out


# --- purity -------------------------------------------------------------------------


def test_the_ledger_imports_no_io_no_clock_and_nothing_else_of_the_client() -> None:
    tree = ast.parse(Path(ledger_module.__file__).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add("." * node.level + (node.module or "").split(".")[0])
    assert imported <= {"__future__", "dataclasses", "collections", "typing", "peerchat_protocol"}


# --- a fresh ledger -----------------------------------------------------------------


def test_a_new_ledger_takes_the_session_and_epoch_of_the_welcome_and_owes_nothing() -> None:
    ledger = Ledger(welcome())
    assert (ledger.token, ledger.epoch) == ("secret", "e1")
    assert (ledger.last_id, ledger.last_ts, ledger.seq) == (0, 0, 0)
    assert ledger.unacked == ()
    assert ledger.held == ()
    assert not ledger.said_goodbye


def test_the_default_limits_are_100_held_and_10000_unacknowledged() -> None:
    ledger = Ledger(welcome())
    assert (QUEUE_LINES, UNACKED_LINES) == (100, 10_000)
    assert (ledger.queue_lines, ledger.unacked_lines) == (100, 10_000)


def test_a_comeback_names_the_session_epoch_and_newest_message_seen() -> None:
    ledger = Ledger(welcome())
    assert ledger.comeback() == {"resume": "secret", "epoch": "e1", "last_id": 0, "last_ts": None}
    ledger.received(message(7, ts=1234))
    assert ledger.comeback() == {"resume": "secret", "epoch": "e1", "last_id": 7, "last_ts": 1234}


def test_without_an_epoch_a_comeback_gives_no_last_id() -> None:
    ledger = Ledger(welcome(epoch=None, session=None))
    ledger.received(message(7, ts=1234))
    assert ledger.comeback() == {"resume": None, "epoch": None, "last_id": None, "last_ts": 1234}


# --- events from the server ---------------------------------------------------------


def test_an_ack_confirms_the_lines_up_to_its_seq_and_is_not_shown() -> None:
    ledger = Ledger(welcome())
    sent(ledger, "one", "two", "three")
    assert ledger.received(Ack(2)) is False
    assert texts(ledger.unacked) == ["three"]
    assert ledger.received(Ack(2)) is False  # again: nothing more
    assert texts(ledger.unacked) == ["three"]
    ledger.received(Ack(3))
    assert ledger.unacked == ()


def test_an_ack_below_every_line_confirms_none() -> None:
    ledger = Ledger(welcome())
    sent(ledger, "one")
    ledger.received(Ack(0))
    assert texts(ledger.unacked) == ["one"]


def test_an_acks_id_counts_as_seen_and_never_lowers_it() -> None:
    ledger = Ledger(welcome())
    ledger.received(Ack(1, id=9))
    assert ledger.last_id == 9
    ledger.received(Ack(2, id=4))
    assert ledger.last_id == 9
    ledger.received(Ack(3))
    assert ledger.last_id == 9
    assert ledger.received(message(9)) is False  # our own line: not shown if it came back


def test_a_new_live_message_is_shown_and_raises_the_newest_id_and_time() -> None:
    ledger = Ledger(welcome())
    assert ledger.received(message(5, ts=500)) is True
    assert (ledger.last_id, ledger.last_ts) == (5, 500)
    assert ledger.received(message(6, ts=400)) is True  # a clock step back: ts stays
    assert (ledger.last_id, ledger.last_ts) == (6, 500)


@pytest.mark.parametrize("repeat", [5, 4])
def test_a_live_message_seen_already_is_dropped_and_changes_nothing(repeat: int) -> None:
    ledger = Ledger(welcome())
    ledger.received(message(5, ts=500))
    assert ledger.received(message(repeat, ts=900)) is False
    assert (ledger.last_id, ledger.last_ts) == (5, 500)


def test_history_is_shown_even_below_the_newest_id_and_lowers_nothing() -> None:
    ledger = Ledger(welcome())
    ledger.received(message(5, ts=500))
    assert ledger.received(message(3, ts=300, history=True)) is True
    assert (ledger.last_id, ledger.last_ts) == (5, 500)
    assert ledger.received(message(8, ts=800, history=True)) is True  # a catch-up counts
    assert (ledger.last_id, ledger.last_ts) == (8, 800)


def test_a_shutdown_bye_is_noted_and_another_bye_unnotes_it() -> None:
    ledger = Ledger(welcome())
    assert ledger.received(Bye("The server is shutting down.", code="shutdown")) is True
    assert ledger.said_goodbye
    assert ledger.received(Bye("Gone", code="ping_timeout")) is True
    assert not ledger.said_goodbye
    ledger.received(Bye("Gone", code="shutdown"))
    ledger.received(Bye("Gone"))
    assert not ledger.said_goodbye


@pytest.mark.parametrize("event", [Info("hello"), Joined("bob", 2, "lobby")])
def test_other_events_are_shown_and_change_nothing(event: Event) -> None:
    ledger = Ledger(welcome())
    sent(ledger, "one")
    assert ledger.received(event) is True
    assert (ledger.last_id, ledger.last_ts, ledger.said_goodbye) == (0, 0, False)
    assert texts(ledger.unacked) == ["one"]


# --- events to the server -----------------------------------------------------------


def test_chat_lines_are_numbered_from_one_and_kept_until_acknowledged() -> None:
    ledger = Ledger(welcome())
    original = Say("hi", to="bob")
    tracked = ledger.track(original)
    assert tracked == Tracked(Say("hi", to="bob", seq=1), kept=True, dropped=None)
    assert original.seq is None  # a new event, the given one untouched
    assert ledger.track(Say("again")).event == Say("again", seq=2)
    assert ledger.seq == 2
    assert [say.seq for say in ledger.unacked] == [1, 2]


def test_a_line_numbered_already_keeps_its_number_and_is_kept() -> None:
    ledger = Ledger(welcome())
    tracked = ledger.track(Say("hi", seq=41))
    assert tracked == Tracked(Say("hi", seq=41), kept=True)
    assert ledger.seq == 0
    assert ledger.unacked == (Say("hi", seq=41),)


def test_without_a_session_nothing_is_numbered_or_kept() -> None:
    ledger = Ledger(welcome(epoch=None, session=None))  # a v2 server: no acks
    say = Say("hi")
    tracked = ledger.track(say)
    assert tracked.event is say
    assert not tracked.kept
    assert (ledger.seq, ledger.unacked) == (0, ())


def test_other_events_go_out_as_they_are_and_are_not_kept() -> None:
    ledger = Ledger(welcome())
    nick = ChangeNick("bob")
    tracked = ledger.track(nick)
    assert tracked == Tracked(nick, kept=False, dropped=None)
    assert tracked.event is nick
    assert (ledger.seq, ledger.unacked) == (0, ())


def test_over_the_limit_the_oldest_unacknowledged_line_is_dropped_and_named() -> None:
    ledger = Ledger(welcome(), unacked_lines=2)
    assert [ledger.track(Say(t)).dropped for t in ("one", "two")] == [None, None]  # at the limit
    tracked = ledger.track(Say("three"))
    assert tracked.dropped == Say("one", seq=1)
    assert tracked.kept
    assert texts(ledger.unacked) == ["two", "three"]


# --- lines held while disconnected --------------------------------------------------


def test_lines_are_held_in_order_up_to_the_limit_and_one_more_is_refused() -> None:
    ledger = Ledger(welcome(), queue_lines=2)
    assert ledger.hold(Say("one"))
    assert ledger.hold(ChangeNick("bob"))
    assert not ledger.hold(Say("three"))
    assert ledger.held == (Say("one"), ChangeNick("bob"))
    assert ledger.unacked == ()  # held lines are not numbered yet


def test_an_event_owed_goes_last_and_one_put_back_goes_first_whatever_the_limit() -> None:
    ledger = Ledger(welcome(), queue_lines=1)
    ledger.hold(Say("typed"))
    ledger.owe(ChangeNick("bob"))
    ledger.put_back(Say("first"))
    assert ledger.held == (Say("first"), Say("typed"), ChangeNick("bob"))


def test_release_tracks_the_oldest_held_line_so_it_is_never_in_both_places() -> None:
    ledger = Ledger(welcome())
    ledger.hold(Say("one"))
    ledger.hold(ChangeNick("bob"))
    first = ledger.release()
    assert first == Tracked(Say("one", seq=1), kept=True)
    assert ledger.held == (ChangeNick("bob"),)
    assert ledger.unacked == (Say("one", seq=1),)
    second = ledger.release()
    assert second == Tracked(ChangeNick("bob"), kept=False)
    assert not ledger.held
    assert ledger.release() is None


def test_release_names_a_line_it_pushes_out() -> None:
    ledger = Ledger(welcome(), unacked_lines=1)
    sent(ledger, "old")
    ledger.hold(Say("new"))
    released = ledger.release()
    assert released is not None
    assert released.dropped == Say("old", seq=1)


def test_dropping_what_is_held_returns_its_chat_lines_and_empties_it() -> None:
    ledger = Ledger(welcome())
    ledger.hold(Say("one"))
    ledger.hold(ChangeNick("bob"))
    ledger.hold(Say("two", action=True))
    assert ledger.drop_held() == [Say("one"), Say("two", action=True)]
    assert ledger.held == ()
    assert ledger.drop_held() == []


# --- a new connection ---------------------------------------------------------------


def test_a_resumed_session_gets_again_only_the_lines_above_its_acked() -> None:
    ledger = Ledger(welcome())
    ledger.received(message(5, ts=500))
    *_, three = sent(ledger, "one", "two", "three")
    resume = ledger.resume(welcome(resumed=True, acked=2, missed=0))
    assert resume == Resume(restarted=False, crashed=False, resend=(three,), doubtful=())
    assert ledger.unacked == (three,)  # still owed until acknowledged
    assert (ledger.last_id, ledger.last_ts) == (5, 500)  # same epoch: ids still compare


def test_a_resumed_session_without_acked_gets_every_line_again() -> None:
    ledger = Ledger(welcome())
    lines = tuple(sent(ledger, "one", "two"))
    assert ledger.resume(welcome(resumed=True)).resend == lines


def test_after_a_shutdown_goodbye_every_unconfirmed_line_is_sent_again() -> None:
    ledger = Ledger(welcome())
    lines = tuple(sent(ledger, "one", "two"))
    ledger.received(Bye("The server is shutting down.", code="shutdown"))
    resume = ledger.resume(welcome(epoch="e2", session="new"))
    assert resume == Resume(restarted=True, crashed=False, resend=lines, doubtful=())
    assert ledger.unacked == lines
    assert not ledger.said_goodbye  # one goodbye answers for one resume


def test_after_a_crash_unconfirmed_lines_are_doubtful_and_no_longer_kept() -> None:
    ledger = Ledger(welcome())
    lines = tuple(sent(ledger, "one", "two"))
    resume = ledger.resume(welcome(epoch="e2"))
    assert resume == Resume(restarted=True, crashed=True, resend=(), doubtful=lines)
    assert ledger.unacked == ()


def test_a_forgotten_session_on_the_same_run_is_not_a_restart() -> None:
    ledger = Ledger(welcome())
    lines = tuple(sent(ledger, "one"))
    resume = ledger.resume(welcome(session="new"))  # same epoch, resumed false
    assert resume == Resume(restarted=False, crashed=False, resend=(), doubtful=lines)
    assert ledger.token == "new"


def test_a_first_welcome_without_an_epoch_makes_no_restart() -> None:
    ledger = Ledger(welcome(epoch=None))
    resume = ledger.resume(welcome(epoch="e2"))
    assert (resume.restarted, resume.crashed) == (False, False)


def test_another_epoch_restarts_message_ids_but_keeps_the_time_and_the_numbering() -> None:
    ledger = Ledger(welcome())
    ledger.received(message(50, ts=5000))
    sent(ledger, "one")
    ledger.resume(welcome(epoch="e2", session="s2"))
    assert (ledger.token, ledger.epoch) == ("s2", "e2")
    assert (ledger.last_id, ledger.last_ts) == (0, 5000)
    assert ledger.received(message(3)) is True  # a new run's id 3 is news
    assert ledger.track(Say("two")).event == Say("two", seq=2)


def test_resuming_leaves_what_is_held_for_release() -> None:
    ledger = Ledger(welcome())
    ledger.hold(Say("typed"))
    ledger.resume(welcome(resumed=True, acked=0))
    assert ledger.held == (Say("typed"),)


# --- the invariant, over any sequence of steps --------------------------------------


class LedgerMachine(RuleBasedStateMachine):
    """Every line accepted is in exactly one place: held, unacknowledged, confirmed, or
    named to the user (dropped over the limit, or doubtful after a resume)."""

    def __init__(self) -> None:
        super().__init__()
        self.ledger = Ledger(welcome(), queue_lines=3, unacked_lines=4)
        self.count = 0
        self.confirmed: set[str] = set()
        self.named: set[str] = set()
        self.accepted: set[str] = set()
        self.epoch = 1

    def _line(self) -> Say:
        self.count += 1
        return Say(f"line {self.count}")

    def _note(self, tracked: Tracked) -> None:
        if tracked.dropped is not None:
            self.named.add(tracked.dropped.text)

    @rule()
    def send(self) -> None:
        say = self._line()
        self.accepted.add(say.text)
        self._note(self.ledger.track(say))

    @rule()
    def hold(self) -> None:
        say = self._line()
        if self.ledger.hold(say):
            self.accepted.add(say.text)

    @rule()
    def release(self) -> None:
        tracked = self.ledger.release()
        if tracked is not None:
            self._note(tracked)

    @precondition(lambda self: self.ledger.held)
    @rule()
    def release_and_fail(self) -> None:
        tracked = self.ledger.release()
        assert tracked is not None
        self._note(tracked)
        if not tracked.kept:
            self.ledger.put_back(tracked.event)

    @rule(upto=st.integers(0, 40))
    def ack(self, upto: int) -> None:
        before = set(texts(self.ledger.unacked))
        self.ledger.received(Ack(upto))
        self.confirmed |= before - set(texts(self.ledger.unacked))

    @rule(shutdown=st.booleans())
    def bye(self, shutdown: bool) -> None:
        self.ledger.received(Bye("gone", code="shutdown" if shutdown else "internal"))

    @rule(resumed=st.booleans(), acked=st.integers(0, 40), restart=st.booleans())
    def resume(self, resumed: bool, acked: int, restart: bool) -> None:
        owed = self.ledger.unacked
        self.epoch += restart
        resume = self.ledger.resume(welcome(epoch=f"e{self.epoch}", resumed=resumed, acked=acked))
        assert self.ledger.unacked == resume.resend
        assert set(resume.resend) | set(resume.doubtful) <= set(owed)
        if resumed:
            assert resume.resend == tuple(say for say in owed if (say.seq or 0) > acked)
        self.named |= set(texts(resume.doubtful))
        # Owed, and neither sent again nor doubtful: the server says it handled them.
        self.confirmed |= set(texts(owed)) - set(texts(resume.resend + resume.doubtful))

    @invariant()
    def each_line_is_in_exactly_one_place(self) -> None:
        held = texts(self.ledger.held)
        unacked = texts(self.ledger.unacked)
        places = [set(held), set(unacked), self.confirmed, self.named]
        assert len(held) == len(set(held))
        assert len(unacked) == len(set(unacked))
        for i, one in enumerate(places):
            for other in places[i + 1 :]:
                assert not one & other
        assert set().union(*places) == self.accepted

    @invariant()
    def unacknowledged_lines_are_numbered_in_order(self) -> None:
        seqs = [say.seq for say in self.ledger.unacked]
        assert all(seq is not None for seq in seqs)
        assert seqs == sorted(seqs)  # type: ignore[type-var]


TestLedgerMachine = LedgerMachine.TestCase
TestLedgerMachine.settings = settings(max_examples=200, stateful_step_count=30, deadline=None)
