"""Password work off the event loop, in a bounded pool of threads: checking a password
(``/oper``, ``/login``) and hashing a new one (``/register``).

Either is scrypt (~50 ms, and whatever the stored hash costs): run on the event loop, a
crowd of guessers or registrations would stall everyone's chat. The room asks for it with a
:class:`~chatroom.server.core.actions.CheckPassword` or a
:class:`~chatroom.server.core.actions.HashPassword`; :class:`PasswordWorkers` runs it in one
of ``threads`` threads (hashlib's scrypt lets go of the GIL), with at most ``queue`` more
waiting, and hands the answer back — a :class:`~chatroom.server.core.inputs.PasswordChecked`
or a :class:`~chatroom.server.core.inputs.PasswordHashed` — through the server's one way
into the room, on the event loop. Past ``threads + queue`` jobs under way the answer is
``busy`` at once: nothing waits unbounded. The room keeps the same count (it refuses an
/oper, a /login or a /register before asking when it has as many under way), so ``busy``
is only a net under it.

Every job is answered exactly once, even if it fails (a hash the start-up check let
through and scrypt refuses is logged, and is a wrong password) or the server stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from typing import Any

from chatroom.server.adapter.lograte import OncePerInterval
from chatroom.server.core.actions import CheckPassword, HashPassword, PasswordWork
from chatroom.server.core.inputs import PasswordChecked, PasswordHashed
from chatroom.server.core.passwords import check_password, hash_password

Answer = PasswordChecked | PasswordHashed


class PasswordWorkers:
    def __init__(
        self,
        threads: int,
        queue: int,
        loop: asyncio.AbstractEventLoop,
        hand_back: Callable[[Answer], None],
        log_once: OncePerInterval,
    ) -> None:
        self.loop = loop
        self.hand_back = hand_back
        self.log_once = log_once
        self.limit = max(1, threads) + max(0, queue)
        self.pending = 0  # submitted and not answered yet
        self._pool = ThreadPoolExecutor(max(1, threads), thread_name_prefix="password-work")
        self._closed = False

    def submit(self, work: PasswordWork) -> None:
        """Do ``work`` in the pool; its answer comes back on the loop."""
        if self._closed or self.pending >= self.limit:
            self.loop.call_soon(self.hand_back, _answer(work, None, busy=True))
            return
        self.pending += 1
        if isinstance(work, CheckPassword):
            future = self._pool.submit(check_password, work.password, work.stored)
        else:
            future = self._pool.submit(hash_password, work.password)
        # The password stays with the pool's task only: the answer is made from the rest.
        bare = _without_password(work)

        def done(future: Future[Any]) -> None:  # in the pool's thread (or at a cancel)
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                self.loop.call_soon_threadsafe(self._answer, bare, future)

        future.add_done_callback(done)

    def _answer(self, work: PasswordWork, future: Future[Any]) -> None:
        self.pending -= 1
        try:
            answer = _answer(work, future.result(), busy=False)
        except CancelledError:  # the server is stopping
            answer = _answer(work, None, busy=True)
        except Exception as exc:  # a hash scrypt refuses: logged; the user gets an answer
            what = f"/{work.purpose} check" if isinstance(work, CheckPassword) else "/register hash"
            article = "an" if what.startswith("/oper") else "a"
            self.log_once.log(f"failed {what}s", logging.ERROR, f"{article} {what} failed: %r", exc)
            answer = _answer(work, None, busy=not isinstance(work, CheckPassword))
        self.hand_back(answer)

    def close(self) -> None:
        """Take no more work; drop what waits (each is answered ``busy``)."""
        self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)


def _without_password(work: PasswordWork) -> PasswordWork:
    if isinstance(work, CheckPassword):
        return CheckPassword(work.conn, work.purpose, work.name, "", work.stored)
    return HashPassword(work.conn, work.name, "")


def _answer(work: PasswordWork, result: Any, *, busy: bool) -> Answer:
    """The room's input for ``work`` done with ``result`` (a check's bool, a hash's form),
    or not done (``busy``)."""
    if isinstance(work, CheckPassword):
        return PasswordChecked(work.conn, work.purpose, work.name, ok=bool(result), busy=busy)
    return PasswordHashed(work.conn, work.name, None if busy else result)
