"""The room's rules: who may come in, what each command does, what goes to whom. No I/O.

A :class:`Room` takes events — a connection arrived, a line came in, a connection ended, a
timer fired — each with the current time, and returns the actions that follow
(:mod:`chatroom.server.core.actions`): bytes to deliver to some connections, connections to
close, and reports of what it decided. It never touches a socket or a clock, so every rule
is unit-tested by calling it directly.

Connections are named by opaque integer ids the caller picks. Each member is subscribed to
the broadcasts of its output format (:class:`Subscribe`); a broadcast is encoded once per
format in use and addressed to that format's subscribers, not to a list of recipients, so
its cost does not grow with the size of the room.

A line becomes a command in :mod:`chatroom.protocol.commands`; who is here and under which
name is kept by :class:`~chatroom.server.core.state.RoomState`. A room shared by several servers
is :class:`~chatroom.server.core.cluster_room.ClusterRoom`, which changes only how events are
sequenced: this module reads as the whole room of one server.
"""

from __future__ import annotations

import random

from chatroom import protocol as p
from chatroom.protocol import commands as c
from chatroom.server.config import RoomRules
from chatroom.server.core.actions import (
    Admitted,
    Broadcast,
    Charge,
    Close,
    ConnId,
    Deliver,
    Left,
    Persist,
    Renamed,
    Restored,
    RoomAction,
    Subscribe,
    TurnedAway,
    Unsubscribe,
    encode,
)
from chatroom.server.core.admission import Admission
from chatroom.server.core.codec import LineTooLong, command_of
from chatroom.server.core.entry import EntryRules
from chatroom.server.core.moderation import Moderation, ModerationRules
from chatroom.server.core.selfservice import SelfServiceRules
from chatroom.server.core.state import Member, RoomState

LOCAL_NODE = "local"  # the node of every user of a room that one server holds alone


class Room(EntryRules, ModerationRules, SelfServiceRules):
    """One chat room, as seen from one server process.

    All of its state is owned by the single event loop that calls it, and every method runs
    to completion without awaiting, so no two calls ever interleave: it needs no lock.

    Every broadcast event — message, action, join, leave, rename — is first *appended*, then
    *applied*: applying it updates who is here and under which name (the state), then
    broadcasts it to this node's members. This room is the whole room: appending gives the
    event the next seq and applies it at once.
    """

    def __init__(
        self,
        rules: RoomRules,
        node: str = LOCAL_NODE,
        epoch: str | None = None,
        rng: random.Random | None = None,
        restored: Restored | None = None,
    ) -> None:
        self.rules = rules
        # Guest names and opaque ids (--hide-addresses): unpredictable unless a test seeds it.
        self._random = rng if rng is not None else random.SystemRandom()
        self.node = node
        # epoch: which history the seqs count in, sent in every welcome (None: left out).
        # The caller makes it, one per process: a restarted server numbers from 1 again.
        self.state = RoomState(node, rules.history, epoch)
        # The last full who reply per format, reused while nobody joined, left or renamed
        # and the second (idle times are in whole seconds) is the same.
        self._who_cache: dict[p.OutputFormat, tuple[tuple[int, int], Deliver]] = {}
        self.admission = Admission(rules)
        p.load_name_data()  # now, not with the first newcomer (see its docstring)
        self.moderation = Moderation()  # operators (moderation.py: its rules)
        self.ignored_by: dict[str, set[ConnId]] = {}  # /ignore (selfservice.py)
        # restored: what a state file kept (--state). The room then reports, as Persist
        # actions, every change the file must keep: bans, mutes and the topic as they are
        # made, the history when asked (history_due).
        self.persisting = restored is not None
        if restored is not None:
            self.state.restore_history(restored.history)
            self.moderation.restore(restored)
        kept = self.state.history
        self._kept_seq = kept[-1].seq if kept else 0  # the history the file has

    # --- the state file ------------------------------------------------------------------------

    def history_due(self) -> list[RoomAction]:
        """The history for the state file, if it changed since the last time: the adapter
        asks every ``state_flush`` seconds and when it stops. Chat is kept this way, not a
        Persist per line: a busy room's lines then cost the file nothing each (a Persist
        a line was a tenth of a broadcast's cost), and the file keeps only the last
        ``history`` anyway."""
        history = self.state.history
        last = history[-1].seq if history else 0
        if not self.persisting or last == self._kept_seq:
            return []
        self._kept_seq = last
        return [Persist("history", "", history)]

    # --- queries -------------------------------------------------------------------------------

    def __len__(self) -> int:
        """Connections on this node."""
        return len(self.state)

    def __contains__(self, conn: object) -> bool:
        return isinstance(conn, int) and self.state.member(conn) is not None

    @property
    def seq(self) -> int:
        """The seq of the last broadcast event applied (0 before the first)."""
        return self.state.seq

    @property
    def epoch(self) -> str | None:
        """Which history the seqs count in (a shared room's is None until its first sync)."""
        return self.state.epoch

    def who(self, now: float) -> p.Who:
        return self.state.who(now)

    def name_of(self, conn: ConnId) -> str | None:
        member = self.state.member(conn)
        return member.name if member else None

    def next_idle_check(self, conn: ConnId) -> float | None:
        """When the caller should next call :meth:`idle_check` for ``conn`` (None: never):
        to warn or kick it when idle, or to announce it if it was admitted quietly."""
        member = self.state.member(conn)
        rules = self.rules
        if member is None:
            return None
        deadline = None
        if rules.idle_timeout > 0:
            deadline = member.last_active + rules.idle_timeout
            if rules.idle_timeout > rules.idle_warning_min_timeout and not member.warned:
                deadline -= rules.idle_warning_lead
        if member.quiet_until is not None:
            return member.quiet_until if deadline is None else min(deadline, member.quiet_until)
        return deadline

    # --- events from this node's connections -------------------------------------------------

    def connect(self, conn: ConnId, host: str, port: int, now: float) -> list[RoomAction]:
        """A connection arrived from ``host``:``port``; admit it or turn it away.

        While the room is churning (:class:`~chatroom.server.core.admission.Churn`) a newcomer
        is admitted *quietly*: it is welcomed and receives the room's events at once, but
        its join is appended only with its first line or when ``churn_window`` has passed
        (:meth:`idle_check`), so one that leaves before either costs nobody a line.
        """
        if conn in self:
            raise ValueError(f"connection {conn} is already in the room")
        address, exempt = self.admission.address(host)
        refusal = self._admission_problem(address, exempt, now)
        if refusal is not None:
            cause, text = refusal
            notice = p.Notice(code=p.NoticeCode.SERVER_FULL, text=text)
            return [
                Deliver.one(conn, p.OutputFormat.TEXT, notice),
                TurnedAway(conn, text, cause),
                Close(conn),
            ]
        user_id, name = self._identity(conn, host, port)
        member = Member(
            conn=conn, id=user_id, address=address, name=name, last_active=now, connected_at=now
        )
        self.state.add_member(member)
        if self.rules.password is not None:
            member.waiting = True  # in nobody's sight until it gives the password
            return [Admitted(conn, member.name, len(self.state), waiting=True),
                    *self._send(member, self._password_prompt())]  # fmt: skip
        return self._enter(member, now)

    def _enter(self, member: Member, now: float) -> list[RoomAction]:
        """``member`` comes into the room: its join is appended (or, while the room
        churns, waits)."""
        conn = member.conn
        churn = self.admission.churn
        if churn.churning(now):
            member.quiet_until = now + self.rules.churn_window
            return [Admitted(conn, member.name, len(self.state), quiet=True), *self._admit(member)]
        churn.arrived(conn, now)
        join = p.Join(seq=self._new_seq(), ts=now, id=member.id, name=member.name)
        return [Admitted(conn, member.name, len(self.state)), *self._append(join, member)]

    def receive(self, conn: ConnId, line: str | LineTooLong, now: float) -> list[RoomAction]:
        """A line (or a too-long line's report) arrived from ``conn``."""
        member = self.state.member(conn)
        if member is None:  # it already left; what it still sent goes nowhere
            return []
        if member.waiting:
            return self._before_password(member, command_of(line), now)
        member.last_active = now
        member.warned = False
        if not member.spoke:
            member.spoke = True
            self.admission.churn.spoke(conn)
        actions = self._announce(member, now) if member.quiet_until is not None else []
        held = self._held(member, line)
        if held is not None:
            return actions + held
        return actions + self._run(member, command_of(line), now)

    def disconnect(
        self,
        conn: ConnId,
        reason: p.LeaveReason,
        now: float,
        text: str | None = None,
        by: str | None = None,
    ) -> list[RoomAction]:
        """``conn`` is gone (or is being sent away); tell everyone else. Idempotent.

        A member admitted quietly and never announced leaves unannounced too: its join and
        leave take no seq, so nobody can tell they were there at all."""
        subscribed = self.state.is_subscribed(conn)
        member = self.state.remove_member(conn)
        if member is None:
            return []
        self.admission.churn.left(conn, member.connected_at, member.spoke, now)
        if member.ignoring:
            self._ignorer_left(member)
        quiet = member.quiet_until is not None or member.waiting
        actions: list[RoomAction] = [Unsubscribe(conn)] if subscribed else []
        actions.append(Left(conn, member.name, reason, quiet=quiet))
        if quiet:
            return actions
        leave = p.Leave(
            seq=self._new_seq(), ts=now, id=member.id, name=member.name, reason=reason, text=text
        )
        if by is not None:
            leave = p.replace(leave, by=by)
        return actions + self._append(leave, None)

    def idle_check(self, conn: ConnId, now: float) -> list[RoomAction]:
        """A timer for ``conn`` fired: announce it if it was admitted quietly and its time
        has come; warn or kick it if it has been idle long enough."""
        member = self.state.member(conn)
        if member is None:
            return []
        actions: list[RoomAction] = []
        if member.quiet_until is not None and now >= member.quiet_until:
            actions = self._announce(member, now)
        rules = self.rules
        timeout = rules.idle_timeout
        if timeout <= 0:
            return actions
        idle = now - member.last_active
        if idle >= timeout:
            notice = p.Notice(
                code=p.NoticeCode.TIMEOUT,
                text=f"disconnected: no line from you for {timeout:g}s",
            )
            return [
                *actions,
                Deliver.one(conn, member.format, notice),
                *self.disconnect(conn, p.LeaveReason.TIMEOUT, now),
                Close(conn),
            ]
        warn_at = timeout - rules.idle_warning_lead
        if timeout > rules.idle_warning_min_timeout and not member.warned and idle >= warn_at:
            member.warned = True
            notice = p.Notice(
                code=p.NoticeCode.IDLE_WARNING,
                text=f"you will be disconnected in {timeout - idle:.0f}s unless you send a line",
            )
            return actions + self._send(member, notice)
        return actions

    def shutdown(self, now: float) -> list[RoomAction]:
        """The server is stopping: tell everyone and close every connection.

        Everyone leaves at once, so each user gets one ``shutdown`` notice rather than a
        leave line for every other user (which would be N² lines for N users).
        """
        notice = p.Notice(code=p.NoticeCode.SHUTDOWN, text="the server is shutting down")
        actions = self._broadcast(notice)
        for conn in self.state.everyone_leaves():
            actions += [Unsubscribe(conn), Close(conn)]
        return actions

    # --- commands ------------------------------------------------------------------------------

    def _run(self, member: Member, command: c.Command, now: float) -> list[RoomAction]:
        moderation = self.moderation
        if isinstance(command, c.Chat | c.Me) and (moderation.mutes or moderation.muted_names):
            refused = self._muted(member, now)
            if refused:
                return refused
        match command:
            case c.Nothing():
                return []
            case c.Chat(text):
                message = p.Message(
                    seq=self._new_seq(), ts=now, id=member.id, name=member.name, text=text
                )
                return self._append(message, member)
            case c.Me(text):
                action = p.Action(
                    seq=self._new_seq(), ts=now, id=member.id, name=member.name, text=text
                )
                return self._append(action, member)
            case c.Who(query):
                return self._who(member, query, now)
            case c.Nick(name):
                return self._rename(member, name, now)
            case c.Msg(target, text):
                return self._private(member, target, text, now)
            case c.Quit(reason):
                return [*self.disconnect(member.conn, p.LeaveReason.QUIT, now, reason),
                        Close(member.conn)]  # fmt: skip
            case c.Help():
                help_text = self._help_text(member)
                return self._send(member, p.Notice(code=p.NoticeCode.HELP, text=help_text))
            case c.Ping(text):
                return self._send(member, self._pong(text))
            case c.Pass():
                return self._send(
                    member, p.Notice(code=p.NoticeCode.INFO, text="you are already in the room")
                )
            case c.SetFormat(fmt):
                return self._set_format(member, fmt)
            case c.TooLong(limit):
                return self._error(
                    member,
                    p.ErrorCode.LINE_TOO_LONG,
                    f"line too long (over {limit} bytes); it was not sent",
                )
            case c.Usage(message):
                return self._error(member, p.ErrorCode.BAD_USAGE, message)
            case c.Oper() | c.Kick() | c.Mute() | c.Unmute() | c.Topic() | c.Motd():
                return self._moderate(member, command, now)
            case c.Ban() | c.Unban() | c.Bans():
                return self._moderate(member, command, now)
            case c.Ignore() | c.Unignore() | c.Away():
                return self._self_service(member, command)
            case c.Unknown(word):
                return self._error(
                    member,
                    p.ErrorCode.UNKNOWN_COMMAND,
                    f"unknown command /{word} "
                    "(type /help; start a line with // to send it as chat)",
                )
        raise AssertionError(f"a command with no rule: {command!r}")

    def _pong(self, text: str) -> p.Notice:
        return p.Notice(code=p.NoticeCode.PONG, text=f"pong {text}" if text else "pong")

    def _rename(self, member: Member, new: str, now: float) -> list[RoomAction]:
        problem = p.name_problem(new)
        if problem is not None:
            return self._error(member, p.ErrorCode.NAME_INVALID, f"cannot use that name: {problem}")
        new = p.normal_name(new)
        if new == member.name:
            return self._send(
                member, p.Notice(code=p.NoticeCode.INFO, text=f"you are already {new}")
            )
        holder = self.state.holder_of(new)
        if holder is not None and holder != member.id:
            return self._error(member, p.ErrorCode.NAME_TAKEN, self._taken(new, holder))
        not_now = self._rename_refusal(member)
        if not_now:
            return not_now
        rename = p.Rename(seq=self._new_seq(), ts=now, id=member.id, old=member.name, new=new)
        return self._append(rename, member)

    def _taken(self, name: str, holder: str) -> str:
        """Why ``name`` is taken: by whom, if the holder's name only looks like it."""
        user = self.state.user(holder)
        if user is None or p.name_key(user.name) == p.name_key(name):
            return f"the name {name} is taken"
        return f"the name {name} is taken: it looks like {user.name}, who is online"

    def _private(self, member: Member, target: str, text: str, now: float) -> list[RoomAction]:
        user = self.state.user(self.state.holder_of(target) or "")
        if user is None:
            shown = p.strip_controls(target)[:40]
            return self._error(member, p.ErrorCode.UNKNOWN_USER, f"no user named {shown} is online")
        private = p.Private(ts=now, sender=member.name, recipient=user.name, text=text)
        actions = self._send(member, private)
        if user.id == member.id:
            return actions
        recipient = self.state.local(user.id) if user.node == self.node else None
        if recipient is not None:
            actions += [a for e in self._away_notice(user.id) for a in self._send(member, e)]
            if self._ignores(recipient, member.id):
                return actions  # silently: the sender is not told it is ignored
            return actions + self._send(recipient, private)
        return actions + self._private_elsewhere(member, user.node, user.id, private)

    def _who(self, member: Member, query: str, now: float) -> list[RoomAction]:
        """Capped at ``who_max`` users, and counted against flood control by its size."""
        rules = self.rules
        stamp = (self.state.version, int(now))
        cached = self._who_cache.get(member.format) if not query else None
        if cached is not None and cached[0] == stamp:
            reply = Deliver((member.conn,), cached[1].payload, cached[1].events)
        else:
            event = self.state.who(now, query, rules.who_max)
            reply = Deliver.one(member.conn, member.format, event)
            if not query:
                self._who_cache[member.format] = (stamp, reply)
        listed = len(reply.events[0].users)  # type: ignore[union-attr]
        extra = listed // max(1, rules.who_users_per_line)
        return [reply, Charge(member.conn, extra)] if extra else [reply]

    def _set_format(self, member: Member, fmt: p.OutputFormat) -> list[RoomAction]:
        self.state.set_format(member, fmt)
        return [
            Subscribe(member.conn, fmt),
            Deliver.one(member.conn, fmt, p.FormatChanged(format=fmt)),
            *self._greeting(member),
        ]

    # --- sequencing: what a shared room does differently ---------------------------------------

    def _new_seq(self) -> int:
        """The seq for an event about to be appended."""
        return self.state.seq + 1

    def _announce(self, member: Member, now: float) -> list[RoomAction]:
        """A member admitted quietly joins the room for everyone to see."""
        member.quiet_until = None
        join = p.Join(seq=self._new_seq(), ts=now, id=member.id, name=member.name)
        return self._append(join, member)

    def _append(self, event: p.BroadcastEvent, member: Member | None) -> list[RoomAction]:
        return self._apply(event, self.node)

    def _held(self, member: Member, line: str | LineTooLong) -> list[RoomAction] | None:
        """None if ``line`` is handled now (always, in this room); else what to say now
        while it waits or is refused."""
        return None

    def _rename_refusal(self, member: Member) -> list[RoomAction]:
        """Why ``member`` cannot rename right now, as the error to send (never, here)."""
        return []

    def _private_elsewhere(
        self, sender: Member, node: str, user_id: str, private: p.Private
    ) -> list[RoomAction]:
        """A private message for a user on another node (there are none in this room)."""
        return []

    # --- applying a sequenced event ------------------------------------------------------------

    def _apply(self, event: p.BroadcastEvent, node: str) -> list[RoomAction]:
        """A sequenced event: update who is here, then broadcast it to this node's members."""
        actions: list[RoomAction] = []
        skip: set[ConnId] | None = None
        match event:
            case p.Message() | p.Action():
                self.state.said(event)
                skip = self.ignored_by.get(event.id)  # almost always None: nobody ignores
            case p.Join():
                member = self.state.joined(event, node)
                if member is not None and not self.state.is_subscribed(member.conn):
                    actions += self._admit(member)
            case p.Rename():
                member = self.state.renamed(event, node)
                if member is not None:
                    actions.append(Renamed(member.conn, event.old, event.new))
            case p.Leave():
                self.state.left(event)
                if event.id in self.ignored_by:
                    self._ignored_left(event.id)
        return actions + self._broadcast(event, skip)

    def _admit(self, member: Member) -> list[RoomAction]:
        """A member's join is sequenced: greet it and subscribe it to the broadcasts."""
        self.state.subscribe(member)
        return [*self._greeting(member), Subscribe(member.conn, member.format)]

    # --- output --------------------------------------------------------------------------------

    def _greeting(self, member: Member) -> list[RoomAction]:
        unannounced = self.state.user(member.id) is None  # quiet, or its join is pending
        welcome = p.Welcome(
            id=member.id,
            name=member.name,
            idle_timeout=self.rules.idle_timeout,
            users=self.state.user_count + unannounced,
            epoch=self.state.epoch,
            topic=self._topic_text(),
        )
        events: list[p.Event] = [welcome]
        events += self._motd_events()
        events += [p.replace(event, history=True) for event in self.state.history]
        payload = b"".join(encode(event, member.format) for event in events)
        return [Deliver((member.conn,), payload, tuple(events))]

    def _broadcast(self, event: p.Event, skip: set[ConnId] | None = None) -> list[RoomAction]:
        """The event for everyone in the room (but ``skip``, those ignoring its sender):
        encoded once per output format in use."""
        formats = self.state.formats_in_use()
        if skip:
            skipped = frozenset(skip)
            return [Broadcast(fmt, encode(event, fmt), (event,), skipped) for fmt in formats]
        return [Broadcast(fmt, encode(event, fmt), (event,)) for fmt in formats]

    def _send(self, member: Member, event: p.Event) -> list[RoomAction]:
        return [Deliver.one(member.conn, member.format, event)]

    def _error(self, member: Member, code: p.ErrorCode, message: str) -> list[RoomAction]:
        return self._send(member, p.Error(code=code, message=message))
