"""Who may come in, and as whom: a newcomer before it is in the room. No I/O.

The per-address limits it is judged by (:mod:`chatroom.server.core.admission` keeps their
counters), the id and first name it gets (its address, or with ``--hide-addresses`` an
opaque id and a ``guest-NNNN``), what it may do in a room with a password until it gives
it, and its join — at once, or while the room churns once it speaks or its quiet time is
up (see :class:`~chatroom.server.core.admission.Churn`).
"""

from __future__ import annotations

import hmac

from chatroom import protocol as p
from chatroom.protocol import commands as c
from chatroom.server.core.actions import Admitted, Close, ConnId, Deliver, RoomAction, TurnedAway
from chatroom.server.core.addresses import peer_id
from chatroom.server.core.admission import Cause
from chatroom.server.core.rules import leaving
from chatroom.server.core.rules.basics import pong, set_format
from chatroom.server.core.rules.context import Context
from chatroom.server.core.rules.output import error, send
from chatroom.server.core.rules.sequencing import admit, append, next_seq
from chatroom.server.core.state import Member

PASSWORD_PROMPT = "this room needs a password: send /pass SECRET"


def connect(ctx: Context, conn: ConnId, host: str, port: int, now: float) -> list[RoomAction]:
    """A connection arrived from ``host``:``port``; admit it or turn it away."""
    state = ctx.state
    if state.member(conn) is not None:
        raise ValueError(f"connection {conn} is already in the room")
    address, exempt = ctx.admission.address(host)
    refusal = admission_problem(ctx, address, exempt, now)
    if refusal is not None:
        cause, text = refusal
        notice = p.Notice(code=p.NoticeCode.SERVER_FULL, text=text)
        return [
            Deliver.one(conn, p.OutputFormat.TEXT, notice),
            TurnedAway(conn, text, cause),
            Close(conn),
        ]
    user_id, name = identity(ctx, conn, host, port)
    waiting = ctx.rules.password is not None  # in nobody's sight until it gives it
    member = Member(
        conn=conn,
        id=user_id,
        address=address,
        name=name,
        last_active=now,
        connected_at=now,
        waiting=waiting,
    )
    state.add_member(member)
    if waiting:
        return [Admitted(conn, member.name, len(state), waiting=True),
                *send(member, password_prompt())]  # fmt: skip
    return enter(ctx, member, now)


def enter(ctx: Context, member: Member, now: float) -> list[RoomAction]:
    """``member`` comes into the room: its join is appended (or, while the room churns,
    waits: it is welcomed at once, quietly)."""
    conn = member.conn
    churn = ctx.admission.churn
    online = len(ctx.state)
    if churn.churning(now):
        member.quiet(now + ctx.rules.churn_window)
        return [Admitted(conn, member.name, online, quiet=True), *admit(ctx, member)]
    churn.arrived(conn, now)
    room = ctx.state.default
    join = p.Join(seq=next_seq(ctx, room), ts=now, id=member.id, name=member.name, room=room)
    return [Admitted(conn, member.name, online), *append(ctx, join, member)]


# --- who a newcomer is ----------------------------------------------------------------------


def identity(ctx: Context, conn: ConnId, host: str, port: int) -> tuple[str, str]:
    """A newcomer's id and first name: its address, or (``hide_addresses``) an opaque
    random id and a random unused ``guest-NNNN``."""
    state = ctx.state
    if not ctx.rules.hide_addresses:
        user_id = peer_id(host, port)
        if state.local(user_id) is not None or state.user(user_id) is not None:
            user_id = f"{user_id}~{conn}"  # an address reported twice: ids stay unique
        return user_id, user_id
    user_id = f"u{ctx.random.getrandbits(64):016x}"
    while state.local(user_id) is not None or state.user(user_id) is not None:
        user_id = f"u{ctx.random.getrandbits(64):016x}"
    return user_id, guest_name(ctx)


def guest_name(ctx: Context) -> str:
    """A random ``guest-NNNN`` nobody here holds, and nobody registered."""
    digits = 4
    while True:  # a few tries at each width; a room of thousands of guests gets wider
        for _ in range(8):
            name = f"guest-{ctx.random.randrange(10**digits):0{digits}d}"
            free = ctx.state.holder_of(name) is None and not ctx.accounts.is_registered(name)
            if free and not _named_here(ctx, name):
                return name
        digits += 1


def _named_here(ctx: Context, name: str) -> bool:
    """Whether a member of this node not yet in the room (waiting) is called ``name``."""
    key = p.name_skeleton(name)
    return any(p.name_skeleton(m.name) == key for m in ctx.state.members() if m.waiting)


# --- a room with a password ---------------------------------------------------------------


def password_prompt() -> p.Notice:
    return p.Notice(code=p.NoticeCode.PASSWORD, text=PASSWORD_PROMPT)


def before_password(
    ctx: Context, member: Member, command: c.Command, now: float
) -> list[RoomAction]:
    """A line from a newcomer still waiting for the password: only /pass, /quit, /format,
    /ping and /help mean anything, and none of them is activity (it has the idle timeout
    from connecting to give the password)."""
    match command:
        case c.Pass(secret):
            return password(ctx, member, secret, now)
        case c.Quit():
            return leaving.quit_room(ctx, member, None, now)
        case c.SetFormat(fmt):
            changed = set_format(ctx, member, fmt, greet=False)
            return [*changed, *send(member, password_prompt())]
        case c.Ping(text):
            return send(member, pong(text))
        case c.Nothing():
            return []
    return send(member, password_prompt())


def password(ctx: Context, member: Member, secret: str, now: float) -> list[RoomAction]:
    """``/pass SECRET`` from a waiting newcomer: let it in, or count a failure."""
    rules = ctx.rules
    assert rules.password is not None
    wait = ctx.admission.password_wait(member.address, now)
    if wait:
        text = f"too many wrong passwords from your address; try again in {wait}s"
        return error(member, p.ErrorCode.BAD_PASSWORD, text)
    if hmac.compare_digest(secret.encode(), rules.password):
        member.let_in(now)
        return enter(ctx, member, now)
    failures = member.password_failed()
    ctx.admission.password_failed(member.address, now)
    left = rules.password_tries - failures
    if left > 0:
        tries = "1 try" if left == 1 else f"{left} tries"
        return error(member, p.ErrorCode.BAD_PASSWORD, f"wrong password ({tries} left)")
    text = f"wrong password {rules.password_tries} times; goodbye"
    ctx.state.remove_member(member.conn)
    return [
        *error(member, p.ErrorCode.BAD_PASSWORD, text),
        TurnedAway(member.conn, text, Cause.BAD_PASSWORD),
        Close(member.conn),
    ]


# --- whether it may come in ---------------------------------------------------------------


def admission_problem(
    ctx: Context, address: str, exempt: bool, now: float
) -> tuple[Cause, str] | None:
    """Why a newcomer from ``address`` cannot come in, if it cannot: the cause, and the
    text it is told. Admitting it takes one of its address's new-connection tokens."""
    rules = ctx.rules
    banned = ctx.moderation.refusal(address, now)  # exempt networks too: an operator's choice
    if banned is not None:
        return Cause.BANNED, banned
    if len(ctx.state) >= rules.max_clients:
        return Cause.FULL, f"server full ({rules.max_clients} users); try again later"
    if exempt:
        return None
    if ctx.state.connections_from(address) >= rules.max_per_ip:
        return (
            Cause.PER_ADDRESS,
            f"too many connections from your address (at most {rules.max_per_ip})",
        )
    wait = ctx.admission.throttled(address, now)
    if wait:
        return (
            Cause.THROTTLED,
            f"too many new connections from your address; try again in {wait}s",
        )
    return None
