"""A capacity model of replicas sharing one chat through Redis (issue 20): docs/scaling.md.

    .venv/bin/python -m bench.capacity --table     # the table of docs/scaling.md
    .venv/bin/python -m bench.capacity --users 100000 --rooms 5000 --replicas 8 \\
        --shards 3 --rate 0.0167                   # one set-up, per replica and per shard

N users are in R rooms whose sizes follow a Zipf law (the room of rank r has a share
proportional to 1/r^s; each user is in exactly one room); the users are spread
uniformly at random over M replicas (as a least-connections balancer does), and the
rooms' channels uniformly over S shards (the hash slot of the room's name). Each user
says ``rate`` messages a second; each replica beats once a second on the control
channel, and each user joins once and leaves once per session.

Two designs are compared. *One channel* (before issue 20): every note goes on one
channel that every replica follows, so each replica reads every message of every room.
*Per room* (now): a room's messages go on its own channel, followed by a replica only
while one of its peers is in the room, and kept in the room's log in Redis; the control
channel (joins, leaves, heartbeats) is still read by all. A replica follows a room of k
members with probability 1 - (1 - 1/M)^k.

Per replica: notes read, lines relayed, deliveries, and the CPU they take; per shard:
publications in, deliveries out, CPU and the memory of the rooms' logs; a plan (the
fewest replicas and shards within 70 % of a core, and of a shard's memory) and its
first bottleneck. Pure: numbers in, numbers out (printing aside). Notes are counted as
publications, as if none were batched (a replica joins one pass's notes of a channel
into one publication, which is rare at chat rates). Every cost is a named constant of
:class:`Costs` with its source in SOURCES; bench/capacity_check.py measures them and
checks the notes each replica reads against a real run.
"""

from __future__ import annotations

import argparse
import functools
import heapq
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from peerchat_server.buslinks import LOG_TTL
from peerchat_server.config import DEFAULT_CATCH_UP_MESSAGES, DEFAULT_HISTORY_MESSAGES
from peerchat_server.notes import HEARTBEAT

#: Messages a user says a second in the table: one a minute (a busy chat).
TYPICAL_RATE = 1 / 60
#: Users per room on average in the table.
USERS_PER_ROOM = 20
#: The Zipf exponent of room sizes in the table.
ZIPF = 1.0
#: Seconds a user stays connected: one join and one leave (control notes) each.
SESSION = 1800.0
#: Entries a room's log in Redis keeps (as peerchat-server sets the bus up by default).
LOG_KEEP = max(DEFAULT_HISTORY_MESSAGES, DEFAULT_CATCH_UP_MESSAGES)
#: Seconds between a replica's heartbeats (each replica reads every replica's).
HEARTBEAT_SECONDS = HEARTBEAT
#: Share of one core a replica or a shard may use in a plan (the rest is headroom for
#: bursts, reconnection storms and the catch-up reads of a replica that restarts).
HEADROOM = 0.7
#: The users of the table.
TABLE_USERS = (1_000, 10_000, 100_000, 1_000_000)
#: Replicas the plan tries, at most.
MAX_REPLICAS = 100_000

ONE_CHANNEL = "one channel"
PER_ROOM = "per room"
DESIGNS = (ONE_CHANNEL, PER_ROOM)


@dataclass(frozen=True)
class Costs:
    """CPU microseconds of one core per unit of work, and the memory of room logs
    (docs/scaling.md, "Constants"; SOURCES says where each default comes from)."""

    #: A replica reading a note another replica published, applying it and handing it
    #: to one member (redis-py's parse of the publication, JSON, the room's log, the
    #: loop pass): one note a publication, as rooms' channels carry them.
    note_us: float = 205.0
    #: A replica relaying a line one of its peers said: read, published (buslinks.NUMBER
    #: in the pass's pipeline), and delivered when its note comes back numbered (a
    #: replica delivers its own lines only once Redis hands them back).
    say_us: float = 330.0
    #: A replica handing a message to one more of its peers in a busy room (a write per
    #: member and loop pass, which carries that pass's few messages).
    delivery_us: float = 7.0
    #: A Redis core taking one SPUBLISH (or PUBLISH) that nobody follows: a control note.
    publish_us: float = 1.5
    #: The same core numbering a room's publication and appending it to its log: what
    #: the script buslinks.NUMBER (TIME, GET and SET of the id key, XADD ... MAXLEN ~
    #: 1000, EXPIRE, SPUBLISH) costs beyond the SPUBLISH of *publish*.
    log_us: float = 19.0
    #: The same core writing one publication to one subscriber.
    redis_delivery_us: float = 0.4
    #: Bytes of Redis memory per entry of a room's log (a note of one message).
    log_entry_bytes: float = 325.0
    #: Memory one shard may give the room logs (an assumption: set it to yours).
    shard_memory_gib: float = 8.0


#: Where each default of :class:`Costs` comes from. "Replica costs" and "Redis costs"
#: are the first two steps of ``python -m bench.capacity_check`` (``--only costs``).
SOURCES: dict[str, str] = {
    "note_us": "replica costs: 2,000 lines/s over 40 quiet rooms, one member each on the "
    "reading replica",
    "say_us": "replica costs: the same run, on the replica whose peers say the lines",
    "delivery_us": "replica costs: 500 lines/s into one room of 100 members on the reading replica",
    "publish_us": "Redis costs: redis-benchmark SPUBLISH, 8 clients, 16 commands a round trip",
    "log_us": "Redis costs: EVAL of buslinks.NUMBER (one note), less SPUBLISH, as above",
    "redis_delivery_us": "Redis costs: the same script with 16 subscribers, as above",
    "log_entry_bytes": "Redis costs: MEMORY USAGE of a log over its XLEN",
    "shard_memory_gib": "an assumption (a Redis given 8 GiB): set it to yours",
}

COSTS = Costs()


@dataclass(frozen=True)
class Load:
    """What the chat asks: users, rooms and how much they say."""

    users: int
    rooms: int
    rate: float = TYPICAL_RATE  # messages per user per second
    zipf: float = ZIPF
    session: float = SESSION  # seconds per user session: a join and a leave
    heartbeat: float = 1 / HEARTBEAT  # beats per replica per second

    @property
    def messages(self) -> float:
        """Messages said a second, in all rooms."""
        return self.users * self.rate


def zipf_sizes(users: int, rooms: int, s: float) -> list[int]:
    """Room sizes, largest first, proportional to 1/rank^s, at least 1 each, summing to
    ``users``: each room gets the whole part of its quota (1 at least); the rooms with
    the largest remainders get one more, or, when the rooms raised to 1 make too many,
    the rooms most over their quota one less (ties to the lower rank)."""
    if rooms < 1 or users < rooms:
        raise ValueError(f"need 1 <= rooms <= users, got {rooms} rooms, {users} users")
    weights = [rank**-s for rank in range(1, rooms + 1)]
    scale = users / math.fsum(weights)
    quotas = [w * scale for w in weights]
    sizes = [int(q) or 1 for q in quotas]
    for _ in range(users):  # each turn moves every room by one at most
        change = users - sum(sizes)
        if change == 0:
            break
        if change > 0:  # (fewer than ``rooms``): the largest remainders
            for r in heapq.nlargest(change, range(rooms), key=lambda r: quotas[r] - sizes[r]):
                sizes[r] += 1
        else:
            over = [r for r in range(rooms) if sizes[r] > 1]
            for r in heapq.nsmallest(-change, over, key=lambda r: quotas[r] - sizes[r]):
                sizes[r] -= 1
    return sizes


def follow_probability(size: float, replicas: int) -> float:
    """The chance that a replica has at least one of a room's ``size`` members, each on
    one of ``replicas`` uniformly at random: 1 - (1 - 1/M)^size."""
    if replicas <= 1:
        return 1.0 if size > 0 else 0.0
    return 1.0 - (1.0 - 1.0 / replicas) ** size


def control_rate(load: Load, replicas: int) -> float:
    """Notes a second on the control channel: every replica's heartbeats, and a join
    and a leave per user session (renames, rosters and syncs are rare: left out)."""
    return replicas * load.heartbeat + 2 * load.users / load.session


@dataclass(frozen=True)
class Replica:
    """What one replica does a second, on average."""

    room_notes: float  # room messages read off the bus (its own come back too)
    control_notes: float  # heartbeats, joins, leaves
    said: float  # lines its own peers say
    deliveries: float  # messages handed to its own peers
    parse: float  # share of a core reading notes
    fan_out: float  # share of a core relaying and delivering

    @property
    def notes(self) -> float:
        return self.room_notes + self.control_notes

    @property
    def cpu(self) -> float:
        return self.parse + self.fan_out


@dataclass(frozen=True)
class Channel:
    """One channel (or one group of alike channels) on the bus."""

    name: str
    count: int  # channels alike
    publications: float  # per channel, a second (each note counted as one)
    followers: float  # replicas subscribed, on average
    cpu: float  # share of a Redis core, per channel
    log_bytes: float = 0.0  # Redis memory of its log, per channel

    @property
    def deliveries(self) -> float:
        return self.publications * self.followers


@dataclass(frozen=True)
class Bus:
    """What the shards do a second: the channels, the total and the busiest shard."""

    shards: int
    channels: list[Channel]
    heaviest: Channel  # the channel with the most Redis CPU (one shard holds it)

    @property
    def publications(self) -> float:
        return sum(c.count * c.publications for c in self.channels)

    @property
    def deliveries(self) -> float:
        return sum(c.count * c.deliveries for c in self.channels)

    @property
    def cpu(self) -> float:
        return sum(c.count * c.cpu for c in self.channels)

    @property
    def memory(self) -> float:
        """Bytes of Redis memory the rooms' logs take, on all shards."""
        return sum(c.count * c.log_bytes for c in self.channels)

    @property
    def busiest(self) -> float:
        """Share of a core of the busiest shard: the heaviest channel's, and an even share
        of the rest (rooms hash uniformly; a channel cannot be split)."""
        rest = self.cpu - self.heaviest.cpu
        return self.heaviest.cpu + rest / self.shards


@functools.lru_cache(maxsize=64)
def _size_counts(users: int, rooms: int, s: float) -> tuple[tuple[int, int], ...]:
    return tuple(sorted(Counter(zipf_sizes(users, rooms, s)).items(), reverse=True))


def _sizes(load: Load) -> tuple[tuple[int, int], ...]:
    """(size, rooms of that size), largest first."""
    return _size_counts(load.users, load.rooms, load.zipf)


def replica(load: Load, replicas: int, design: str = PER_ROOM, costs: Costs = COSTS) -> Replica:
    """One replica's expected load, users placed uniformly at random."""
    sizes = _sizes(load)
    lam, m = load.rate, replicas
    if design == ONE_CHANNEL:
        room_notes = load.messages
    else:
        room_notes = sum(n * k * lam * follow_probability(k, m) for k, n in sizes)
    control = control_rate(load, m)
    said = load.messages / m
    deliveries = sum(n * k * lam * (k - 1) / m for k, n in sizes)
    parse, fan_out = replica_cpu(room_notes + control, said, deliveries, costs)
    return Replica(room_notes, control, said, deliveries, parse, fan_out)


def replica_cpu(notes: float, said: float, deliveries: float,
                costs: Costs = COSTS) -> tuple[float, float]:  # fmt: skip
    """Shares of a core a replica spends reading ``notes`` (the others': its own ``said``
    come back too, and are in *say*) and relaying ``said`` lines and ``deliveries``."""
    others = max(0.0, notes - said)
    return others * costs.note_us / 1e6, (
        said * costs.say_us + deliveries * costs.delivery_us
    ) / 1e6


def _channel(name: str, count: int, pubs: float, followers: float, log: bool,
             costs: Costs) -> Channel:  # fmt: skip
    each = costs.publish_us + (costs.log_us if log else 0.0) + followers * costs.redis_delivery_us
    entries = min(float(LOG_KEEP), pubs * LOG_TTL) if log else 0.0
    return Channel(name, count, pubs, followers, pubs * each / 1e6,
                   entries * costs.log_entry_bytes)  # fmt: skip


def bus(load: Load, replicas: int, shards: int, design: str = PER_ROOM,
        costs: Costs = COSTS) -> Bus:  # fmt: skip
    """The Redis side: every channel's publications and deliveries, and CPU."""
    sizes = _sizes(load)
    m = replicas
    control = _channel("control", 1, control_rate(load, m), m, False, costs)
    if design == ONE_CHANNEL:  # everything on one channel, which no shard can split
        one = _channel("one channel", 1, load.messages + control.publications, m, False, costs)
        return Bus(1, [one], one)
    channels = [control]
    for k, n in sizes:
        followers = m * follow_probability(k, m)
        channels.append(_channel(f"room of {k}", n, k * load.rate, followers, True, costs))
    heaviest = max(channels, key=lambda c: c.cpu)
    return Bus(shards, channels, heaviest)


@dataclass(frozen=True)
class Plan:
    """The fewest replicas and shards for a load, and what limits it."""

    load: Load
    design: str
    replicas: int | None  # None: no number of replicas is enough
    shards: int | None  # None: no number of shards is enough
    bottleneck: str
    use: float  # share of a core of the bottleneck, at this size
    at: int  # the replicas the figures are for (without a plan: the least loaded case)
    replica: Replica
    bus: Bus | None = None
    why: str = ""
    uses: dict[str, float] = field(default_factory=dict)


def _lowest(cpu: Callable[[int], float], low: int, high: int) -> int:
    """The M in [low, high] where ``cpu`` is lowest (it falls, then rises)."""
    for _ in range(64):  # ternary search over integers: a third less each turn
        if high - low < 3:
            break
        a, b = low + (high - low) // 3, high - (high - low) // 3
        if cpu(a) <= cpu(b):
            high = b
        else:
            low = a
    return min(range(low, high + 1), key=cpu)


def _search(load: Load, design: str, costs: Costs, headroom: float) -> tuple[int | None, int]:
    """(the smallest M whose replicas each stay within ``headroom`` of a core, or None;
    the M where a replica's load is lowest, if the search had to look for it)."""

    def cpu(m: int) -> float:
        return replica(load, m, design, costs).cpu

    m = 1
    for _ in range(64):  # doubling: at most log2(MAX_REPLICAS) turns
        if cpu(m) <= headroom:
            break
        double = min(2 * m, MAX_REPLICAS)
        if m >= MAX_REPLICAS or cpu(double) >= cpu(m):  # rising, or the end
            best = _lowest(cpu, max(1, m // 2), double)
            if cpu(best) > headroom:
                return None, best
            m = best
            break
        m = double
    low, high = m // 2, m  # low does not fit (or is 0), high does
    for _ in range(64):  # halving
        if high - low <= 1:
            break
        mid = (low + high) // 2
        if cpu(mid) <= headroom:
            high = mid
        else:
            low = mid
    return high, high


def fewest_replicas(load: Load, design: str = PER_ROOM, costs: Costs = COSTS,
                    headroom: float = HEADROOM) -> int | None:  # fmt: skip
    """The smallest M whose replicas each stay within ``headroom`` of a core (None if
    none up to MAX_REPLICAS does). A replica's rooms and peers shrink as M grows, but
    it reads every replica's heartbeats (M a second): its load falls, then rises. The
    search doubles M while the load falls, then halves the interval."""
    return _search(load, design, costs, headroom)[0]


def memory_use(b: Bus, costs: Costs = COSTS) -> float:
    """Share of a shard's memory (``costs.shard_memory_gib``) the logs take on each."""
    return b.memory / b.shards / (costs.shard_memory_gib * 2**30)


def fewest_shards(b: Bus, headroom: float = HEADROOM, costs: Costs = COSTS) -> int | None:
    """The smallest S whose busiest shard stays within ``headroom`` of a core, and whose
    logs within ``headroom`` of its memory (None if the heaviest channel alone is over
    a core: more shards cannot help)."""
    heavy, rest = b.heaviest.cpu, b.cpu - b.heaviest.cpu
    if heavy > headroom or (heavy == headroom and rest > 0):
        return None
    by_cpu = 1 if rest <= 0 else math.ceil(rest / (headroom - heavy) - 1e-9)
    by_memory = math.ceil(b.memory / (headroom * costs.shard_memory_gib * 2**30) - 1e-9)
    return max(1, by_cpu, by_memory)


def plan(load: Load, design: str = PER_ROOM, costs: Costs = COSTS,
         headroom: float = HEADROOM) -> Plan:  # fmt: skip
    """The fewest replicas M, then shards S, that keep every replica and every shard
    within ``headroom`` of one core (and each shard's logs within ``headroom`` of its
    memory), and the first bottleneck: the replica (named *replica parse* or *replica
    fan-out* by the larger part of its CPU: notes read, or lines relayed and delivered),
    the busiest shard (*shard relay*, or *control channel* when that channel is most of
    it) or *shard memory*, whichever is closest to its limit; or, when no number is
    enough, what sets the floor."""
    m, best = _search(load, design, costs, headroom)
    if m is None:
        r = replica(load, best, design, costs)
        name = "replica parse" if r.parse >= r.fan_out else "replica fan-out"
        why = f"{r.cpu:.0%} of a core at best ({best:,} replicas"
        if design == ONE_CHANNEL:
            why += ": each reads every message)"
        else:
            why += f": each reads {_n(r.notes)} notes/s)"
        return Plan(load, design, None, None, name, r.cpu, best, r, None, why)
    r = replica(load, m, design, costs)
    b = bus(load, m, 1, design, costs)
    s = fewest_shards(b, headroom, costs)
    b = replace(b, shards=s or 1)
    control = next(c for c in b.channels if c.name in ("control", "one channel"))
    uses = {
        "replica parse": r.parse,
        "replica fan-out": r.fan_out,
        "shard relay": b.busiest,
        "control channel": control.cpu,
        "shard memory": memory_use(b, costs),
    }
    if s is None:
        why = f"the {b.heaviest.name} alone needs {b.heaviest.cpu:.0%} of a Redis core"
        name = "control channel" if b.heaviest is control else "shard relay"
        return Plan(load, design, m, None, name, b.heaviest.cpu, m, r, b, why, uses)
    name = "replica parse" if r.parse >= r.fan_out else "replica fan-out"
    use = r.cpu
    if uses["shard memory"] > max(use, b.busiest):
        name, use = "shard memory", uses["shard memory"]
    elif b.busiest > use:
        name, use = "shard relay", b.busiest
        if b.heaviest is control and design == PER_ROOM and control.cpu >= b.busiest / 2:
            name = "control channel"  # most of the busiest shard's work
    return Plan(load, design, m, s, name, use, m, r, b, "", uses)


# --- exact placement (bench/capacity_check.py) ----------------------------------------


def placed_notes(members: Sequence[Sequence[int]], messages: Sequence[float],
                 control: float, design: str = PER_ROOM) -> list[float]:  # fmt: skip
    """Notes each replica reads for a known placement: ``members[r][j]`` is how many of
    room r's members are on replica j, ``messages[r]`` how many messages were said in
    room r, ``control`` the control notes every replica reads. Per room: a replica
    reads a room's messages (its own included) iff it has a member there."""
    replicas = len(members[0]) if members else 0
    out = []
    for j in range(replicas):
        if design == ONE_CHANNEL:
            rooms = sum(messages)
        else:
            rooms = sum(n for row, n in zip(members, messages, strict=True) if row[j] > 0)
        out.append(rooms + control)
    return out


def placed_deliveries(members: Sequence[Sequence[int]],
                      sent: Sequence[Sequence[float]]) -> list[float]:  # fmt: skip
    """Messages each replica hands to its own peers: ``sent[r][j]`` messages said in
    room r by members on replica j; each goes to every member of the room but its
    sender."""
    replicas = len(members[0]) if members else 0
    out = []
    for j in range(replicas):
        total = 0.0
        for row, said in zip(members, sent, strict=True):
            total += sum(said) * row[j] - said[j]
        out.append(total)
    return out


def expected_notes(sizes: Sequence[int], messages: Sequence[float], replicas: int,
                   control: float, design: str = PER_ROOM) -> float:  # fmt: skip
    """Notes one replica reads on average over placements: rooms of ``sizes`` where
    ``messages`` were said, members uniformly at random over ``replicas``."""
    if design == ONE_CHANNEL:
        return sum(messages) + control
    pairs = zip(sizes, messages, strict=True)
    return sum(n * follow_probability(k, replicas) for k, n in pairs) + control


#: The table's message rates: one a minute per user, and one every ten minutes.
TABLE_RATES = (TYPICAL_RATE, TYPICAL_RATE / 10)


def table_load(users: int, rate: float = TYPICAL_RATE) -> Load:
    """The table's load for ``users`` saying ``rate`` messages a second each."""
    return Load(users=users, rooms=max(1, users // USERS_PER_ROOM), rate=rate)


def largest_chat(rate: float, design: str = PER_ROOM, costs: Costs = COSTS,
                 step: int = 10_000, most: int = 10_000_000) -> int:  # fmt: skip
    """The most users (a multiple of ``step``, up to ``most``; rooms of 20 on average) that
    some number of replicas and shards can serve at ``rate`` messages a user a second
    (0 if not even ``step``)."""

    def served(users: int) -> bool:
        p = plan(table_load(users, rate), design, costs)
        return p.replicas is not None and p.shards is not None

    low, high = 0, most // step  # in steps: low is served (or 0), high is not (or the end)
    if served(most):
        return most
    for _ in range(64):  # halving
        if high - low <= 1:
            break
        mid = (low + high) // 2
        if served(mid * step):
            low = mid
        else:
            high = mid
    return low * step


def core_relays(followers: float, costs: Costs = COSTS, headroom: float = HEADROOM) -> float:
    """Room publications a second one Redis core relays within ``headroom``, each logged
    and written to ``followers`` replicas."""
    return headroom * 1e6 / (costs.publish_us + costs.log_us + followers * costs.redis_delivery_us)


def full_logs(costs: Costs = COSTS, headroom: float = HEADROOM) -> float:
    """Rooms whose logs are full (LOG_KEEP entries) one shard holds within ``headroom`` of
    ``costs.shard_memory_gib``."""
    return headroom * costs.shard_memory_gib * 2**30 / (LOG_KEEP * costs.log_entry_bytes)


# --- printing ----------------------------------------------------------------------------


def _n(x: float) -> str:
    """A count for a table: 1,234 or 1.2 M."""
    if x >= 10_000_000:
        return f"{x / 1e6:,.0f} M"
    if x >= 1_000_000:
        return f"{x / 1e6:,.1f} M"
    if x >= 100:
        return f"{x:,.0f}"
    return f"{x:,.1f}" if x >= 10 else f"{x:,.2f}"


def _pct(share: float) -> str:
    return "<1%" if 0 < share < 0.005 else f"{share:.0%}"


def _plan_cells(p: Plan) -> list[str]:
    if p.replicas is None:
        return ["none is enough", "-", f"{p.bottleneck}: {p.why}"]
    if p.shards is None:
        return [f"{p.replicas:,}", "none is enough", f"{p.bottleneck}: {p.why}"]
    what = "of its memory" if p.bottleneck == "shard memory" else "of a core"
    return [f"{p.replicas:,}", f"{p.shards:,}", f"{p.bottleneck} ({_pct(p.use)} {what})"]


def _per_minute(rate: float) -> str:
    every = 1 / (rate * 60)
    return "1/min" if abs(every - 1) < 1e-9 else f"1/{every:g} min"


def table(costs: Costs = COSTS, headroom: float = HEADROOM) -> str:
    """The markdown table of docs/scaling.md: for each number of users and rate, the
    fewest replicas and shards with one channel and per room, and the first
    bottleneck; and the notes each replica reads in both designs, at the per-room
    plan's replicas."""
    head = (
        "| users | per user | rooms (largest) | messages/s | one channel: replicas | Redis "
        "cores | first bottleneck | per room: replicas | shards | first bottleneck | "
        "notes/s per replica, one channel → per room |"
    )
    lines = [head, "| " + " | ".join(["---"] * 11) + " |"]
    for rate in TABLE_RATES:
        for users in TABLE_USERS:
            load = table_load(users, rate)
            one = plan(load, ONE_CHANNEL, costs, headroom)
            per = plan(load, PER_ROOM, costs, headroom)
            largest = zipf_sizes(load.users, load.rooms, load.zipf)[0]
            notes_one = replica(load, per.at, ONE_CHANNEL, costs).notes
            lines.append(
                "| " + " | ".join([
                    f"{users:,}", _per_minute(rate), f"{load.rooms:,} ({largest:,})",
                    _n(load.messages), *_plan_cells(one), *_plan_cells(per),
                    f"{_n(notes_one)} → {_n(per.replica.notes)} (at {per.at:,})",
                ]) + " |"
            )  # fmt: skip
    return "\n".join(lines)


def capacities(costs: Costs = COSTS, headroom: float = HEADROOM) -> str:
    """What one replica and one Redis core do within ``headroom``, as markdown bullets."""
    h = f"{headroom:.0%}"
    return "\n".join([
        f"- one replica, at {h} of a core: {_n(headroom * 1e6 / costs.note_us)} notes read a "
        f"second, or {_n(headroom * 1e6 / costs.say_us)} lines said by its peers, or "
        f"{_n(headroom * 1e6 / costs.delivery_us)} deliveries;",
        f"- one Redis core, at {h}: {_n(core_relays(1, costs, headroom))} room publications a "
        f"second to 1 follower each, {_n(core_relays(10, costs, headroom))} to 10, "
        f"{_n(core_relays(100, costs, headroom))} to 100;",
        f"- one shard's memory ({costs.shard_memory_gib:g} GiB, at {h}): the logs of "
        f"{_n(full_logs(costs, headroom))} rooms with a full log ({LOG_KEEP:,} entries of "
        f"{costs.log_entry_bytes:g} bytes).",
    ])  # fmt: skip


def ceilings(costs: Costs = COSTS) -> str:
    """The largest chat each design serves at the table's rates, as markdown bullets."""
    out = []
    for rate in TABLE_RATES:
        most = [f"{largest_chat(rate, design, costs):,} users {design}" for design in DESIGNS]
        out.append(f"- at {_per_minute(rate)} per user: " + "; ".join(most) + ";")
    out[-1] = out[-1].removesuffix(";") + "."
    return "\n".join(out)


def describe(load: Load, replicas: int, shards: int, costs: Costs = COSTS) -> str:
    """One set-up's figures, per replica and per shard, in both designs."""
    out = [
        f"{load.users:,} users, {load.rooms:,} rooms (Zipf s={load.zipf:g}, largest "
        f"{zipf_sizes(load.users, load.rooms, load.zipf)[0]:,}), {load.rate:g} msg/s per user "
        f"({_n(load.messages)} msg/s), {replicas} replicas, {shards} shards",
    ]
    for design in DESIGNS:
        r = replica(load, replicas, design, costs)
        b = bus(load, replicas, shards, design, costs)
        out += [
            f"\n{design}:",
            f"  per replica: notes received {_n(r.notes)}/s (rooms {_n(r.room_notes)}, control "
            f"{_n(r.control_notes)}), lines said {_n(r.said)}/s, deliveries {_n(r.deliveries)}/s;"
            f" CPU {r.cpu:.0%} of a core (parse {r.parse:.0%}, fan-out {r.fan_out:.0%})",
            f"  per shard ({b.shards}): publications in {_n(b.publications / b.shards)}/s, "
            f"deliveries out {_n(b.deliveries / b.shards)}/s, CPU {b.cpu / b.shards:.0%} of a "
            f"core on average; busiest {b.busiest:.0%} (heaviest channel: {b.heaviest.name}, "
            f"{_n(b.heaviest.publications)} in/s, {_n(b.heaviest.deliveries)} out/s); room "
            f"logs {b.memory / b.shards / 2**30:.2f} GiB ({memory_use(b, costs):.0%} of "
            f"{costs.shard_memory_gib:g} GiB)",
        ]
        p = plan(load, design, costs)
        need_m, need_s, limit = _plan_cells(p)
        out.append(f"  plan at {HEADROOM:.0%} of a core: replicas {need_m}, shards {need_s}; "
                   f"first bottleneck: {limit}")  # fmt: skip
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.capacity", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--table", action="store_true", help="docs/scaling.md's table and figures")
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--rooms", type=int, help=f"default: users / {USERS_PER_ROOM}")
    ap.add_argument("--zipf", type=float, default=ZIPF, help="room-size exponent s")
    ap.add_argument("--replicas", type=int, default=4)
    ap.add_argument("--shards", type=int, default=3)
    ap.add_argument("--rate", type=float, default=TYPICAL_RATE, help="messages/s per user")
    ap.add_argument("--session", type=float, default=SESSION, help="seconds per session")
    a = ap.parse_args(argv)
    if a.table:
        print(f"{table()}\n\n{capacities()}\n\nThe largest chat either design serves "
              f"(rooms of {USERS_PER_ROOM} on average):\n\n{ceilings()}")  # fmt: skip
        return 0
    rooms = a.rooms if a.rooms is not None else max(1, a.users // USERS_PER_ROOM)
    load = Load(users=a.users, rooms=rooms, rate=a.rate, zipf=a.zipf, session=a.session)
    print(describe(load, a.replicas, a.shards))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
