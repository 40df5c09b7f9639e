"""A log that says a flood once: the first event of a kind at once, then a count per interval.

An attacker can make the server refuse thousands of connections a second, or run it out of
file descriptors; one log line each would fill the disk instead. So for each *kind* of event
(a refusal's cause, running out of descriptors, a quiet join) the first is logged in full
and the rest of the interval only counted: when it ends, one line says how many more there
were, and the next interval starts. A kind that stops happening costs nothing more.
"""

from __future__ import annotations

import asyncio
import logging


class OncePerInterval:
    def __init__(
        self, logger: logging.Logger, interval: float, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.logger = logger
        self.interval = interval
        self.loop = loop
        self._counts: dict[str, int] = {}  # kind -> events not logged, while its interval runs

    def log(
        self, kind: str, level: int, message: str, *args: object, extra: dict | None = None
    ) -> None:
        """Log ``message % args`` (with ``extra``'s named fields) if no ``kind`` event was
        logged in this interval, else count it for the line that ends the interval."""
        if kind in self._counts:
            self._counts[kind] += 1
            return
        self.logger.log(level, message, *args, extra=extra)
        self._start_interval(kind, level)

    def _start_interval(self, kind: str, level: int) -> None:
        self._counts[kind] = 0
        self.loop.call_later(self.interval, self._end_interval, kind, level)

    def _end_interval(self, kind: str, level: int) -> None:
        more = self._counts.pop(kind, 0)
        if more:
            self.logger.log(
                level,
                "%s: %d more in the last %gs",
                kind,
                more,
                self.interval,
                extra={"event": "flood", "kind": kind, "more": more},
            )
            self._start_interval(kind, level)
