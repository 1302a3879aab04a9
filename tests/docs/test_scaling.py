"""docs/scaling.md against bench/capacity.py: the model gives known answers on inputs
small enough to check by hand, and every figure the page prints from the model (the
table, the capacities, the largest chats, the constants, the numbers in its prose) is
what the model computes now. No network, no processes.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench import capacity
from bench.capacity import COSTS, ONE_CHANNEL, PER_ROOM, Costs, Load

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs/scaling.md"


def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def folded(text: str) -> str:
    """``text`` with its line breaks folded into spaces (a phrase may span lines)."""
    return re.sub(r"\s+", " ", text)


# --- the model, by hand ---------------------------------------------------------------


def test_zipf_sizes_are_whole_at_least_one_and_sum_to_the_users() -> None:
    # Quotas 10 x (1, 1/2, 1/3) / (11/6) = 5.45, 2.73, 1.82: whole parts 5, 2, 1, then
    # the two largest remainders (0.82, 0.73) get one more.
    assert capacity.zipf_sizes(10, 3, 1.0) == [5, 3, 2]
    assert capacity.zipf_sizes(5, 5, 1.0) == [1, 1, 1, 1, 1]
    # Quotas 7 x (1, 1/4, 1/9, 1/16, 1/25) / 1.4636 = 4.78, 1.20, 0.53, 0.30, 0.19: whole
    # parts (at least 1) make 4 + 1 + 1 + 1 + 1 = 8, and only the first room can lose one.
    assert capacity.zipf_sizes(7, 5, 2.0) == [3, 1, 1, 1, 1]
    sizes = capacity.zipf_sizes(200, 40, 1.0)
    assert sum(sizes) == 200
    assert min(sizes) == 1
    assert sizes[0] == 47
    with pytest.raises(ValueError, match="need 1 <= rooms <= users"):
        capacity.zipf_sizes(3, 4, 1.0)


def test_a_replica_follows_a_room_with_the_chance_one_of_its_members_is_there() -> None:
    assert capacity.follow_probability(1, 2) == 0.5
    assert capacity.follow_probability(2, 2) == 0.75
    assert capacity.follow_probability(3, 2) == 0.875
    assert capacity.follow_probability(5, 1) == 1.0


def test_two_replicas_two_rooms() -> None:
    # 4 users, 2 rooms (Zipf: 3 and 1), 2 replicas, 1 message a second each; sessions of
    # 4 s: a join and a leave each, 2 x 4 / 4 = 2 control notes a second, and 1 beat a
    # second from each replica.
    load = Load(users=4, rooms=2, rate=1.0, session=4.0)
    assert capacity.zipf_sizes(4, 2, 1.0) == [3, 1]
    assert capacity.control_rate(load, 2) == 2 + 2
    per = capacity.replica(load, 2, PER_ROOM)
    # Room of 3: 3 messages/s, followed with 1 - 1/8; room of 1: 1/s, with 1/2.
    assert per.room_notes == pytest.approx(3 * 7 / 8 + 1 * 1 / 2)
    assert per.control_notes == 4
    assert per.said == 2  # 4 messages/s over 2 replicas
    assert per.deliveries == pytest.approx((3 * 2 + 1 * 0) / 2)  # k(k-1) per replica
    one = capacity.replica(load, 2, ONE_CHANNEL)
    assert one.room_notes == 4
    assert one.notes == 8
    costs = Costs(note_us=100, say_us=10, delivery_us=1)
    r = capacity.replica(load, 2, PER_ROOM, costs)
    assert r.parse == pytest.approx((3.125 + 4 - 2) * 100e-6)
    assert r.fan_out == pytest.approx((2 * 10 + 3 * 1) * 1e-6)


def test_the_bus_of_two_replicas_two_rooms() -> None:
    load = Load(users=4, rooms=2, rate=1.0, session=4.0)
    costs = Costs(publish_us=1, log_us=2, redis_delivery_us=0.5, log_entry_bytes=10)
    b = capacity.bus(load, 2, 2, PER_ROOM, costs)
    by_name = {c.name: c for c in b.channels}
    control, big, small = by_name["control"], by_name["room of 3"], by_name["room of 1"]
    assert (control.publications, control.followers) == (4, 2)
    assert control.cpu == pytest.approx(4 * (1 + 2 * 0.5) * 1e-6)  # no log
    assert big.followers == pytest.approx(2 * 7 / 8)
    assert big.cpu == pytest.approx(3 * (1 + 2 + 1.75 * 0.5) * 1e-6)
    assert small.cpu == pytest.approx(1 * (1 + 2 + 1.0 * 0.5) * 1e-6)
    # Logs keep 1,000 entries (3 and 1 a second fill them in a day) of 10 bytes.
    assert b.memory == 2 * 1000 * 10
    assert b.heaviest is big
    assert b.busiest == pytest.approx(big.cpu + (control.cpu + small.cpu) / 2)
    one = capacity.bus(load, 2, 2, ONE_CHANNEL, costs)
    assert one.shards == 1
    assert one.publications == 4 + 4
    assert one.deliveries == 16


def test_fewest_shards_spreads_the_rest_and_never_splits_a_channel() -> None:
    def bus_of(heavy: float, rest: float) -> capacity.Bus:
        h = capacity.Channel("room of 9", 1, 1.0, 1.0, heavy)
        return capacity.Bus(1, [h, capacity.Channel("room of 1", 10, 1.0, 1.0, rest / 10)], h)

    assert capacity.fewest_shards(bus_of(0.1, 0.5), 0.7) == 1
    assert capacity.fewest_shards(bus_of(0.3, 1.0), 0.7) == 3  # 0.3 + 1.0/3 <= 0.7
    assert capacity.fewest_shards(bus_of(0.8, 0.1), 0.7) is None


def test_a_small_chat_needs_one_replica_and_one_shard() -> None:
    p = capacity.plan(Load(users=100, rooms=10), PER_ROOM)
    assert (p.replicas, p.shards) == (1, 1)
    assert p.bottleneck in ("replica parse", "replica fan-out", "shard memory")


def test_placed_notes_and_deliveries() -> None:
    # Room 0: 2 members on replica 0, 1 on replica 1; room 1: 1 member on replica 1.
    members = [[2, 1], [0, 1]]
    messages = [6, 2]
    assert capacity.placed_notes(members, messages, 1) == [7, 9]
    assert capacity.placed_notes(members, messages, 1, ONE_CHANNEL) == [9, 9]
    sent = [[4, 2], [0, 2]]  # room 0: 4 said on replica 0, 2 on replica 1
    # Replica 0: room 0's 6 to its 2 members, less the 4 its members said: 8.
    # Replica 1: room 0's 6 to 1 member less its 2, room 1's 2 to 1 member less 2: 4.
    assert capacity.placed_deliveries(members, sent) == [8, 4]
    # The expectation over placements on 2 replicas: 6 x 7/8 + 2 x 1/2, plus control.
    assert capacity.expected_notes([3, 1], messages, 2, 1) == pytest.approx(5.25 + 1 + 1)


# --- the page against the model ---------------------------------------------------------


def test_the_table_and_the_capacities_are_what_the_model_computes() -> None:
    text = doc()
    assert capacity.table() in text, "run: python -m bench.capacity --table"
    assert capacity.capacities() in text, "run: python -m bench.capacity --table"


def test_the_largest_chats_are_the_model_s() -> None:
    # What `--table` prints under "The largest chat": each figure is served, and one
    # step (10,000 users) more is not. (Checked at both ends: the search takes seconds.)
    found = re.findall(r"- at (1/(?:\d+ )?min) per user: ([\d,]+) users one channel; "
                       r"([\d,]+) users per room", doc())  # fmt: skip
    assert len(found) == len(capacity.TABLE_RATES)
    for (every, one, per), rate in zip(found, capacity.TABLE_RATES, strict=True):
        assert every == capacity._per_minute(rate)
        for design, users in ((ONE_CHANNEL, one), (PER_ROOM, per)):
            n = int(users.replace(",", ""))
            served = capacity.plan(capacity.table_load(n, rate), design)
            over = capacity.plan(capacity.table_load(n + 10_000, rate), design)
            assert served.replicas is not None, (design, n)
            assert served.shards is not None, (design, n)
            assert over.replicas is None or over.shards is None, (design, n)


CONSTANTS = {
    "note": f"{COSTS.note_us:g} µs",
    "say": f"{COSTS.say_us:g} µs",
    "delivery": f"{COSTS.delivery_us:.1f} µs",
    "publish": f"{COSTS.publish_us:g} µs",
    "log": f"{COSTS.log_us:g} µs",
    "Redis delivery": f"{COSTS.redis_delivery_us:g} µs",
    "log entry": f"{COSTS.log_entry_bytes:g} bytes",
}


@pytest.mark.parametrize("name", sorted(CONSTANTS))
def test_the_constants_table_gives_the_model_s_defaults(name: str) -> None:
    rows = [line for line in doc().splitlines() if line.startswith(f"| *{name}*:")]
    assert len(rows) == 1, name
    assert f"| {CONSTANTS[name]} |" in rows[0]


def test_every_constant_says_where_it_comes_from() -> None:
    assert set(capacity.SOURCES) == set(Costs.__dataclass_fields__)


def pct(share: float) -> str:
    """A share as the page writes it: 41 %."""
    return f"{share * 100:.0f} %"


def _at(users: int, rate: float, design: str) -> capacity.Plan:
    return capacity.plan(capacity.table_load(users, rate), design)


def test_the_figures_in_the_prose_are_the_model_s() -> None:
    text = folded(doc())
    hundred = _at(100_000, capacity.TYPICAL_RATE, PER_ROOM)
    hundred_one = _at(100_000, capacity.TYPICAL_RATE, ONE_CHANNEL)
    notes_one = capacity.replica(hundred.load, hundred.at, ONE_CHANNEL).notes
    million = _at(1_000_000, capacity.TYPICAL_RATE, PER_ROOM)
    million_one = _at(1_000_000, capacity.TYPICAL_RATE, ONE_CHANNEL)
    quiet = _at(1_000_000, capacity.TYPICAL_RATE / 10, PER_ROOM)
    assert quiet.replicas is None  # no number of replicas is enough (the knife-edge row)
    quiet_bus = capacity.bus(quiet.load, quiet.at, 1, PER_ROOM)
    control = next(c for c in quiet_bus.channels if c.name == "control")
    log_shards = next(
        s for s in range(1, 10)
        if capacity.memory_use(capacity.bus(quiet.load, quiet.at, s, PER_ROOM)) <= capacity.HEADROOM
    )  # fmt: skip
    sizes = capacity.zipf_sizes(100_000, 5_000, 1.0)
    promises = [
        f"each of {hundred.replicas} replicas reads {round(hundred.replica.notes):,} notes a "
        f"second, against {round(notes_one):,} with one channel (where "
        f"{hundred_one.replicas} replicas are needed)",
        f"the largest room ({sizes[0]:,} members, {sizes[0] / 60:.0f} messages a second)",
        f"the least a replica reads is {round(million.replica.notes):,} notes a second (at "
        f"{million.at:,} replicas), {pct(million.use)}",
        f"every message and more ({pct(million_one.use)} at best)",
        f"({2 * 1_000_000 / capacity.SESSION:,.0f} a second with 30-minute sessions)",
        f"1/10 min a replica's CPU is lowest at {quiet.at} replicas, {pct(quiet.use)} of a "
        f"core: each reads {round(quiet.replica.notes):,} notes a second, "
        f"{round(control.publications):,} of them control notes ({quiet.at} heartbeats, "
        f"{2 * 1_000_000 / capacity.SESSION:,.0f} joins and leaves), and the control channel "
        f"would take {pct(control.cpu)} of its shard's core",
        f"the largest holds {pct(222 / 1000)} of the users at 1,000 users, "
        f"{87_742 / 1e4:.1f} % at 1,000,000",
        f"(1,000,000 users at 1/10 min: {log_shards} shards)",
        f"about {round(capacity.core_relays(1), -2):,.0f} room publications a second to one "
        f"follower each, {round(capacity.core_relays(10), -2):,.0f} to 10, "
        f"{round(capacity.core_relays(100), -3):,.0f} to 100",
        f"each replica reads {0.7e6 / COSTS.note_us:,.0f} notes a second within 70 %",
        f"holds about {round(capacity.full_logs(), -2):,.0f} full logs",
    ]
    assert log_shards == 2
    assert capacity.zipf_sizes(1000, 50, 1.0)[0] == 222
    assert capacity.zipf_sizes(1_000_000, 50_000, 1.0)[0] == 87_742
    assert control.publications == pytest.approx(quiet.at + 2 * 1_000_000 / 1800)
    assert quiet_bus.heaviest is control
    for phrase in promises:
        assert phrase in text, phrase
