"""The commands that need nothing but the asker: who, /help, /ping, /pass once in, /format,
a line too long, a command used wrongly, an unknown command. No I/O."""

from __future__ import annotations

from chatroom import protocol as p
from chatroom.protocol import commands as c
from chatroom.server.core.actions import Charge, Deliver, RoomAction, Subscribe
from chatroom.server.core.rules.context import Context
from chatroom.server.core.rules.output import error, greeting, send
from chatroom.server.core.state import Member
from chatroom.server.core.who import who_list


def who(ctx: Context, member: Member, command: c.Who, now: float) -> list[RoomAction]:
    """Capped at ``who_max`` users, and counted against flood control by its size. The
    full list is made once per second while nobody joins, leaves or renames."""
    rules, state, query, room = ctx.rules, ctx.state, command.query, member.here
    registered = ctx.accounts.is_registered
    stamp = (state.version, ctx.accounts.version, int(now))
    channel = state.rooms.get(room)
    cached = channel.cached_who(member.format, stamp) if channel and not query else None
    if cached is not None:
        reply = Deliver((member.conn,), cached.payload, cached.events)
    else:
        event = who_list(state, now, query, rules.who_max, registered, room)
        reply = Deliver.one(member.conn, member.format, event)
        if channel is not None and not query:
            channel.keep_who(member.format, stamp, reply)
    listed = len(reply.events[0].users)  # type: ignore[union-attr]
    extra = listed // max(1, rules.who_users_per_line)
    return [reply, Charge(member.conn, extra)] if extra else [reply]


def help_text(member: Member) -> str:
    return c.HELP_TEXT + ("\n" + c.OPERATOR_HELP_TEXT if member.operator else "")


def show_help(ctx: Context, member: Member, command: c.Help, now: float) -> list[RoomAction]:
    return send(member, p.Notice(code=p.NoticeCode.HELP, text=help_text(member)))


def pong(text: str) -> p.Notice:
    return p.Notice(code=p.NoticeCode.PONG, text=f"pong {text}" if text else "pong")


def ping(ctx: Context, member: Member, command: c.Ping, now: float) -> list[RoomAction]:
    return send(member, pong(command.text))


def already_in(ctx: Context, member: Member, command: c.Pass, now: float) -> list[RoomAction]:
    return send(member, p.Notice(code=p.NoticeCode.INFO, text="you are already in the room"))


def change_format(
    ctx: Context, member: Member, command: c.SetFormat, now: float
) -> list[RoomAction]:
    return set_format(ctx, member, command.format)


def set_format(
    ctx: Context, member: Member, fmt: p.OutputFormat, *, greet: bool = True
) -> list[RoomAction]:
    """``member``'s output is in ``fmt`` from now on; with ``greet`` (it is in the room)
    its broadcasts too, and it is greeted again in that format."""
    changed = Deliver.one(member.conn, fmt, p.FormatChanged(format=fmt))
    if not greet:
        ctx.state.set_format(member, fmt, subscribe=False)
        return [changed]
    ctx.state.set_format(member, fmt)
    subscribed = [Subscribe(member.conn, fmt, room) for room in member.rooms]
    return [*subscribed, changed, *greeting(ctx, member)]


def nothing(ctx: Context, member: Member, command: c.Nothing, now: float) -> list[RoomAction]:
    return []


def too_long(ctx: Context, member: Member, command: c.TooLong, now: float) -> list[RoomAction]:
    text = f"line too long (over {command.limit} bytes); it was not sent"
    return error(member, p.ErrorCode.LINE_TOO_LONG, text)


def usage(ctx: Context, member: Member, command: c.Usage, now: float) -> list[RoomAction]:
    return error(member, p.ErrorCode.BAD_USAGE, command.message)


def unknown(ctx: Context, member: Member, command: c.Unknown, now: float) -> list[RoomAction]:
    text = f"unknown command /{command.word} (type /help; start a line with // to send it as chat)"
    return error(member, p.ErrorCode.UNKNOWN_COMMAND, text)


# The commands this module's rules answer (the room's dispatcher merges every module's).
COMMANDS = {
    c.Nothing: nothing,
    c.Who: who,
    c.Help: show_help,
    c.Ping: ping,
    c.Pass: already_in,
    c.SetFormat: change_format,
    c.TooLong: too_long,
    c.Usage: usage,
    c.Unknown: unknown,
}
