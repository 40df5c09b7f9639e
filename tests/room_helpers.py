"""The room's test harness: the adapter's part, played in memory and checked on the way.

The room is called directly — events in with the time, actions out, no sockets — and this
module does what the asyncio adapter does with the actions:

- :class:`Wire` carries out one node's output actions and records its reports (what the
  adapter logs). It checks that every payload is exactly the encoding of its events in the
  format of each connection it reaches, and that a broadcast goes to whoever is subscribed
  to its format at that point.
- :class:`Sim` is the room of one server on a wire, keeping what each connection received,
  and checking operators' passwords as the adapter's pool does (at once, or held until
  :meth:`Sim.run_checks` with ``hold_checks``);
  :func:`room_with`, :func:`only_to` and :func:`broadcast_events` are its shorthands.
- :class:`Cluster` is several shared-room nodes (:meth:`Room.shared`) joined
  by :class:`LedgerSim`, an in-memory ledger that does what the Redis one does. Each node's
  output goes through the server's :class:`~chatroom.server.core.outbox.Outbox` and through a
  wire of its own, so the cluster tests get the single-server payload checks too, and what
  the outbox hands out must be exactly what the wire wrote. What one node asks another
  (an operator's command on its user, and the answer) goes through its JSON form, as on
  the private pub/sub channel, and is delivered when the cluster settles.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass

from chatroom import protocol as p
from chatroom.protocol import (
    Action,
    FormatChanged,
    Join,
    Leave,
    LeaveReason,
    Message,
    OutputFormat,
    Rename,
)
from chatroom.server.config import RoomRules, ServerConfig
from chatroom.server.core import inputs as i
from chatroom.server.core import node_requests
from chatroom.server.core.actions import (
    Admitted,
    AnswerElsewhere,
    Append,
    Broadcast,
    Charge,
    CheckPassword,
    Close,
    Deliver,
    HashPassword,
    Left,
    Moderated,
    ModerateElsewhere,
    Persist,
    Renamed,
    Report,
    RoomAction,
    SendPrivate,
    Subscribe,
    TurnedAway,
    Unsubscribe,
    encode,
)
from chatroom.server.core.addresses import peer_id
from chatroom.server.core.codec import LineTooLong
from chatroom.server.core.outbox import Outbox
from chatroom.server.core.passwords import check_password, hash_password
from chatroom.server.core.refusal import Refusal
from chatroom.server.core.room import LOCAL_NODE, Room

TEXT, JSON = OutputFormat.TEXT, OutputFormat.JSON
LOCAL = "127.0.0.1"
REMOTE = "203.0.113.5"  # TEST-NET-3: not loopback
BROADCAST_TYPES = (Message, Action, Join, Leave, Rename)
T0 = 1_700_000_000.0


def room_rules(**overrides: object) -> RoomRules:
    """The room's rules for a server configured with ``overrides`` (the rest default)."""
    return RoomRules.from_config(ServerConfig(**overrides))


# --- the wire: one node's output actions, checked ----------------------------------------------


@dataclass(frozen=True)
class Out:
    """One write the adapter makes: ``payload`` (encoding ``events``) to ``recipients``."""

    recipients: frozenset[int]
    payload: bytes
    events: tuple[p.Event, ...]


class Wire:
    """What the adapter does with one node's output actions, checked on the way.

    Direct writes (``Deliver``) name their recipients; a ``Broadcast`` goes to whoever is
    subscribed to its format at that point. Every payload must be exactly the encoding of
    its events in the format of each connection it reaches. Reports are kept in ``reports``.
    """

    def __init__(self) -> None:
        self.formats: dict[int, OutputFormat] = {}  # as told by FormatChanged; text before
        self.subscribed: dict[int, OutputFormat] = {}  # subscribers of any room
        self.rooms: dict[int, set[str]] = {}  # the rooms each of them receives
        self.reports: list[Report] = []
        self.charged: dict[int, int] = {}  # extra lines counted against flood control
        self.persisted: list[Persist] = []  # what the state file would keep (--state)

    def expand(self, actions: list[RoomAction]) -> tuple[list[Out], list[int]]:
        """Carry out a single-server room's actions: the writes, and the connections closed."""
        outs: list[Out] = []
        closed: list[int] = []
        for action in actions:
            if isinstance(action, Close):
                closed.append(action.conn)
            elif (out := self.carry(action)) is not None:
                outs.append(out)
        return outs, closed

    def carry(self, action: RoomAction) -> Out | None:
        """Carry out one output action, or record a report; the write it makes, if any.

        ``Close`` and a shared room's ``Append`` and ``SendPrivate`` are the caller's.
        """
        match action:
            case Admitted() | TurnedAway() | Renamed() | Left() | Moderated():
                self.reports.append(action)  # for the adapter's log
                return None
            case Persist():
                self.persisted.append(action)  # for the state file (--state)
                return None
            case Charge():
                assert action.lines > 0, action
                self.charged[action.conn] = self.charged.get(action.conn, 0) + action.lines
                return None
            case Subscribe():
                if self.subscribed.get(action.conn) is not action.fmt:  # a new format: anew
                    self.rooms[action.conn] = set()
                self.subscribed[action.conn] = action.fmt
                self.rooms[action.conn].add(action.room)
                return None
            case Unsubscribe():
                assert action.conn in self.subscribed, "unsubscribed but never subscribed"
                rooms = self.rooms[action.conn]
                assert action.room is None or action.room in rooms, "not subscribed to it"
                rooms.difference_update(rooms if action.room is None else {action.room})
                if not rooms:
                    del self.subscribed[action.conn], self.rooms[action.conn]
                return None
            case Deliver():
                recipients = frozenset(action.recipients)
                assert len(recipients) == len(action.recipients), "a recipient listed twice"
            case Broadcast():
                recipients = (
                    frozenset(
                        c
                        for c, f in self.subscribed.items()
                        if f is action.fmt and action.room in self.rooms[c]
                    )
                    - action.skip
                )
                for event in action.events:  # a room's event goes to that room alone
                    assert getattr(event, "room", None) in (None, action.room), action
                if not recipients:  # its only subscribers ignore its sender
                    assert action.skip, f"written to nobody: {action}"
                    return None
            case _:
                raise AssertionError(f"not an output action or a report: {action}")
        assert recipients, f"written to nobody: {action}"
        for event in action.events:
            if isinstance(event, FormatChanged):
                for conn in recipients:
                    self.formats[conn] = event.format
        formats = {self.formats.get(conn, TEXT) for conn in recipients}
        assert len(formats) == 1, f"one payload for several formats: {action}"
        fmt = formats.pop()
        if isinstance(action, Broadcast):
            assert fmt is action.fmt
        assert action.payload == b"".join(encode(e, fmt) for e in action.events)
        if fmt is TEXT:
            assert b"\x1b" not in action.payload and b"\r" not in action.payload
        return Out(recipients, action.payload, tuple(action.events))


# --- one server's room -------------------------------------------------------------------------


class Sim:
    """One server's room on a wire; ``inbox`` keeps the events each connection received."""

    def __init__(self, room: Room | None = None, **rules: object) -> None:
        self.room = room if room is not None else Room(room_rules(**rules))
        self.now = T0
        self.inbox: dict[int, list[p.Event]] = defaultdict(list)
        self.closed: list[int] = []
        self.wire = Wire()
        # The /oper checks the room asked for; with hold_checks they wait for run_checks.
        self.checks: list[CheckPassword | HashPassword] = []
        self.hold_checks = False

    def id(self, conn: int) -> str:
        return peer_id(LOCAL, 5000 + conn)

    def connect(self, conn: int, host: str = LOCAL, port: int | None = None) -> list[Out]:
        port = 5000 + conn if port is None else port
        return self.apply(self.room.connect(conn, host, port, self.now))

    def send(self, conn: int, line: str | LineTooLong) -> list[Out]:
        return self.apply(self.room.receive(conn, line, self.now))

    def disconnect(self, conn: int, reason: LeaveReason = LeaveReason.EOF) -> list[Out]:
        return self.apply(self.room.disconnect(conn, reason, self.now))

    def idle_check(self, conn: int) -> list[Out]:
        return self.apply(self.room.idle_check(conn, self.now))

    def run_checks(self, busy: bool = False) -> list[Out]:
        """Check the passwords held (``busy``: answer that the pool had no room); the
        writes that follow."""
        outs: list[Out] = []
        while self.checks:
            work = self.checks.pop(0)
            outs += self.apply(self.room.handle(password_work_done(work, busy), self.now))
        return outs

    def apply(self, actions: list[RoomAction]) -> list[Out]:
        """Carry out ``actions``; return the writes (Close is recorded in ``closed``).
        A password check asked for is made after them (unless ``hold_checks``)."""
        checks = [a for a in actions if isinstance(a, CheckPassword | HashPassword)]
        self.checks += checks
        if checks:
            actions = [a for a in actions if not isinstance(a, CheckPassword | HashPassword)]
        outs, closed = self.wire.expand(actions)
        for out in outs:
            for conn in out.recipients:
                self.inbox[conn] += out.events
        self.closed += closed
        # broadcasts reach exactly the connections in the room (in a shared room, a
        # newcomer is in it before its join comes back from the ledger)
        assert all(conn in self.room for conn in self.wire.subscribed)
        if self.room.node == LOCAL_NODE:  # one server: all but those waiting for a password
            in_room = [m for m in self.room.state.members() if not m.waiting]
            assert len(self.wire.subscribed) == len(in_room)
        if checks and not self.hold_checks:
            outs += self.run_checks()
        return outs

    def take(self, conn: int) -> list[p.Event]:
        events, self.inbox[conn] = self.inbox[conn], []
        return events


def password_work_done(
    work: CheckPassword | HashPassword, busy: bool = False
) -> i.PasswordChecked | i.PasswordHashed:
    """What the adapter's pool answers for ``work`` (``busy``: it had no room for it)."""
    if isinstance(work, HashPassword):
        return i.PasswordHashed(
            work.conn, work.name, None if busy else hash_password(work.password)
        )
    ok = not busy and check_password(work.password, work.stored)
    return i.PasswordChecked(work.conn, work.purpose, work.name, ok, busy)


def room_with(n: int, **rules: object) -> Sim:
    """A room with connections 1..n joined, inboxes emptied."""
    sim = Sim(**rules)
    for conn in range(1, n + 1):
        sim.connect(conn)
    sim.inbox.clear()
    return sim


def only_to(outs: list[Out], conn: int) -> list[p.Event]:
    """The events of ``outs``, asserting they all go to ``conn`` alone."""
    assert outs, "expected a reply"
    for out in outs:
        assert out.recipients == {conn}
    return [e for out in outs for e in out.events]


def broadcast_events(outs: list[Out]) -> list[p.Event]:
    return [e for o in outs for e in o.events if isinstance(e, BROADCAST_TYPES)]


# --- one room across nodes ---------------------------------------------------------------------


class LedgerSim:
    """The shared ledger: sequences appends, each room on its own seq, and keeps the
    server-wide names and each user's rooms atomically, as lua/append.lua does."""

    def __init__(self, default: str = p.DEFAULT_ROOM) -> None:
        self.default = default
        self.seq = 0  # the default room's
        self.seqs: dict[str, int] = {}  # the other rooms'
        self.users: dict[str, tuple[str, str]] = {}  # id -> (name, node)
        self.rooms_of: dict[str, list[str]] = {}  # id -> its rooms (none kept: the default)
        self.available = True
        self.max_rooms: int | None = None  # rooms in use, at most (lua/append.lua)

    def _next(self, room: str) -> int:
        if room == self.default:
            self.seq += 1
            return self.seq
        self.seqs[room] = self.seqs.get(room, 0) + 1
        return self.seqs[room]

    def append(self, event: p.BroadcastEvent, node: str) -> list[p.BroadcastEvent] | Refusal:
        if not self.available:
            return Refusal.UNAVAILABLE
        names = {p.name_skeleton(name): uid for uid, (name, _) in self.users.items()}
        held = self.users.get(event.id)
        if held is not None and held[1] != node:  # another node's user has this id
            return Refusal.DUPLICATE if isinstance(event, p.Join) else Refusal.GONE
        room = event.room or self.default
        rooms = self.rooms_of.setdefault(event.id, [self.default] if held else [])
        match event:
            case p.Join():
                holder = names.get(p.name_skeleton(event.name))
                if holder is not None and holder != event.id:
                    return Refusal.TAKEN
                in_use = {r for each in self.rooms_of.values() for r in each}
                new_room = room not in in_use | {self.default}
                if new_room and self.max_rooms is not None and len(in_use) >= self.max_rooms:
                    return Refusal.ROOM_LIMIT
                self.users[event.id] = (event.name, node)
                if room not in rooms:
                    rooms.append(room)
            case _ if held is None:
                return Refusal.GONE
            case p.Leave() if event.reason not in (p.LeaveReason.PART, p.LeaveReason.KICKED):
                self.users.pop(event.id)  # it leaves every room it is in
                gone = self.rooms_of.pop(event.id) or [room]
                return [p.replace(event, room=r, seq=self._next(r)) for r in gone]
            case _ if room not in rooms:
                return Refusal.GONE
            case p.Rename():
                holder = names.get(p.name_skeleton(event.new))
                if holder is not None and holder != event.id:
                    return Refusal.TAKEN
                self.users[event.id] = (event.new, node)
            case p.Leave():
                rooms.remove(room)
                if not rooms and event.reason is p.LeaveReason.KICKED:
                    self.users.pop(event.id)
                    self.rooms_of.pop(event.id)
        return [p.replace(event, seq=self._next(room))]


def uid(conn: int) -> str:
    """The id of connection ``conn`` of a :class:`Cluster`."""
    return peer_id(LOCAL, 40000 + conn)


class Cluster:
    """Nodes, their outboxes and wires, and the ledger; appends are held until :meth:`settle`.

    ``rules`` override the cluster's defaults (no idle timeout, a history of 5).
    """

    def __init__(self, *nodes: str, **rules: object) -> None:
        rules = {"idle_timeout": 0, "history": 5, **rules}
        self.ledger = LedgerSim()
        self.rooms = {node: Room.shared(room_rules(**rules), node) for node in nodes}
        self.outboxes = {node: Outbox() for node in nodes}
        self.wires = {node: Wire() for node in nodes}
        self.node_of: dict[int, str] = {}
        self.pending: list[tuple[str, Append]] = []
        # What nodes sent each other on their private channels, not delivered yet.
        self.mail: list[ModerateElsewhere | AnswerElsewhere] = []
        self.unreachable: set[str] = set()  # nodes whose private channel nobody hears
        self.unanswering: set[str] = set()  # nodes that hear requests but never answer
        self.received: dict[int, list[dict]] = {}
        self.raw: dict[int, bytes] = {}  # every byte each connection got, text lines too
        self.wired: dict[int, bytes] = {}  # every byte the wires wrote to each connection
        self.closed: list[int] = []
        self.now = 1000.0
        self._next_conn = 0

    def run(self, node: str, actions: list[RoomAction]) -> None:
        """Carry out ``node``'s actions as the server does, each output also on its wire."""
        outbox = self.outboxes[node]
        for action in actions:
            match action:
                case Close():
                    self.closed.append(action.conn)
                case Append():
                    self.pending.append((node, action))
                case ModerateElsewhere() | AnswerElsewhere():
                    self.mail.append(action)
                case CheckPassword() | HashPassword():  # at once, as the adapter's pool would
                    done = password_work_done(action)
                    self.run(node, self.rooms[node].handle(done, self.now))
                case SendPrivate():
                    self.run(
                        action.node,
                        self.rooms[action.node].handle(
                            i.PrivateArrived(action.recipient_id, action.event, action.sender_id),
                            self.now,
                        ),
                    )
                case Persist():  # a ban, mute or topic: every other node applies it
                    for other, room in self.rooms.items():
                        if other != node:
                            change = room.handle(
                                i.ModerationChanged(action.kind, action.key, action.data), self.now
                            )
                            self.run(other, change)
                case _:
                    out = self.wires[node].carry(action)
                    if out is not None:
                        for conn in out.recipients:
                            self.wired[conn] = self.wired.get(conn, b"") + out.payload
                    assert outbox.queue(action) is (not isinstance(action, Report))

    def settle(self) -> None:
        """The ledger takes every pending append in order; every node applies the results;
        then what the nodes sent each other is delivered (and so on, until all is quiet)."""
        while self.pending or self.mail:
            while self.pending:
                node, append = self.pending.pop(0)
                result = self.ledger.append(append.event, node)
                if isinstance(result, Refusal):
                    refused = i.AppendRefused(append.conn, append.event, result)
                    self.run(node, self.rooms[node].handle(refused, self.now))
                    continue
                for event in result:
                    for other, room in self.rooms.items():
                        self.run(other, room.handle(i.Sequenced(event, node), self.now))
            if self.mail:
                self._deliver(self.mail.pop(0))
        self._collect()

    def _deliver(self, action: ModerateElsewhere | AnswerElsewhere) -> None:
        """One node's request or answer reaches the node it is for, as the link carries it:
        through its JSON form; a request nobody hears is told to its operator at once, one
        not answered when the link's timer runs out."""
        message = action.request if isinstance(action, ModerateElsewhere) else action.answer
        if action.node in self.unreachable or action.node in self.unanswering:
            if isinstance(action, ModerateElsewhere):
                sender = message.by_node
                maybe = action.node in self.unanswering
                told = self.rooms[sender].handle(
                    i.ModerationUndelivered(action.operator, action.request, maybe), self.now
                )
                self.run(sender, told)
            return
        payload = json.loads(p.compact_json(node_requests.to_payload(message)))
        received = node_requests.from_payload(payload)
        assert received == message
        room = self.rooms[action.node]
        if isinstance(received, node_requests.ModerationRequest):
            self.run(action.node, room.handle(i.ModerationAsked(received), self.now))
        else:
            self.run(action.node, room.handle(i.ModerationAnswered(received), self.now))

    def _collect(self) -> None:
        for outbox in self.outboxes.values():
            for conn, data in outbox.take():
                self.raw[conn] = self.raw.get(conn, b"") + data
                for line in data.decode().splitlines():
                    if line.startswith("{"):
                        self.received.setdefault(conn, []).append(json.loads(line))
        assert self.raw == self.wired, "the outboxes handed out other bytes than were written"

    def join(self, node: str, port: int | None = None, host: str = LOCAL) -> int:
        """A JSON-mode user on ``node`` (from ``host`` and ``port``, else its own port);
        returns its conn."""
        self._next_conn += 1
        conn = self._next_conn
        self.node_of[conn] = node
        port = 40000 + conn if port is None else port
        self.run(node, self.rooms[node].connect(conn, host, port, self.now))
        self.settle()
        self.say(conn, "/format json")
        return conn

    def say(self, conn: int, line: str) -> None:
        node = self.node_of[conn]
        self.run(node, self.rooms[node].receive(conn, line, self.now))
        self.settle()

    def events(self, conn: int, kind: str) -> list[dict]:
        return [e for e in self.received.get(conn, []) if e["type"] == kind]
