"""Operators: ``/oper NAME PASSWORD`` makes a connection an operator. No I/O.

The password is checked against ``--ops-file``'s scrypt hashes
(:mod:`chatroom.server.core.passwords`), or a decoy's of the same cost for a name that is
no operator's, and not here: a check costs scrypt's ~50 ms, so the rule hands it to the
adapter (:class:`~chatroom.server.core.actions.CheckOperator`), which runs it in a bounded
pool off the event loop and hands back
:class:`~chatroom.server.core.inputs.OperatorChecked` (:func:`oper_checked`). Meanwhile
the connection's next /oper is refused. Guessing is bounded three ways: per connection
(after the k-th wrong one the next waits 2**k s), per address (a token bucket that
reconnecting does not refill, exempt networks included) and for the room (as many checks
under way as the adapter's pool takes). A wrong one is reported for the log, never with
the password, as one of a flood (a line per interval).
"""

from __future__ import annotations

from collections.abc import Callable

from chatroom import protocol as p
from chatroom.protocol import commands as c
from chatroom.server.core.actions import CheckOperator, ConnId, Moderated, RoomAction
from chatroom.server.core.rules.context import Context
from chatroom.server.core.rules.output import error, info
from chatroom.server.core.state import Member

BUSY = "the server is busy checking other /oper attempts; try again in a moment"


def oper(ctx: Context, member: Member, command: c.Oper, now: float) -> list[RoomAction]:
    """``/oper NAME PASSWORD``: hand the password to the adapter to check off the event
    loop (:class:`CheckOperator`); :func:`oper_checked` answers. Refused without a check
    while one is under way for the connection, while its own wait or its address's runs
    (exempt networks too), or while the adapter has as many checks as it takes."""
    if member.operator:
        return info(member, "you are an operator", fact=p.Fact.OPERATOR)
    moderation, rules = ctx.moderation, ctx.rules
    if member.conn in moderation.checking:
        text = "your last /oper is still being checked; wait for its answer"
        return error(member, p.ErrorCode.NOT_OPERATOR, text)
    wait = member.oper_retry_at - now
    if wait > 0:
        text = f"too many wrong /oper attempts; try again in {wait:.0f}s"
        return error(member, p.ErrorCode.NOT_OPERATOR, text)
    if len(moderation.checking) >= rules.oper_check_threads + rules.oper_check_queue:
        return error(member, p.ErrorCode.UNAVAILABLE, BUSY)
    waits = ctx.admission.oper_wait(member.address, now)  # takes a token if it may
    if waits:
        text = f"too many wrong /oper attempts from your address; try again in {waits}s"
        return error(member, p.ErrorCode.NOT_OPERATOR, text)
    moderation.start_check(member.conn, member.address)
    stored = moderation.stored_hash(command.name)
    return [CheckOperator(member.conn, command.name, command.password, stored)]


def oper_checked(
    ctx: Context, conn: ConnId, name: str, ok: bool, busy: bool, now: float
) -> list[RoomAction]:
    """The adapter checked the password of ``conn``'s ``/oper NAME`` (``busy``: it could
    not take the check; nothing was checked). A wrong one is reported for the log as one of
    a flood (a line per interval), never with the password."""
    address = ctx.moderation.check_done(conn)
    member = ctx.state.member(conn)
    if address is None or member is None:  # it left meanwhile
        return []
    if busy:
        ctx.admission.oper_was_right(address, now)  # not its fault: the token is given back
        return error(member, p.ErrorCode.UNAVAILABLE, BUSY)
    shown = p.strip_controls(name)[:40]
    if not ok:
        failures = member.oper_failed(_oper_backoff(ctx.rules.oper_backoff_max), now)
        text = f"wrong /oper for {shown!r} (attempt {failures})"
        return [
            Moderated(member.conn, text, flood="wrong /oper"),
            *error(member, p.ErrorCode.NOT_OPERATOR, "wrong operator name or password"),
        ]
    ctx.admission.oper_was_right(address, now)
    ctx.state.made_operator(member)
    text = f"you are now an operator ({shown}); /help lists your commands"
    return [Moderated(member.conn, f"operator {shown}"), *info(member, text, fact=p.Fact.OPERATOR)]


def _oper_backoff(longest: float) -> Callable[[int], float]:
    """After the k-th wrong /oper on one connection, the next waits 2**k s (``longest`` at
    most)."""
    return lambda failures: min(longest, 2.0**failures)
