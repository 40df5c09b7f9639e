"""The room's stream as a follower reads it: entries to events, and the bad ones left out.

Every node follows the room's stream in Redis (records.py says what an entry holds). An
entry that is not one the scripts write — from an old or buggy writer, or typed by hand
with ``XADD`` — must not stop the room: it is skipped, and logged once, with its stream id
(:class:`BadEntries`), wherever it is met — the history read at sync, the catch-up after an
outage, the reader. Bad is: not ``SEQ NODE BODY`` (records.py), a body that is not a
broadcast event's JSON (:func:`event_of`), or a seq out of the room's order
(:func:`out_of_order`): one already passed (a replay: the room's clients would take it for
a history that started over) or one beyond the room's counter (a made-up seq: every real
event after it would look like a replay).

What is checked costs nothing on the way of a good entry beyond what reading it costs: the
checks run once the quick way of reading it failed, and a seq is compared with the last.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from typing import Any

import msgspec

from chatroom import protocol as p
from chatroom.server.cluster.records import (
    BROADCAST_TYPES,
    HISTORY_TYPES,
    Entry,
    UserRecord,
    id_after,
    row_entries,
)

log = logging.getLogger("chatroom.server")

BAD_EVENT = (p.ProtocolError, ValueError, TypeError, RecursionError, msgspec.MsgspecError)


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
    for a body the strict one will not take). Raises :class:`~chatroom.protocol.
    ProtocolError`, saying why on one short line, if it is not a broadcast event."""
    text = entry.text
    if text.endswith("}"):
        try:  # the tag first, as msgspec reads fastest
            return _decode_broadcast(f'{text[:-1]},"seq":{entry.seq}}}')
        except (msgspec.MsgspecError, ValueError, RecursionError):
            pass
    try:
        data = entry.body
        if not isinstance(data, dict):
            raise p.ProtocolError(f"its event is a JSON {type(data).__name__}, not an object")
        data["seq"] = entry.seq
        event = p.from_wire_dict(data)
    except p.ProtocolError:
        raise
    except BAD_EVENT as exc:
        why = "nested too deep" if isinstance(exc, RecursionError) else "not JSON"
        raise p.ProtocolError(f"its event is {why}") from None
    if not isinstance(event, p.Message | p.Action | p.Join | p.Leave | p.Rename):
        kind = event.type if isinstance(event, p.UnknownEvent) else type(event).__name__
        raise p.ProtocolError(f"{str(kind)[:24]!r} is not a broadcast event")
    return event


def out_of_order(seq: int, last: int, counter: int | None = None) -> str | None:
    """Why an event with ``seq`` cannot follow the room's ``last`` (None: it can). Beyond
    ``last + 1`` it can if ``counter`` (the room's counter, read after the event) is not
    below it: events were missed (trimmed, or bad), not made up."""
    if seq <= last:
        return f"seq {seq} is not after {last}, the room's last (a replay)"
    if counter is not None and seq > counter:
        return f"seq {seq} is beyond the room's counter ({counter})"
    return None


def in_history(entry: Entry, bad: BadEntries) -> bool:
    """Whether ``entry`` is a message or an action; one that is not a broadcast event's
    JSON object is told to ``bad``."""
    try:
        kind = entry.body.get("type")
    except (ValueError, RecursionError, AttributeError):
        bad.skip(entry.stream_id, "its event is not a JSON object")
        return False
    if not isinstance(kind, str) or kind not in BROADCAST_TYPES:
        bad.skip(entry.stream_id, f"{str(kind)[:24]!r} is not a broadcast event")
        return False
    return kind in HISTORY_TYPES


def newest_chat(rows: list[Any], count: int, bad: BadEntries, max_body: int) -> list[Entry]:
    """The newest ``count`` messages and actions of XREVRANGE's ``rows`` (newest first),
    newest first; the bad entries told to ``bad``."""
    found: list[Entry] = []
    for stream_id, fields in rows:  # newest first, and so their events
        for entry in reversed(row_entries(stream_id, fields, bad.skip, max_body)):
            if in_history(entry, bad):
                found.append(entry)
                if len(found) == count:
                    return found
    return found


def history_events(
    entries: list[Entry], until_seq: int, bad: BadEntries
) -> list[p.Message | p.Action]:
    """The messages and actions of history ``entries`` (oldest first, all up to a snapshot
    whose seq is ``until_seq``), each after the one before it; the others told to ``bad``."""
    events: list[p.Message | p.Action] = []
    last = 0
    for entry in entries:
        try:
            event = event_of(entry)
        except p.ProtocolError as exc:
            bad.skip(entry.stream_id, str(exc))
            continue
        why = out_of_order(entry.seq, last, until_seq)
        if why is not None:
            bad.skip(entry.stream_id, why)
        elif isinstance(event, p.Message | p.Action):
            events.append(event)
            last = entry.seq
    return events


async def kept_chat(
    ledger: Any, position: Any, keep: int, room: str | None = None
) -> tuple[list[p.Message | p.Action], int]:
    """What a node keeps of ``room`` (None: the default room) for /history at sync: the
    last ``keep`` messages and actions up to and including the last entry of its
    ``position`` (a snapshot's, or a room's :class:`~chatroom.server.cluster.records.
    Position`; that entry is in the past too), and the seq after which the stream holds
    every event: the one before its first (0: never trimmed; an empty stream holds nothing
    up to the room's seq). ``ledger``: the node's RedisLedger."""
    entries = await ledger.history(id_after(position.last_id), keep, room)
    history = history_events(entries, position.seq, ledger.bad)
    first = position.first_seq
    return history, max(first - 1, 0) if first else position.seq


class BadEntries:
    """Where a follower's bad entries are logged: each once (by stream id, as many as
    ``remember`` of the latest), and no more than ``burst`` lines in ``interval`` seconds;
    past that, one line at the end of the interval says how many more were skipped."""

    def __init__(self, interval: float, burst: int = 100, remember: int = 10_000) -> None:
        self.interval = interval
        self.burst = burst
        self.remember = remember
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._window = -interval  # when this interval began (monotonic)
        self._logged = 0  # lines logged in it
        self._unlogged = 0  # entries skipped in it without a line
        self.skipped = 0  # in all

    def skip(self, stream_id: str, why: str) -> None:
        """``stream_id`` (or one line of it) is skipped, because ``why``."""
        if stream_id in self._seen:
            return
        why = why if len(why) <= 160 else f"{why[:160]}..."
        self._seen[stream_id] = None
        if len(self._seen) > self.remember:
            self._seen.popitem(last=False)
        self.skipped += 1
        now = time.monotonic()
        if now - self._window >= self.interval:
            self._window, self._logged = now, 0
        if self._logged < self.burst:
            self._logged += 1
            log.warning("cluster: skipped a bad entry of the room's stream, %s: %s", stream_id, why)
            return
        if not self._unlogged:
            with_loop = asyncio.get_running_loop()
            with_loop.call_later(self._window + self.interval - now, self._tell_unlogged)
        self._unlogged += 1

    def _tell_unlogged(self) -> None:
        more, self._unlogged = self._unlogged, 0
        log.warning(
            "cluster: skipped %d more bad entries of the room's stream in %gs",
            more,
            self.interval,
        )
