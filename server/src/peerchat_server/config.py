"""Server settings and the abuse budgets, with the real servers their defaults follow."""

from __future__ import annotations

from dataclasses import dataclass

from peerchat_protocol import DEFAULT_MAX_LINE_BYTES

DEFAULT_HOST = "127.0.0.1"  # nothing is exposed by accident; containers pass 0.0.0.0
DEFAULT_PORT = 8080

#: Bytes queued for one peer before it is dropped as a slow consumer. IRC servers
#: give a client class a sendq of a few hundred KiB to a few MiB (solanum's
#: default class: 400 KiB; ergo: 96 KiB per line buffer); Redis drops a pub/sub
#: client at 32 MiB hard, NATS at 64 MiB pending. Chat lines are small: 1 MiB is
#: thousands of messages of backlog, and 10,000 stalled peers still fit in memory.
DEFAULT_MAX_SEND_BUFFER = 1024 * 1024

#: Protocol errors (bad lines) a peer may cause before it is disconnected, so a
#: stream of binary junk cannot make the server write an error per line forever.
DEFAULT_MAX_ERRORS = 20

#: How long a new connection may stay silent before it is announced to the room
#: as a plain-text peer. Rich clients send their hello at once; this only defers
#: the join notice (nothing is delayed for the peer itself) and keeps port probes
#: and health checks that connect and leave at once out of the room's notices.
ANNOUNCE_DELAY = 0.5

#: Messages remembered for a peer whose first line has not arrived yet, so a rich
#: client whose hello was in flight still gets them after its welcome.
REPLAY_LIMIT = 256

#: Flood control, per peer, in lines: a burst, then a steady rate; lines past it are
#: delayed (the peer stops being read), never dropped. ergo's "fakelag" allows a burst
#: of 5 then 2 lines a second; we allow a 20-line paste and 5 a second, which no
#: typist reaches. A peer held back for FLOOD_KICK_AFTER seconds on end is disconnected.
DEFAULT_FLOOD_BURST = 20
DEFAULT_FLOOD_RATE = 5.0
DEFAULT_FLOOD_KICK_AFTER = 30.0

#: An address's connections share a budget too (see addresses.py): twice one peer's,
#: so several people behind one NAT can chat while a reconnecting flooder gets 10 lines
#: a second at most, not 5 per connection it manages to open.
DEFAULT_ADDRESS_FLOOD_BURST = 40
DEFAULT_ADDRESS_FLOOD_RATE = 10.0

#: What a line costs beyond its one token: one more per KiB past its first, so long lines
#: are paced by size (5 a second of 16 KiB lines would be 80 KiB/s; this allows 5 KiB/s).
FLOOD_BYTES_PER_TOKEN = 1024
#: At most this many of a plain-text peer's chat lines are read as one block (one
#: broadcast; Session._say_together): a bound on one call's work.
BLOCK_LINES = 256

#: New connections from one address: a burst, then a rate (ergo's connection throttle
#: allows 32 per 10 minutes; we allow 10 at once, e.g. a browser and a few clients, then
#: one a second, what a client reconnecting with backoff needs).
DEFAULT_CONNECT_BURST = 10
DEFAULT_CONNECT_RATE = 1.0

#: Renames from one address: a burst, then one every 5 s. Everyone in the room hears of
#: each one, so an unbounded rate would let one peer make every member's screen scroll.
DEFAULT_RENAME_BURST = 5
DEFAULT_RENAME_RATE = 0.2
#: A room waits for a member that falls behind while it reads (Relay.pace): 5 times at
#: once for one address's members, then once every 20 s. An honest reader seldom needs
#: more; one trickling to hold a room, and reconnecting to do it again, gets no more.
ADDRESS_WAIT_BURST = 5
DEFAULT_ADDRESS_WAIT_RATE = 0.05

#: Wrong passwords from one address: each after the first doubles the wait before its
#: next connection (1 s, 2 s, 4 s ...); this many refuse it for AUTH_LOCKOUT seconds
#: (fail2ban's default: 5 failures, banned for 10 minutes; we allow typos more room).
DEFAULT_AUTH_FAILURES = 10
DEFAULT_AUTH_LOCKOUT = 600.0

#: How addresses are grouped for the per-address limits (ergo's cidr-len defaults).
DEFAULT_IPV4_PREFIX = 32
DEFAULT_IPV6_PREFIX = 64

#: Messages each room keeps for late joiners, as ssh-chat does (its default is 20),
#: and the most text (bytes of UTF-8) they may hold: 20 maximal 16 KiB lines would
#: otherwise pin 320 KiB per room.
DEFAULT_HISTORY_MESSAGES = 20
DEFAULT_HISTORY_BYTES = 32 * 1024

#: Reconnecting peers (protocol v3). A session can be resumed, with its name, room and
#: unacknowledged lines, for RESUME_WINDOW seconds after its connection is lost (IRC
#: bouncers and Matrix keep far longer; 5 minutes covers a Wi-Fi drop, a laptop lid, a
#: server restart's backoff). Each room keeps its last CATCH_UP_MESSAGES messages (at
#: most CATCH_UP_BYTES of text) so a peer that comes back gets what it missed; new
#: joiners still get only the last HISTORY_MESSAGES of them.
DEFAULT_RESUME_WINDOW = 300.0
DEFAULT_CATCH_UP_MESSAGES = 1000
DEFAULT_CATCH_UP_BYTES = 256 * 1024

#: What all the rooms' logs together may hold (bytes of text in memory). A room's own
#: bounds do not bound the server: every peer alone in its own room would keep 256 KiB
#: each, 2.5 GiB at 10,000 connections. Past this, the quietest room loses its oldest.
DEFAULT_CATCH_UP_TOTAL_BYTES = 64 * 1024 * 1024

#: Sessions waiting to be resumed from one address (twice its connections at once): a
#: flood of throwaway sessions from one address evicts only its own, never anyone else's.
DEFAULT_MAX_SESSIONS_PER_ADDRESS = 32

#: Rooms larger than this announce no joins and leaves: in a crowd every arrival would
#: cost every member a line (Twitch's chat stops sending JOIN/PART past 1,000 users).
DEFAULT_JOIN_NOTICES_UP_TO = 1000

#: Connection limits: in all (Redis's maxclients defaults to 10,000) and from one
#: address (ergo allows 16 at once per IP). 0 turns a limit off. Through Docker's
#: published port every host user arrives from the bridge gateway: one address.
DEFAULT_MAX_CONNECTIONS = 10_000
DEFAULT_MAX_PER_ADDRESS = 16

#: Dead and idle peers. A rich peer quiet for PING_AFTER seconds is pinged and dropped
#: if nothing comes back within PING_TIMEOUT (ergo: ping after 90 s, give up after 60 s
#: more; NATS: every 2 minutes, 2 missed). Plain peers cannot be pinged: TCP keepalive
#: finds the dead ones, and IDLE_TIMEOUT, off by default because a listen-only `nc` is
#: a legitimate peer, can reap the silent ones. 0 turns each off.
DEFAULT_PING_AFTER = 60.0
DEFAULT_PING_TIMEOUT = 30.0
DEFAULT_IDLE_TIMEOUT = 0.0

#: Seconds a peer has to give the password (when the server has one) before it is
#: disconnected; IRC servers give an unregistered client 10 to 60 seconds.
DEFAULT_AUTH_TIMEOUT = 10.0

#: Seconds SIGTERM waits for peers to take their goodbye before cutting them off.
DEFAULT_SHUTDOWN_TIMEOUT = 3.0

#: TCP keepalive for half-open connections (peer vanished without FIN or RST):
#: first probe after this many idle seconds, then every KEEPALIVE_INTERVAL, giving
#: up after KEEPALIVE_COUNT unanswered probes (about 2 minutes in all).
KEEPALIVE_IDLE = 60
KEEPALIVE_INTERVAL = 10
KEEPALIVE_COUNT = 6


@dataclass(frozen=True)
class ServerConfig:
    """Everything the server can be told; the CLI fills it from options and env."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    max_send_buffer: int = DEFAULT_MAX_SEND_BUFFER
    max_errors: int = DEFAULT_MAX_ERRORS
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT
    announce_delay: float = ANNOUNCE_DELAY
    replay_limit: int = REPLAY_LIMIT
    flood_burst: int = DEFAULT_FLOOD_BURST
    flood_rate: float = DEFAULT_FLOOD_RATE
    flood_kick_after: float = DEFAULT_FLOOD_KICK_AFTER
    join_notices_up_to: int = DEFAULT_JOIN_NOTICES_UP_TO
    address_flood_burst: int = DEFAULT_ADDRESS_FLOOD_BURST
    address_flood_rate: float = DEFAULT_ADDRESS_FLOOD_RATE
    connect_burst: int = DEFAULT_CONNECT_BURST
    connect_rate: float = DEFAULT_CONNECT_RATE
    rename_burst: int = DEFAULT_RENAME_BURST
    rename_rate: float = DEFAULT_RENAME_RATE
    address_wait_rate: float = DEFAULT_ADDRESS_WAIT_RATE
    auth_failures: int = DEFAULT_AUTH_FAILURES
    auth_lockout: float = DEFAULT_AUTH_LOCKOUT
    ipv4_prefix: int = DEFAULT_IPV4_PREFIX
    ipv6_prefix: int = DEFAULT_IPV6_PREFIX
    max_sessions_per_address: int = DEFAULT_MAX_SESSIONS_PER_ADDRESS
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    max_per_address: int = DEFAULT_MAX_PER_ADDRESS
    ping_after: float = DEFAULT_PING_AFTER
    ping_timeout: float = DEFAULT_PING_TIMEOUT
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    history_messages: int = DEFAULT_HISTORY_MESSAGES
    history_bytes: int = DEFAULT_HISTORY_BYTES
    resume_window: float = DEFAULT_RESUME_WINDOW
    catch_up_messages: int = DEFAULT_CATCH_UP_MESSAGES
    catch_up_bytes: int = DEFAULT_CATCH_UP_BYTES
    catch_up_total_bytes: int = DEFAULT_CATCH_UP_TOTAL_BYTES
    store: str = "memory"  # memory, or sqlite:///PATH: what outlives a restart (store.py)
    retention: float = 0.0  # seconds a message is kept at most (0: no limit but --catch-up)
    name: str = "peerchat-server/0.1.0"
    tls_cert: str = ""  # PEM certificate (chain) and key: both, or neither for plain TCP
    tls_key: str = ""
    password: str = ""  # empty: no password; compared in constant time
    auth_timeout: float = DEFAULT_AUTH_TIMEOUT
    advertise: str = ""  # where users reach us, if not where we listen (Docker's port)
    #: WebSocket listener (browsers, bots): its port (None: none), the other web pages
    #: allowed to open it, and where users reach it (if not where it listens).
    ws_port: int | None = None
    ws_origins: tuple[str, ...] = ()
    ws_advertise: str = ""
    irc_port: int | None = None  # IRC clients (irc.py); None: no IRC listener
    irc_advertise: str = ""  # where IRC clients reach us, if not where we listen
    metrics_port: int | None = None  # /metrics and /healthz (metrics.py); None: none
    bus: str = ""  # redis://HOST:PORT[/DB]: share the chat with other replicas; "": alone
