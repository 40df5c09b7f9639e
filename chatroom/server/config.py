"""The server's settings: one plain typed object, built by the CLI and passed down.

Every knob of the server lives here, flags and tuning values alike, so a value has one
home and a test can shorten any timer by building a config rather than by patching a
module. :class:`RoomRules` is the part of it the room's rules read, derived from it.

The flags are the fields of :class:`~chatroom.server.config_flags.FlagSettings`, which
this config extends with the values that are not flags: each flag field's metadata says
which flag it is, and the command line is generated from them (cli_flags.py), as is each
``--workers`` worker's command line (workers.py). Checks that span several flags
(``--tls-port`` needs ``--tls-cert``...) are :meth:`ServerConfig.problems`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from chatroom.server.config_flags import ROOM_NAME, FlagSettings, flag_fields

__all__ = ["ROOM_NAME", "RoomRules", "ServerConfig", "flag_fields"]


@dataclass(frozen=True, slots=True)
class ServerConfig(FlagSettings):
    """Every knob: the flags (:class:`~chatroom.server.config_flags.FlagSettings`, first, in
    --help's order), then the tuning values below."""

    # Socket activation: the listening sockets systemd passed, (descriptor, name) each (the
    # name "tls": serves TLS); set by the CLI from LISTEN_FDS (adapter/activation.py), never
    # a flag. () binds config.host and the ports instead.
    inherited: tuple[tuple[int, str], ...] = ()
    # With --redis, an upgrade's new process reads the rooms' streams on from where the old
    # one had read them to (cluster/link.py's hand_over); None: from its snapshot. Never a flag.
    stream_position: tuple[tuple[tuple[str, str], ...], tuple[tuple[str, int], ...], str] | None = (
        None
    )
    # --- limits with no flag
    who_max: int = 500  # users listed in one who reply; /who TEXT finds the others
    max_bans: int = 1000  # bans held at once (/ban); expired ones are forgotten
    max_ignores: int = 100  # users one connection may /ignore at once
    history_max: int = 200  # messages one /history answer holds, at most (then: more)
    rooms_per_connection: int = 20  # rooms one connection may be in at once (JSON mode)
    rooms_listed: int = 200  # rooms one /rooms answer lists, at most (then: total)
    # Request ids (JSON mode, {"id": ID, "text": LINE}) of chat lines remembered by user
    # name, to ack a retry with the original seq: for request_ttl seconds, request_table
    # of them at most (the oldest forgotten first; ~200 bytes each). With --redis, Redis
    # keeps as many as long too (one hash and one sorted set a room: append.lua).
    request_ttl: float = 600.0
    request_table: int = 10_000

    # --- tuning: not flags; the values below were measured (docs/PERFORMANCE.md)
    idle_warning_lead: float = 10.0  # seconds of warning before an idle kick...
    idle_warning_min_timeout: float = 20.0  # ...given only when the timeout is longer
    shutdown_grace: float = 1.5  # seconds to flush output to everyone on shutdown
    # An upgrade (SIGUSR2, docs/OPERATIONS.md "Upgrades"): the new process has handover_start
    # seconds to start and say hello, then each step of the frozen handover handover_step;
    # descriptors go handover_batch to a message (SCM_RIGHTS takes 253 at most); connections
    # being made when it freezes get handover_settle seconds to be made.
    handover_start: float = 30.0
    handover_step: float = 10.0
    handover_batch: int = 250
    handover_settle: float = 0.01
    workers_stop_grace: float = 3.0  # seconds workers get to shut down before a kill
    # A worker that dies is restarted after the first wait, doubled for each one that dies
    # within worker_stable seconds of its start, up to the longest (workers.py).
    worker_restart_backoff: tuple[float, float] = (0.5, 30.0)
    worker_stable: float = 10.0
    workers_poll: float = 0.1  # seconds between the supervisor's looks at its workers
    listen_backlog: int = 4096  # absorbs a burst of connects while the loop is busy
    # SO_SNDBUF for client sockets (Linux doubles it). Loopback autotuning would otherwise
    # let the kernel hold megabytes for a reader that has stopped, out of --max-sendq's sight.
    kernel_send_buffer: int = 64 * 1024
    close_linger: float = 5.0  # after we close, how long the last bytes may take to drain
    proxy_header_timeout: float = 5.0  # a PROXY header not complete by then: closed
    # Input held per connection (the RecvQ): bytes received but not yet handled, waiting for
    # flood control or for the connection's own output to drain. Past it, reading stops.
    recvq: int = 8192
    read_chunk: int = 4096  # bytes taken from a socket per read
    input_per_flush: int = 4096  # input bytes one connection may have handled per flush
    # The idle timer fired: the room judges the connection idle_defer later, after a turn
    # of the loop has read what waits in its socket (not 0: libuv would run it in the same
    # pass), or, while its lines wait for flood control or its output, checks again
    # idle_retry later (connection.py).
    idle_defer: float = 0.001
    idle_retry: float = 1.0
    # On uvloop a newcomer's welcome and join wait at least join_coalesce_min, or as long as
    # the last flush took (at most join_coalesce_max), so that in a connect storm the joins
    # of many newcomers share one flush (see app.py).
    join_coalesce_min: float = 0.002
    join_coalesce_max: float = 0.05
    # After a flush slower than slow_flush (a room of thousands) the next waits
    # flush_gather, so lines sent together share it.
    slow_flush: float = 0.03
    flush_gather: float = 0.002
    # Redis lost: probe it every reconnect_backoff[0] seconds; a re-sync that fails once it
    # answers waits twice as long each time, up to reconnect_backoff[1] (cluster.py).
    reconnect_backoff: tuple[float, float] = (0.2, 5.0)
    append_batch: int = 512  # appends sent to Redis in one round trip, at most
    # Messages, actions and renames waiting to be sent to Redis, at most (joins and leaves,
    # one per connection, always wait): past it a line is refused as unavailable.
    append_queue: int = 10_000
    # Lines a newcomer may send before its join comes back from Redis; past it they are
    # refused as unavailable (core/rules/shared.py).
    held_lines: int = 64
    # --state: chat is committed at most this long after it was said (a kill -9 loses at
    # most this much); bans, mutes and the topic are committed at once.
    state_flush: float = 0.5
    # --state: seqs are given within a lease the file holds, this many more each time half
    # of one is used (core/sequencer.py): a kill -9 restarts above every seq given, in the
    # same epoch (at most this much higher: a seq gap, never a seq given twice). Half of it
    # must last longer than a flush (state_flush) at the busiest rate: fanout-small makes
    # 90,000 events a second; 10,000 ran out between flushes.
    seq_lease: int = 1_000_000
    # --state: a write that failed (a full disk) is tried again after the first wait,
    # doubled each time up to the longest (adapter/store.py).
    state_retry: tuple[float, float] = (0.5, 30.0)
    append_drain: float = 0.5  # on shutdown, how long accepted lines may take to reach Redis
    ledger_timeout: float = 3.0  # a Redis command that takes longer has failed
    # The room's stream in Redis keeps about stream_maxlen events, events_per_entry at most
    # in one stream entry (redis_ledger.py, lua/common.lua).
    stream_maxlen: int = 10_000
    events_per_entry: int = 16
    # A room nobody is in keeps its stream and seq in Redis this long (the nodes read its
    # last leaves meanwhile; one joined again goes on from them), then Redis drops them.
    room_linger: float = 600.0
    ledger_read_count: int = 1000  # stream entries one read takes, at most
    ledger_read_block: float = 1.0  # seconds one read of the stream waits for an entry
    ledger_history_page: int = 100  # stream entries one history read pages by, at least
    pubsub_poll: float = 1.0  # seconds one wait for a pub/sub message lasts (then again)
    # An operator's command carried out by another node (/kick of its user...) not answered
    # within this: the operator is told it may not have been carried out (cluster.py).
    node_answer_timeout: float = 3.0
    # The operators' HTTP port (--metrics-port, ops_http.py): a request's size and time,
    # and requests served at once; the event loop's lag is sampled this often.
    ops_request_max: int = 8192
    ops_request_timeout: float = 5.0
    ops_connections: int = 16
    loop_lag_interval: float = 0.5
    # Flood control counts a who reply as one line per this many users listed (at least 1).
    who_users_per_line: int = 50
    # --- admission (docs/LIMITS.md)
    ipv6_prefix: int = 64  # an IPv6 address counts against its /64 for the per-address limits
    connect_table: int = 20_000  # addresses the connection throttle remembers (~180 B each)
    # A connection that leaves within churn_window seconds of connecting, without a line, is
    # a quick exit. After churn_burst of them (refilled at churn_rate a second) the room is
    # churning: a newcomer's join waits for its first line or churn_window, and one that
    # leaves before that leaves unannounced.
    churn_window: float = 1.0
    churn_burst: int = 32
    churn_rate: float = 0.5
    fd_reserve: int = 16  # file descriptors kept beyond --max-clients (max_clients is lowered)
    # Connections accepted per wake-up of the listening socket, at most, where a connect
    # storm's joins are gathered by join_coalesce (uvloop; more costs memory, not speed);
    # asyncio's own loop accepts up to listen_backlog, as it does itself, to gather them.
    accept_batch: int = 32
    accept_retry: float = 0.5  # seconds without listening when accept() fails and nothing helps
    log_interval: float = 10.0  # a flood of refusals is logged once per this, per cause
    # --- operators (core/rules/operators.py, core/passwords.py)
    # scrypt's cost for new hashes (hash-password): 16 MiB and ~50 ms a check (the stdlib's
    # limit is 32 MiB).
    scrypt_n: int = 2**14
    scrypt_r: int = 8
    scrypt_p: int = 1
    # After the k-th wrong /oper on one connection, the next is refused for 2**k s, at most
    # this long.
    oper_backoff_max: float = 60.0
    # /oper checked from one address (exempt networks too): a burst, then oper_fail_rate a
    # minute (a bounded table of addresses, as the connection throttle's); a right one is
    # given back. Past it /oper is not even checked.
    oper_fail_burst: int = 5
    oper_fail_rate: float = 3.0
    # Passwords are checked (scrypt, ~50 ms each) off the event loop, in oper_check_threads
    # threads; at most oper_check_queue more wait. Past that /oper is refused at once.
    oper_check_threads: int = 1
    oper_check_queue: int = 8
    # --- registered names (rules/accounts.py; docs/PROTOCOL.md, "Registered names"). Their
    # passwords are hashed and checked in the same pool as /oper's, with the same scrypt.
    max_accounts: int = 10_000  # registered names kept at most; past it /register is refused
    account_password_chars: tuple[int, int] = (4, 128)  # a /register password's length
    # /login checked from one address (exempt networks too): a burst, then login_fail_rate a
    # minute; a right one is given back. Wrong ones for one name, from whatever addresses:
    # a burst, then login_name_fail_rate a minute (both bounded tables, as the throttle's).
    login_fail_burst: int = 5
    login_fail_rate: float = 3.0
    login_name_fail_burst: int = 5
    login_name_fail_rate: float = 2.0
    # /register from one address (exempt networks too): a burst, then register_rate a minute.
    register_burst: int = 3
    register_rate: float = 0.2
    # --- the room password (docs/PROTOCOL.md, "A room with a password")
    # The secret, read from password_file at start (cli.py); not a flag, never shown or logged.
    password: bytes | None = field(default=None, repr=False)
    password_tries: int = 3  # wrong passwords on one connection before it is closed
    # Wrong passwords from one address: a burst, then password_fail_rate a minute (a bounded
    # table of addresses, as the connection throttle's); past it /pass is not even checked.
    password_fail_burst: int = 10
    password_fail_rate: float = 6.0
    # --- the WebSocket door (--ws-port/--wss-port; adapter/websocket.py, docs/LIMITS.md)
    # A message is one line: one up to max_line is a line; one longer, up to ws_max_message
    # bytes, is answered "line too long" as over TCP; past ws_max_message (whole or in
    # fragments) the connection is closed 1009 (at least max_line + 2 is used).
    ws_max_message: int = 8192
    ws_handshake_timeout: float = 10.0  # the HTTP upgrade not done by then: dropped
    # websockets' keepalive: a ping this often, closed if its pong takes longer than
    # ws_ping_timeout (a browser tab that vanished without a close); None: no pings.
    ws_ping_interval: float | None = 20.0
    ws_ping_timeout: float = 20.0
    # The upgrade request's size: headers at most, and bytes a line (websockets' own limits
    # are 128 and 8192: 1 MiB a pending handshake).
    ws_max_headers: int = 32
    ws_max_header_line: int = 4096

    @property
    def heartbeat_every(self) -> float:
        """Seconds between heartbeats (and reaps of dead nodes): four in each TTL."""
        return self.heartbeat_ttl / 4


@dataclass(frozen=True, slots=True)
class RoomRules:
    """What the room's rules read of the config. Built only from a config, never by hand,
    so a default is written once (in :class:`ServerConfig`)."""

    idle_timeout: float
    idle_warning_lead: float
    idle_warning_min_timeout: float
    history: int
    keep: int  # messages kept for /history (at least history: the replay is their tail)
    history_max: int
    room: str  # the default room: every connection starts in it
    rooms: tuple[str, ...]  # rooms made at start and kept while empty (--rooms)
    max_rooms: int
    rooms_per_connection: int
    rooms_listed: int
    request_ttl: float
    request_table: int
    max_clients: int  # connections on this node
    max_per_ip: int
    who_max: int
    who_users_per_line: int
    held_lines: int  # in a shared room: lines waiting for their sender's join
    seq_lease: int  # with --state: seqs given ahead of the file at most (core/sequencer.py)
    connect_burst: int
    connect_rate: float
    exempt_ip: tuple[str, ...]
    ipv6_prefix: int
    connect_table: int
    churn_window: float
    churn_burst: int
    churn_rate: float
    hide_addresses: bool
    password: bytes | None = field(repr=False)
    password_tries: int
    password_fail_burst: int
    password_fail_rate: float
    max_bans: int
    max_ignores: int
    oper_backoff_max: float
    oper_fail_burst: int
    oper_fail_rate: float
    oper_check_threads: int
    oper_check_queue: int
    max_accounts: int
    account_password_chars: tuple[int, int]
    login_fail_burst: int
    login_fail_rate: float
    login_name_fail_burst: int
    login_name_fail_rate: float
    register_burst: int
    register_rate: float

    @classmethod
    def from_config(cls, config: ServerConfig) -> RoomRules:
        values = {f.name: getattr(config, f.name) for f in fields(cls)}
        values["keep"] = max(config.keep, config.history)
        return cls(**values)
