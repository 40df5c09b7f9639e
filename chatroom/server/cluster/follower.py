"""Which rooms' streams a node follows, where it got to in each, and their events handed
to the room in each stream's order (docs/SCALING.md, "Many rooms").

Every room is its own stream and seq in Redis. A node follows every room in use — the
default room, the listed ones (``--rooms``) and every room somebody is in, on any node —
in one ``XREAD`` over their streams and the rooms log (lua/common.lua): a room coming into
use is followed from where its stream was; one going out of use is read up to its last
entry, then dropped. So every node knows who is in every room (``who``, ``/rooms``, names
unique server-wide) and a room nobody is in costs nothing. An entry that is not an event,
or is another room's, or is out of its room's order, is skipped and logged once
(:mod:`~chatroom.server.cluster.stream`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from chatroom import protocol as p
from chatroom.server.cluster.reads import RoomsRead
from chatroom.server.cluster.records import Entry, Position, parse_stream_id
from chatroom.server.cluster.redis_ledger import LedgerUnavailable, RedisLedger
from chatroom.server.cluster.stream import event_of, out_of_order
from chatroom.server.core.inputs import Input, Sequenced

log = logging.getLogger("chatroom.server")


class Follower:
    """One node's place in the rooms' streams. ``deliver`` hands the room each event;
    ``lost`` is told when Redis is lost (and ``up`` says whether it still is there)."""

    def __init__(
        self,
        ledger: RedisLedger,
        deliver: Callable[[Input], None],
        lost: Callable[[LedgerUnavailable], None],
        up: Callable[[], bool],
    ) -> None:
        self.ledger = ledger
        self.default = ledger.room
        self.deliver = deliver
        self._lost = lost
        self._up = up
        self.positions: dict[str, str] = {self.default: "0-0"}  # the id read to, by room
        self.seqs: dict[str, int] = {}  # the seq applied last, by room
        self.log_id = "0-0"  # the rooms log's
        self._closing: dict[str, str] = {}  # rooms out of use: read up to this id
        self._counters: dict[str, int] = {}  # rooms' counters, read for one batch
        # This node's events the ledger took, by room and seq, until they are read: used
        # instead of decoding its own JSON again (~0.5 us an event).
        self.sent: dict[tuple[str, int], p.BroadcastEvent] = {}

    def took(self, event: p.BroadcastEvent, seq: int) -> None:
        """The ledger gave this node's ``event`` ``seq``: kept until it is read back."""
        room = event.room or self.default
        if seq > self.seqs.get(room, 0):  # else the reader was first: it decoded the entry
            # A leave's body always names its room (the script writes it).
            leave = type(event) is p.Leave and event.room is None
            self.sent[room, seq] = p.replace(event, room=room) if leave else event

    def start_at(self, positions: dict[str, Position], log_id: str) -> None:
        """Follow these rooms from a snapshot's positions (and the rooms log from its id)."""
        self.positions = {room: position.last_id for room, position in positions.items()}
        self.seqs = {room: position.seq for room, position in positions.items()}
        self.log_id, self._closing = log_id, {}

    async def read(self) -> RoomsRead:
        """One read of every followed stream (waits for any); raises LedgerUnavailable."""
        return await self.ledger.read_rooms(self.log_id, self.positions)

    async def deliver_read(self, found: RoomsRead) -> None:
        """Hand the room what ``found`` holds, room by room, then follow the rooms log."""
        self._counters.clear()  # read again for each batch, if they have to be
        for room, entries in found.entries.items():
            if not await self._apply(room, entries, found.read_to[room]):
                return  # lost Redis meanwhile: the re-sync reads on from the snapshot
        self._follow(found.log)

    async def _apply(self, room: str, entries: list[Entry], read_to: str) -> bool:
        """Deliver ``room``'s ``entries`` in order (what they broadcast shares the one flush
        that follows); False if Redis was lost meanwhile."""
        if room not in self.positions:
            return True
        sent, deliver, node = self.sent, self.deliver, self.ledger.node
        last = self.seqs.get(room, 0)
        for entry in entries:
            self.positions[room] = entry.stream_id
            seq = entry.seq
            if seq != last + 1 and not await self._follows(entry, last, room):
                if not self._up():
                    return False
                continue
            mine = sent.pop((room, seq), None) if entry.node == node else None
            if mine is not None:
                event = p.replace(mine, seq=seq)
            else:
                try:
                    event = event_of(entry)
                except p.ProtocolError as exc:
                    self.ledger.bad.skip(entry.stream_id, str(exc))
                    continue
                if (event.room or self.default) != room:  # written to another room's stream
                    self.ledger.bad.skip(entry.stream_id, f"its event is not {room!r}'s")
                    continue
            last = self.seqs[room] = seq
            deliver(Sequenced(event, entry.node))
        # Past the bad entries too: a batch of them alone is not read again.
        self.positions[room] = read_to
        closing = self._closing.get(room)
        if closing is not None and parse_stream_id(read_to) >= parse_stream_id(closing):
            self._unfollow(room)
        return True

    def _follow(self, changes: list[tuple[str, str]]) -> None:
        """The rooms log: follow a room that came into use from where its stream was, and
        stop following one gone out of use once its last entry is read."""
        for log_id, text in changes:
            self.log_id = log_id
            sign, room, *where = text[:1], *text[1:].split(" ")
            if p.room_key(room) != room:
                log.warning("cluster: skipped a bad entry of the rooms log, %s", log_id)
                continue
            if sign == "+" and len(where) == 2 and where[1].isdigit():
                self._closing.pop(room, None)
                if room not in self.positions:
                    self.positions[room] = where[0]
                    self.seqs[room] = int(where[1])
            elif sign == "-" and where and room in self.positions:
                if parse_stream_id(self.positions[room]) >= parse_stream_id(where[0]):
                    self._unfollow(room)
                else:
                    self._closing[room] = where[0]

    def _unfollow(self, room: str) -> None:
        self._closing.pop(room, None)
        if room != self.default and room not in self.ledger.listed:
            self.positions.pop(room, None)
            self.seqs.pop(room, None)

    async def _follows(self, entry: Entry, last: int, room: str) -> bool:
        """Whether ``entry``, whose seq is not ``last + 1``, still follows ``last``: it is
        after it and not beyond ``room``'s counter (events were missed: trimmed, or bad).
        Else it is skipped as bad. One more round trip for a batch with such an entry, at
        most: every entry of the batch was in the stream before the counter was read."""
        counter = self._counters.get(room)
        if entry.seq > last and counter is None:
            try:
                counter = self._counters[room] = await self.ledger.counter(room)
            except LedgerUnavailable as exc:
                self._lost(exc)
                return False
        why = out_of_order(entry.seq, last, counter)
        if why is not None:
            self.ledger.bad.skip(entry.stream_id, why)
        return why is None

    async def catch_up(self, room: str, until_id: str, until_seq: int) -> None:
        """After an outage, apply what this node missed of ``room``, up to the snapshot, if
        Redis still has it (it kept its data and the stream was not trimmed past us): then
        our users see every event, with no gap in ``seq``."""
        applied = self.seqs.get(room, 0)
        if room not in self.positions or not applied < until_seq:
            return
        end = parse_stream_id(until_id)
        missed = min(until_seq - applied, self.ledger.stream_maxlen)
        found = await self.ledger.read_rooms(
            self.log_id, {room: self.positions[room]}, block_ms=0, count=missed
        )
        events: list[tuple[p.BroadcastEvent, Entry]] = []
        for entry in found.entries.get(room, []):
            if parse_stream_id(entry.stream_id) > end:
                break
            last = events[-1][0].seq if events else applied
            why = out_of_order(entry.seq, last, until_seq)
            if why is None:
                try:
                    events.append((event_of(entry), entry))
                    continue
                except p.ProtocolError as exc:
                    why = str(exc)
            self.ledger.bad.skip(entry.stream_id, why)
        if not events or events[0][0].seq != applied + 1:
            return  # Redis restarted or trimmed: the snapshot alone will have to do
        for event, entry in events:
            self.deliver(Sequenced(event, entry.node))
