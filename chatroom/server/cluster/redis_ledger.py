"""The Redis side of one shared room: users, names, nodes, and the room's event stream.

Several ``chatroom-server`` nodes serve one room through Redis. This module keeps what they
share and nothing else — no room rules, no sockets to clients:

- ``chatroom:{ROOM}:seq`` — the room-wide sequence counter (INCR);
- ``chatroom:{ROOM}:epoch`` — which history ``seq`` counts in: made with the counter (or
  by the first snapshot), so a Redis that restarted empty has a new one, and made anew by a
  snapshot that finds ``seq`` below what the node saw in the same epoch (Redis came back
  from an older snapshot of its data);
- ``chatroom:{ROOM}:events`` — a Stream of every broadcast event, in ``seq`` order: each
  entry holds up to :data:`EVENTS_PER_ENTRY` events of one script call, as one field ``e``
  of ``"SEQ NODE BODY"`` lines joined by newlines, BODY the event's compact JSON wire dict
  without ``seq`` (servers before 2026-12 wrote one event an entry in three fields, ``seq``,
  ``body``, ``node``: still read); capped with ``MAXLEN ~`` at ``stream_maxlen`` events'
  worth of full entries (a quiet room's entries hold fewer);
- ``chatroom:{ROOM}:users`` — hash id -> JSON of a :class:`UserRecord`;
- ``chatroom:{ROOM}:names`` — hash name key (casefolded name) -> id: the name claims;
- ``chatroom:{ROOM}:nodes`` — set of nodes, each alive while its heartbeat key
  ``chatroom:{ROOM}:node:NODE`` (a string with a TTL) exists;
- pub/sub channel ``chatroom:{ROOM}:private:NODE`` — payloads for one node (``/msg``);
- ``chatroom:{ROOM}:mod:ban``, ``:mod:mute``, ``:mod:topic`` — hashes key -> JSON record of
  the bans, the mutes (by name key) and the topic, as the state file keeps them (a record's
  ``until`` is when it expires: expired ones are dropped when read); every change is also
  published on ``chatroom:{ROOM}:moderation`` (``{"kind", "key", "data", "node"}``), so
  every node enforces it at once.

The ``{ROOM}`` hash tag keeps one room's keys in one Redis Cluster slot. Every change that
must be atomic — checking a name claim and appending the event, reaping a dead node's users
— is one Lua script, so any number of nodes may call anything at once.

Every Redis failure (connection refused or lost, timeout, a Redis error reply) is raised as
:class:`LedgerUnavailable`; no redis-py exception leaves this module. Commands are never
retried here: an :meth:`RedisLedger.append_many` that raised may or may not have been
applied, and whoever calls it decides what to tell the user. Refusals are
:class:`~chatroom.server.core.refusal.Refusal` values; the Lua scripts are in ``lua/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import msgspec
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from chatroom import protocol as p
from chatroom.protocol import compact_json, name_skeleton
from chatroom.server.config import ROOM_NAME
from chatroom.server.core.refusal import Refusal

NODE_RE = re.compile(r"[^\s{}\x00-\x1f\x7f]{1,128}")  # in key names: no braces (hash tags)
HISTORY_TYPES = frozenset({"message", "action"})
MODERATION_KINDS = ("ban", "mute", "topic")


class LedgerUnavailable(Exception):
    """Redis cannot be reached, or the connection to it was lost; the message is one line."""


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A user as the room's nodes share it; ``key`` is ``name_skeleton(name)``: a name and
    its look-alikes are one claim room-wide."""

    id: str
    name: str
    key: str
    node: str

    @classmethod
    def of(cls, id: str, name: str, node: str) -> UserRecord:
        """The record for ``name``, its key computed here (casefold, which Lua cannot do)."""
        return cls(id=id, name=name, key=name_skeleton(name), node=node)

    def to_json(self) -> str:
        return compact_json(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> UserRecord:
        data = json.loads(text)
        return cls(id=data["id"], name=data["name"], key=data["key"], node=data["node"])


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Who is in the room, the stream id to read on from, and the seq it had, taken at once."""

    users: dict[str, UserRecord]
    last_id: str  # "0-0" when the stream is empty
    seq: int  # 0 when nothing was ever appended
    epoch: str  # which history seq counts in (see the module's docstring)


class Entry(msgspec.Struct, frozen=True, gc=False):
    """One event of the stream; ``text`` is its wire dict's JSON without ``seq``, as the
    node that appended it wrote it (decoded once, where it is needed: :attr:`body`, or
    straight to an event). A Struct: one is made per event read, a ninth of a frozen
    dataclass's cost."""

    stream_id: str
    seq: int
    text: str
    node: str

    @property
    def body(self) -> dict[str, Any]:
        """The event's wire dict without ``seq``."""
        return json.loads(self.text)


# --- Lua ---------------------------------------------------------------------------------
# The scripts are package data (chatroom/server/cluster/lua/*.lua). What they share with Python is
# passed in: refusal reasons as constants put before the script's text, and leave bodies
# (reason included) encoded by Python, see _leave_parts.


def _script(*files: str, **constants: str) -> str:
    """The Lua source of ``files`` (names in ``lua/``, without ``.lua``), after a line
    ``local NAME = "value"`` for each of ``constants``."""
    lua = resources.files("chatroom.server.cluster") / "lua"
    prelude = "".join(f"local {key} = {json.dumps(value)}\n" for key, value in constants.items())
    return prelude + "".join((lua / f"{name}.lua").read_text() for name in files)


# Events per stream entry, at most (see lua/common.lua): the stream keeps between
# stream_maxlen / EVENTS_PER_ENTRY (a quiet room, one event an entry) and stream_maxlen events.
EVENTS_PER_ENTRY = 16
_LUA_APPEND = _script(
    "common",
    "append",
    TAKEN=Refusal.TAKEN,
    GONE=Refusal.GONE,
    DUPLICATE=Refusal.DUPLICATE,
    EVENTS_PER_ENTRY=str(EVENTS_PER_ENTRY),
)
_LUA_REAP = _script("common", "reap", EVENTS_PER_ENTRY=str(EVENTS_PER_ENTRY))
_LUA_FORGET = _script("common", "forget", EVENTS_PER_ENTRY=str(EVENTS_PER_ENTRY))
_LUA_SNAPSHOT = _script("snapshot")


def stream_body(event: p.BroadcastEvent) -> str:
    """What the stream keeps of a broadcast event: its JSON without ``seq`` (the script
    numbers it; a reader puts the seq back, see cluster.event_of). A string: the scripts'
    MessagePack decoder takes no binary.

    The event's ``seq`` must be 0: it is the first field after ``type``, so ``,"seq":0`` is
    cut where it first occurs (a type tag cannot contain it).
    """
    if event.seq != 0:
        raise ValueError(f"a {event.type} to append must have seq 0, not {event.seq}")
    return p.encode_json(event).replace(',"seq":0', "", 1)


_pack = msgspec.msgpack.Encoder().encode
_BY_ID_ALONE = (p.Message, p.Action, p.Leave)


def _append_item(
    event: p.BroadcastEvent, user: UserRecord | str, old_key: str | None
) -> tuple[str, ...]:
    """One event's entry in the append script's batch: type, stream body, user id, then
    for a join or rename the user's JSON, its key and the old key (``""`` for a join).
    A message, action or leave stops after the id: every string less is one the script's
    MessagePack decoder does not make (a third of its time)."""
    if isinstance(event, _BY_ID_ALONE):
        user_id = user.id if isinstance(user, UserRecord) else user
        if not isinstance(user_id, str):
            raise ValueError(f"a {event.type} needs the user's record or id")
        return (event.type, stream_body(event), user_id)
    if not isinstance(user, UserRecord):
        raise ValueError(f"a {event.type} needs the user's record")
    if isinstance(event, p.Rename):
        if old_key is None:
            raise ValueError("a rename needs old_key")
        return (event.type, stream_body(event), user.id, user.to_json(), user.key, old_key)
    if not isinstance(event, p.Join):
        raise ValueError(f"cannot append an event of type {event.type!r}")
    return (event.type, stream_body(event), user.id, user.to_json(), user.key, "")


def _leave_parts(reason: p.LeaveReason, ts: float) -> list[str]:
    """The stream body of a leave with ``reason`` at ``ts``, in three parts around where the
    user's id and name go: the scripts that remove users fill in the JSON strings."""
    leave = p.Leave(seq=0, ts=float(ts), id="\0", name="\0", reason=reason)
    parts = stream_body(leave).split('"\\u0000"')
    assert len(parts) == 3, parts
    return parts


def parse_stream_id(stream_id: str) -> tuple[int, int]:
    """``(ms, seq)`` of a stream id ``"MS-SEQ"`` (``"MS"`` alone: seq 0); the tuples order
    as Redis orders the ids."""
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


def id_after(stream_id: str) -> str:
    """The smallest stream id greater than ``stream_id``.

    ``history(id_after(snapshot.last_id), n)`` is the newest ``n`` chat entries up to and
    including the snapshot's last one (``history`` itself is strictly before its id).
    """
    ms, seq = parse_stream_id(stream_id)
    return f"{ms}-{seq + 1}"


def _redact(url: str) -> str:
    """``url`` without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + host))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text


def _row_entries(stream_id: str, fields: dict[str, str]) -> list[Entry]:
    """The events of one stream entry (a dict of its fields), in order."""
    if "e" in fields:
        return _lines(stream_id, fields["e"])
    # As servers before 2026-12 wrote it: one event in three fields.
    return [Entry(stream_id, int(fields["seq"]), fields["body"], fields["node"])]


def _lines(stream_id: str, value: str) -> list[Entry]:
    """The events of an entry's ``e`` field: ``SEQ NODE BODY`` lines."""
    entries = []
    for line in value.split("\n"):
        seq, node, text = line.split(" ", 2)
        entries.append(Entry(stream_id, int(seq), text, node))
    return entries


def _raw(response: Any, **options: Any) -> Any:
    """XREAD's reply as Redis sent it: :meth:`RedisLedger.read` takes it apart itself, at
    a fraction of the cost of redis-py's dict per entry."""
    return response


def _entries(rows: list[Any]) -> list[Entry]:
    """The events of XREAD's raw rows, ``[id, [field, value, ...]]`` each, in order; the
    scripts write one field, ``e``: ``"SEQ NODE BODY"`` lines (several events an entry)."""
    entries = []
    for stream_id, fields in rows:
        if isinstance(fields, list):
            if len(fields) == 2 and fields[0] == "e":
                entries += _lines(stream_id, fields[1])
                continue
            fields = dict(zip(fields[::2], fields[1::2], strict=True))
        entries += _row_entries(stream_id, fields)
    return entries


class RedisLedger:
    """One node's handle on one room kept in Redis. Async; safe to share within one loop.

    Two connection pools: one for commands (socket timeout ``timeout``) and one for the
    blocking ``XREAD`` of :meth:`read`, bounded by ``block_ms`` plus ``timeout`` instead.
    Nothing is retried automatically (a retried script could append an event twice).
    """

    def __init__(
        self,
        url: str,
        room: str,
        node: str,
        *,
        stream_maxlen: int = 10_000,
        heartbeat_ttl: float = 5.0,
        timeout: float = 3.0,
    ) -> None:
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
        prefix = f"chatroom:{{{room}}}"
        self._seq_key = f"{prefix}:seq"
        self._events_key = f"{prefix}:events"
        self._users_key = f"{prefix}:users"
        self._names_key = f"{prefix}:names"
        self._nodes_key = f"{prefix}:nodes"
        self._heartbeat_prefix = f"{prefix}:node:"
        self._private_prefix = f"{prefix}:private:"
        self._epoch_key = f"{prefix}:epoch"
        self._mod_prefix = f"{prefix}:mod:"
        self._mod_channel = f"{prefix}:moderation"
        self._shared_keys = [
            self._seq_key,
            self._events_key,
            self._users_key,
            self._names_key,
            self._nodes_key,
            self._epoch_key,
        ]
        common: dict[str, Any] = {
            "decode_responses": True,
            "socket_connect_timeout": timeout,
            "retry": Retry(NoBackoff(), 0),
            "health_check_interval": max(1, math.ceil(timeout)),
        }
        self._redis = aioredis.from_url(url, socket_timeout=timeout, **common)
        # XREAD BLOCK waits longer than any command may; read() bounds it with asyncio.
        self._blocking = aioredis.from_url(url, socket_timeout=None, **common)
        for client in (self._redis, self._blocking):
            client.set_response_callback("XREAD", _raw)
        self._append = self._redis.register_script(_LUA_APPEND)
        self._reap = self._redis.register_script(_LUA_REAP)
        self._forget = self._redis.register_script(_LUA_FORGET)
        self._snapshot = self._redis.register_script(_LUA_SNAPSHOT)

    def _heartbeat_key(self, node: str) -> str:
        return self._heartbeat_prefix + node

    @contextlib.contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        """Turn any Redis or socket failure into :class:`LedgerUnavailable`."""
        try:
            yield
        except (RedisError, OSError, TimeoutError) as exc:
            raise LedgerUnavailable(
                f"Redis at {_redact(self.url)}: {what} failed: {_one_line(exc)}"
            ) from exc

    async def connect(self) -> None:
        """Check that Redis answers (PING); raise :class:`LedgerUnavailable` if not.

        Every pooled connection is dropped first: after an outage (Redis restarted, the
        network cut) the pools may hold connections that are dead without knowing it, and
        each would fail the first command sent on it: one outage, lost twice.
        """
        for client in (self._redis, self._blocking):
            with contextlib.suppress(RedisError, OSError):
                await client.connection_pool.disconnect(inuse_connections=False)
        try:
            await self._redis.ping()
        except (RedisError, OSError, TimeoutError) as exc:
            raise LedgerUnavailable(
                f"cannot reach Redis at {_redact(self.url)}: {_one_line(exc)}"
            ) from exc

    async def close(self) -> None:
        """Close both connection pools. Never raises."""
        for client in (self._redis, self._blocking):
            with contextlib.suppress(Exception):
                await client.aclose()

    async def register_node(self) -> None:
        """Add this node to the room's nodes and start its heartbeat."""
        await self.heartbeat()

    async def heartbeat(self) -> None:
        """Refresh this node's heartbeat key (TTL ``heartbeat_ttl``).

        It also re-adds the node to the nodes set, so a node that was reaped while it was
        only slow is watched again (its users were reaped: their leaves are in the stream).
        """
        ttl_ms = max(1, round(self.heartbeat_ttl * 1000))
        with self._guard("heartbeat"):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.sadd(self._nodes_key, self.node)
                pipe.set(self._heartbeat_key(self.node), "1", px=ttl_ms)
                await pipe.execute()

    async def snapshot(self, known_epoch: str | None = None, applied_seq: int = 0) -> Snapshot:
        """The users, the last stream id, the seq and the epoch, read atomically.

        ``known_epoch`` and ``applied_seq`` are where this node got to: if the ledger is in
        that epoch but its seq is lower, it went back in time (Redis restored an older
        snapshot of its data) and gets a new epoch, so that nobody compares the seqs."""
        keys = [self._seq_key, self._events_key, self._users_key, self._epoch_key]
        with self._guard("snapshot"):
            flat, last_id, seq, epoch = await self._snapshot(
                keys=keys, args=[known_epoch or "", applied_seq]
            )
        users = {}
        for i in range(0, len(flat), 2):
            record = UserRecord.from_json(flat[i + 1])
            users[record.id] = record
        return Snapshot(users=users, last_id=last_id, seq=int(seq), epoch=epoch)

    async def history(self, before_id: str, count: int) -> list[Entry]:
        """The newest ``count`` message/action entries strictly before ``before_id``
        (``"+"``: the end of the stream), oldest first."""
        if count <= 0:
            return []
        found: list[Entry] = []
        end = before_id if before_id == "+" else f"({before_id}"
        page = max(100, 2 * count)
        with self._guard("history"):
            while len(found) < count:
                rows = await self._redis.xrevrange(self._events_key, end, "-", count=page)
                for stream_id, fields in rows:  # newest first, and so their events
                    for entry in reversed(_row_entries(stream_id, fields)):
                        if entry.body.get("type") in HISTORY_TYPES:
                            found.append(entry)
                            if len(found) == count:
                                break
                    if len(found) == count:
                        break
                if len(rows) < page:
                    break
                end = f"({rows[-1][0]}"
        found.reverse()
        return found

    async def append_many(
        self, items: Sequence[tuple[p.BroadcastEvent, UserRecord | str, str | None]]
    ) -> list[int | Refusal]:
        """Append broadcast events, each after the checks its type calls for, in one script
        call (one round trip, one command). Redis runs them in order, each checked on its
        own (a refused one changes nothing and the rest still go on); the results come in
        order.

        Each item is ``(event, user, old_key)``: ``event`` with seq 0 (the seq is assigned
        here), ``user`` the user's record (for a rename, with the new name; a message,
        action or leave needs only the user's id, and may give it alone), ``old_key`` the
        old name's key for a rename, else None.
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
        batch = [_append_item(event, user, old_key) for event, user, old_key in items]
        args = (self.stream_maxlen, self.node, _pack(batch))
        with self._guard(f"append {len(items)} events"):
            results = await self._append(keys=self._shared_keys, args=args)
        return [Refusal(result) if isinstance(result, str) else int(result) for result in results]

    async def read(self, after_id: str, *, block_ms: int = 1000, count: int = 1000) -> list[Entry]:
        """Entries after ``after_id``, waiting up to ``block_ms`` for one; ``[]`` on timeout.

        ``block_ms <= 0`` does not wait (Redis's ``BLOCK 0`` would wait forever).
        """
        key = self._events_key
        with self._guard("read"):
            if block_ms <= 0:
                reply = await self._redis.execute_command(
                    "XREAD", "COUNT", count, "STREAMS", key, after_id
                )
            else:
                async with asyncio.timeout(block_ms / 1000 + self.timeout):
                    reply = await self._blocking.execute_command(
                        "XREAD", "COUNT", count, "BLOCK", block_ms, "STREAMS", key, after_id
                    )
        if not reply:
            return []
        rows = next(iter(reply.values())) if isinstance(reply, dict) else reply[0][1]
        return _entries(rows)

    async def publish_private(self, node: str, payload: dict[str, Any]) -> bool:
        """Send ``payload`` to ``node``'s private channel (at most once). False if nobody
        was subscribed to hear it: that node is gone or has lost Redis."""
        with self._guard("publish"):
            heard = await self._redis.publish(self._private_prefix + node, compact_json(payload))
        return bool(heard)

    async def private_messages(self) -> AsyncIterator[dict[str, Any]]:
        """This node's private payloads, as they come; subscribes when iteration starts.

        Ends by raising :class:`LedgerUnavailable` when the connection is lost; what was
        published meanwhile is lost (pub/sub keeps nothing). Iterate again to resubscribe.
        """
        async for payload in self._subscribed(self._private_prefix + self.node):
            yield payload

    async def _subscribed(
        self, channel: str, first: dict[str, Any] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """The JSON object payloads published on ``channel``; ``first``, if given, is
        yielded once subscribed (before any payload)."""
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        try:
            with self._guard("subscribe"):
                await pubsub.subscribe(channel)
            if first is not None:
                yield first
            while True:
                with self._guard("pubsub"):
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is None or message.get("type") != "message":
                    continue
                try:
                    payload = json.loads(message["data"])
                except ValueError:
                    continue
                if isinstance(payload, dict):
                    yield payload
        finally:
            # Bounded: this runs when the reader is cancelled too, and closing a pub/sub
            # connection that Redis left hanging must not keep the task from ending.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pubsub.aclose(), self.timeout)

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
                    pipe.hdel(self._mod_prefix + kind, key)
                else:
                    pipe.hset(self._mod_prefix + kind, key, compact_json(data))
                pipe.publish(self._mod_channel, compact_json(payload))
                await pipe.execute()

    async def moderation_state(self, now: float | None = None) -> dict[str, dict[str, Any]]:
        """The bans, mutes and topic records kept: ``kind -> key -> record``, without the
        expired ones (which are deleted)."""
        now = time.time() if now is None else now
        found: dict[str, dict[str, Any]] = {}
        with self._guard("read the moderation state"):
            async with self._redis.pipeline(transaction=True) as pipe:
                for kind in MODERATION_KINDS:
                    pipe.hgetall(self._mod_prefix + kind)
                replies = await pipe.execute()
            for kind, reply in zip(MODERATION_KINDS, replies, strict=True):
                found[kind] = {}
                expired = []
                for key, text in reply.items():
                    try:
                        record = json.loads(text)
                    except ValueError:
                        continue
                    if not isinstance(record, dict):
                        continue
                    until = record.get("until")
                    if isinstance(until, int | float) and until <= now:
                        expired.append(key)
                    else:
                        found[kind][key] = record
                if expired:
                    await self._redis.hdel(self._mod_prefix + kind, *expired)
        return found

    async def moderation_changes(self) -> AsyncIterator[dict[str, Any]]:
        """Every node's moderation changes as published by :meth:`moderate`; the first item,
        once subscribed, is ``{"state": moderation_state()}`` (so nothing published between
        a read of the state and the subscription is missed). Ends as
        :meth:`private_messages` does."""
        async for payload in self._subscribed(self._mod_channel, {"state": None}):
            if "state" in payload and payload["state"] is None:
                payload = {"state": await self.moderation_state()}
            yield payload

    async def reap_dead_nodes(self, now_ts: float) -> int:
        """Remove every node whose heartbeat expired, appending a leave (reason ``error``)
        for each of its users; returns how many leaves were appended. Atomic."""
        leave = _leave_parts(p.LeaveReason.ERROR, now_ts)
        args = [self.stream_maxlen, self._heartbeat_prefix, *leave]
        with self._guard("reap"):
            return int(await self._reap(keys=self._shared_keys, args=args))

    async def forget_node(self, now_ts: float | None = None) -> None:
        """On graceful shutdown: a leave (reason ``shutdown``) for each of this node's users,
        then drop its heartbeat and its place in the nodes set. Atomic."""
        ts = now_ts if now_ts is not None else time.time()
        keys = [*self._shared_keys, self._heartbeat_key(self.node)]
        args = [self.stream_maxlen, self.node, *_leave_parts(p.LeaveReason.SHUTDOWN, ts)]
        with self._guard("forget node"):
            await self._forget(keys=keys, args=args)
