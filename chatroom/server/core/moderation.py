"""Moderation: operators and what they may do to the room. No I/O.

The operators are listed in ``--ops-file``, one ``NAME scrypt$N$R$P$SALT$HASH`` a line
(made by ``chatroom-server hash-password``); the adapter reads the file and hands its text
to :meth:`Moderation.load_operators`. ``/oper NAME PASSWORD`` makes a connection an
operator; wrong attempts are rate-limited per connection and reported (never with the
password) for the log.

:class:`Moderation` holds what moderation knows (the operators' hashes); the rules are
:class:`ModerationRules`, the part of :class:`~chatroom.server.core.room.Room` that decides
moderation commands, kept here so the room reads as the room.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import math
import os
from dataclasses import dataclass
from typing import Any

from chatroom import protocol as p
from chatroom.protocol import commands as c
from chatroom.server.config import RoomRules
from chatroom.server.core.actions import (
    Close,
    ConnId,
    Moderated,
    Outcome,
    Persist,
    Restored,
    RoomAction,
)
from chatroom.server.core.state import Member, RoomState

# scrypt's cost for new hashes: 16 MiB and ~50 ms a check (the stdlib's limit is 32 MiB).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
_MAX_N = 2**16  # refuse a file whose hash would take more memory than scrypt allows
# After the k-th wrong /oper on one connection, the next is refused for 2**k s (at most 60).
OPER_BACKOFF_MAX = 60.0


def hash_password(password: str, salt: bytes | None = None) -> str:
    """The ``scrypt$N$R$P$SALT$HASH`` form of ``password`` (salt and hash in base64)."""
    salt = os.urandom(16) if salt is None else salt
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def check_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (a ``scrypt$...`` form), in constant time."""
    n, r, par, salt, digest = _parse_hash(stored)
    tried = hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=par, dklen=len(digest), maxmem=2**26
    )
    return hmac.compare_digest(tried, digest)


def _parse_hash(stored: str) -> tuple[int, int, int, bytes, bytes]:
    kind, n, r, par, salt, digest = stored.split("$")
    if kind != "scrypt":
        raise ValueError(f"unknown hash kind {kind!r} (scrypt$... expected)")
    n_, r_, p_ = int(n), int(r), int(par)
    if not (1 < n_ <= _MAX_N and n_ & (n_ - 1) == 0 and 1 <= r_ <= 32 and 1 <= p_ <= 16):
        raise ValueError("scrypt parameters out of range")
    return (
        n_,
        r_,
        p_,
        base64.b64decode(salt, validate=True),
        base64.b64decode(digest, validate=True),
    )


def parse_operators(text: str) -> dict[str, tuple[str, str]]:
    """The operators listed in an ops file: ``name_key(NAME) -> (NAME, hash)``.

    Blank lines and ``#`` comments are skipped; a bad line raises ValueError naming it."""
    operators: dict[str, tuple[str, str]] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            name, stored = line.split()
            problem = p.name_problem(name)
            if problem:
                raise ValueError(problem)
            _parse_hash(stored)
        except ValueError as exc:
            detail = str(exc) if "unpack" not in str(exc) else "expected: NAME scrypt$..."
            raise ValueError(f"line {number}: {detail}") from None
        operators[p.name_key(name)] = (name, stored)
    return operators


def unknown_user(name: str) -> str:
    """The error for an operator's command that names nobody in the room."""
    return f"no user named {p.strip_controls(name)[:40]} is online"


def _span(seconds: float) -> str:
    """``seconds`` as a person reads it: 45s, 10m, 2h5m, 1d."""
    seconds = math.ceil(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts[:2])


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def network_of(address: str) -> Network | str:
    """An address as the per-address limits count it (admission.py: an IPv4 address, an
    IPv6 /64...) as a network, or itself if it is not an IP."""
    try:
        return ipaddress.ip_network(address, strict=False)
    except ValueError:
        return address


@dataclass(slots=True)
class Ban:
    """Everyone from ``target`` is sent away and refused at connect until ``until``."""

    target: Network | str  # a network, or an address that is not an IP (matched as is)
    until: float  # inf: until /unban
    name: str | None  # the user it was made against (/ban NAME), shown in /bans
    reason: str | None
    by: str

    def matches(self, where: Network | str) -> bool:
        """Whether it covers ``where`` (a network of :func:`network_of`): a ban of one
        IPv6 address covers its /64, as the per-address limits count it."""
        target = self.target
        if isinstance(target, str) or isinstance(where, str):
            return target == where
        return target.version == where.version and target.overlaps(where)  # type: ignore[arg-type]

    def describe(self, now: float) -> str:
        """One line for /bans: what, whose, how long still, by whom, why."""
        name = f" ({self.name})" if self.name else ""
        left = "no end" if self.until == math.inf else f"{_span(self.until - now)} left"
        why = f": {self.reason}" if self.reason else ""
        return f"{self.target}{name}, {left}, by {self.by}{why}"

    def record(self) -> dict[str, Any]:
        """What the state file keeps of it (--state; an endless ban's ``until`` is None)."""
        until = None if self.until == math.inf else self.until
        return {"target": str(self.target), "until": until, "name": self.name,
                "reason": self.reason, "by": self.by}  # fmt: skip

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Ban:
        until = record.get("until")
        return cls(
            network_of(str(record["target"])),
            math.inf if until is None else float(until),
            record.get("name"),
            record.get("reason"),
            str(record.get("by", "?")),
        )


class Moderation:
    """What the room's moderation knows: the operators' names and hashes, who is muted
    until when, the bans, the topic and the message of the day."""

    def __init__(self) -> None:
        self.operators: dict[str, tuple[str, str]] = {}
        self.mutes: dict[str, float] = {}  # user id -> muted until (inf: until unmuted)
        # Mutes restored from the state file (--state): name_key(name) -> until. A user id
        # does not outlive its connection, so a restored mute holds whoever uses the name.
        self.muted_names: dict[str, float] = {}
        self.bans: dict[str, Ban] = {}  # str(target) -> its ban; at most rules.max_bans
        self.topic: p.Topic | None = None
        self.motd: str | None = None  # --motd-file, read at start
        # A hash to check unknown names against, so a wrong name costs what a wrong
        # password does (no timing tells which names are operators); made when first needed.
        self._decoy: str | None = None

    def restore(self, restored: Restored) -> None:
        """Take the bans, mutes and topic a state file kept (--state)."""
        for key, record in restored.bans.items():
            self.bans[key] = Ban.from_record(record)
        for key, record in restored.mutes.items():
            until = record.get("until")
            self.muted_names[key] = math.inf if until is None else float(until)
        if restored.topic is not None and restored.topic.get("text"):
            self.topic = p.Topic(text=str(restored.topic["text"]), by=restored.topic.get("by"))

    def load_operators(self, text: str) -> None:
        """Take the operators of an ops file's ``text`` (ValueError if it is malformed)."""
        self.operators = parse_operators(text)

    def ban_of(self, address: str, now: float) -> Ban | None:
        """The ban that refuses ``address`` now, if one does (expired ones are forgotten)."""
        if not self.bans:
            return None
        self.forget_expired(now)
        where = network_of(address)
        return next((ban for ban in self.bans.values() if ban.matches(where)), None)

    def refusal(self, address: str, now: float) -> str | None:
        """What a newcomer from a banned ``address`` is told (None: it is not banned)."""
        ban = self.ban_of(address, now)
        if ban is None:
            return None
        why = f": {ban.reason}" if ban.reason else ""
        left = "with no end" if ban.until == math.inf else f"for {_span(ban.until - now)} more"
        return f"your address is banned from this server {left}{why}"

    def forget_expired(self, now: float) -> None:
        for key in [key for key, ban in self.bans.items() if ban.until <= now]:
            del self.bans[key]

    def verify(self, name: str, password: str) -> bool:
        entry = self.operators.get(p.name_key(name))
        if entry is None and self._decoy is None:
            self._decoy = hash_password("", salt=bytes(16))
        ok = check_password(password, entry[1] if entry else self._decoy)  # type: ignore[arg-type]
        return ok and entry is not None


@dataclass(frozen=True, slots=True)
class RemoteOperator:
    """An operator on another node of a shared room, for whom this node carries out a
    command on one of its own members (cluster_moderation.py); it is answered there."""

    name: str
    node: str


# Whom a moderation rule acts for: a member of this node, or an operator on another node.
Asker = Member | RemoteOperator


def parse_target(query: str) -> Network | None:
    """A /ban's target as an address or a CIDR network (None: it is a name)."""
    try:
        return ipaddress.ip_network(query, strict=False)
    except ValueError:
        return None


class ModerationRules:
    """The moderation commands, as rules of :class:`~chatroom.server.core.room.Room` (a mixin:
    it uses the room's ``state`` and its output helpers)."""

    state: RoomState
    moderation: Moderation
    rules: RoomRules
    persisting: bool  # report what the state file must keep (Persist): --state

    def _persist(self, kind: str, key: str, data: Any) -> list[RoomAction]:
        return [Persist(kind, key, data)] if self.persisting else []

    def _moderate(self, member: Member, command: c.Command, now: float) -> list[RoomAction]:
        match command:
            case c.Oper(name, password):
                return self._oper(member, name, password, now)
            case c.Topic(None):
                topic = self.moderation.topic or p.Topic(text="")
                return self._send(member, topic)
            case c.Motd():
                motd = self.moderation.motd
                if motd is None:
                    return self._send(member, p.Notice(code=p.NoticeCode.INFO, text="no motd"))
                return self._send(member, p.Notice(code=p.NoticeCode.MOTD, text=motd))
        if not member.operator:
            return self._not_operator(member, type(command).__name__.lower())
        elsewhere = self._moderate_elsewhere(member, command)
        if elsewhere is not None:
            return elsewhere
        match command:
            case c.Topic(text) if text is not None:
                self.moderation.topic = p.Topic(text=text, by=member.name)
                return [
                    Moderated(member.conn, f"topic set by {member.name}"),
                    *self._persist("topic", "topic", {"text": text, "by": member.name}),
                    *self._broadcast(self.moderation.topic),
                ]
            case c.Kick(target, reason):
                return self._kick(member, target, reason, now)
            case c.Mute(target, seconds):
                return self._mute(member, target, seconds, now)
            case c.Unmute(target):
                return self._unmute(member, target)
            case c.Ban(target, seconds, reason):
                return self._ban(member, target, seconds, reason, now)
            case c.Unban(target):
                return self._unban(member, target)
            case c.Bans():
                return self._bans(member, now)
        raise AssertionError(f"not a moderation command: {command!r}")

    def _oper(self, member: Member, name: str, password: str, now: float) -> list[RoomAction]:
        if member.operator:
            return self._send(member, p.Notice(code=p.NoticeCode.INFO, text="you are an operator"))
        wait = member.oper_retry_at - now
        if wait > 0:
            return self._error(
                member,
                p.ErrorCode.NOT_OPERATOR,
                f"too many wrong /oper attempts; try again in {wait:.0f}s",
            )
        shown = p.strip_controls(name)[:40]
        if not self.moderation.verify(name, password):
            member.oper_failures += 1
            backoff = min(OPER_BACKOFF_MAX, 2.0**member.oper_failures)
            member.oper_retry_at = now + backoff
            return [
                Moderated(
                    member.conn, f"wrong /oper for {shown!r} (attempt {member.oper_failures})"
                ),
                *self._error(member, p.ErrorCode.NOT_OPERATOR, "wrong operator name or password"),
            ]
        member.operator = True
        member.oper_failures = 0
        self.state.changed()  # who shows the mark
        notice = p.Notice(
            code=p.NoticeCode.INFO,
            text=f"you are now an operator ({shown}); /help lists your commands",
        )
        return [Moderated(member.conn, f"operator {shown}"), *self._send(member, notice)]

    def _target(self, member: Member, name: str) -> Member | list[RoomAction]:
        """This node's member called ``name``, or the error to send ``member``."""
        user_id = self.state.holder_of(name)
        target = self.state.local(user_id) if user_id is not None else None
        if target is None:  # nobody (in a shared room, another node's user is not asked here)
            return self._error(member, p.ErrorCode.UNKNOWN_USER, unknown_user(name))
        return target

    def _answered(self, member: Member, outcome: Outcome) -> list[RoomAction]:
        """A rule's outcome for an operator of this node: what it told it is sent to it."""
        actions, told = outcome
        return actions + [action for event in told for action in self._send(member, event)]

    def _moderated(self, asker: Asker, target: Member | None, text: str) -> Moderated:
        """The log's report of a moderation decision (about ``target``, if a user): named
        after the operator's connection, or after the target's if the operator is on
        another node (which logs its own side)."""
        if isinstance(asker, RemoteOperator):
            assert target is not None, "an operator on another node names a user of ours"
            return Moderated(target.conn, f"{text} (an operator on node {asker.node})")
        return Moderated(asker.conn, text)

    def _kick(self, member: Member, name: str, reason: str | None, now: float) -> list[RoomAction]:
        target = self._target(member, name)
        if isinstance(target, list):
            return target
        return self._answered(member, self._kick_member(member, target, reason, now))

    def _kick_member(self, asker: Asker, target: Member, reason: str | None, now: float) -> Outcome:
        told = f"you were kicked by {asker.name}" + (f": {reason}" if reason else "")
        actions = [
            self._moderated(asker, target, f"{asker.name} kicked {target.name}"),
            *self._send(target, p.Notice(code=p.NoticeCode.INFO, text=told)),
            *self.disconnect(target.conn, p.LeaveReason.KICKED, now, reason, by=asker.name),
            Close(target.conn),
        ]
        return actions, []  # the operator sees the leave, as everyone does

    def _mute(
        self, member: Member, name: str, seconds: float | None, now: float
    ) -> list[RoomAction]:
        target = self._target(member, name)
        if isinstance(target, list):
            return target
        return self._answered(member, self._mute_member(member, target, seconds, now))

    def _mute_member(
        self, asker: Asker, target: Member, seconds: float | None, now: float
    ) -> Outcome:
        until = math.inf if seconds is None else now + seconds
        self.moderation.mutes[target.id] = until
        record = {"name": target.name, "until": None if seconds is None else until}
        span = f" for {_span(seconds)}" if seconds is not None else ""
        told = p.Notice(code=p.NoticeCode.INFO, text=f"you were muted by {asker.name}{span}")
        done = p.Notice(code=p.NoticeCode.INFO, text=f"{target.name} is muted{span}")
        actions = [
            self._moderated(asker, target, f"{asker.name} muted {target.name}{span}"),
            *self._persist("mute", p.name_key(target.name), record),
            *self._send(target, told),
        ]
        return actions, [] if target is asker else [done]

    def _unmute(self, member: Member, name: str) -> list[RoomAction]:
        target = self._target(member, name)
        if isinstance(target, list):
            return target
        return self._answered(member, self._unmute_member(member, target))

    def _unmute_member(self, asker: Asker, target: Member) -> Outcome:
        by_id = self.moderation.mutes.pop(target.id, None)
        key = p.name_key(target.name)
        by_name = self.moderation.muted_names.pop(key, None)
        if by_id is None and by_name is None:
            return [], [p.Notice(code=p.NoticeCode.INFO, text=f"{target.name} is not muted")]
        told = p.Notice(code=p.NoticeCode.INFO, text=f"you were unmuted by {asker.name}")
        done = p.Notice(code=p.NoticeCode.INFO, text=f"{target.name} is no longer muted")
        actions = [
            self._moderated(asker, target, f"{asker.name} unmuted {target.name}"),
            *self._persist("mute", key, None),
            *self._send(target, told),
        ]
        return actions, [] if target is asker else [done]

    # --- bans

    def _ban(
        self, member: Member, query: str, seconds: float | None, reason: str | None, now: float
    ) -> list[RoomAction]:
        """Ban an address, a network, or the address a user is connected from now; send away
        everyone it covers (but the operator who made it)."""
        target = parse_target(query)
        if target is None:
            user = self._target(member, query)
            if isinstance(user, list) and ("/" in query or ":" in query):  # a typo, surely
                shown = p.strip_controls(query)[:50]
                text = f"not a user here, an address or a CIDR network: {shown}"
                return self._error(member, p.ErrorCode.BAD_USAGE, text)
            if isinstance(user, list):
                return user
            return self._answered(member, self._ban_member(member, user, seconds, reason, now))
        return self._answered(member, self._ban_network(member, target, None, seconds, reason, now))

    def _ban_member(
        self, asker: Asker, user: Member, seconds: float | None, reason: str | None, now: float
    ) -> Outcome:
        """Ban the address ``user`` is connected from (the rule of ``/ban NAME``)."""
        return self._ban_network(asker, network_of(user.address), user, seconds, reason, now)

    def _ban_network(
        self,
        asker: Asker,
        target: Network | str,
        user: Member | None,
        seconds: float | None,
        reason: str | None,
        now: float,
    ) -> Outcome:
        """Ban ``target``; ``user`` is whom it was made against (``/ban NAME``), if anyone:
        its name is kept with the ban."""
        name = user.name if user is not None else None
        bans = self.moderation.bans
        bans_max = self.rules.max_bans
        self.moderation.forget_expired(now)
        if str(target) not in bans and len(bans) >= bans_max:
            text = f"too many bans (at most {bans_max}): /unban one first"
            return [], [p.Error(code=p.ErrorCode.BAD_USAGE, message=text)]
        until = math.inf if seconds is None else now + seconds
        ban = Ban(target, until, name, reason, asker.name)
        bans[str(target)] = ban
        span = f" for {_span(seconds)}" if seconds is not None else ""
        told = f"you were banned by {asker.name}{span}" + (f": {reason}" if reason else "")
        logged = f"{asker.name} banned {ban.describe(now)}"
        actions: list[RoomAction] = [
            self._moderated(asker, user, logged),
            *self._persist("ban", str(target), ban.record()),
        ]
        sent_away = 0
        for other in self.state.members():
            if other is not asker and ban.matches(network_of(other.address)):
                sent_away += 1
                actions += [
                    *self._send(other, p.Notice(code=p.NoticeCode.INFO, text=told)),
                    *self.disconnect(other.conn, p.LeaveReason.KICKED, now, reason, by=asker.name),
                    Close(other.conn),
                ]
        users = "1 user" if sent_away == 1 else f"{sent_away} users"
        whose = f" ({name})" if name else ""
        done = f"banned {ban.target}{whose}{span}; {users} sent away"
        return actions, [p.Notice(code=p.NoticeCode.INFO, text=done)]

    def _unban(self, member: Member, query: str) -> list[RoomAction]:
        bans = self.moderation.bans
        target = parse_target(query)
        if target is not None:
            lifted = [str(target)] if str(target) in bans else []
        else:
            key = p.name_key(query)
            lifted = [k for k, ban in bans.items() if ban.name and p.name_key(ban.name) == key]
        shown = p.strip_controls(query)[:50]
        if not lifted:
            return self._send(
                member, p.Notice(code=p.NoticeCode.INFO, text=f"no ban matches {shown}")
            )
        forgotten: list[RoomAction] = []
        for key in lifted:
            del bans[key]
            forgotten += self._persist("ban", key, None)
        text = f"unbanned {', '.join(lifted)}"
        return [
            Moderated(member.conn, f"{member.name} {text}"),
            *forgotten,
            *self._send(member, p.Notice(code=p.NoticeCode.INFO, text=text)),
        ]

    def _bans(self, member: Member, now: float) -> list[RoomAction]:
        self.moderation.forget_expired(now)
        bans = self.moderation.bans
        lines = [f"bans ({len(bans)}):"] + [f"  {ban.describe(now)}" for ban in bans.values()]
        text = "\n".join(lines) if bans else "no bans"
        return self._send(member, p.Notice(code=p.NoticeCode.INFO, text=text))

    def _muted(self, member: Member, now: float) -> list[RoomAction]:
        """The error for a muted member's chat, or nothing if it may speak."""
        mutes = self.moderation.mutes
        until = mutes.get(member.id)
        named = self.moderation.muted_names
        key = p.name_key(member.name) if until is None and named else None
        if key is not None:
            until = named.get(key)
        if until is None:
            return []
        if now >= until:
            if key is None:
                del mutes[member.id]
            else:
                del named[key]
            return []
        left = "" if until == math.inf else f" for {_span(until - now)} more"
        return self._error(
            member, p.ErrorCode.MUTED, f"you are muted{left}: your line was not sent"
        )

    def _topic_text(self) -> str | None:
        """The topic for a welcome (None: none set)."""
        topic = self.moderation.topic
        return topic.text if topic is not None and topic.text else None

    def _motd_events(self) -> list[p.Event]:
        """What a newcomer gets after its welcome: the motd, if there is one."""
        motd = self.moderation.motd
        return [] if motd is None else [p.Notice(code=p.NoticeCode.MOTD, text=motd)]

    def _not_operator(self, member: Member, command: str) -> list[RoomAction]:
        return self._error(
            member, p.ErrorCode.NOT_OPERATOR, f"/{command} is for operators (see /oper)"
        )

    def _moderate_elsewhere(self, member: Member, command: c.Command) -> list[RoomAction] | None:
        """The command carried out on another node, whose user it names; None: it is
        carried out here (always, in a single-server room: cluster_moderation.py)."""
        return None

    def _help_text(self, member: Member) -> str:
        return c.HELP_TEXT + ("\n" + c.OPERATOR_HELP_TEXT if member.operator else "")

    # provided by the room
    def disconnect(
        self,
        conn: ConnId,
        reason: p.LeaveReason,
        now: float,
        text: str | None = None,
        by: str | None = None,
    ) -> list[RoomAction]:
        raise NotImplementedError

    def _broadcast(self, event: p.Event) -> list[RoomAction]:
        raise NotImplementedError

    def _send(self, member: Member, event: p.Event) -> list[RoomAction]:
        raise NotImplementedError

    def _error(self, member: Member, code: p.ErrorCode, message: str) -> list[RoomAction]:
        raise NotImplementedError
