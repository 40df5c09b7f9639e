"""Who may come in, and as whom: the room's entry rules. No I/O.

The part of :class:`~chatroom.server.core.room.Room` that decides about a newcomer before it is
in the room — the per-address limits it is judged by (:mod:`chatroom.server.core.admission`
keeps their counters), the id and first name it gets (its address, or with
``--hide-addresses`` an opaque id and a ``guest-NNNN``), and, in a room with a password,
what it may do until it gives it — kept here so that the room reads as the room.
"""

from __future__ import annotations

import hmac
import random

from chatroom import protocol as p
from chatroom.protocol import commands as c
from chatroom.server.config import RoomRules
from chatroom.server.core.actions import Close, ConnId, RoomAction, TurnedAway
from chatroom.server.core.addresses import peer_id
from chatroom.server.core.admission import Admission, Cause
from chatroom.server.core.moderation import Moderation
from chatroom.server.core.state import Member, RoomState


class EntryRules:
    """Mixed into :class:`~chatroom.server.core.room.Room`, whose state and helpers it uses."""

    rules: RoomRules
    state: RoomState
    admission: Admission
    moderation: Moderation
    _random: random.Random

    # Provided by the room.
    def _send(self, member: Member, event: p.Event) -> list[RoomAction]: ...
    def _error(self, member: Member, code: p.ErrorCode, message: str) -> list[RoomAction]: ...
    def _enter(self, member: Member, now: float) -> list[RoomAction]: ...
    def _pong(self, text: str) -> p.Notice: ...
    def disconnect(
        self, conn: ConnId, reason: p.LeaveReason, now: float, text: str | None = None
    ) -> list[RoomAction]: ...

    # --- who a newcomer is ------------------------------------------------------------------

    def _identity(self, conn: ConnId, host: str, port: int) -> tuple[str, str]:
        """A newcomer's id and first name: its address, or (``hide_addresses``) an opaque
        random id and a random unused ``guest-NNNN``."""
        if not self.rules.hide_addresses:
            user_id = peer_id(host, port)
            if self.state.local(user_id) is not None or self.state.user(user_id) is not None:
                user_id = f"{user_id}~{conn}"  # an address reported twice: ids stay unique
            return user_id, user_id
        user_id = f"u{self._random.getrandbits(64):016x}"
        while self.state.local(user_id) is not None or self.state.user(user_id) is not None:
            user_id = f"u{self._random.getrandbits(64):016x}"
        return user_id, self._guest_name()

    def _guest_name(self) -> str:
        """A random ``guest-NNNN`` nobody here holds."""
        digits = 4
        while True:  # a few tries at each width; a room of thousands of guests gets wider
            for _ in range(8):
                name = f"guest-{self._random.randrange(10**digits):0{digits}d}"
                if self.state.holder_of(name) is None and not self._named_here(name):
                    return name
            digits += 1

    def _named_here(self, name: str) -> bool:
        """Whether a member of this node not yet in the room (waiting) is called ``name``."""
        key = p.name_skeleton(name)
        return any(p.name_skeleton(m.name) == key for m in self.state.members() if m.waiting)

    # --- a room with a password ------------------------------------------------------------

    def _password_prompt(self) -> p.Notice:
        return p.Notice(
            code=p.NoticeCode.PASSWORD,
            text="this room needs a password: send /pass SECRET",
        )

    def _before_password(self, member: Member, command: c.Command, now: float) -> list[RoomAction]:
        """A line from a newcomer still waiting for the password: only /pass, /quit,
        /format, /ping and /help mean anything, and none of them is activity (it has the
        idle timeout from connecting to give the password)."""
        match command:
            case c.Pass(secret):
                return self._password(member, secret, now)
            case c.Quit():
                return [*self.disconnect(member.conn, p.LeaveReason.QUIT, now),
                        Close(member.conn)]  # fmt: skip
            case c.SetFormat(fmt):
                self.state.set_format(member, fmt, subscribe=False)
                changed = p.FormatChanged(format=fmt)
                return [*self._send(member, changed), *self._send(member, self._password_prompt())]
            case c.Ping(text):
                return self._send(member, self._pong(text))
            case c.Nothing():
                return []
        return self._send(member, self._password_prompt())

    def _password(self, member: Member, secret: str, now: float) -> list[RoomAction]:
        """``/pass SECRET`` from a waiting newcomer: let it in, or count a failure."""
        rules = self.rules
        assert rules.password is not None
        wait = self.admission.password_wait(member.address, now)
        if wait:
            text = f"too many wrong passwords from your address; try again in {wait}s"
            return self._error(member, p.ErrorCode.BAD_PASSWORD, text)
        if hmac.compare_digest(secret.encode(), rules.password):
            member.waiting = False
            member.last_active = now
            return self._enter(member, now)
        member.failures += 1
        self.admission.password_failed(member.address, now)
        left = rules.password_tries - member.failures
        if left > 0:
            tries = "1 try" if left == 1 else f"{left} tries"
            return self._error(member, p.ErrorCode.BAD_PASSWORD, f"wrong password ({tries} left)")
        text = f"wrong password {rules.password_tries} times; goodbye"
        self.state.remove_member(member.conn)
        return [
            *self._error(member, p.ErrorCode.BAD_PASSWORD, text),
            TurnedAway(member.conn, text, Cause.BAD_PASSWORD),
            Close(member.conn),
        ]

    # --- whether it may come in -------------------------------------------------------------

    def _admission_problem(
        self, address: str, exempt: bool, now: float
    ) -> tuple[Cause, str] | None:
        """Why a newcomer from ``address`` cannot come in, if it cannot: the cause, and the
        text it is told. Admitting it takes one of its address's new-connection tokens."""
        rules = self.rules
        banned = self.moderation.refusal(address, now)  # exempt networks too: an operator's choice
        if banned is not None:
            return Cause.BANNED, banned
        if len(self.state) >= rules.max_clients:
            return Cause.FULL, f"server full ({rules.max_clients} users); try again later"
        if exempt:
            return None
        if self.state.connections_from(address) >= rules.max_per_ip:
            return (
                Cause.PER_ADDRESS,
                f"too many connections from your address (at most {rules.max_per_ip})",
            )
        wait = self.admission.throttled(address, now)
        if wait:
            return (
                Cause.THROTTLED,
                f"too many new connections from your address; try again in {wait}s",
            )
        return None
