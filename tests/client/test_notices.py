"""What the user reads after a lost connection: each case, word for word."""

from __future__ import annotations

from typing import Any

import pytest

from peerchat_client.console import Tag
from peerchat_client.ledger import Resume
from peerchat_client.notices import back, missed, short, unsent
from peerchat_protocol import Say, Welcome

RESTART = "The server restarted, or you reached another one, while you were away. "
CRASH = "It went away without a goodbye: what was said just before may be lost to you."


def welcome(**extra: Any) -> Welcome:
    base: dict[str, Any] = {"session": "s", "epoch": "e1", "room": "lobby"}
    return Welcome(version=3, nick="alice", addr="10.0.0.1:1", online=1, **{**base, **extra})


def test_short_quotes_at_most_20_lines_each_cut_to_60_characters() -> None:
    assert short([Say("one"), Say("two")]) == "'one'; 'two'"
    assert short([Say("x" * 70)]) == repr("x" * 60)
    lines = [Say(f"l{n}") for n in range(23)]
    assert short(lines) == "; ".join(repr(f"l{n}") for n in range(20)) + " and 3 more"
    assert short(lines[:20]) == "; ".join(repr(f"l{n}") for n in range(20))


def test_back_says_where_we_are_then_what_was_missed_then_what_is_doubtful() -> None:
    resume = Resume(restarted=False, crashed=False, doubtful=(Say("maybe"),))
    assert back("server:8080", 1.25, welcome(resumed=True, missed=0), resume) == [
        (Tag.RECONNECTED, "Back on server:8080 after 1.2 s: you are alice in #lobby."),
        (Tag.INFO, "You missed nothing."),
        (
            Tag.WARNING,
            "The server went away before confirming 1 of your lines, so they may not have "
            "reached everyone: 'maybe'. Send again what matters.",
        ),
    ]


def test_back_without_a_room_names_none() -> None:
    resume = Resume(restarted=False, crashed=False)
    lines = back("h:1", 0.0, welcome(room=None, resumed=True), resume)
    assert lines == [(Tag.RECONNECTED, "Back on h:1 after 0.0 s: you are alice.")]


@pytest.mark.parametrize(
    ("missed_count", "gap", "expected"),
    [
        (0, False, (Tag.INFO, "You missed nothing.")),
        (1, False, (Tag.INFO, "1 message you missed follows.")),
        (7, False, (Tag.INFO, "7 messages you missed follow.")),
        (
            3,
            True,
            (
                Tag.WARNING,
                "More was said while you were away than the server keeps: some messages are "
                "lost to you; the last 3 follow.",
            ),
        ),
        (
            0,
            True,
            (
                Tag.WARNING,
                "More was said while you were away than the server keeps: some may be lost to you.",
            ),
        ),
    ],
)
def test_a_catch_up_is_counted(missed_count: int, gap: bool, expected: tuple[Tag, str]) -> None:
    resume = Resume(restarted=False, crashed=False)
    assert missed(welcome(resumed=True, missed=missed_count, gap=gap), resume) == [expected]
    restarted = Resume(restarted=True, crashed=False)
    tag, text = expected
    assert missed(welcome(missed=missed_count, gap=gap), restarted) == [(tag, RESTART + text)]


def test_a_restart_with_no_catch_up_says_nothing_was_kept_and_a_crash_says_so() -> None:
    resume = Resume(restarted=True, crashed=True)
    assert missed(welcome(epoch="e2"), resume) == [
        (Tag.WARNING, RESTART + "What was said meanwhile was not kept."),
        (Tag.WARNING, CRASH),
    ]


def test_a_forgotten_session_is_named() -> None:
    resume = Resume(restarted=False, crashed=False)
    assert missed(welcome(), resume) == [
        (
            Tag.WARNING,
            "The server no longer knew this session (away too long): what was said "
            "meanwhile is lost to you.",
        )
    ]
    assert missed(welcome(session=None), resume) == []  # a server without sessions
    assert missed(welcome(resumed=True), resume) == []


def test_unsent_names_the_lines_never_sent_and_those_unconfirmed() -> None:
    assert unsent([], []) == []
    assert unsent([Say("a")], []) == [(Tag.WARNING, "1 of your lines were never sent: 'a'.")]
    assert unsent([], [Say("b", seq=1), Say("c", seq=2)]) == [
        (
            Tag.WARNING,
            "2 of your lines were sent but not confirmed, so they may not have reached "
            "everyone: 'b'; 'c'.",
        )
    ]
    assert len(unsent([Say("a")], [Say("b", seq=1)])) == 2
