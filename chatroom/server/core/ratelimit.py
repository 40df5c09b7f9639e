"""Flood control as a token bucket. No I/O: the caller passes the time.

Each line costs one token; tokens refill at ``rate`` per second up to ``burst``. The server
asks :meth:`TokenBucket.delay` before handling a line and, if it must wait, stops reading
from that client until then. Lines are paced, never dropped.
"""

from __future__ import annotations


class TokenBucket:
    __slots__ = ("rate", "burst", "_tokens", "_updated")  # one per connection and address

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._updated = now

    def charge(self, tokens: float, now: float) -> None:
        """Take ``tokens`` more, into debt if need be: later lines wait until it is repaid."""
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate) - tokens
        self._updated = now

    def delay(self, now: float) -> float:
        """Take a token if one is there and return 0, else the seconds until one will be."""
        tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        if tokens >= 1 - 1e-9:  # waiting the delay we returned must be enough, despite rounding
            self._tokens = tokens - 1
            return 0.0
        self._tokens = tokens
        return (1 - tokens) / self.rate

    def available(self, now: float) -> float:
        """The tokens there are at ``now`` (at most ``burst``), taking none."""
        return min(self.burst, self._tokens + max(0.0, now - self._updated) * self.rate)
