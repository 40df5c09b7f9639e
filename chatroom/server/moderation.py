"""Moderation: operators and what they may do to the room. No I/O.

The operators are listed in ``--ops-file``, one ``NAME scrypt$N$R$P$SALT$HASH`` a line
(made by ``chatroom-server hash-password``); the adapter reads the file and hands its text
to :meth:`Moderation.load_operators`. ``/oper NAME PASSWORD`` makes a connection an
operator; wrong attempts are rate-limited per connection and reported (never with the
password) for the log.

:class:`Moderation` holds what moderation knows (the operators' hashes); the rules are
:class:`ModerationRules`, the part of :class:`~chatroom.server.room.Room` that decides
moderation commands, kept here so the room reads as the room.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from chatroom import protocol as p
from chatroom.server import commands as c
from chatroom.server.actions import Moderated, RoomAction
from chatroom.server.state import Member, RoomState

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


class Moderation:
    """What the room's moderation knows: the operators' names and hashes."""

    def __init__(self) -> None:
        self.operators: dict[str, tuple[str, str]] = {}
        # A hash to check unknown names against, so a wrong name costs what a wrong
        # password does (no timing tells which names are operators); made when first needed.
        self._decoy: str | None = None

    def load_operators(self, text: str) -> None:
        """Take the operators of an ops file's ``text`` (ValueError if it is malformed)."""
        self.operators = parse_operators(text)

    def verify(self, name: str, password: str) -> bool:
        entry = self.operators.get(p.name_key(name))
        if entry is None and self._decoy is None:
            self._decoy = hash_password("", salt=bytes(16))
        ok = check_password(password, entry[1] if entry else self._decoy)  # type: ignore[arg-type]
        return ok and entry is not None


class ModerationRules:
    """The moderation commands, as rules of :class:`~chatroom.server.room.Room` (a mixin:
    it uses the room's ``state`` and its output helpers)."""

    state: RoomState
    moderation: Moderation

    def _moderate(self, member: Member, command: c.Command, now: float) -> list[RoomAction]:
        match command:
            case c.Oper(name, password):
                return self._oper(member, name, password, now)
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

    def _not_operator(self, member: Member, command: str) -> list[RoomAction]:
        return self._error(
            member, p.ErrorCode.NOT_OPERATOR, f"/{command} is for operators (see /oper)"
        )

    def _help_text(self, member: Member) -> str:
        return c.HELP_TEXT + ("\n" + c.OPERATOR_HELP_TEXT if member.operator else "")

    # provided by the room
    def _send(self, member: Member, event: p.Event) -> list[RoomAction]:
        raise NotImplementedError

    def _error(self, member: Member, code: p.ErrorCode, message: str) -> list[RoomAction]:
        raise NotImplementedError
