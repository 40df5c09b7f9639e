"""What the room does for programs: requests with ids, the pacing notice, /bot. No I/O.

In JSON mode a line starting with ``{`` is a request, ``{"id": ID, "text": LINE}`` (ID a
string of 1-64 characters or an integer; LINE any line a user could type). It is handled
as LINE would be, then answered with an :class:`~chatroom.protocol.Ack` carrying ID: for
chat and ``/me`` with the seq the line got (once it is sequenced), for a command after its
replies. An error it causes carries ID. A chat or ``/me`` request whose id its sender's
name used within the request TTL is not said again: it is acked with the original seq
(:class:`~chatroom.server.core.requests.Requests`; with ``--redis`` also across nodes).
A request that is not valid JSON, or lacks a field, is answered with one ``bad_request``
error (with its id, when one could be read).
"""

from __future__ import annotations

import msgspec

from chatroom import protocol as p
from chatroom.protocol import commands as c
from chatroom.server.core.actions import Append, ConnId, Deliver, Persist, RoomAction, encode
from chatroom.server.core.requests import Key
from chatroom.server.core.rules import chat
from chatroom.server.core.rules.context import Context
from chatroom.server.core.rules.output import error, info, send
from chatroom.server.core.rules.sequencing import apply
from chatroom.server.core.sequencer import LedgerSequencer
from chatroom.server.core.state import Member

BOT_TEXT = (
    "this connection is marked as a program (bot): no history is replayed when it is"
    " greeted; ask with /history"
)


class Request(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    text: str
    id: str | int | None = None
    room: str | None = None  # the room LINE is for (docs/PROTOCOL.md, "Rooms")


_decode = msgspec.json.Decoder(Request).decode


def request(ctx: Context, member: Member, line: str, now: float) -> list[RoomAction]:
    """A request line from ``member`` (JSON mode; the chat rule hands it over): its LINE
    handled, answered with an ack, or refused as ``bad_request``."""
    try:
        req = _decode(line)
    except (msgspec.MsgspecError, RecursionError) as exc:
        why = f'not a request {{"id": ID, "text": LINE}}: {exc}'[:200]
        return _bad(member, why, _id_of(line))
    rid, text = req.id, req.text
    if isinstance(rid, bool) or (isinstance(rid, str) and not 1 <= len(rid) <= 64):
        return _bad(member, "a request's id is a string of 1-64 characters or an integer")
    if "\n" in text or "\r" in text:
        return _bad(member, "a request's text is one line", rid)
    if rid is None and req.room is None:
        return _bad(member, 'a request has an "id", a "room" or both')
    command = c.parse(text)
    if req.room is None:
        return _handle(ctx, member, rid, command, now)
    room = p.room_key(req.room)
    if room is None:
        return with_id(error(member, p.ErrorCode.BAD_ROOM, p.ROOM_RULE), member, rid)
    if room not in member.rooms and not isinstance(command, c.Join | c.Part):
        why = f"you are not in {p.shown_room(room)} (/join {room})"
        return with_id(error(member, p.ErrorCode.NOT_IN_ROOM, why), member, rid)
    member.aim(room)
    try:
        return _handle(ctx, member, rid, command, now)
    finally:
        member.aim(None)


def _handle(
    ctx: Context, member: Member, rid: str | int | None, command: c.Command, now: float
) -> list[RoomAction]:
    """A request's command, in the room it is for: acked when it has an id."""
    if rid is None:
        if isinstance(command, c.Chat | c.Me):  # its text is chat even if it starts with {
            return chat.say(ctx, member, _kind(command), command.text, now)
        return ctx.run(member, command, now)
    if not isinstance(command, c.Chat | c.Me):
        return [*with_id(ctx.run(member, command, now), member, rid), *_ack(member, rid, None)]
    key: Key = (p.name_key(member.name), rid)
    requests = ctx.requests
    seq = requests.seen(key, now)
    if seq is not None:  # a retry: acked, not said again
        return _ack(member, rid, seq)
    if requests.waiting(key, member.conn):
        return []  # its first try is with the ledger: its ack comes here
    refused = chat.muted(ctx, member, now)
    if refused:
        return with_id(refused, member, rid)
    said = chat.said_event(ctx, member, _kind(command), command.text, now)
    requests.expect(said, member.conn, key)
    carried = ctx.sequencer.sequence(said, member.conn)
    if carried is None:  # one server: applied now, then acked
        return apply(ctx, said, ctx.node) + settled(ctx, said, now)
    # A ledger appends it only if its key was not seen within the TTL, on any node.
    request_key = p.compact_json([key[0], rid])
    return [
        Append(a.event, a.conn, request_key) if type(a) is Append and a.event is said else a
        for a in carried
    ]


def sequenced(ctx: Context, event: p.BroadcastEvent, node: str) -> list[RoomAction]:
    """A shared room's event applied: and acked, if a request of this node waits for it
    (checked only while one waits). A program that leaves — this node's, or a dead node's
    (reaped: every node drops it, once is enough) — is unmarked in the ledger."""
    unmark = (
        type(event) is p.Leave
        and (node == ctx.node or event.reason is p.LeaveReason.ERROR)
        and is_bot(ctx, event.id)
    )
    actions = apply(ctx, event, node)
    if unmark:
        actions.append(Persist("bot", event.id, None))
    if ctx.requests.pending and isinstance(event, p.Message | p.Action):
        actions += settled(ctx, event, event.ts)
    return actions


def settled(ctx: Context, event: p.Message | p.Action, now: float) -> list[RoomAction]:
    """``event`` was applied with its seq: ack the request it answers, if any."""
    found = ctx.requests.settle(event)
    if found is None:
        return []
    conn, key = found
    ctx.requests.remember(key, event.seq, now)
    return _ack_conn(ctx, conn, key[1], event.seq)


def repeated(ctx: Context, event: p.Message | p.Action, seq: int, now: float) -> list[RoomAction]:
    """The ledger says ``event``'s request id was seen, when its line got ``seq``."""
    found = ctx.requests.settle(event)
    if found is None:
        return []
    conn, key = found
    ctx.requests.remember(key, seq, now)
    return _ack_conn(ctx, conn, key[1], seq)


def refused_id(ctx: Context, event: p.BroadcastEvent) -> str | int | None:
    """The id of the request whose ``event`` the ledger refused (None: not a request)."""
    if not ctx.requests.pending or not isinstance(event, p.Message | p.Action):
        return None
    found = ctx.requests.settle(event)
    return found[1][1] if found is not None else None


def is_bot(ctx: Context, user_id: str) -> bool:
    """Whether ``user_id`` is marked as a program (its member's mark, or its user's: the
    member may have left already)."""
    member, user = ctx.state.local(user_id), ctx.state.user(user_id)
    return member.bot if member is not None else user is not None and user.bot


def with_id(actions: list[RoomAction], member: Member, rid: str | int | None) -> list[RoomAction]:
    """``actions``, the errors they deliver to ``member`` carrying the request's id."""
    if rid is None:
        return actions
    out: list[RoomAction] = []
    for action in actions:
        if (
            type(action) is Deliver
            and action.recipients == (member.conn,)
            and any(type(event) is p.Error for event in action.events)
        ):
            events = tuple(p.replace(e, id=rid) if type(e) is p.Error else e for e in action.events)
            payload = b"".join(encode(event, member.format) for event in events)
            action = Deliver(action.recipients, payload, events)
        out.append(action)
    return out


def paced(ctx: Context, conn: ConnId, retry_after: float) -> list[RoomAction]:
    """Flood control started pacing ``conn``: a JSON connection is told (text: silent)."""
    member = ctx.state.member(conn)
    if member is None or member.format is not p.OutputFormat.JSON:
        return []
    wait = max(0.001, round(retry_after, 3))
    text = f"you are sending too fast: your lines are read one at a time, the next in {wait}s"
    return send(member, p.Notice(code=p.NoticeCode.RATE_LIMITED, text=text, retry_after=wait))


def bot(ctx: Context, member: Member, command: c.Bot, now: float) -> list[RoomAction]:
    """``/bot``: ``member`` is a program (marked in who; not replayed history when greeted).
    In a shared room the ledger keeps the mark (by user id) and tells every node."""
    shared: list[RoomAction] = []
    if not member.bot:
        ctx.state.mark_bot(member.id)
        if isinstance(ctx.sequencer, LedgerSequencer):
            shared.append(Persist("bot", member.id, {"node": ctx.node}))
    return info(member, BOT_TEXT, fact=p.Fact.BOT) + shared


def _kind(command: c.Chat | c.Me) -> type[p.Message | p.Action]:
    return p.Message if isinstance(command, c.Chat) else p.Action


def _ack(member: Member, rid: str | int, seq: int | None) -> list[RoomAction]:
    return send(member, p.Ack(id=rid, seq=seq))


def _ack_conn(ctx: Context, conn: ConnId, rid: str | int, seq: int) -> list[RoomAction]:
    member = ctx.state.member(conn)
    return _ack(member, rid, seq) if member is not None else []


def _bad(member: Member, message: str, rid: str | int | None = None) -> list[RoomAction]:
    error = p.Error(code=p.ErrorCode.BAD_REQUEST, message=message, id=rid)
    return send(member, error)


def _id_of(line: str) -> str | int | None:
    """The id of a request that is otherwise bad, if one can be read."""
    try:
        data = msgspec.json.decode(line)
    except (msgspec.MsgspecError, RecursionError):
        return None
    rid = data.get("id") if isinstance(data, dict) else None
    ok = isinstance(rid, int) and not isinstance(rid, bool) or isinstance(rid, str)
    return rid if ok and (not isinstance(rid, str) or 1 <= len(rid) <= 64) else None


# The commands this module's rules answer (the room's dispatcher merges every module's).
COMMANDS = {
    c.Bot: bot,
}
