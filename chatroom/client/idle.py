"""The idle countdown: the server's warning, counted down to its kick. No Textual.

A room with an idle timeout warns before it disconnects someone silent: a ``notice``
``idle_warning`` with the fact ``idle`` and the ``seconds`` left (:func:`warning_seconds`;
its words are for people and never read here). The header counts those seconds down
(:class:`IdleCountdown`, on a monotonic clock) until a key sends ``/ping``, or the link
ends.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from chatroom.protocol import Fact, Notice


def warning_seconds(event: Notice) -> int | None:
    """The seconds before the idle kick an idle warning announces (None: not one)."""
    return event.seconds if event.fact is Fact.IDLE else None


class IdleCountdown:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._kick_at: float | None = None  # on ``clock``: when the server means to kick

    def start(self, seconds: float) -> None:
        self._kick_at = self._clock() + seconds

    def stop(self) -> None:
        self._kick_at = None

    @property
    def counting(self) -> bool:
        return self._kick_at is not None

    def left(self) -> int | None:
        """Whole seconds left (never below 0), or None when nothing is counted down."""
        if self._kick_at is None:
            return None
        return max(0, math.ceil(self._kick_at - self._clock()))
