"""Carries one node's room to and from the shared ledger (Redis), in cluster mode.

The room decides; this module only moves its :class:`~chatroom.server.core.room.Append` and
:class:`~chatroom.server.core.room.SendPrivate` actions to Redis and brings back what Redis
says, on the server's one event loop:

- one append worker sends appends in the order the room made them (so a user's own lines
  keep their order) and reports refusals back to the room;
- one reader follows the room's stream and hands every event, in the stream's order, to
  :meth:`Room.sequenced` — events this node appended included, which is how everyone on
  every node sees one order;
- a heartbeat keeps this node alive in Redis and reaps nodes whose heartbeat expired (any
  surviving node does it; the script is atomic);
- a subscriber delivers private messages addressed to this node's users, and on the same
  channel the nodes ask each other to carry out an operator's command on their users
  (:mod:`~chatroom.server.core.node_requests`) and answer; an operator whose request nobody
  heard, or that is not answered within ``node_answer_timeout``, is told (never silence);
- bans, mutes and the topic (the room's :class:`~chatroom.server.core.actions.Persist` actions)
  are kept in Redis and published; another subscriber applies every other node's changes,
  and the ones Redis keeps are loaded at sync and whenever it subscribes again.

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
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import msgspec

from chatroom import protocol as p
from chatroom.server.cluster.redis_ledger import (
    Entry,
    LedgerUnavailable,
    RedisLedger,
    UserRecord,
    id_after,
    parse_stream_id,
)
from chatroom.server.config import ServerConfig
from chatroom.server.core import node_requests
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
    ModerationAnswered,
    ModerationAsked,
    ModerationChanged,
    ModerationLoaded,
    ModerationUndelivered,
    PrivateArrived,
    PrivateUndelivered,
    Resynced,
    Sequenced,
)
from chatroom.server.core.refusal import Refusal

__all__ = ["ClusterLink", "LedgerUnavailable"]

if TYPE_CHECKING:
    from chatroom.server.core.room import Room

log = logging.getLogger("chatroom.server")


def user_record(event: p.BroadcastEvent, node: str) -> tuple[UserRecord | str, str | None]:
    """The ledger record an event is about (for a rename, with the new name), and for a
    rename the old name's key; for a message, action or leave the user's id is enough."""
    if isinstance(event, p.Message | p.Action | p.Leave):
        return event.id, None
    if isinstance(event, p.Rename):
        return UserRecord.of(event.id, event.new, node), p.name_skeleton(event.old)
    return UserRecord.of(event.id, event.name, node), None


_decode_broadcast = msgspec.json.Decoder(p.BroadcastEvent).decode


def event_of(entry: Entry) -> p.BroadcastEvent:
    """The event of a stream entry: its JSON decoded once, with the entry's seq, straight
    to the event (the forgiving decoder of :func:`~chatroom.protocol.from_wire_dict` only
    for a body the strict one will not take)."""
    text = entry.text
    if text.endswith("}"):
        try:  # the tag first, as msgspec reads fastest
            return _decode_broadcast(f'{text[:-1]},"seq":{entry.seq}}}')
        except (msgspec.MsgspecError, ValueError, RecursionError):
            pass
    data = entry.body
    data["seq"] = entry.seq
    event = p.from_wire_dict(data)
    if not isinstance(event, p.Message | p.Action | p.Join | p.Leave | p.Rename):
        raise p.ProtocolError(f"not a broadcast event in the stream: {entry.stream_id}")
    return event


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
        self._sent: dict[int, p.BroadcastEvent] = {}
        self._tasks: list[asyncio.Task] = []
        self._last_id = "0-0"
        self._up = False  # connected and in sync
        self._append_seconds = 0.0  # in append script calls (for the metrics)
        self._append_calls = 0
        self._synced = False  # it was in sync once: _last_id is where it got to
        self._lost_at = 0.0  # when the last outage began (monotonic)
        # Requests to other nodes not answered yet, by their number, each with the timer
        # that tells the operator if no answer comes (None while it is being published).
        self._unanswered: dict[int, asyncio.TimerHandle | None] = {}

    @property
    def node(self) -> str:
        return self.ledger.node

    @property
    def up(self) -> bool:
        """Connected to Redis and in sync with the shared room (/readyz, the metrics)."""
        return self._up

    @property
    def append_time(self) -> tuple[float, int]:
        """Seconds spent in append script calls, and how many calls (the metrics)."""
        return self._append_seconds, self._append_calls

    async def start(self) -> None:
        """Connect and sync; raises :class:`LedgerUnavailable` if Redis cannot be reached."""
        await self.ledger.connect()
        await self._sync()
        jobs = (
            self._append_worker,
            self._reader,
            self._heartbeat,
            self._privates,
            self._moderation,
        )
        for job in jobs:
            self._tasks.append(asyncio.create_task(job(), name=f"cluster-{job.__name__}"))

    async def stop(self) -> None:
        """Graceful: this node's users leave the room for everyone else, then disconnect."""
        if self._up:  # lines already accepted from users still reach the room
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._appends_done.wait(), self.config.append_drain)
        for task in self._tasks:
            task.cancel()
        for timer in self._unanswered.values():
            if timer is not None:
                timer.cancel()
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
            task = asyncio.create_task(self._send_private(action))
            task.add_done_callback(_log_failure)

    def share(self, action: Persist) -> None:
        """A ban, mute or topic change made here: keep it in Redis and tell every node."""
        task = asyncio.create_task(self._share(action))
        task.add_done_callback(_log_failure)

    async def _share(self, action: Persist) -> None:
        try:
            await self.ledger.moderate(action.kind, action.key, action.data)
        except LedgerUnavailable as exc:
            # This node has it; the others load what Redis keeps when it is back.
            log.warning("cluster: a %s change was not shared: %s", action.kind, exc)
            self._connection_lost(exc)

    async def _send_private(self, action: SendPrivate) -> None:
        payload = p.to_wire_dict(action.event)
        payload["to_id"] = action.recipient_id
        payload["from_id"] = action.sender_id
        heard = await self._publish(action.node, payload)
        if not heard:  # the sender has its copy; it must know the recipient may not
            self.deliver(PrivateUndelivered(action.sender, action.event))

    # --- between nodes: an operator's command on another node's user ----------------------

    def ask(self, action: ModerateElsewhere | AnswerElsewhere) -> None:
        """Carry a request to the target's node, or an answer back to the operator's."""
        job = self._ask(action) if isinstance(action, ModerateElsewhere) else self._answer(action)
        asyncio.create_task(job).add_done_callback(_log_failure)

    async def _ask(self, action: ModerateElsewhere) -> None:
        number = action.request.request
        # Waiting before it is published: the answer can come back on the subscription
        # before Redis's reply to the publish does.
        self._unanswered[number] = None
        heard = await self._publish(action.node, node_requests.to_payload(action.request))
        if not heard:
            self._unanswered.pop(number, None)
            self._undelivered(action, maybe_done=heard is None)
        elif number in self._unanswered:  # not answered yet
            loop = asyncio.get_running_loop()
            timeout = self.config.node_answer_timeout
            self._unanswered[number] = loop.call_later(timeout, self._not_answered, action)

    async def _publish(self, node: str, payload: dict) -> bool | None:
        """Send ``payload`` on ``node``'s private channel: whether it was heard, or None if
        Redis was lost meanwhile (it may have gone out before: nobody can tell)."""
        try:
            return await self.ledger.publish_private(node, payload)
        except LedgerUnavailable as exc:
            self._connection_lost(exc)
            return None

    def _not_answered(self, action: ModerateElsewhere) -> None:
        if self._unanswered.pop(action.request.request, False) is not False:
            self._undelivered(action, maybe_done=True)

    def _undelivered(self, action: ModerateElsewhere, *, maybe_done: bool) -> None:
        self.deliver(ModerationUndelivered(action.operator, action.request, maybe_done))

    async def _answer(self, action: AnswerElsewhere) -> None:
        heard = await self._publish(action.node, node_requests.to_payload(action.answer))
        if not heard:  # that node is gone: its operator with it (or told when it timed out)
            log.warning("cluster: an answer to node %s was not heard", action.node)

    def _from_node(self, payload: dict) -> None:
        """A request or answer another node sent on our private channel."""
        try:
            message = node_requests.from_payload(payload)
        except ValueError as exc:
            log.warning("cluster: ignored a payload on the private channel: %s", exc)
            return
        if isinstance(message, node_requests.ModerationRequest):
            self.deliver(ModerationAsked(message))
            return
        timer = self._unanswered.pop(message.request, None)
        if timer is not None:
            timer.cancel()
        # A late answer still reaches the operator: it says what was done after all.
        self.deliver(ModerationAnswered(message))

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
        if not self._up:
            for action in batch:
                self._refuse(action, Refusal.UNAVAILABLE)
            return
        items = []
        for action in batch:
            user, old_key = user_record(action.event, self.node)
            items.append((action.event, user, old_key))
        started = time.perf_counter()
        try:
            results: list[int | str] = await self.ledger.append_many(items)
        except LedgerUnavailable as exc:
            self._connection_lost(exc)
            results = [Refusal.UNAVAILABLE] * len(batch)
        self._append_seconds += time.perf_counter() - started
        self._append_calls += 1
        sent, applied = self._sent, self.room.seq
        for action, result in zip(batch, results, strict=True):
            if isinstance(result, str):
                self._refuse(action, Refusal(result))
            elif result > applied:  # else the reader was first: it decoded the entry
                sent[result] = action.event
        if len(sent) > 4 * self.config.append_batch:  # never read back: a lost read
            sent.clear()

    def _refuse(self, action: Append, reason: Refusal) -> None:
        self.deliver(AppendRefused(action.conn, action.event, reason))

    # --- to the room -------------------------------------------------------------------

    async def _reader(self) -> None:
        while True:
            if not self._up:
                await self._reconnect()
                continue
            try:
                entries = await self.ledger.read(self._last_id)
            except LedgerUnavailable as exc:
                self._connection_lost(exc)
                continue
            # One turn of the loop first: the append worker, woken by the same script's
            # reply, sends the next batch, so Redis runs it while these are broadcast.
            # (Yielding more often costs more: each turn flushes to every client.)
            await asyncio.sleep(0)
            node, sent, deliver = self.node, self._sent, self.deliver
            # Delivered in order; what they broadcast shares the one flush that follows.
            for entry in entries:
                self._last_id = entry.stream_id
                mine = sent.pop(entry.seq, None) if entry.node == node else None
                if mine is not None:
                    event = p.replace(mine, seq=entry.seq)
                else:
                    try:
                        event = event_of(entry)
                    except p.ProtocolError as exc:
                        log.error("cluster: skipping a stream entry: %s", exc)
                        continue
                deliver(Sequenced(event, entry.node))

    async def _privates(self) -> None:
        await self._follow(self.ledger.private_messages, self._private_payload)

    def _private_payload(self, payload: dict) -> None:
        if payload.get("type") in node_requests.TYPES:
            self._from_node(payload)
            return
        recipient = payload.pop("to_id", None)
        sender = payload.pop("from_id", None)
        try:
            event = p.from_wire_dict(payload)
        except p.ProtocolError:
            return
        if isinstance(recipient, str) and isinstance(event, p.Private):
            sender = sender if isinstance(sender, str) else None
            self.deliver(PrivateArrived(recipient, event, sender))

    async def _moderation(self) -> None:
        await self._follow(self.ledger.moderation_changes, self._moderation_payload)

    def _moderation_payload(self, payload: dict) -> None:
        if "state" in payload:  # subscribed: what Redis keeps now
            self.deliver(ModerationLoaded(payload["state"]))
            return
        kind, key, data = payload.get("kind"), payload.get("key"), payload.get("data")
        if payload.get("node") == self.node or not isinstance(key, str):
            return
        if isinstance(kind, str) and (data is None or isinstance(data, dict)):
            self.deliver(ModerationChanged(kind, key, data))

    async def _follow(
        self, subscribe: Callable[[], AsyncIterator[dict]], handle: Callable[[dict], None]
    ) -> None:
        """Hand each payload of a subscription to ``handle``; subscribe again after Redis
        comes back (what was published meanwhile is lost: pub/sub keeps nothing)."""
        while True:
            if not self._up:
                await asyncio.sleep(self.config.heartbeat_every)
                continue
            try:
                async for payload in subscribe():
                    handle(payload)
            except LedgerUnavailable as exc:
                self._connection_lost(exc)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_every)
            if not self._up:
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
        """Join the ledger's view: register, snapshot, history, and re-sync the room."""
        self._sent.clear()
        await self.ledger.register_node()
        snapshot = await self.ledger.snapshot(self.room.epoch, self.room.seq)
        if snapshot.epoch == self.room.epoch:  # the same history: what we missed is in it
            await self._catch_up(snapshot.last_id, snapshot.seq)
        # Up to and including the snapshot's last entry: that one is in the past too.
        entries = await self.ledger.history(id_after(snapshot.last_id), self.config.history)
        history = [event_of(entry) for entry in entries]
        users = [(u.id, u.name, u.node) for u in snapshot.users.values()]
        moderation = await self.ledger.moderation_state()
        self._last_id = snapshot.last_id
        self._up = self._synced = True
        self.deliver(Resynced(users, snapshot.seq, history, snapshot.epoch))
        self.deliver(ModerationLoaded(moderation))

    async def _catch_up(self, until_id: str, until_seq: int) -> None:
        """After an outage, apply what this node missed, up to the snapshot, if Redis still
        has it (it kept its data and the stream was not trimmed past us): then our users see
        every event, with no gap in ``seq``."""
        applied = self.room.seq
        if not self._synced or not applied < until_seq:
            return
        end = parse_stream_id(until_id)
        missed = min(until_seq - applied, self.ledger.stream_maxlen)
        entries = await self.ledger.read(self._last_id, block_ms=0, count=missed)
        if not entries or entries[0].seq != applied + 1:
            return  # Redis restarted or trimmed: the snapshot alone will have to do
        for entry in entries:
            if parse_stream_id(entry.stream_id) > end:
                break
            self._last_id = entry.stream_id
            self.deliver(Sequenced(event_of(entry), entry.node))

    def _connection_lost(self, exc: LedgerUnavailable) -> None:
        """Any task that finds Redis gone calls this; the first one of an outage tells the
        users (one notice per outage) and the reader reconnects."""
        self._sent.clear()
        if self._up:
            self._up = False
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
        while not self._up:
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


def _log_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("cluster: %s", task.exception())
