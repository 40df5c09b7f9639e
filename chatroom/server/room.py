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
from dataclasses import dataclass, replace

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


RoomAction = Deliver | Broadcast | Subscribe | Unsubscribe | Close


@dataclass(frozen=True, slots=True)
class RoomRules:
    idle_timeout: float = 60.0
    history: int = 20
    max_clients: int = 10_000
    max_per_ip: int = 16


@dataclass(slots=True)
class _Member:
    conn: ConnId
    id: str
    host: str
    name: str
    last_active: float
    format: p.OutputFormat = p.OutputFormat.TEXT
    warned: bool = False


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
    """One chat room.

    All of its state is owned by the single event loop that calls it, and every method runs
    to completion without awaiting, so no two calls ever interleave: it needs no lock. (The
    tutorial guarded its user map with a mutex because goroutines touched it concurrently.)
    """

    def __init__(self, rules: RoomRules) -> None:
        self.rules = rules
        self._members: dict[ConnId, _Member] = {}
        self._by_name: dict[str, _Member] = {}  # name_key(name) -> member
        self._by_format: dict[p.OutputFormat, dict[ConnId, _Member]] = {
            fmt: {} for fmt in p.OutputFormat
        }
        self._per_host: dict[str, int] = {}
        self._history: deque[p.Message | p.Action] = deque(maxlen=max(rules.history, 0))
        self._seq = 0

    # --- queries -----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, conn: object) -> bool:
        return conn in self._members

    @property
    def seq(self) -> int:
        """The seq of the last broadcast event (0 before the first)."""
        return self._seq

    def who(self, now: float) -> p.Who:
        return p.Who(
            users=tuple(
                p.WhoEntry(id=m.id, name=m.name, idle=int(now - m.last_active))
                for m in self._members.values()
            )
        )

    def name_of(self, conn: ConnId) -> str | None:
        member = self._members.get(conn)
        return member.name if member else None

    def next_idle_check(self, conn: ConnId) -> float | None:
        """When the caller should next call :meth:`idle_check` for ``conn`` (None: never)."""
        member = self._members.get(conn)
        timeout = self.rules.idle_timeout
        if member is None or timeout <= 0:
            return None
        if timeout > IDLE_WARNING_MIN_TIMEOUT and not member.warned:
            return member.last_active + timeout - IDLE_WARNING_LEAD
        return member.last_active + timeout

    # --- events --------------------------------------------------------------------------------

    def connect(self, conn: ConnId, host: str, port: int, now: float) -> list[RoomAction]:
        """A connection arrived from ``host``:``port``; admit it or turn it away."""
        if conn in self._members:
            raise ValueError(f"connection {conn} is already in the room")
        refusal = self._admission_problem(host)
        if refusal is not None:
            notice = p.Notice(code=p.NoticeCode.SERVER_FULL, text=refusal)
            return [self._to_format(conn, p.OutputFormat.TEXT, notice), Close(conn)]
        member = _Member(conn=conn, id=peer_id(host, port), host=host, name="", last_active=now)
        member.name = member.id
        self._members[conn] = member
        self._by_name[p.name_key(member.name)] = member
        self._by_format[member.format][conn] = member
        self._per_host[host] = self._per_host.get(host, 0) + 1
        actions = self._greeting(member)
        actions.append(Subscribe(conn, member.format))
        actions += self._broadcast(
            p.Join(seq=self._next_seq(), ts=now, id=member.id, name=member.name)
        )
        return actions

    def receive(self, conn: ConnId, line: str | LineTooLong, now: float) -> list[RoomAction]:
        """A line (or a too-long line's report) arrived from ``conn``."""
        member = self._members.get(conn)
        if member is None:  # it already left; what it still sent goes nowhere
            return []
        member.last_active = now
        member.warned = False
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
        leave = p.Leave(
            seq=self._next_seq(), ts=now, id=member.id, name=member.name, reason=reason, text=text
        )
        return [Unsubscribe(conn), *self._broadcast(leave)]

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
        leave line for every other user (which would be N² lines for N users).
        """
        notice = p.Notice(code=p.NoticeCode.SHUTDOWN, text="the server is shutting down")
        actions = self._broadcast(notice)
        for conn in list(self._members):
            self._remove(conn)
            actions += [Unsubscribe(conn), Close(conn)]
        return actions

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
                    seq=self._next_seq(), ts=now, id=member.id, name=member.name, text=text
                )
                self._history.append(action)
                return self._broadcast(action)
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
        message = p.Message(seq=self._next_seq(), ts=now, id=member.id, name=member.name, text=text)
        self._history.append(message)
        return self._broadcast(message)

    def _rename(self, member: _Member, new: str, now: float) -> list[RoomAction]:
        problem = p.name_problem(new)
        if problem is not None:
            return self._error(member, p.ErrorCode.NAME_INVALID, f"cannot use that name: {problem}")
        if new == member.name:
            return self._send(
                member, p.Notice(code=p.NoticeCode.INFO, text=f"you are already {new}")
            )
        key = p.name_key(new)
        holder = self._by_name.get(key)
        if holder is not None and holder is not member:
            return self._error(member, p.ErrorCode.NAME_TAKEN, f"the name {new} is taken")
        del self._by_name[p.name_key(member.name)]
        self._by_name[key] = member
        old, member.name = member.name, new
        return self._broadcast(
            p.Rename(seq=self._next_seq(), ts=now, id=member.id, old=old, new=new)
        )

    def _private(self, member: _Member, target: str, text: str, now: float) -> list[RoomAction]:
        recipient = self._by_name.get(p.name_key(target))
        if recipient is None:
            shown = p.strip_controls(target)[:40]
            return self._error(member, p.ErrorCode.UNKNOWN_USER, f"no user named {shown} is online")
        text = p.strip_controls(text)
        private = p.Private(ts=now, sender=member.name, recipient=recipient.name, text=text)
        actions = self._send(member, private)
        if recipient is not member:
            actions += self._send(recipient, private)
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
            users=len(self._members),
        )
        events: list[p.Event] = [welcome]
        events += [replace(event, history=True) for event in self._history]
        payload = b"".join(encode(event, member.format) for event in events)
        return [Deliver((member.conn,), payload, tuple(events))]

    def _remove(self, conn: ConnId) -> _Member | None:
        member = self._members.pop(conn, None)
        if member is None:
            return None
        del self._by_name[p.name_key(member.name)]
        del self._by_format[member.format][conn]
        remaining = self._per_host[member.host] - 1
        if remaining:
            self._per_host[member.host] = remaining
        else:
            del self._per_host[member.host]
        return member

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

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
