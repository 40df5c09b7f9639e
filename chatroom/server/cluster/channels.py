"""What the nodes of a shared room say to each other through Redis's pub/sub, beside the
stream: private messages, operators' commands on another node's users, and the bans, mutes
and topic every node keeps.

- a private message to another node's user goes on that node's private channel; if nobody
  hears it, its sender is told;
- on the same channel the nodes ask each other to carry out an operator's command on their
  users (:mod:`~chatroom.server.core.node_requests`) and answer; an operator whose request
  nobody heard, or that is not answered within ``node_answer_timeout``, is told (never
  silence);
- bans, mutes and the topic (the room's :class:`~chatroom.server.core.actions.Persist`
  actions) are kept in Redis and published; the subscription applies every other node's
  changes, and the ones Redis keeps are loaded whenever it subscribes again.

Pub/sub keeps nothing: what is published while a node is cut off is lost to it (what
Redis keeps of the moderation is loaded again when it is back).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

from chatroom import protocol as p
from chatroom.server.cluster.redis_client import LedgerUnavailable
from chatroom.server.cluster.redis_ledger import RedisLedger
from chatroom.server.config import ServerConfig
from chatroom.server.core import node_requests
from chatroom.server.core.actions import AnswerElsewhere, ModerateElsewhere, Persist, SendPrivate
from chatroom.server.core.inputs import (
    Input,
    ModerationAnswered,
    ModerationAsked,
    ModerationChanged,
    ModerationLoaded,
    ModerationUndelivered,
    PrivateArrived,
    PrivateUndelivered,
)

log = logging.getLogger("chatroom.server")


class NodeChannels:
    """One node's pub/sub with the others. ``lost`` is told when Redis is found gone, and
    ``up`` says whether the node is in sync (the subscriptions wait while it is not)."""

    def __init__(
        self,
        ledger: RedisLedger,
        config: ServerConfig,
        deliver: Callable[[Input], None],
        lost: Callable[[LedgerUnavailable], None],
        up: Callable[[], bool],
    ) -> None:
        self.ledger = ledger
        self.config = config
        self.deliver = deliver
        self._lost = lost
        self._up = up
        # Requests to other nodes not answered yet, by their number, each with the timer
        # that tells the operator if no answer comes (None while it is being published).
        self._unanswered: dict[int, asyncio.TimerHandle | None] = {}

    def stop(self) -> None:
        for timer in self._unanswered.values():
            if timer is not None:
                timer.cancel()

    # --- bans, mutes, the topic -----------------------------------------------------------

    def share(self, action: Persist) -> None:
        """A ban, mute or topic change made here: keep it in Redis and tell every node."""
        asyncio.create_task(self._share(action)).add_done_callback(log_failure)

    async def _share(self, action: Persist) -> None:
        try:
            await self.ledger.moderate(action.kind, action.key, action.data)
        except LedgerUnavailable as exc:
            # This node has it; the others load what Redis keeps when it is back.
            log.warning("cluster: a %s change was not shared: %s", action.kind, exc)
            self._lost(exc)

    async def moderation(self) -> None:
        """Follow every other node's moderation changes (a task, while the node runs)."""
        await self._follow(self.ledger.moderation_changes, self._moderation_payload)

    def _moderation_payload(self, payload: dict) -> None:
        if "state" in payload:  # subscribed: what Redis keeps now
            self.deliver(ModerationLoaded(payload["state"]))
            return
        kind, key, data = payload.get("kind"), payload.get("key"), payload.get("data")
        if payload.get("node") == self.ledger.node or not isinstance(key, str):
            return
        if isinstance(kind, str) and (data is None or isinstance(data, dict)):
            self.deliver(ModerationChanged(kind, key, data))

    # --- private messages -------------------------------------------------------------------

    def send_private(self, action: SendPrivate) -> None:
        asyncio.create_task(self._send_private(action)).add_done_callback(log_failure)

    async def _send_private(self, action: SendPrivate) -> None:
        payload = p.to_wire_dict(action.event)
        payload["to_id"] = action.recipient_id
        payload["from_id"] = action.sender_id
        heard = await self._publish(action.node, payload)
        if not heard:  # the sender has its copy; it must know the recipient may not
            self.deliver(PrivateUndelivered(action.sender, action.event))

    async def privates(self) -> None:
        """Follow this node's private channel (a task, while the node runs)."""
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

    # --- an operator's command on another node's user ---------------------------------------

    def ask(self, action: ModerateElsewhere | AnswerElsewhere) -> None:
        """Carry a request to the target's node, or an answer back to the operator's."""
        job = self._ask(action) if isinstance(action, ModerateElsewhere) else self._answer(action)
        asyncio.create_task(job).add_done_callback(log_failure)

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
            self._lost(exc)
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

    async def _follow(
        self, subscribe: Callable[[], AsyncIterator[dict]], handle: Callable[[dict], None]
    ) -> None:
        """Hand each payload of a subscription to ``handle``; subscribe again after Redis
        comes back (what was published meanwhile is lost: pub/sub keeps nothing)."""
        while True:
            if not self._up():
                await asyncio.sleep(self.config.heartbeat_every)
                continue
            try:
                async for payload in subscribe():
                    handle(payload)
            except LedgerUnavailable as exc:
                self._lost(exc)


def log_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("cluster: %s", task.exception())
