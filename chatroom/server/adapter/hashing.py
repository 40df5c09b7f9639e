"""Operators' password checks off the event loop, in a bounded pool of threads.

A check is scrypt (~50 ms, and whatever the ops file's hash costs): run on the event loop,
a crowd of ``/oper`` guessers would stall everyone's chat. The room asks for one with a
:class:`~chatroom.server.core.actions.CheckOperator`; :class:`OperatorChecks` runs it in
one of ``threads`` threads (hashlib's scrypt lets go of the GIL), with at most ``queue``
more waiting, and hands the answer back as an
:class:`~chatroom.server.core.inputs.OperatorChecked` through the server's one way into the
room, on the event loop. Past ``threads + queue`` checks under way the answer is ``busy``
at once: nothing waits unbounded. The room keeps the same count (it refuses an /oper
before asking when it has as many under way), so ``busy`` is only a net under it.

Every check is answered exactly once, even if it fails (a hash the start-up check let
through and scrypt refuses is logged, and is a wrong password) or the server stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor

from chatroom.server.adapter.lograte import OncePerInterval
from chatroom.server.core.actions import CheckOperator
from chatroom.server.core.inputs import OperatorChecked
from chatroom.server.core.passwords import check_password


class OperatorChecks:
    def __init__(
        self,
        threads: int,
        queue: int,
        loop: asyncio.AbstractEventLoop,
        hand_back: Callable[[OperatorChecked], None],
        log_once: OncePerInterval,
    ) -> None:
        self.loop = loop
        self.hand_back = hand_back
        self.log_once = log_once
        self.limit = max(1, threads) + max(0, queue)
        self.pending = 0  # submitted and not answered yet
        self._pool = ThreadPoolExecutor(max(1, threads), thread_name_prefix="oper-check")
        self._closed = False

    def submit(self, check: CheckOperator) -> None:
        """Check ``check``'s password in the pool; its answer comes back on the loop."""
        if self._closed or self.pending >= self.limit:
            busy = OperatorChecked(check.conn, check.name, ok=False, busy=True)
            self.loop.call_soon(self.hand_back, busy)
            return
        self.pending += 1
        future = self._pool.submit(check_password, check.password, check.stored)
        conn, name = check.conn, check.name  # the password stays with the pool's task only

        def done(future: Future[bool]) -> None:  # in the pool's thread (or at a cancel)
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                self.loop.call_soon_threadsafe(self._answer, conn, name, future)

        future.add_done_callback(done)

    def _answer(self, conn: int, name: str, future: Future[bool]) -> None:
        self.pending -= 1
        busy = False
        try:
            ok = future.result()
        except CancelledError:  # the server is stopping
            ok, busy = False, True
        except Exception as exc:  # a hash scrypt refuses: logged; the user gets an answer
            self.log_once.log(
                "failed /oper checks", logging.ERROR, "an /oper check failed: %r", exc
            )
            ok = False
        self.hand_back(OperatorChecked(conn, name, ok=ok, busy=busy))

    def close(self) -> None:
        """Take no more checks; drop those waiting (each is answered ``busy``)."""
        self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)
