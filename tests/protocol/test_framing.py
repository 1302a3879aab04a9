"""LineFramer: splitting, line endings, and the size limit enforced before the newline."""

from __future__ import annotations

import sys
import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerchat_protocol import ErrorCode, LineFramer, RemoteProtocolError

TOO_LONG = "TOO_LONG"


def drain(framer: LineFramer) -> list[bytes | str]:
    """Every line (or TOO_LONG marker) available now."""
    out: list[bytes | str] = []
    for _ in range(10_000):
        try:
            line = framer.next_line()
        except RemoteProtocolError as exc:
            ok = exc.code is ErrorCode.LINE_TOO_LONG and not exc.fatal
            out.append(TOO_LONG if ok else repr(exc))  # anything else fails the comparison
            continue
        if line is None:
            return out
        out.append(line)
    raise AssertionError("framer did not settle")


def frame(chunks: list[bytes], max_line: int = 16) -> list[bytes | str]:
    framer = LineFramer(max_line)
    out: list[bytes | str] = []
    for chunk in chunks:
        framer.feed(chunk)
        out += drain(framer)
    last = framer.close()
    if last is not None:
        out.append(last)
    return out


def test_lines_with_lf_and_crlf() -> None:
    assert frame([b"one\ntwo\r\nthree\n"]) == [b"one", b"two", b"three"]


def test_two_lines_in_one_segment_and_one_line_over_many() -> None:
    assert frame([b"a\nb\n"]) == [b"a", b"b"]
    assert frame([b"he", b"ll", b"o\r", b"\n"]) == [b"hello"]


def test_empty_lines_are_lines() -> None:
    assert frame([b"\n\r\n"]) == [b"", b""]


def test_unterminated_last_line_is_returned_at_close() -> None:
    assert frame([b"a\nlast"]) == [b"a", b"last"]
    assert frame([b"a\nlast\r"]) == [b"a", b"last"]


def test_line_of_exactly_the_limit_passes() -> None:
    assert frame([b"x" * 16 + b"\n"]) == [b"x" * 16]
    assert frame([b"x" * 16 + b"\r\n"]) == [b"x" * 16]
    assert frame([b"x" * 16, b"\r", b"\n"]) == [b"x" * 16]


def test_line_one_over_the_limit_fails_and_stream_goes_on() -> None:
    assert frame([b"x" * 17 + b"\nok\n"]) == [TOO_LONG, b"ok"]
    assert frame([b"x" * 17, b"\nok\n"]) == [TOO_LONG, b"ok"]
    assert frame([b"x" * 16 + b"\rx\nok\n"]) == [TOO_LONG, b"ok"]


def test_overlong_line_is_reported_before_its_newline_and_not_buffered() -> None:
    framer = LineFramer(16)
    framer.feed(b"y" * 17)
    assert drain(framer) == [TOO_LONG]
    assert framer.buffered == 0
    for _ in range(100):  # a megabyte of junk without newline is never held
        framer.feed(b"z" * 10_000)
        assert drain(framer) == []
        assert framer.buffered == 0
    framer.feed(b"tail\nnext\n")
    assert drain(framer) == [b"next"]


def test_overlong_unterminated_line_at_close_is_dropped() -> None:
    assert frame([b"q" * 40]) == [TOO_LONG]


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        LineFramer(0)
    assert frame([b"a\nbb\nc\n"], max_line=1) == [b"a", TOO_LONG, b"c"]


def test_a_cr_does_not_excuse_a_line_already_over_the_limit() -> None:
    framer = LineFramer(16)
    framer.feed(b"y" * 17 + b"\r")  # 17 bytes of line before any ending: too long now
    assert drain(framer) == [TOO_LONG]
    assert framer.buffered == 0


def test_the_overflow_error_names_the_limit() -> None:
    framer = LineFramer(16)
    framer.feed(b"y" * 40)
    with pytest.raises(RemoteProtocolError) as info:
        framer.next_line()
    assert "16 bytes" in info.value.message


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    chunks, start = [], 0
    for point in [*points, len(data)]:
        chunks.append(data[start:point])
        start = point
    return [c for c in chunks if c]


line_bytes = st.binary(max_size=24).map(lambda b: b.replace(b"\n", b""))


@given(
    lines=st.lists(st.tuples(line_bytes, st.sampled_from([b"\n", b"\r\n"])), max_size=20),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=30),
)
def test_any_split_of_a_stream_gives_the_same_lines(
    lines: list[tuple[bytes, bytes]], cuts: list[int]
) -> None:
    data = b"".join(body + end for body, end in lines)
    whole = frame([data])
    assert frame(_split(data, cuts)) == whole
    assert frame([bytes([b]) for b in data]) == whole


@given(lines=st.lists(line_bytes, max_size=20))
def test_lines_within_limit_come_back_unchanged(lines: list[bytes]) -> None:
    # A line ending in '\r' would have that '\r' taken as part of CRLF.
    lines = [line.rstrip(b"\r") for line in lines]
    data = b"".join(line + b"\n" for line in lines)
    expected: list[bytes | str] = [line if len(line) <= 16 else TOO_LONG for line in lines]
    assert frame([data]) == expected


def test_has_line_tells_whether_a_line_or_error_waits() -> None:
    framer = LineFramer(8)
    assert not framer.has_line()
    framer.feed(b"part")
    assert not framer.has_line()  # incomplete and within the limit: needs more data
    framer.feed(b"ial\nnext")
    assert framer.has_line()
    assert framer.next_line() == b"partial"
    assert not framer.has_line()
    framer.feed(b"1234")  # "next1234": 8 bytes, the limit, still incomplete
    assert not framer.has_line()
    framer.feed(b"\r")  # may be the CR of a line of exactly the limit
    assert not framer.has_line()
    framer.feed(b"x")  # now surely too long: an error waits
    assert framer.has_line()
    with pytest.raises(RemoteProtocolError):
        framer.next_line()
    assert not framer.has_line()


@given(st.lists(st.binary(max_size=12), max_size=8), st.integers(1, 10))
def test_has_line_false_means_next_line_gives_nothing(chunks: list[bytes], limit: int) -> None:
    framer = LineFramer(limit)
    for chunk in chunks:
        framer.feed(chunk)
        for _ in range(100):  # bounded: each turn consumes a line or ends
            waiting = framer.has_line()
            try:
                line = framer.next_line()
            except RemoteProtocolError:
                assert waiting
                continue
            if line is None:
                break
            assert waiting, "a line was returned that has_line() did not announce"


def _held_after_reading(framer: LineFramer, chunk: bytes) -> tuple[list[int | str], int]:
    """Feed ``chunk`` and consume what it completes: each line's length (or TOO_LONG), and
    the bytes the framer still holds (allocations traced meanwhile, the chunk not included)."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        framer.feed(chunk)
        got = [item if isinstance(item, str) else len(item) for item in drain(framer)]
        return got, tracemalloc.get_traced_memory()[0] - before - sys.getsizeof(got)
    finally:
        tracemalloc.stop()


def test_a_large_read_of_lines_leaves_no_large_buffer_behind() -> None:
    # One read of 256 KiB (asyncio's largest) of 16 lines of 16,000 bytes: once they are
    # consumed, an idle connection must not keep a 256 KiB buffer (issue 14, item 5).
    framer = LineFramer(16 * 1024)
    got, held = _held_after_reading(framer, (b"x" * 15_999 + b"\n") * 16)
    assert got == [15_999] * 16
    assert framer.buffered == 0
    assert held < 1024


def test_the_incomplete_line_after_a_large_read_is_kept_at_its_own_size() -> None:
    framer = LineFramer(16 * 1024)
    got, held = _held_after_reading(framer, (b"x" * 15_999 + b"\n") * 16 + b"y" * 10_000)
    assert got == [15_999] * 16
    assert framer.buffered == 10_000
    assert 10_000 <= held < 10_000 + 1024
    framer.feed(b"z\n")
    assert drain(framer) == [b"y" * 10_000 + b"z"]


def test_an_overlong_line_leaves_no_large_buffer_behind() -> None:
    framer = LineFramer(16)
    got, held = _held_after_reading(framer, b"ok\n" + b"q" * 200_000)
    assert got == [2, TOO_LONG]
    assert framer.buffered == 0
    assert held < 1024
