"""Who may come in, and how loudly: per-address limits, their exemptions, churn. No I/O.

Beside ``--max-clients``, two limits apply to each remote *address* — an IPv4 address, or
the /64 of an IPv6 address (a subscriber's usual share, so walking through it gains
nothing), an IPv4-mapped IPv6 address counting as IPv4:

- at most ``max_per_ip`` connections at once (counted by
  :class:`~chatroom.server.core.state.RoomState`, since they are who is here);
- new connections are throttled by a token bucket per address (:class:`ConnectThrottle`):
  ``connect_burst`` at once, then ``connect_rate`` a minute. Every admitted connection takes
  a token, whatever it does next, so connecting and closing in a loop is throttled even
  though it sends no line (flood control) and never holds two connections (the cap).

Addresses in the ``exempt_ip`` networks (loopback by default) are exempt from both: a proxy
on the same host makes every user loopback, so the set can be emptied.

The room's *churn* is measured here too (:class:`Churn`): a connection that leaves within
``churn_window`` seconds of connecting without having sent a line is a *quick exit*. Past a
burst of them the room is churning, and admits newcomers quietly (their join waits for their
first line; see :meth:`chatroom.server.core.room.Room.connect`).
"""

from __future__ import annotations

import ipaddress
import math
from collections import Counter, OrderedDict
from enum import StrEnum

from chatroom.server.config import RoomRules
from chatroom.server.core.addresses import IP, Network, normal_ip
from chatroom.server.core.ratelimit import TokenBucket


class Cause(StrEnum):
    """Why a newcomer was turned away (the adapter logs each cause once per interval)."""

    FULL = "server full"
    PER_ADDRESS = "too many connections from one address"
    THROTTLED = "too many new connections from one address"
    ELSEWHERE = "address already in the room on another server"
    BAD_PASSWORD = "wrong password too often"
    BANNED = "banned address"  # an operator's /ban


def address_of(host: str, ipv6_prefix: int) -> tuple[str, IP | None]:
    """The address ``host`` counts as for the per-address limits, and its parsed IP (None
    for what is not an IP, which then counts as itself)."""
    try:
        ip = normal_ip(ipaddress.ip_address(host))
    except ValueError:
        return host, None
    if isinstance(ip, ipaddress.IPv6Address):
        network = ipaddress.IPv6Network((ip.packed, ipv6_prefix), strict=False)
        return str(network), ip
    return str(ip), ip


class ConnectThrottle:
    """A token bucket per address for new connections, in a bounded table.

    A bucket that has refilled is the same as no bucket, so the table forgets an address
    once its bucket is full again (the least recently heard first). If addresses come
    faster than that — someone cycling source addresses — the table still holds at most
    ``size``: the address heard from least recently is forgotten early, which costs it
    nothing worse than a fresh burst.
    """

    def __init__(self, per_minute: float, burst: int, size: int) -> None:
        self.rate = per_minute / 60
        self.burst = burst
        self.size = max(1, size)
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()  # least recent first

    def __len__(self) -> int:
        return len(self._buckets)

    def wait(self, address: str, now: float) -> float:
        """A new connection from ``address``: 0 if it may come in (it took a token), else
        the seconds until it may."""
        buckets = self._buckets
        while buckets:  # forget addresses whose bucket is full again
            oldest = next(iter(buckets.values()))
            if oldest.available(now) < self.burst:
                break
            buckets.popitem(last=False)
        bucket = buckets.get(address)
        if bucket is None:
            if len(buckets) >= self.size:
                buckets.popitem(last=False)
            bucket = buckets[address] = TokenBucket(self.rate, self.burst, now)
        else:
            buckets.move_to_end(address)
        return bucket.delay(now)

    def give_back(self, address: str, now: float) -> None:
        """The token ``address`` took last is its own again (it was not spent after all)."""
        bucket = self._buckets.get(address)
        if bucket is not None:
            bucket.charge(-1, now)

    def waiting(self, address: str, now: float) -> float:
        """0 if ``address`` has a token, else the seconds until it will; takes none."""
        bucket = self._buckets.get(address)
        if bucket is None:
            return 0.0
        tokens = bucket.available(now)
        return 0.0 if tokens >= 1 - 1e-9 else (1 - tokens) / self.rate


class Churn:
    """Whether the room is churning: connections arrive and leave without a word.

    A connection that leaves within ``window`` seconds of connecting, having sent no line,
    is a *quick exit*; quick exits take tokens from a bucket of ``burst`` refilled at
    ``rate`` a second. While the bucket is not full (quick exits were seen lately), the
    newcomers still silent and within their first ``window`` seconds count against it as
    well — each may be the next quick exit — so a wave of connections that arrive together
    is judged before any of them leaves. The room is churning while that leaves less than
    one token. A ``window`` of 0 turns this off.
    """

    def __init__(self, window: float, burst: int, rate: float) -> None:
        self.window = window
        self._burst = burst
        self._rate = rate
        self._bucket: TokenBucket | None = None
        self._fresh: dict[int, float] = {}  # silent newcomers announced at once -> since

    def arrived(self, conn: int, now: float) -> None:
        """``conn`` was admitted and announced at once."""
        if self.window > 0:
            self._fresh[conn] = now

    def spoke(self, conn: int) -> None:
        """``conn`` sent its first line: it will not be a quick exit."""
        self._fresh.pop(conn, None)

    def left(self, conn: int, connected_at: float, spoke: bool, now: float) -> None:
        """``conn`` left; count it if it was a quick exit."""
        self._fresh.pop(conn, None)
        if self.window <= 0 or spoke or now - connected_at >= self.window:
            return
        if self._bucket is None:
            self._bucket = TokenBucket(self._rate, self._burst, now)
        self._bucket.delay(now)

    def churning(self, now: float) -> bool:
        fresh = self._fresh
        while fresh:  # forget those past their first window (in order of arrival)
            conn, since = next(iter(fresh.items()))
            if now - since < self.window:
                break
            del fresh[conn]
        bucket = self._bucket
        if bucket is None:
            return False
        tokens = bucket.available(now)
        if tokens >= self._burst:  # no quick exit lately
            self._bucket = None
            return False
        return tokens - len(fresh) < 1


class Admission:
    """The per-address rules of one room (the room asks; it decides nothing else)."""

    def __init__(self, rules: RoomRules) -> None:
        self.rules = rules
        self.exempt = tuple(ipaddress.ip_network(cidr, strict=False) for cidr in rules.exempt_ip)
        self.throttle = (
            ConnectThrottle(rules.connect_rate, rules.connect_burst, rules.connect_table)
            if rules.connect_rate > 0
            else None
        )
        self.churn = Churn(rules.churn_window, rules.churn_burst, rules.churn_rate)
        # TLS handshakes under way, per address (--tls-port): counted against max_per_ip.
        self.handshakes: Counter[str] = Counter()
        # Wrong passwords per address (exempt networks too: a guesser gains nothing there).
        self.password_failures = (
            ConnectThrottle(
                rules.password_fail_rate, rules.password_fail_burst, rules.connect_table
            )
            if rules.password_fail_rate > 0
            else None
        )
        # /oper checked per address (exempt networks too), given back when it was right.
        self.oper_attempts = (
            ConnectThrottle(rules.oper_fail_rate, rules.oper_fail_burst, rules.connect_table)
            if rules.oper_fail_rate > 0
            else None
        )

    def address(self, host: str) -> tuple[str, bool]:
        """The address ``host`` counts as, and whether it is exempt from the limits."""
        address, ip = address_of(host, self.rules.ipv6_prefix)
        return address, ip is not None and any(ip in network for network in self.exempt)

    def handshake_starts(self, host: str, established: int) -> str | None:
        """A TLS handshake from ``host`` wants to start, beside ``established`` connections
        the room holds from its address: the key to :meth:`handshake_ends` with once it is
        over ("" for an exempt address), or None if the address is at ``max_per_ip``."""
        address, exempt = self.address(host)
        if exempt:
            return ""
        if self.handshakes[address] + established >= self.rules.max_per_ip:
            return None
        self.handshakes[address] += 1
        return address

    def handshake_ends(self, key: str) -> None:
        if key:
            self.handshakes[key] -= 1
            if self.handshakes[key] <= 0:
                del self.handshakes[key]

    def throttled(self, address: str, now: float) -> int:
        """A new connection from ``address``: 0 if it may come in (it took a token), else
        the whole seconds to wait."""
        if self.throttle is None:
            return 0
        return math.ceil(self.throttle.wait(address, now))

    def password_wait(self, address: str, now: float) -> int:
        """0 if a /pass from ``address`` may be checked now, else the whole seconds until it
        may: its wrong passwords have used up their burst."""
        if self.password_failures is None:
            return 0
        return math.ceil(self.password_failures.waiting(address, now))

    def covers_exempt(self, network: Network) -> Network | None:
        """The first exempt network ``network`` covers whole, if any (a ban of it would send
        away everyone who shares an address there: a proxy's users, loopback)."""
        return next(
            (ex for ex in self.exempt if ex.version == network.version and ex.subnet_of(network)),  # type: ignore[arg-type]
            None,
        )

    def is_exempt(self, address: str) -> bool:
        """Whether ``address`` (as :meth:`address` counts it: an IPv6 /64 is a network) is
        in an exempt network, where many users may share one address."""
        try:
            where = ipaddress.ip_network(address, strict=False)
        except ValueError:
            return False
        return any(
            ex.version == where.version and where.subnet_of(ex)  # type: ignore[arg-type]
            for ex in self.exempt
        )

    def oper_wait(self, address: str, now: float) -> int:
        """0 if an /oper from ``address`` may be checked now (it takes one of the address's
        tokens), else the whole seconds until it may."""
        if self.oper_attempts is None:
            return 0
        return math.ceil(self.oper_attempts.wait(address, now))

    def oper_was_right(self, address: str, now: float) -> None:
        """The /oper that took ``address``'s token was right: it gets the token back."""
        if self.oper_attempts is not None:
            self.oper_attempts.give_back(address, now)

    def password_failed(self, address: str, now: float) -> None:
        """A wrong password from ``address``: it takes one of the address's tokens."""
        if self.password_failures is not None:
            self.password_failures.wait(address, now)
