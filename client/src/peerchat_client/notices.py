"""What the user is told when a connection is lost and comes back: wording only.

Pure functions from what happened (the new welcome, the ledger's
:class:`~.ledger.Resume`, the lines owed) to the tagged lines to show; the
:class:`~.link.Link` writes them to its status console.
"""

from __future__ import annotations

from collections.abc import Sequence

from peerchat_protocol import Say, Welcome

from .console import Tag
from .ledger import Resume

Lines = list[tuple[Tag, str]]


def short(lines: Sequence[Say], limit: int = 20) -> str:
    """The first ``limit`` lines' texts, quoted and cut, and how many more."""
    shown = "; ".join(repr(say.text[:60]) for say in lines[:limit])
    return shown + (f" and {len(lines) - limit} more" if len(lines) > limit else "")


def back(label: str, took: float, welcome: Welcome, resume: Resume) -> Lines:
    """Back on ``label`` after ``took`` seconds: where we are, what was missed, and
    which lines the server may not have relayed."""
    where = f" in #{welcome.room}" if welcome.room else ""
    lines = [
        (Tag.RECONNECTED, f"Back on {label} after {took:.1f} s: you are {welcome.nick}{where}.")
    ]
    lines += missed(welcome, resume)
    if resume.doubtful:
        lines.append(
            (
                Tag.WARNING,
                f"The server went away before confirming {len(resume.doubtful)} of your "
                f"lines, so they may not have reached everyone: {short(resume.doubtful)}. "
                "Send again what matters.",
            )
        )
    return lines


def missed(welcome: Welcome, resume: Resume) -> Lines:
    """What the user missed while away, as far as the welcome tells."""
    lead = (
        "The server restarted, or you reached another one, while you were away. "
        if resume.restarted
        else ""
    )
    lines: Lines = []
    if welcome.missed is not None:  # the server replays what was said since our last
        lines.append(_catch_up(lead, welcome.missed, gap=welcome.gap))
    elif resume.restarted:
        lines.append((Tag.WARNING, lead + "What was said meanwhile was not kept."))
    elif not welcome.resumed and welcome.session is not None:
        lines.append(
            (
                Tag.WARNING,
                "The server no longer knew this session (away too long): what was said "
                "meanwhile is lost to you.",
            )
        )
    if resume.crashed:
        lines.append(
            (
                Tag.WARNING,
                "It went away without a goodbye: what was said just before may be lost to you.",
            )
        )
    return lines


def _catch_up(lead: str, n: int, *, gap: bool) -> tuple[Tag, str]:
    if gap:
        return (
            Tag.WARNING,
            lead
            + "More was said while you were away than the server keeps: some "
            + (f"messages are lost to you; the last {n} follow." if n else "may be lost to you."),
        )
    if n:
        follow = (
            f"{n} message you missed follows." if n == 1 else f"{n} messages you missed follow."
        )
        return (Tag.INFO, lead + follow)
    return (Tag.INFO, lead + "You missed nothing.")


def unsent(never: Sequence[Say], unsure: Sequence[Say]) -> Lines:
    """The chat ends disconnected: the lines never sent, and those sent but unconfirmed."""
    lines: Lines = []
    if never:
        lines.append((Tag.WARNING, f"{len(never)} of your lines were never sent: {short(never)}."))
    if unsure:
        lines.append(
            (
                Tag.WARNING,
                f"{len(unsure)} of your lines were sent but not confirmed, so they may not "
                f"have reached everyone: {short(unsure)}.",
            )
        )
    return lines
