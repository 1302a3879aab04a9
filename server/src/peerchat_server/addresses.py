"""Budgets per network address: what one address may do across all its connections.

A limit per connection is no limit for a peer that reconnects, so new connections,
lines, renames and wrong passwords are also counted per address. An address is a
network, not a socket: IPv4 /32 and IPv6 /64 by default (as ergo's connection limits,
``cidr-len-ipv4: 32`` and ``cidr-len-ipv6: 64``): one IPv6 subscriber is given a /64 at
least, so counting single IPv6 addresses would give one attacker 2^64 budgets.

An address is remembered while it has connections, a budget not yet refilled or a
refusal in force; the relay's sweep forgets the rest, so what this costs follows the
addresses active in the last minutes, not every address ever seen.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from .config import ADDRESS_WAIT_BURST, ServerConfig
from .flood import TokenBucket

#: Seconds between two log lines about connections refused quietly from one address.
REFUSAL_LOG_PERIOD = 10.0


@lru_cache(maxsize=4096)
def address_key(host: str, ipv4_prefix: int = 32, ipv6_prefix: int = 64) -> str:
    """The network ``host`` counts in: ``203.0.113.7``, ``2001:db8:1:2::/64``.

    An IPv4 address mapped into IPv6 (``::ffff:203.0.113.7``) counts as the IPv4 one; a
    host that is not an IP address (a Unix socket's name) is its own key.
    """
    try:
        ip = ipaddress.ip_address(host.partition("%")[0])  # no IPv6 zone (fe80::1%eth0)
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = ipv4_prefix if ip.version == 4 else ipv6_prefix
    if prefix >= ip.max_prefixlen:
        return str(ip)
    return str(ipaddress.ip_network((ip, prefix), strict=False))


@dataclass(eq=False, slots=True)
class Address:
    """One address's budgets and standing."""

    key: str
    connects: TokenBucket
    lines: TokenBucket
    renames: TokenBucket
    waits: TokenBucket  # times its peers may hold their room back (Relay.pace)
    connections: int = 0
    failures: int = 0  # wrong passwords, forgotten a lockout period after the last one
    last_failure: float = 0.0
    refused_until: float = 0.0  # clock time new connections are refused until
    #: Connections refused since the last log line about this address (None: none logged).
    quiet_refusals: int | None = None
    refusal_logged_at: float = 0.0


class AddressBook:
    """Every active address, by its key. One clock for all (injectable for tests)."""

    def __init__(self, config: ServerConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.clock = clock
        self._addresses: dict[str, Address] = {}

    def __len__(self) -> int:
        return len(self._addresses)

    def key(self, host: str) -> str:
        cfg = self.config
        return address_key(host, cfg.ipv4_prefix, cfg.ipv6_prefix)

    def get(self, host: str) -> Address:
        """The record of ``host``'s address, made on first use."""
        key = self.key(host)
        address = self._addresses.get(key)
        if address is None:
            cfg, clock = self.config, self.clock
            address = self._addresses[key] = Address(
                key,
                connects=TokenBucket(cfg.connect_burst, cfg.connect_rate, clock),
                lines=TokenBucket(cfg.address_flood_burst, cfg.address_flood_rate, clock),
                renames=TokenBucket(cfg.rename_burst, cfg.rename_rate, clock),
                waits=TokenBucket(ADDRESS_WAIT_BURST, cfg.address_wait_rate, clock),
            )
        return address

    # --- connecting ------------------------------------------------------------------------

    def refusal(self, address: Address) -> str | None:
        """Why ``address`` may not connect now, or ``None``; a connection allowed is
        counted against its connection rate."""
        cfg = self.config
        wait = address.refused_until - self.clock()
        if wait > 0:
            return f"too many wrong passwords from {address.key}; try again in {_seconds(wait)}"
        if cfg.max_per_address and address.connections >= cfg.max_per_address:
            return (
                f"too many connections from {address.key} ({cfg.max_per_address} at most); "
                "close one of them and try again"
            )
        if not address.connects.take():
            return (
                f"too many new connections from {address.key} (more than "
                f"{cfg.connect_burst} at once, then {cfg.connect_rate:g} a second); "
                f"try again in {_seconds(address.connects.wait())}"
            )
        return None

    def log_refusal(self, address: Address) -> bool:
        """Whether a refused connection should be logged: the first of a storm is; the
        rest are counted and summed up by :meth:`sweep` (a storm must not flood the log)."""
        if address.quiet_refusals is None:
            address.quiet_refusals = 0
            address.refusal_logged_at = self.clock()
            return True
        address.quiet_refusals += 1
        return False

    # --- passwords -------------------------------------------------------------------------

    def password_failed(self, address: Address) -> tuple[float, bool]:
        """Count a wrong password from ``address``. Returns for how long its new
        connections are now refused, and whether this failure began the lockout (the
        one to log: those that follow, from connections already open, are not).

        The first wrong password costs nothing (a typo); each further one doubles the
        wait before the next connection (1 s, 2 s, 4 s ...); the ``auth_failures``-th
        refuses the address for ``auth_lockout`` seconds.
        """
        cfg = self.config
        if not cfg.auth_failures:
            return 0.0, False  # turned off
        now = self.clock()
        if now - address.last_failure > cfg.auth_lockout:
            address.failures = 0  # a lockout period without failures: start again
        address.failures += 1
        address.last_failure = now
        if address.failures >= cfg.auth_failures:
            wait, lockout = cfg.auth_lockout, address.failures == cfg.auth_failures
        else:
            wait, lockout = min(cfg.auth_lockout, 2.0 ** (address.failures - 2)), False
            if address.failures == 1:
                wait = 0.0
        address.refused_until = max(address.refused_until, now + wait)
        return wait, lockout

    # --- housekeeping ----------------------------------------------------------------------

    def sweep(self, log: Callable[[str], None]) -> None:
        """Forget addresses with nothing left to remember; sum up quiet refusals."""
        now = self.clock()
        cfg = self.config
        for key, address in list(self._addresses.items()):
            if (
                address.quiet_refusals is not None
                and now - address.refusal_logged_at >= REFUSAL_LOG_PERIOD
            ):
                if address.quiet_refusals:
                    log(
                        f"{address.quiet_refusals} more connections from {key} were refused "
                        f"in the last {now - address.refusal_logged_at:.0f} s."
                    )
                address.quiet_refusals = None
            if (
                address.connections == 0
                and address.quiet_refusals is None
                and now >= address.refused_until
                and (address.failures == 0 or now - address.last_failure > cfg.auth_lockout)
                and address.connects.full()
                and address.lines.full()
                and address.renames.full()
                and address.waits.full()
            ):
                del self._addresses[key]


def _seconds(wait: float) -> str:
    return f"{max(1, round(wait + 0.499))} s"
