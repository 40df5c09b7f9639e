"""The room's rules: who is here, names, commands, what goes to whom. No I/O.

A :class:`Room` takes events — a connection arrived, a line came in, a connection ended, a
timer fired — each with the current time, and returns the actions that follow: bytes to
deliver to some connections, connections to close. It never touches a socket or a clock,
so every rule is unit-tested by calling it directly.

Connections are named by opaque integer ids the caller picks. Each member is subscribed to
the broadcasts of its output format (:class:`Subscribe`); a broadcast is encoded once per
format in use and addressed to that format's subscribers, not to a list of recipients, so
its cost does not grow with the size of the room.
"""

from __future__ import annotations

import ipaddress
from collections import deque
from dataclasses import dataclass, field, replace

from chatroom import protocol as p
from chatroom.server.codec import LineTooLong
from chatroom.server.text_format import render_text

ConnId = int

IDLE_WARNING_LEAD = 10.0  # seconds of warning before an idle kick...
IDLE_WARNING_MIN_TIMEOUT = 20.0  # ...given only when the timeout is longer than this

HELP_TEXT = """\
Commands:
  who, /who, /names         list the users online
  rename|NAME, /nick NAME   change your name
  /msg NAME TEXT            send a private message
  /me TEXT                  send an action ("* you TEXT")
  /quit [REASON]            leave the room
  /format json|text         switch this connection's output format
  /help                     this list
  //TEXT                    send a line that starts with "/" as chat
Any other line is chat, seen by everyone (you too)."""


@dataclass(frozen=True, slots=True)
class Deliver:
    """Write ``payload``, the encoded ``events``, to each of ``recipients``."""

    recipients: tuple[ConnId, ...]
    payload: bytes
    events: tuple[p.Event, ...]


@dataclass(frozen=True, slots=True)
class Broadcast:
    """Write ``payload``, the encoded ``events``, to every subscriber of ``fmt``."""

    fmt: p.OutputFormat
    payload: bytes
    events: tuple[p.Event, ...]


@dataclass(frozen=True, slots=True)
class Subscribe:
    """From here on ``conn`` receives the broadcasts in ``fmt``."""

    conn: ConnId
    fmt: p.OutputFormat


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """From here on ``conn`` receives no broadcasts."""

    conn: ConnId


@dataclass(frozen=True, slots=True)
class Close:
    """Close ``conn`` once what was delivered to it has been flushed."""

    conn: ConnId


@dataclass(frozen=True, slots=True)
class Append:
    """Cluster mode: have the shared ledger sequence ``event`` (its ``seq`` is still 0).

    The ledger gives it the room-wide seq, or refuses it (a name taken on another node, the
    ledger unreachable): the caller then reports back with :meth:`Room.sequenced` — on every
    node, for every event, in the ledger's order — or :meth:`Room.refused`.
    """

    event: p.BroadcastEvent
    conn: ConnId | None  # whose line it came from, to tell them if it is refused


@dataclass(frozen=True, slots=True)
class SendPrivate:
    """Cluster mode: carry a private message to ``recipient_id`` on another node."""

    node: str
    recipient_id: str
    event: p.Private
    sender: ConnId  # told if the message cannot be carried


RoomAction = Deliver | Broadcast | Subscribe | Unsubscribe | Close | Append | SendPrivate


@dataclass(frozen=True, slots=True)
class RoomRules:
    idle_timeout: float = 60.0
    history: int = 20
    max_clients: int = 10_000  # connections on this node
    max_per_ip: int = 16


@dataclass(slots=True)
class _Member:
    """A connection on this node."""

    conn: ConnId
    id: str
    host: str
    name: str
    last_active: float
    format: p.OutputFormat = p.OutputFormat.TEXT
    warned: bool = False
    joined: bool = False  # its join has been sequenced; until then its lines wait
    waiting_lines: list[str | LineTooLong] = field(default_factory=list)
    renaming: bool = False  # cluster mode: a rename of it is with the ledger


@dataclass(slots=True)
class _User:
    """Someone in the room, on this node or another."""

    id: str
    name: str
    node: str | None
    last_seen: float  # when the room last saw a line of theirs (for other nodes' users)


def encode(event: p.Event, fmt: p.OutputFormat) -> bytes:
    if fmt is p.OutputFormat.JSON:
        return (p.encode_json(event) + "\n").encode()
    return render_text(event).encode()


def peer_id(host: str, port: int) -> str:
    """A user's id, its remote address as ``ip:port`` (``[ip]:port`` for IPv6)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _is_loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


class Room:
    """One chat room, as seen from one server process.

    All of its state is owned by the single event loop that calls it, and every method runs
    to completion without awaiting, so no two calls ever interleave: it needs no lock. (The
    tutorial guarded its user map with a mutex because goroutines touched it concurrently.)

    Every broadcast event — message, action, join, leave, rename — is first *appended*, then
    *applied*: applying it updates who is here and under which name, and broadcasts it to
    this node's members. With ``node=None`` the room is the whole room: it gives events
    their seq and applies them at once. With a node name it is one node of a room shared
    through a ledger (Redis): appending becomes an :class:`Append` action, and every node
    applies the ledger's events in the ledger's order, so all of them agree on one order.
    """

    def __init__(self, rules: RoomRules, node: str | None = None) -> None:
        self.rules = rules
        self.node = node
        self._members: dict[ConnId, _Member] = {}  # this node's connections
        self._local: dict[str, _Member] = {}  # the same, by user id
        self._users: dict[str, _User] = {}  # everyone in the room, by id, in join order
        self._by_key: dict[str, str] = {}  # name_key(name) -> user id
        self._by_format: dict[p.OutputFormat, dict[ConnId, _Member]] = {
            fmt: {} for fmt in p.OutputFormat
        }  # joined members, by output format: the broadcast subscribers
        self._per_host: dict[str, int] = {}
        self._history: deque[p.Message | p.Action] = deque(maxlen=max(rules.history, 0))
        self._seq = 0

    # --- queries -----------------------------------------------------------------------------

    def __len__(self) -> int:
        """Connections on this node."""
        return len(self._members)

    def __contains__(self, conn: object) -> bool:
        return conn in self._members

    @property
    def seq(self) -> int:
        """The seq of the last broadcast event applied (0 before the first)."""
        return self._seq

    @property
    def clustered(self) -> bool:
        return self.node is not None

    def who(self, now: float) -> p.Who:
        entries = []
        for user in self._users.values():
            member = self._local.get(user.id) if user.node == self.node else None
            last = member.last_active if member is not None else user.last_seen
            entries.append(p.WhoEntry(id=user.id, name=user.name, idle=max(0, int(now - last))))
        return p.Who(users=tuple(entries))

    def name_of(self, conn: ConnId) -> str | None:
        member = self._members.get(conn)
        return member.name if member else None

    def local_users(self) -> list[tuple[str, str]]:
        """(id, name) of this node's joined members."""
        return [(m.id, m.name) for m in self._members.values() if m.joined]

    def next_idle_check(self, conn: ConnId) -> float | None:
        """When the caller should next call :meth:`idle_check` for ``conn`` (None: never)."""
        member = self._members.get(conn)
        timeout = self.rules.idle_timeout
        if member is None or timeout <= 0:
            return None
        if timeout > IDLE_WARNING_MIN_TIMEOUT and not member.warned:
            return member.last_active + timeout - IDLE_WARNING_LEAD
        return member.last_active + timeout

    # --- events from this node's connections -------------------------------------------------

    def connect(self, conn: ConnId, host: str, port: int, now: float) -> list[RoomAction]:
        """A connection arrived from ``host``:``port``; admit it or turn it away."""
        if conn in self._members:
            raise ValueError(f"connection {conn} is already in the room")
        refusal = self._admission_problem(host)
        if refusal is not None:
            notice = p.Notice(code=p.NoticeCode.SERVER_FULL, text=refusal)
            return [self._to_format(conn, p.OutputFormat.TEXT, notice), Close(conn)]
        user_id = peer_id(host, port)
        member = _Member(conn=conn, id=user_id, host=host, name=user_id, last_active=now)
        self._members[conn] = member
        self._local[user_id] = member
        self._per_host[host] = self._per_host.get(host, 0) + 1
        join = p.Join(seq=self._new_seq(), ts=now, id=member.id, name=member.name)
        return self._append(join, member)

    def receive(self, conn: ConnId, line: str | LineTooLong, now: float) -> list[RoomAction]:
        """A line (or a too-long line's report) arrived from ``conn``."""
        member = self._members.get(conn)
        if member is None:  # it already left; what it still sent goes nowhere
            return []
        member.last_active = now
        member.warned = False
        if not member.joined:  # cluster mode: handled once its join comes back, in order
            member.waiting_lines.append(line)
            return []
        if isinstance(line, LineTooLong):
            return self._error(
                member,
                p.ErrorCode.LINE_TOO_LONG,
                f"line too long (over {line.limit} bytes); it was not sent",
            )
        command = line.strip()
        if not command:
            return []
        if command == "who":
            return self._send(member, self.who(now))
        if command.startswith("rename|"):
            return self._rename(member, command[len("rename|") :].strip(), now)
        if line.startswith("//"):
            return self._chat(member, line[1:], now)
        if line.startswith("/"):
            word, _, rest = command[1:].partition(" ")
            return self._command(member, word.lower(), rest.strip(), now)
        return self._chat(member, line, now)

    def disconnect(
        self, conn: ConnId, reason: p.LeaveReason, now: float, text: str | None = None
    ) -> list[RoomAction]:
        """``conn`` is gone (or is being sent away); tell everyone else. Idempotent."""
        member = self._remove(conn)
        if member is None:
            return []
        actions: list[RoomAction] = [Unsubscribe(conn)] if member.joined else []
        leave = p.Leave(
            seq=self._new_seq(),
            ts=now,
            id=member.id,
            name=member.name,
            reason=reason,
            text=text,
        )
        return actions + self._append(leave, None)

    def idle_check(self, conn: ConnId, now: float) -> list[RoomAction]:
        """A timer for ``conn`` fired: warn or kick it if it has been idle long enough."""
        member = self._members.get(conn)
        timeout = self.rules.idle_timeout
        if member is None or timeout <= 0:
            return []
        idle = now - member.last_active
        if idle >= timeout:
            notice = p.Notice(
                code=p.NoticeCode.TIMEOUT,
                text=f"disconnected: no line from you for {timeout:g}s",
            )
            return [
                self._to_format(conn, member.format, notice),
                *self.disconnect(conn, p.LeaveReason.TIMEOUT, now),
                Close(conn),
            ]
        warn_at = timeout - IDLE_WARNING_LEAD
        if timeout > IDLE_WARNING_MIN_TIMEOUT and not member.warned and idle >= warn_at:
            member.warned = True
            left = timeout - idle
            notice = p.Notice(
                code=p.NoticeCode.IDLE_WARNING,
                text=f"you will be disconnected in {left:.0f}s unless you send a line",
            )
            return self._send(member, notice)
        return []

    def shutdown(self, now: float) -> list[RoomAction]:
        """The server is stopping: tell everyone and close every connection.

        Everyone leaves at once, so each user gets one ``shutdown`` notice rather than a
        leave line for every other user (which would be N² lines for N users). In cluster
        mode the caller has the ledger announce these users' leaves to the other nodes.
        """
        notice = p.Notice(code=p.NoticeCode.SHUTDOWN, text="the server is shutting down")
        actions = self._broadcast(notice)
        for conn in list(self._members):
            member = self._remove(conn)
            user = self._users.pop(member.id, None)
            if user is not None and self._by_key.get(p.name_key(user.name)) == user.id:
                del self._by_key[p.name_key(user.name)]
            actions += [Unsubscribe(conn), Close(conn)]
        return actions

    # --- events from the ledger (cluster mode) -------------------------------------------------

    def sequenced(self, event: p.BroadcastEvent, node: str | None) -> list[RoomAction]:
        """The ledger's next event, appended by ``node``: apply it here."""
        return self._apply(event, node)

    def refused(
        self, conn: ConnId | None, event: p.BroadcastEvent, reason: str
    ) -> list[RoomAction]:
        """The ledger refused an :class:`Append`: ``taken`` (a name), ``gone`` (the user is
        no longer in the shared room) or ``unavailable`` (the ledger cannot be reached)."""
        member = self._members.get(conn) if conn is not None else None
        if member is None:
            return []
        match event:
            case p.Rename():
                member.renaming = False
                if reason == "taken":
                    return self._error(
                        member, p.ErrorCode.NAME_TAKEN, f"the name {event.new} is taken"
                    )
            case p.Join():
                if reason == "taken":  # another node has a user with this very address
                    notice = p.Notice(
                        code=p.NoticeCode.SERVER_FULL,
                        text="your address is already in the room on another server",
                    )
                    self._remove(conn)
                    return [self._to_format(conn, member.format, notice), Close(conn)]
                return self._send(
                    member,
                    p.Notice(
                        code=p.NoticeCode.INFO,
                        text="the room is unavailable; you will join when it is back",
                    ),
                )
        return self._error(
            member,
            p.ErrorCode.UNAVAILABLE,
            "your last line may not have reached the room: it is unavailable right now",
        )

    def private_undelivered(self, conn: ConnId, event: p.Private) -> list[RoomAction]:
        """Cluster mode: a private message could not be carried to the recipient's node."""
        member = self._members.get(conn)
        if member is None:
            return []
        return self._error(
            member,
            p.ErrorCode.UNAVAILABLE,
            f"your private message to {event.recipient} may not have been delivered",
        )

    def remote_private(self, recipient_id: str, event: p.Private) -> list[RoomAction]:
        """A private message from another node for ``recipient_id``, if it is here."""
        member = self._local.get(recipient_id)
        if member is None or not member.joined:
            return []
        return self._send(member, event)

    def resync(
        self,
        users: list[tuple[str, str, str]],
        seq: int,
        history: list[p.Message | p.Action],
        now: float,
    ) -> list[RoomAction]:
        """Take the ledger's view — ``(id, name, node)`` of everyone, the last seq, recent
        history — after (re)connecting to it. Members of this node that the ledger lost
        (it restarted, or declared this node dead) are appended as joining again; users it
        still lists for this node that are gone from here are appended as leaving."""
        self._users = {uid: _User(uid, name, node, now) for uid, name, node in users}
        self._by_key = {p.name_key(user.name): uid for uid, user in self._users.items()}
        self._seq = seq
        self._history.clear()
        self._history.extend(history)
        actions: list[RoomAction] = []
        for member in self._members.values():
            user = self._users.get(member.id)
            if user is None or user.node != self.node:
                name = member.name if p.name_key(member.name) not in self._by_key else member.id
                join = p.Join(seq=0, ts=now, id=member.id, name=name)
                actions.append(Append(join, member.conn))
            elif user.name != member.name:
                member.name = user.name
        for user in list(self._users.values()):
            if user.node == self.node and user.id not in self._local:
                leave = p.Leave(
                    seq=0, ts=now, id=user.id, name=user.name, reason=p.LeaveReason.ERROR
                )
                actions.append(Append(leave, None))
        return actions

    def ledger_notice(self, text: str) -> list[RoomAction]:
        """Tell this node's members about the ledger going away or coming back."""
        return self._broadcast(p.Notice(code=p.NoticeCode.INFO, text=text))

    # --- commands ------------------------------------------------------------------------------

    def _command(self, member: _Member, word: str, arg: str, now: float) -> list[RoomAction]:
        match word:
            case "who" | "names":
                return self._send(member, self.who(now))
            case "nick":
                if not arg:
                    return self._error(member, p.ErrorCode.BAD_USAGE, "usage: /nick NEW_NAME")
                return self._rename(member, arg, now)
            case "msg":
                target, _, text = arg.partition(" ")
                text = p.strip_controls(text).strip()  # cleaned first, as /me and chat are
                if not target or not text:
                    return self._error(member, p.ErrorCode.BAD_USAGE, "usage: /msg NAME TEXT")
                return self._private(member, target, text, now)
            case "me":
                text = p.strip_controls(arg)
                if not text.strip():
                    return self._error(member, p.ErrorCode.BAD_USAGE, "usage: /me TEXT")
                action = p.Action(
                    seq=self._new_seq(), ts=now, id=member.id, name=member.name, text=text
                )
                return self._append(action, member)
            case "quit":
                reason = p.strip_controls(arg).strip() or None
                return [
                    *self.disconnect(member.conn, p.LeaveReason.QUIT, now, reason),
                    Close(member.conn),
                ]
            case "help":
                return self._send(member, p.Notice(code=p.NoticeCode.HELP, text=HELP_TEXT))
            case "format":
                return self._set_format(member, arg.lower())
        shown = p.strip_controls(word)[:40]
        return self._error(
            member,
            p.ErrorCode.UNKNOWN_COMMAND,
            f"unknown command /{shown} (type /help; start a line with // to send it as chat)",
        )

    def _chat(self, member: _Member, text: str, now: float) -> list[RoomAction]:
        text = p.strip_controls(text)
        if not text.strip():
            return []
        message = p.Message(seq=self._new_seq(), ts=now, id=member.id, name=member.name, text=text)
        return self._append(message, member)

    def _rename(self, member: _Member, new: str, now: float) -> list[RoomAction]:
        problem = p.name_problem(new)
        if problem is not None:
            return self._error(member, p.ErrorCode.NAME_INVALID, f"cannot use that name: {problem}")
        if new == member.name:
            return self._send(
                member, p.Notice(code=p.NoticeCode.INFO, text=f"you are already {new}")
            )
        holder = self._by_key.get(p.name_key(new))
        if holder is not None and holder != member.id:
            return self._error(member, p.ErrorCode.NAME_TAKEN, f"the name {new} is taken")
        if member.renaming:
            return self._error(
                member, p.ErrorCode.BAD_USAGE, "your previous rename is still under way"
            )
        member.renaming = self.clustered
        rename = p.Rename(seq=self._new_seq(), ts=now, id=member.id, old=member.name, new=new)
        return self._append(rename, member)

    def _private(self, member: _Member, target: str, text: str, now: float) -> list[RoomAction]:
        user = self._users.get(self._by_key.get(p.name_key(target), ""))
        if user is None:
            shown = p.strip_controls(target)[:40]
            return self._error(member, p.ErrorCode.UNKNOWN_USER, f"no user named {shown} is online")
        private = p.Private(ts=now, sender=member.name, recipient=user.name, text=text)
        actions = self._send(member, private)
        if user.id == member.id:
            return actions
        recipient = self._local.get(user.id) if user.node == self.node else None
        if recipient is not None:
            actions += self._send(recipient, private)
        elif user.node is not None:
            actions.append(SendPrivate(user.node, user.id, private, member.conn))
        return actions

    def _set_format(self, member: _Member, arg: str) -> list[RoomAction]:
        try:
            fmt = p.OutputFormat(arg)
        except ValueError:
            return self._error(member, p.ErrorCode.BAD_USAGE, "usage: /format json|text")
        del self._by_format[member.format][member.conn]
        member.format = fmt
        self._by_format[fmt][member.conn] = member
        return [
            Subscribe(member.conn, fmt),
            self._to_format(member.conn, fmt, p.FormatChanged(format=fmt)),
            *self._greeting(member),
        ]

    # --- helpers -------------------------------------------------------------------------------

    def _admission_problem(self, host: str) -> str | None:
        if len(self._members) >= self.rules.max_clients:
            return f"server full ({self.rules.max_clients} users); try again later"
        if self._per_host.get(host, 0) >= self.rules.max_per_ip and not _is_loopback(host):
            return f"too many connections from your address (at most {self.rules.max_per_ip})"
        return None

    def _greeting(self, member: _Member) -> list[RoomAction]:
        welcome = p.Welcome(
            id=member.id,
            name=member.name,
            idle_timeout=self.rules.idle_timeout,
            users=len(self._users),
        )
        events: list[p.Event] = [welcome]
        events += [replace(event, history=True) for event in self._history]
        payload = b"".join(encode(event, member.format) for event in events)
        return [Deliver((member.conn,), payload, tuple(events))]

    def _remove(self, conn: ConnId) -> _Member | None:
        """Take ``conn`` off this node; it stays in the shared room until its leave is applied."""
        member = self._members.pop(conn, None)
        if member is None:
            return None
        del self._local[member.id]
        self._by_format[member.format].pop(conn, None)
        remaining = self._per_host[member.host] - 1
        if remaining:
            self._per_host[member.host] = remaining
        else:
            del self._per_host[member.host]
        return member

    def _new_seq(self) -> int:
        """The seq for an event about to be appended: the next one when this room sequences
        its own events, 0 (the ledger decides) in cluster mode."""
        return 0 if self.clustered else self._seq + 1

    def _append(self, event: p.BroadcastEvent, member: _Member | None) -> list[RoomAction]:
        if self.clustered:
            return [Append(event, member.conn if member is not None else None)]
        return self._apply(event, None)

    def _apply(self, event: p.BroadcastEvent, node: str | None) -> list[RoomAction]:
        """A sequenced event: update who is here, then broadcast it to this node's members."""
        self._seq = event.seq
        actions: list[RoomAction] = []
        waiting: _Member | None = None  # a newcomer whose early lines follow the broadcast
        rejoin: list[RoomAction] = []
        match event:
            case p.Message() | p.Action():
                self._history.append(event)
                user = self._users.get(event.id)
                if user is not None:
                    user.last_seen = event.ts
            case p.Join():
                self._users[event.id] = _User(event.id, event.name, node, event.ts)
                self._by_key[p.name_key(event.name)] = event.id
                member = self._local.get(event.id) if node == self.node else None
                if member is not None:
                    member.name = event.name
                    if not member.joined:
                        actions += self._admit(member)
                        waiting = member
            case p.Rename():
                user = self._users.get(event.id)
                if user is not None:
                    if self._by_key.get(p.name_key(user.name)) == user.id:
                        del self._by_key[p.name_key(user.name)]
                    user.name, user.last_seen = event.new, event.ts
                    self._by_key[p.name_key(event.new)] = user.id
                member = self._local.get(event.id) if node == self.node else None
                if member is not None:
                    member.name, member.renaming = event.new, False
            case p.Leave():
                user = self._users.pop(event.id, None)
                if user is not None and self._by_key.get(p.name_key(user.name)) == user.id:
                    del self._by_key[p.name_key(user.name)]
                member = self._local.get(event.id)
                if member is not None and member.joined and self.clustered:
                    # The ledger took this node for dead while it was only slow and reaped a
                    # member that is still here: it joins again.
                    join = p.Join(seq=0, ts=event.ts, id=member.id, name=member.name)
                    rejoin = [Append(join, member.conn)]
        actions += self._broadcast(event)
        if waiting is not None:
            # Only now, after the broadcast was made for the formats as they were: one of
            # these lines may be /format, and the join must still reach its sender.
            actions += self._handle_waiting_lines(waiting, event.ts)
        return actions + rejoin

    def _admit(self, member: _Member) -> list[RoomAction]:
        """A member's join is sequenced: greet it and subscribe it to the broadcasts."""
        member.joined = True
        self._by_format[member.format][member.conn] = member
        actions = self._greeting(member)
        actions.append(Subscribe(member.conn, member.format))
        return actions

    def _handle_waiting_lines(self, member: _Member, now: float) -> list[RoomAction]:
        """Cluster mode: the lines a member sent before its join came back from the ledger."""
        waiting, member.waiting_lines = member.waiting_lines, []
        actions: list[RoomAction] = []
        for line in waiting:
            actions += self.receive(member.conn, line, now)
        return actions

    def _broadcast(self, event: p.Event) -> list[RoomAction]:
        """The event for everyone in the room: encoded once per output format in use."""
        return [
            Broadcast(fmt, encode(event, fmt), (event,))
            for fmt, members in self._by_format.items()
            if members
        ]

    def _send(self, member: _Member, event: p.Event) -> list[RoomAction]:
        return [self._to_format(member.conn, member.format, event)]

    @staticmethod
    def _to_format(conn: ConnId, fmt: p.OutputFormat, event: p.Event) -> Deliver:
        return Deliver((conn,), encode(event, fmt), (event,))

    def _error(self, member: _Member, code: p.ErrorCode, message: str) -> list[RoomAction]:
        return self._send(member, p.Error(code=code, message=message))
