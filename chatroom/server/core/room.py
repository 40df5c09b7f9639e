"""The room: the one place every event goes through. No I/O.

A :class:`Room` takes events (:mod:`chatroom.server.core.inputs`) — a connection arrived, a
line came in, a connection ended, a timer fired, the ledger sequenced an event — each with
the current time, and returns the actions that follow (:mod:`chatroom.server.core.actions`):
bytes to deliver to some connections, connections to close, reports of what it decided. It
never touches a socket or a clock, so every rule is unit-tested by calling it directly.

The room is a dispatcher, as h11's connection is: :meth:`Room.handle` sends each event,
and each command a line asks for, to its rule in :mod:`chatroom.server.core.rules`. What it
knows is in its state objects (:class:`~chatroom.server.core.state.RoomState`,
:class:`~chatroom.server.core.moderation_state.Moderation`,
:class:`~chatroom.server.core.admission.Admission`, its sequencer), which only their own
methods change. A room shared by several servers is the same room made with a
:class:`~chatroom.server.core.sequencer.LedgerSequencer` (:meth:`Room.shared`).

Connections are named by opaque integer ids the caller picks. Each member is subscribed to
the broadcasts of its output format (:class:`~chatroom.server.core.actions.Subscribe`); a
broadcast is encoded once per format in use and addressed to that format's subscribers,
not to a list of recipients, so its cost does not grow with the size of the room.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from typing import Any

from chatroom import protocol as p
from chatroom.protocol import commands as c
from chatroom.server.config import RoomRules
from chatroom.server.core import inputs as i
from chatroom.server.core.accounts_state import Accounts
from chatroom.server.core.actions import Check, ConnId, Restored, RoomAction
from chatroom.server.core.admission import Admission
from chatroom.server.core.codec import LineTooLong, command_of
from chatroom.server.core.moderation_state import Moderation
from chatroom.server.core.requests import Requests
from chatroom.server.core.rules import (
    accounts,
    basics,
    chat,
    entry,
    history,
    idle,
    leaving,
    moderation,
    names,
    persisting,
    programs,
    rooms,
    selfservice,
    sequencing,
    shared,
    shared_moderation,
)
from chatroom.server.core.rules import operators as oper_rules
from chatroom.server.core.rules.context import Context
from chatroom.server.core.sequencer import LedgerSequencer, LocalSequencer, Sequencer
from chatroom.server.core.state import Member, RoomState
from chatroom.server.core.who import who_list

LOCAL_NODE = "local"  # the node of every user of a room that one server holds alone

CommandRule = Callable[[Context, Member, Any, float], list[RoomAction]]

# Each command's rule, from the table each rule module keeps of its own: adding a command
# is a Struct in chatroom/protocol/commands.py, its help line, and a rule with its line in
# its module's COMMANDS (docs/ARCHITECTURE.md, "How to add a command").
COMMANDS: dict[type[c.Command], CommandRule] = {
    **basics.COMMANDS,
    **chat.COMMANDS,
    **names.COMMANDS,
    **leaving.COMMANDS,
    **oper_rules.COMMANDS,
    **moderation.COMMANDS,
    **selfservice.COMMANDS,
    **accounts.COMMANDS,
    **history.COMMANDS,
    **programs.COMMANDS,
    **rooms.COMMANDS,
}


class Room:
    """One chat room, as seen from one server process.

    All of its state is owned by the single event loop that calls it, and every call runs
    to completion without awaiting, so no two calls ever interleave: it needs no lock.
    """

    def __init__(
        self,
        rules: RoomRules,
        node: str = LOCAL_NODE,
        epoch: str | None = None,
        rng: random.Random | None = None,
        restored: Restored | None = None,
        *,
        sequencer: Sequencer | None = None,
        operators: dict[str, tuple[str, str]] | None = None,
        motd: str | None = None,
    ) -> None:
        # epoch: which history the seqs count in, sent in every welcome (None: left out).
        # The caller makes it: a new one per process, unless a state file says where a
        # clean stop left the last (restored.epoch): then seqs go on from its seq.
        # restored: what a state file kept (--state). The room then reports, as Persist
        # actions, every change the file must keep: bans, mutes and the topic as they are
        # made, the history when asked (StateFlushDue), where it stopped (ShuttingDown).
        state = RoomState(node, rules.keep, epoch, rules.room, rules.rooms)
        requests = Requests(rules.request_ttl, rules.request_table, saved=restored is not None)
        lease = None
        if restored is not None:
            self._restore(state, rules, restored)
            requests.restore([list(entry) for entry in restored.requests])
            lease = restored.lease
        if sequencer is None:
            given = max(channel.seq for channel in state.rooms.all())
            sequencer = LocalSequencer(lease, rules.seq_lease, rules.max_clients, given)
        # A state file's seq lease bounds the seqs: checked before each line (core/sequencer.py).
        self._lease = (
            sequencer if isinstance(sequencer, LocalSequencer) and lease is not None else None
        )
        p.load_name_data()  # now, not with the first newcomer (see its docstring)
        self.ctx = Context(
            rules=rules,
            node=node,
            state=state,
            moderation=Moderation(operators, motd, restored, rules.room),
            admission=Admission(rules),
            accounts=Accounts(rules, restored.accounts if restored is not None else None),
            sequencer=sequencer,
            requests=requests,
            # Guest names and opaque ids (--hide-addresses): unpredictable unless seeded.
            random=rng if rng is not None else random.SystemRandom(),
            persisting=restored is not None or isinstance(sequencer, LedgerSequencer),
            rerun=self._line,
            run=self._run,
            request=lambda member, line, now: programs.request(self.ctx, member, line, now),
        )
        self._inputs: dict[type, Callable[[Any, float], list[RoomAction]]] = {
            i.LineReceived: lambda e, now: self._line(e.conn, e.line, now),
            i.Connected: lambda e, now: (
                persisting.refuse_newcomer(self.ctx, e.conn)
                if self._lease is not None and self._lease.short()
                else entry.connect(self.ctx, e.conn, e.host, e.port, now)
            ),
            i.Disconnected: lambda e, now: leaving.disconnect(self.ctx, e.conn, e.reason, now),
            i.TimerFired: lambda e, now: idle.check(self.ctx, e.conn, now),
            i.Restarting: lambda e, now: leaving.restart_away(self.ctx, e.conn, now),
            i.ShuttingDown: lambda e, now: (
                leaving.shutdown(self.ctx) + persisting.stopped(self.ctx, now)
            ),
            i.StateFlushDue: lambda e, now: persisting.flush(self.ctx, now),
            i.LeaseGranted: lambda e, now: persisting.granted(self.ctx, e.lease),
            i.PasswordChecked: lambda e, now: self._checked(e, now),
            i.PasswordHashed: lambda e, now: accounts.hashed(
                self.ctx, e.conn, e.name, e.stored, now
            ),
            i.Paced: lambda e, now: programs.paced(self.ctx, e.conn, e.retry_after),
            i.Sequenced: lambda e, now: programs.sequenced(self.ctx, e.event, e.node),
            i.Repeated: lambda e, now: programs.repeated(self.ctx, e.event, e.seq, now),
            i.AppendRefused: lambda e, now: shared.refused(self.ctx, e.conn, e.event, e.reason),
            i.Resynced: lambda e, now: shared.resync(self.ctx, e, now),
            i.LedgerStatus: lambda e, now: shared.ledger_notice(self.ctx, e.text),
            i.PrivateArrived: lambda e, now: shared.remote_private(
                self.ctx, e.recipient_id, e.event, e.sender_id
            ),
            i.PrivateUndelivered: lambda e, now: shared.private_undelivered(
                self.ctx, e.conn, e.event
            ),
            i.ModerationAsked: lambda e, now: shared_moderation.moderate_for(
                self.ctx, e.request, now
            ),
            i.ModerationAnswered: lambda e, now: shared_moderation.answered(self.ctx, e.answer),
            i.ModerationUndelivered: lambda e, now: shared_moderation.undelivered(
                self.ctx, e.operator, e.request, maybe_done=e.maybe_done
            ),
            i.ModerationChanged: lambda e, now: shared_moderation.remote_change(
                self.ctx, e.kind, e.key, e.data, now
            ),
            i.ModerationLoaded: lambda e, now: shared_moderation.loaded(self.ctx, e.records, now),
        }

    @classmethod
    def shared(cls, rules: RoomRules, node: str, **kwargs: Any) -> Room:
        """One node of a room shared by several servers through a ledger (Redis)."""
        return cls(rules, node, sequencer=LedgerSequencer(node, rules.held_lines), **kwargs)

    # --- the one entry point -----------------------------------------------------------

    def handle(self, event: i.Input, now: float) -> list[RoomAction]:
        """``event`` happened at ``now``: the actions that follow."""
        return self._inputs[type(event)](event, now)

    def _line(self, conn: ConnId, line: str | LineTooLong, now: float) -> list[RoomAction]:
        """A line (or a too-long line's report) arrived from ``conn``."""
        ctx = self.ctx
        member = ctx.state.member(conn)
        if member is None:  # it already left; what it still sent goes nowhere
            return []
        if self._lease is not None and not self._lease.take_line():  # the file is behind
            return persisting.refuse_line(ctx, member)
        if member.waiting:
            return entry.before_password(ctx, member, command_of(line), now)
        if member.touched(now):
            ctx.admission.churn.spoke(conn)
        actions = sequencing.announce(ctx, member, now) if member.quiet_until is not None else []
        if ctx.sequencer.waits(conn):
            held = shared.held(ctx, member, line)
            if held is not None:
                return actions + held
        command = command_of(line)
        return actions + COMMANDS[type(command)](ctx, member, command, now)

    def _checked(self, event: i.PasswordChecked, now: float) -> list[RoomAction]:
        """A password the adapter checked: an /oper's or a /login's."""
        checked = oper_rules.oper_checked if event.purpose == Check.OPER else accounts.login_checked
        return checked(self.ctx, event.conn, event.name, event.ok, event.busy, now)

    def _run(self, member: Member, command: c.Command, now: float) -> list[RoomAction]:
        """``command`` from ``member``, through its rule (a request's line)."""
        return COMMANDS[type(command)](self.ctx, member, command, now)

    @staticmethod
    def _restore(state: RoomState, rules: RoomRules, restored: Restored) -> None:
        """The rooms' history a state file kept: the default room's, and the other rooms'
        that still exist (listed with --rooms; the others are gone with their users); a
        listed room's seq after a clean stop, though it kept no line."""
        seqs = restored.seqs
        for room in dict.fromkeys((rules.room, *rules.rooms)):
            kept = restored.history if room == rules.room else restored.histories.get(room, ())
            # Every message of the epoch is there if the file never had to trim them; after
            # a crash every room goes on from the seq lease, and its seqs after the last
            # message kept may be lost (a hole).
            whole = restored.epoch is not None and len(kept) < rules.keep
            seq = seqs.get(room, 0) if room != rules.room and not restored.lost else restored.seq
            known = 0 if whole else (kept[0].seq - 1 if kept else seq)
            hole = (kept[-1].seq if kept else 0, seq) if restored.lost else None
            state.restore_history(kept, seq, known=known, hole=hole, room=room)

    def carried_over(self, parts: dict[str, Any]) -> None:
        """Take the state objects another process's room had (an upgrade's handover:
        core/snapshot.py). Its callbacks read ``self.ctx`` when called: they follow."""
        self.ctx = dataclasses.replace(self.ctx, **parts)
        sequencer = self.ctx.sequencer  # its seq lease, if a state file gave it one
        leased = isinstance(sequencer, LocalSequencer) and sequencer.lease is not None
        self._lease = sequencer if leased else None

    # --- shorthands for handle(), as the tests and a REPL call the room ------------------

    def connect(self, conn: ConnId, host: str, port: int, now: float) -> list[RoomAction]:
        return self.handle(i.Connected(conn, host, port), now)

    def receive(self, conn: ConnId, line: str | LineTooLong, now: float) -> list[RoomAction]:
        return self.handle(i.LineReceived(conn, line), now)

    def disconnect(self, conn: ConnId, reason: p.LeaveReason, now: float) -> list[RoomAction]:
        return self.handle(i.Disconnected(conn, reason), now)

    def idle_check(self, conn: ConnId, now: float) -> list[RoomAction]:
        return self.handle(i.TimerFired(conn), now)

    def shutdown(self, now: float) -> list[RoomAction]:
        return self.handle(i.ShuttingDown(), now)

    def history_due(self) -> list[RoomAction]:
        return self.handle(i.StateFlushDue(), 0.0)

    # --- queries -------------------------------------------------------------------------

    @property
    def state(self) -> RoomState:
        return self.ctx.state

    @property
    def moderation(self) -> Moderation:
        return self.ctx.moderation

    @property
    def admission(self) -> Admission:
        return self.ctx.admission

    @property
    def node(self) -> str:
        return self.ctx.node

    @property
    def ignored_by(self) -> dict[str, set[ConnId]]:
        return self.ctx.state.ignores.by_user

    def __len__(self) -> int:
        """Connections on this node."""
        return len(self.ctx.state)

    def __contains__(self, conn: object) -> bool:
        return isinstance(conn, int) and self.ctx.state.member(conn) is not None

    @property
    def seq(self) -> int:
        """The seq of the last broadcast event applied (0 before the first)."""
        return self.ctx.state.seq

    @property
    def epoch(self) -> str | None:
        """Which history the seqs count in (a shared room's is None until its first sync)."""
        return self.ctx.state.epoch

    @property
    def messages(self) -> int:
        """Chat lines and actions applied since the room was made."""
        return self.ctx.state.messages

    def who(self, now: float) -> p.Who:
        return who_list(self.ctx.state, now, registered=self.ctx.accounts.is_registered)

    @property
    def accounts(self) -> Accounts:
        return self.ctx.accounts

    def name_of(self, conn: ConnId) -> str | None:
        member = self.ctx.state.member(conn)
        return member.name if member else None

    def next_idle_check(self, conn: ConnId) -> float | None:
        """When the caller should next hand the room :class:`TimerFired` for ``conn``
        (None: never)."""
        member = self.ctx.state.member(conn)
        return idle.next_check(self.ctx, member) if member is not None else None

    # --- the TLS port's admission: a handshake is not a member yet ----------------------

    def handshake_starts(self, host: str) -> str | None:
        """A TLS handshake from ``host`` wants to start: the key to
        :meth:`handshake_ends` with once it is over, or None if its address is at
        ``max_per_ip`` (handshakes under way and connections in the room together)."""
        admission = self.ctx.admission
        address, _exempt = admission.address(host)
        return admission.handshake_starts(host, self.ctx.state.connections_from(address))

    def handshake_ends(self, key: str) -> None:
        self.ctx.admission.handshake_ends(key)
