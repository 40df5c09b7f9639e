"""Carries one node's room to and from the shared ledger (Redis), in cluster mode.

The room decides; this module only moves its :class:`~chatroom.server.core.room.Append` and
:class:`~chatroom.server.core.room.SendPrivate` actions to Redis and brings back what Redis
says, on the server's one event loop:

- one append worker sends appends in the order the room made them (so a user's own lines
  keep their order) and reports refusals back to the room;
- one reader follows the rooms' streams (:mod:`~chatroom.server.cluster.follower`: every
  room in use, each its own stream and seq) and hands every event, in its stream's order,
  to the room — events this node appended included, which is how everyone on every node
  sees one order in each room;
- a heartbeat keeps this node alive in Redis and reaps nodes whose heartbeat expired (any
  surviving node does it; the script is atomic);
- private messages, operators' commands on another node's users, and the bans, mutes and
  topic go through pub/sub (:mod:`~chatroom.server.cluster.channels`); the ones Redis keeps
  are loaded at sync;
- an entry of the stream that is not an event is skipped and logged once
  (:mod:`~chatroom.server.cluster.stream`): the room goes on.

When Redis goes away, this node's users are told, every line they send meanwhile is refused
with ``unavailable`` (nothing is dropped silently; the queue of appends is bounded by
``append_queue``, past which a line is refused at once), and the link reconnects with backoff,
then re-syncs the room from a snapshot (see :meth:`Room.resync`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chatroom import protocol as p
from chatroom.server.cluster.channels import NodeChannels
from chatroom.server.cluster.follower import Follower
from chatroom.server.cluster.records import Position
from chatroom.server.cluster.redis_ledger import (
    LedgerUnavailable,
    RedisLedger,
    Repeat,
)
from chatroom.server.cluster.stream import event_of, kept_chat, user_record
from chatroom.server.config import ServerConfig
from chatroom.server.core.actions import (
    AnswerElsewhere,
    Append,
    ModerateElsewhere,
    Persist,
    SendPrivate,
)
from chatroom.server.core.inputs import (
    AppendRefused,
    Input,
    LedgerStatus,
    ModerationLoaded,
    Repeated,
    Resynced,
    RoomSynced,
)
from chatroom.server.core.refusal import Refusal

__all__ = ["ClusterLink", "LedgerUnavailable", "event_of", "user_record"]

if TYPE_CHECKING:
    from chatroom.server.core.room import Room

log = logging.getLogger("chatroom.server")


class ClusterLink:
    def __init__(
        self,
        room: Room,
        config: ServerConfig,
        deliver: Callable[[Input], None],
    ) -> None:
        assert config.redis is not None, "a cluster link needs --redis"
        self.room = room
        self.config = config
        self.ledger = RedisLedger.from_config(config, room.node)
        # The server's one way into the room (ChatServer.handle): what the ledger and the
        # other nodes say goes through it as the connections' events do.
        self.deliver = deliver
        # Appends waiting for the worker, in the room's order. A deque and an Event rather
        # than an asyncio.Queue: a queue's put, get and task_done cost ~0.45 us a line.
        self._appends: deque[Append] = deque()
        self._appends_waiting = asyncio.Event()  # set while _appends is not empty
        self._appends_done = asyncio.Event()  # set while nothing waits or is being sent
        self._appends_done.set()
        # This node's events the ledger took, by seq, until the reader gets to them: the
        # reader uses them instead of decoding its own JSON again (~0.5 us an event). Only
        # while connected: a Redis that restarts numbers from 1 again (see _sync).
        self._tasks: list[asyncio.Task] = []
        # The rooms' streams this node follows (every room in use: docs/SCALING.md); an
        # upgrade's new process reads on from where the old one had read (hand_over()).
        self.follower = Follower(self.ledger, deliver, self._connection_lost, lambda: self.up)
        resume(self.follower, config.stream_position)
        self.up = False  # connected and in sync (/readyz and the metrics read it)
        self.append_seconds = 0.0  # spent in append script calls, and their number (metrics)
        self.appends = 0
        self._synced = config.stream_position is not None  # once: the follower is where it got to
        self._lost_at = 0.0  # when the last outage began (monotonic)
        self.channels = NodeChannels(
            self.ledger, config, deliver, self._connection_lost, lambda: self.up
        )

    @property
    def node(self) -> str:
        return self.ledger.node

    async def start(self) -> None:
        """Connect and sync; raises :class:`LedgerUnavailable` if Redis cannot be reached."""
        await self.ledger.connect()
        await self._sync()
        jobs = (
            self._append_worker,
            self._reader,
            self._heartbeat,
            self.channels.privates,
            self.channels.moderation,
        )
        for job in jobs:
            self._tasks.append(asyncio.create_task(job(), name=f"cluster-{job.__name__}"))

    async def stop(self) -> None:
        """Graceful: this node's users leave the room for everyone else, then disconnect."""
        if self.up:  # lines already accepted from users still reach the room
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._appends_done.wait(), self.config.append_drain)
        for task in self._tasks:
            task.cancel()
        self.channels.stop()
        # First, while the tasks wind down: closing a subscription that was just being made
        # can take a while, and the goodbye must not wait for it.
        with contextlib.suppress(LedgerUnavailable):
            await self.ledger.forget_node(time.time())
        # Bounded: a redis-py read that was under way when Redis hung and came back has been
        # seen to hold on to its cancellation (redis 8.1, Python 3.11).
        await asyncio.wait(self._tasks, timeout=self.config.ledger_timeout)
        for task in self._tasks:
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: nothing to report on the way out
        await self.ledger.close()

    # --- from the room -----------------------------------------------------------------

    def carry(self, action: Append | SendPrivate) -> None:
        if isinstance(action, Append):
            if len(self._appends) >= self.config.append_queue and not isinstance(
                action.event, p.Join | p.Leave
            ):
                # Redis is slow or hung and the lines pile up: refuse (told after this
                # batch of actions is carried out) rather than hold them without limit.
                asyncio.get_running_loop().call_soon(self._refuse, action, Refusal.UNAVAILABLE)
                return
            self._appends.append(action)
            if not self._appends_waiting.is_set():
                self._appends_waiting.set()
                self._appends_done.clear()
        else:
            self.channels.send_private(action)

    def share(self, action: Persist) -> None:
        """A ban, mute or topic change made here: keep it in Redis and tell every node."""
        self.channels.share(action)

    def ask(self, action: ModerateElsewhere | AnswerElsewhere) -> None:
        """Carry a request to the target's node, or an answer back to the operator's."""
        self.channels.ask(action)

    async def _append_worker(self) -> None:
        """Appends in the order the room made them; what queued up meanwhile goes together
        in one round trip, so a busy room is not held to one event per round trip."""
        appends = self._appends
        while True:
            if not appends:
                self._appends_waiting.clear()
                self._appends_done.set()
                await self._appends_waiting.wait()
            batch = [appends.popleft() for _ in range(min(len(appends), self.config.append_batch))]
            await self._append(batch)

    async def _append(self, batch: list[Append]) -> None:
        if not self.up:
            for action in batch:
                self._refuse(action, Refusal.UNAVAILABLE)
            return
        items = []
        for action in batch:
            user, old_key = user_record(action.event, self.node)
            items.append((action.event, user, old_key, action.request))
        started = time.perf_counter()
        try:
            results: list[int | str] = await self.ledger.append_many(items)
        except LedgerUnavailable as exc:
            self._connection_lost(exc)
            results = [Refusal.UNAVAILABLE] * len(batch)
        self.append_seconds += time.perf_counter() - started
        self.appends += 1
        took = self.follower.took
        for action, result in zip(batch, results, strict=True):
            if isinstance(result, Repeat):  # a request's retry: acked with its first seq
                self.deliver(Repeated(action.conn, action.event, int(result)))  # type: ignore[arg-type]
            elif isinstance(result, str):
                self._refuse(action, Refusal(result))
            else:
                took(action.event, result)
        if len(self.follower.sent) > 4 * self.config.append_batch:  # a lost read
            self.follower.sent.clear()

    def _refuse(self, action: Append, reason: Refusal) -> None:
        self.deliver(AppendRefused(action.conn, action.event, reason))

    # --- to the room -------------------------------------------------------------------

    async def _reader(self) -> None:
        while True:
            if not self.up:
                await self._reconnect()
                continue
            try:
                found = await self.follower.read()
            except LedgerUnavailable as exc:
                self._connection_lost(exc)
                continue
            # One turn of the loop first: the append worker, woken by the same script's
            # reply, sends the next batch, so Redis runs it while these are broadcast.
            # (Yielding more often costs more: each turn flushes to every client.)
            await asyncio.sleep(0)
            await self.follower.deliver_read(found)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_every)
            if not self.up:
                continue
            try:
                await self.ledger.heartbeat()
                reaped = await self.ledger.reap_dead_nodes(time.time())
                if reaped:
                    log.warning("cluster: %d users of dead nodes left the room", reaped)
            except LedgerUnavailable as exc:
                self._connection_lost(exc)

    # --- losing and finding Redis ------------------------------------------------------

    async def _sync(self) -> None:
        """Join the ledger's view: register, snapshot, history, and re-sync the rooms."""
        follower = self.follower
        follower.sent.clear()
        await self.ledger.register_node()
        snapshot = await self.ledger.snapshot(self.room.epoch, dict(follower.seqs))
        positions = {self.ledger.room: Position(snapshot.last_id, snapshot.seq, snapshot.first_seq)}
        positions.update(snapshot.rooms)
        if self._synced and snapshot.epoch == self.room.epoch:  # what we missed is in it
            for room, position in positions.items():
                await follower.catch_up(room, position.last_id, position.seq)
        keep = max(self.config.keep, self.config.history)  # what /history reaches
        rooms = []
        for room, position in positions.items():
            history, kept_from = await kept_chat(self.ledger, position, keep, room)
            rooms.append(RoomSynced(room, position.seq, history, kept_from))
        users = [(u.id, u.name, u.node, u.rooms) for u in snapshot.users.values()]
        moderation = await self.ledger.moderation_state()
        follower.start_at(positions, snapshot.log_id)
        self.up = self._synced = True
        main, others = rooms[0], tuple(rooms[1:])
        epoch = snapshot.epoch
        self.deliver(Resynced(users, main.seq, main.history, epoch, main.kept_from, others))
        self.deliver(ModerationLoaded(moderation))

    def _connection_lost(self, exc: LedgerUnavailable) -> None:
        """Any task that finds Redis gone calls this; the first one of an outage tells the
        users (one notice per outage) and the reader reconnects."""
        self.follower.sent.clear()
        if self.up:
            self.up = False
            self._lost_at = time.monotonic()
            log.warning("cluster: lost Redis: %s", exc)
            self.deliver(
                LedgerStatus(
                    "the room's shared store is unreachable: nothing you send can be delivered"
                    " until it is back"
                )
            )

    async def _reconnect(self) -> None:
        """Probe Redis every ``reconnect_backoff[0]`` seconds (a PING: one refused connect
        while it is down), so the room is back as soon as Redis answers; a re-sync that
        fails once it answers is retried with backoff, doubling up to the longest wait."""
        probe, longest = self.config.reconnect_backoff
        delay = probe
        while not self.up:
            await asyncio.sleep(delay)
            try:
                await self.ledger.connect()
            except LedgerUnavailable as exc:
                log.debug("cluster: Redis still unreachable (%s)", exc)
                continue
            try:
                await self._sync()
            except LedgerUnavailable as exc:
                delay = min(longest, delay * 2)
                log.warning("cluster: re-sync with Redis failed (%s); retrying in %gs", exc, delay)
                continue
            log.warning(
                "cluster: Redis is back after %.1fs; room re-synced",
                time.monotonic() - self._lost_at,
            )
            self.deliver(LedgerStatus("the room is back: you can chat again"))


async def hand_over(link: ClusterLink) -> tuple[tuple[Any, ...], list[Append]]:
    """An upgrade (adapter/upgrade.py): the lines accepted from users reach Redis (at most
    append_drain, as on a stop); where the rooms' streams were read to, and the appends still
    waiting (Redis slow or away), for the new process's link to send. That link, given the
    position as ``config.stream_position`` with the room, reads on from there (as after an
    outage: what it missed meanwhile is applied, nothing is announced again)."""
    if link.up:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(link._appends_done.wait(), link.config.append_drain)
    follower = link.follower
    where = (tuple(follower.positions.items()), tuple(follower.seqs.items()), follower.log_id)
    return where, list(link._appends)


def resume(follower: Follower, where: tuple[Any, ...] | None) -> None:
    """An upgrade's new process: its follower reads every room's stream on from where the
    old one's had (hand_over()); None: from the snapshot, at sync."""
    if where is not None:
        positions, seqs, follower.log_id = where
        follower.positions, follower.seqs = dict(positions), dict(seqs)
