"""The Redis side of one shared room: users, names, nodes, and the room's event stream.

Several ``chatroom-server`` nodes serve one room through Redis. This module talks to Redis
for them and keeps nothing else — no room rules, no sockets to clients. What the room's
keys hold is in :mod:`~chatroom.server.cluster.records`; the Lua scripts, and what Python
hands them, in :mod:`~chatroom.server.cluster.scripts` (their text in ``lua/``). Every
change that must be atomic — checking a name claim and appending the event, reaping a dead
node's users — is one Lua script, so any number of nodes may call anything at once.

Every Redis failure (connection refused or lost, timeout, a Redis error reply) is raised as
:class:`LedgerUnavailable`; no redis-py exception leaves this module. Commands are never
retried here: an :meth:`RedisLedger.append_many` that raised may or may not have been
applied, and whoever calls it decides what to tell the user. Refusals are
:class:`~chatroom.server.core.refusal.Refusal` values.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from chatroom import protocol as p
from chatroom.protocol import compact_json
from chatroom.server.cluster.reads import RoomsRead, snapshot_args, snapshot_of
from chatroom.server.cluster.records import (
    MODERATION_KINDS,
    NODE_RE,
    Entry,
    RoomKeys,
    Snapshot,
    UserRecord,
    id_after,
    live_records,
    parse_stream_id,
)
from chatroom.server.cluster.redis_client import (
    LedgerUnavailable,
    clients,
    close,
    guard,
    reconnect,
    subscribed,
)
from chatroom.server.cluster.scripts import (
    Repeat,
    append_item,
    append_result,
    leave_parts,
    pack,
    scripts,
    stream_body,
)
from chatroom.server.cluster.stream import BadEntries, newest_chat
from chatroom.server.config import ROOM_NAME, ServerConfig
from chatroom.server.core.refusal import Refusal

# What other modules import from here, wherever it is defined.
__all__ = [
    "EVENTS_PER_ENTRY",
    "Entry",
    "LedgerUnavailable",
    "RedisLedger",
    "Repeat",
    "Snapshot",
    "UserRecord",
    "id_after",
    "parse_stream_id",
    "stream_body",
]

log = logging.getLogger("chatroom.server")


_DEFAULTS = ServerConfig()
EVENTS_PER_ENTRY = _DEFAULTS.events_per_entry  # a ledger's, unless its config says otherwise


class RedisLedger:
    """One node's handle on one room kept in Redis. Async; safe to share within one loop.

    Two connection pools (redis_client.py): one for commands (socket timeout ``timeout``)
    and one for the blocking ``XREAD`` of :meth:`read`, bounded by ``block_ms`` plus
    ``timeout`` instead. Nothing is retried automatically.

    ``config`` gives the tuning values (the stream's size and entries, how reads page and
    wait); ``stream_maxlen``, ``heartbeat_ttl`` and ``timeout`` given here override its
    ``stream_maxlen``, ``heartbeat_ttl`` and ``ledger_timeout``. :meth:`from_config` takes
    all of them from the server's config.
    """

    def __init__(
        self,
        url: str,
        room: str,
        node: str,
        *,
        stream_maxlen: int | None = None,
        heartbeat_ttl: float | None = None,
        timeout: float | None = None,
        config: ServerConfig = _DEFAULTS,
    ) -> None:
        stream_maxlen = config.stream_maxlen if stream_maxlen is None else stream_maxlen
        heartbeat_ttl = config.heartbeat_ttl if heartbeat_ttl is None else heartbeat_ttl
        timeout = config.ledger_timeout if timeout is None else timeout
        if not ROOM_NAME.fullmatch(room):
            raise ValueError(f"invalid room name {room!r}: 1-64 characters of A-Z a-z 0-9 _ . -")
        if not NODE_RE.fullmatch(node):
            raise ValueError(f"invalid node name {node!r}: 1-128 characters, no spaces or braces")
        if stream_maxlen < 1 or heartbeat_ttl <= 0 or timeout <= 0:
            raise ValueError("stream_maxlen, heartbeat_ttl and timeout must be positive")
        self.url = url
        self.room = room
        self.node = node
        self.stream_maxlen = stream_maxlen
        self.heartbeat_ttl = heartbeat_ttl
        self.timeout = timeout
        self.config = config
        # Entries of the stream that are not events (stream.py): each logged once.
        self.bad = BadEntries(config.log_interval)
        # An event's JSON is longer than any a node writes (6: a character escaped as
        # \\u00XX; the rest: the name, the id and the fields): a bad entry, not read.
        self.max_body = 6 * config.max_line + 1024
        self.last_read: str | None = None  # the id of the last entry read() read, if any
        self._keys = keys = RoomKeys.of(room)
        self._shared_keys, self._append_keys = keys.shared, keys.appending
        self.listed = tuple(config.rooms)  # rooms every node keeps while nobody is in them
        # XREAD BLOCK waits longer than any command may; read() bounds it with asyncio.
        self._redis, self._blocking = clients(url, timeout)
        lua = scripts(config.events_per_entry, room, config.max_rooms, config.room_linger)
        self._append = self._redis.register_script(lua.append)
        self._reap = self._redis.register_script(lua.reap)
        self._forget = self._redis.register_script(lua.forget)
        self._snapshot = self._redis.register_script(lua.snapshot)

    @classmethod
    def from_config(cls, config: ServerConfig, node: str) -> RedisLedger:
        """This node's ledger for ``config.redis`` and ``config.room``, tuned by ``config``."""
        assert config.redis is not None, "a ledger needs --redis"
        return cls(config.redis, config.room, node, config=config)

    def _guard(self, what: str) -> contextlib.AbstractContextManager[None]:
        """Turn any Redis or socket failure into :class:`LedgerUnavailable`."""
        return guard(self.url, what)

    async def connect(self) -> None:
        """Check that Redis answers (PING), every pooled connection dropped first (it may
        be dead without knowing it); raise :class:`LedgerUnavailable` if not."""
        await reconnect(self.url, self._redis, self._blocking)

    async def close(self) -> None:
        """Close both connection pools. Never raises."""
        await close(self._redis, self._blocking)

    async def register_node(self) -> None:
        """Add this node to the room's nodes and start its heartbeat; its listed rooms
        (--rooms) are kept in Redis while nobody is in them."""
        await self.heartbeat()
        with self._guard("list the rooms"):
            await self._redis.sadd(self._keys.listed, *self.listed) if self.listed else None

    async def heartbeat(self) -> None:
        """Refresh this node's heartbeat key (TTL ``heartbeat_ttl``).

        It also re-adds the node to the nodes set, so a node that was reaped while it was
        only slow is watched again (its users were reaped: their leaves are in the stream).
        """
        ttl_ms = max(1, round(self.heartbeat_ttl * 1000))
        with self._guard("heartbeat"):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.sadd(self._keys.nodes, self.node)
                pipe.set(self._keys.heartbeat_prefix + self.node, "1", px=ttl_ms)
                await pipe.execute()

    async def snapshot(
        self, known_epoch: str | None = None, applied_seq: int | dict[str, int] = 0
    ) -> Snapshot:
        """The users, the epoch, and each room's last stream id and seq, read atomically:
        the default room, the rooms in use and the listed ones.

        ``known_epoch`` and ``applied_seq`` (the default room's, or each room's by key) are
        where this node got to: if the ledger is in that epoch but a seq is lower, it went
        back in time (Redis restored an older snapshot of its data) and gets a new epoch, so
        that nobody compares the seqs."""
        keys = [self._keys.seq, self._keys.events, self._keys.users, self._keys.epoch]
        applied = applied_seq if isinstance(applied_seq, dict) else {self.room: applied_seq}
        args = snapshot_args(known_epoch, self.room, {**dict.fromkeys(self.listed, 0), **applied})
        with self._guard("snapshot"):
            return snapshot_of(*await self._snapshot(keys=keys, args=args), self.room)

    async def history(self, before_id: str, count: int, room: str | None = None) -> list[Entry]:
        """The newest ``count`` message/action entries of ``room`` (None: the default
        room) strictly before ``before_id`` (``"+"``: the end of the stream), oldest first."""
        events = self._keys.events_of(room or self.room)
        if count <= 0:
            return []
        found: list[Entry] = []
        end = before_id if before_id == "+" else f"({before_id}"
        page = max(self.config.ledger_history_page, 2 * count)
        # Bounded, whatever was added by hand: no real chat is further back than this.
        left = max(self.stream_maxlen, page)
        with self._guard("history"):
            while len(found) < count and left > 0:
                left -= page
                rows = await self._redis.xrevrange(events, end, "-", count=page)
                found += newest_chat(rows, count - len(found), self.bad, self.max_body)
                if len(rows) < page:
                    break
                end = f"({rows[-1][0]}"
        found.reverse()
        return found

    async def counter(self, room: str | None = None) -> int:
        """``room``'s seq counter (None: the default room's): its last seq (0: none)."""
        with self._guard("read the counter"):
            value = await self._redis.get(self._keys.seq_of(room or self.room))
        return int(value) if value and value.isdigit() else 0

    async def append_many(self, items: Sequence[tuple[Any, ...]]) -> list[int | Refusal]:
        """Append broadcast events, each after the checks its type calls for, in one script
        call (one round trip, one command). Redis runs them in order, each checked on its
        own (a refused one changes nothing and the rest still go on); the results come in
        order.

        Each item is ``(event, user, old_key[, request])``: ``event`` with seq 0 (the seq
        is assigned here), ``user`` the user's record (for a rename, with the new name; a
        message, action or leave needs only the user's id, and may give it alone),
        ``old_key`` the old name's key for a rename, else None; ``request``, a message's or
        action's request key (sender's name key and id): appended only if not seen within
        the request TTL, on any node, else a :class:`Repeat` of the first try's seq.
        Each result is the event's new ``seq``, or a refusal: :attr:`Refusal.TAKEN` (join,
        rename: the name key is claimed by another id), :attr:`Refusal.DUPLICATE` (join:
        another node's user has this id) or :attr:`Refusal.GONE` (rename, leave, message,
        action: the user is not in the room — left already, or reaped — or is another
        node's).

        The batch goes as one MessagePack argument, whatever its size: redis-py packs each
        argument of a command in pure Python, which cost more than the rest of an append.

        If this raises :class:`LedgerUnavailable`, any of them may or may not be appended.
        """
        if not items:
            return []
        default = self.room
        batch = [append_item(*item, default_room=default) for item in items]
        ttl, cap = max(1, round(self.config.request_ttl * 1000)), self.config.request_table
        args = (self.stream_maxlen, self.node, pack(batch), ttl, max(1, cap))
        with self._guard(f"append {len(items)} events"):
            results = await self._append(keys=self._append_keys, args=args)
        return [append_result(result) for result in results]

    async def read(
        self, after_id: str, *, block_ms: int | None = None, count: int | None = None
    ) -> list[Entry]:
        """The default room's entries after ``after_id``, waiting up to ``block_ms`` for
        one (:meth:`read_rooms`); ``[]`` on timeout."""
        found = await self.read_rooms(None, {self.room: after_id}, block_ms=block_ms, count=count)
        self.last_read = found.read_to.get(self.room)  # where the next read goes on from
        return found.entries.get(self.room, [])

    async def read_rooms(
        self,
        log_after: str | None,
        after: dict[str, str],
        *,
        block_ms: int | None = None,
        count: int | None = None,
    ) -> RoomsRead:
        """What was added after ``log_after`` to the rooms log (None: not read) and after
        ``after[room]`` to each room's stream, in one XREAD (waiting up to ``block_ms`` for
        any of them, by default ``ledger_read_block``; ``block_ms <= 0`` does not wait, as
        Redis's ``BLOCK 0`` would wait forever; ``ledger_read_count`` entries of each at
        most, or ``count``)."""
        if block_ms is None:
            block_ms = round(self.config.ledger_read_block * 1000)
        rooms = {self._keys.events_of(room): room for room in after}
        keys = [*([self._keys.rooms_log] if log_after is not None else []), *rooms]
        ids = [*([log_after] if log_after is not None else []), *after.values()]
        count = self.config.ledger_read_count if count is None else count
        with self._guard("read"):
            if block_ms <= 0:
                reply = await self._redis.execute_command(
                    "XREAD", "COUNT", count, "STREAMS", *keys, *ids
                )
            else:
                async with asyncio.timeout(block_ms / 1000 + self.timeout):
                    reply = await self._blocking.execute_command(
                        "XREAD", "COUNT", count, "BLOCK", block_ms, "STREAMS", *keys, *ids
                    )
        return RoomsRead.of(reply, self._keys.rooms_log, rooms, self.bad.skip, self.max_body)

    async def publish_private(self, node: str, payload: dict[str, Any]) -> bool:
        """Send ``payload`` to ``node``'s private channel (at most once). False if nobody
        was subscribed to hear it: that node is gone or has lost Redis."""
        with self._guard("publish"):
            heard = await self._redis.publish(
                self._keys.private_prefix + node, compact_json(payload)
            )
        return bool(heard)

    async def private_messages(self) -> AsyncIterator[dict[str, Any]]:
        """This node's private payloads, as they come; subscribes when iteration starts.

        Ends by raising :class:`LedgerUnavailable` when the connection is lost; what was
        published meanwhile is lost (pub/sub keeps nothing). Iterate again to resubscribe.
        """
        async for payload in self._subscribed(self._keys.private_prefix + self.node):
            yield payload

    def _subscribed(
        self, channel: str, first: dict[str, Any] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """The JSON object payloads published on ``channel``; ``first``, if given, is
        yielded once subscribed (before any payload)."""
        poll, within = self.config.pubsub_poll, self.timeout
        return subscribed(
            self._redis, self.url, channel, poll=poll, close_within=within, first=first
        )

    # --- moderation: bans, mutes, the topic ----------------------------------------------

    async def moderate(self, kind: str, key: str, data: dict[str, Any] | None) -> None:
        """Keep (``data`` None: forget) a ban, mute or topic record under ``key`` and tell
        every node. Atomic."""
        if kind not in MODERATION_KINDS:
            raise ValueError(f"not a moderation kind: {kind!r}")
        payload = {"kind": kind, "key": key, "data": data, "node": self.node}
        with self._guard(f"keep a {kind}"):
            async with self._redis.pipeline(transaction=True) as pipe:
                if data is None:
                    pipe.hdel(self._keys.mod_prefix + kind, key)
                else:
                    pipe.hset(self._keys.mod_prefix + kind, key, compact_json(data))
                pipe.publish(self._keys.mod_channel, compact_json(payload))
                await pipe.execute()

    async def moderation_state(self, now: float | None = None) -> dict[str, dict[str, Any]]:
        """The bans, mutes and topic records kept: ``kind -> key -> record``, without the
        expired ones (which are deleted)."""
        now = time.time() if now is None else now
        found: dict[str, dict[str, Any]] = {}
        with self._guard("read the moderation state"):
            async with self._redis.pipeline(transaction=True) as pipe:
                for kind in MODERATION_KINDS:
                    pipe.hgetall(self._keys.mod_prefix + kind)
                replies = await pipe.execute()
            for kind, reply in zip(MODERATION_KINDS, replies, strict=True):
                found[kind], expired = live_records(reply, now)
                if expired:
                    await self._redis.hdel(self._keys.mod_prefix + kind, *expired)
        return found

    async def moderation_changes(self) -> AsyncIterator[dict[str, Any]]:
        """Every node's moderation changes as published by :meth:`moderate`; the first item,
        once subscribed, is ``{"state": moderation_state()}`` (so nothing published between
        a read of the state and the subscription is missed). Ends as
        :meth:`private_messages` does."""
        async for payload in self._subscribed(self._keys.mod_channel, {"state": None}):
            if "state" in payload and payload["state"] is None:
                payload = {"state": await self.moderation_state()}
            yield payload

    async def reap_dead_nodes(self, now_ts: float) -> int:
        """Remove every node whose heartbeat expired, appending a leave (reason ``error``)
        for each of its users; returns how many leaves were appended. Atomic."""
        leave = leave_parts(p.LeaveReason.ERROR, now_ts)
        args = [self.stream_maxlen, self._keys.heartbeat_prefix, *leave]
        with self._guard("reap"):
            return int(await self._reap(keys=self._shared_keys, args=args))

    async def forget_node(self, now_ts: float | None = None) -> None:
        """On graceful shutdown: a leave (reason ``shutdown``) for each of this node's users,
        then drop its heartbeat and its place in the nodes set. Atomic."""
        ts = now_ts if now_ts is not None else time.time()
        keys = [*self._shared_keys, self._keys.heartbeat_prefix + self.node]
        args = [self.stream_maxlen, self.node, *leave_parts(p.LeaveReason.SHUTDOWN, ts)]
        with self._guard("forget node"):
            await self._forget(keys=keys, args=args)
