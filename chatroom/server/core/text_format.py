"""How events read in text mode, the plain lines an ``nc`` user sees.

Output is plain text: no escape sequences and no "\\r" of our own, one "\\n" per line.
User-written parts (names, chat) were cleaned of control characters before they got here.
"""

from __future__ import annotations

import time

from chatroom import protocol as p
from chatroom.protocol.room_names import shown_room

_LEAVE_TEXT = {
    p.LeaveReason.QUIT: "left",
    p.LeaveReason.EOF: "left",
    p.LeaveReason.ERROR: "left (connection lost)",
    p.LeaveReason.TIMEOUT: "timed out",
    p.LeaveReason.SLOW: "was disconnected (too slow to read, send queue full)",
    p.LeaveReason.SHUTDOWN: "left (server shutting down)",
    p.LeaveReason.KICKED: "was kicked",
    p.LeaveReason.PART: "left the room",
}


def _clock(ts: float) -> str:
    return time.strftime("%H:%M", time.localtime(ts))


def _history_mark(event: p.Message | p.Action) -> str:
    return f"[history {_clock(event.ts)}] " if event.history else ""


def _room_line(entry: p.RoomEntry) -> str:
    people = "1 user" if entry.users == 1 else f"{entry.users} users"
    topic = f": {entry.topic}" if entry.topic else ""
    return f"*** {shown_room(entry.room)} ({people}){topic}"


def render_text(event: p.Event) -> str:
    """The text-mode line(s) for ``event``, each ending in "\\n"."""
    match event:
        case p.Message():
            return f"{_history_mark(event)}<{event.name}> {event.text}\n"
        case p.Action():
            return f"{_history_mark(event)}* {event.name} {event.text}\n"
        case p.Join():
            return f"*** {event.name} joined\n"
        case p.Leave():
            if event.reason is p.LeaveReason.QUIT and event.text:
                return f"*** {event.name} left (quit: {event.text})\n"
            if event.reason is p.LeaveReason.KICKED:
                why = f" ({event.text})" if event.text else ""
                return f"*** {event.name} was kicked by {event.by or 'an operator'}{why}\n"
            return f"*** {event.name} {_LEAVE_TEXT[event.reason]}\n"
        case p.Rename():
            return f"*** {event.old} is now {event.new}\n"
        case p.Private():
            return f"[private] {event.sender} -> {event.recipient}: {event.text}\n"
        case p.Who():
            total = len(event.users) if event.total is None else event.total
            lines = [f"Online users ({total}):"]
            lines += [
                f"  {'@' if u.op else ''}{u.name}  ({u.id}, idle {u.idle}s)"
                + (" (registered)" if u.registered else "")
                + (f" (away: {u.away})" if u.away is not None else "")
                + (" (bot)" if u.bot else "")
                for u in event.users
            ]
            if total > len(event.users):
                more = total - len(event.users)
                lines.append(f"  ... and {more} more (/who TEXT lists the names containing TEXT)")
            return "\n".join(lines) + "\n"
        case p.Welcome():
            timeout = (
                f"idle timeout {event.idle_timeout:g}s" if event.idle_timeout else "no idle timeout"
            )
            topic = f"*** Topic: {event.topic}\n" if event.topic else ""
            return (
                f"*** Welcome, {event.name}! {event.users} online, {timeout}."
                " Type /help for commands.\n" + topic
            )
        case p.Topic():
            if not event.text:
                return "*** no topic is set\n"
            return f"*** Topic: {event.text}" + (f" (set by {event.by})" if event.by else "") + "\n"
        case p.Notice(code=p.NoticeCode.MOTD):
            return "".join(f"*** {line}\n" for line in event.text.splitlines() or [""])
        case p.Notice(code=p.NoticeCode.HELP):
            return event.text + "\n"
        case p.Notice():  # a pong reads "*** pong" (or "*** pong TEXT"); each line marked
            return "".join(f"*** {line}\n" for line in event.text.splitlines() or [""])
        case p.Error():
            return f"error: {event.message}\n"
        case p.Ack():  # only JSON connections send requests; one that switched reads this
            return f"*** ok {event.id}" + (f" (seq {event.seq})" if event.seq else "") + "\n"
        case p.RoomEntered():
            people = "1 user" if event.users == 1 else f"{event.users} users"
            topic = f"*** Topic: {event.topic}\n" if event.topic else ""
            return f"*** now in {shown_room(event.room)} ({people})\n" + topic
        case p.RoomList():
            lines = [_room_line(entry) for entry in event.rooms] or ["*** no rooms"]
            if event.total is not None and event.total > len(event.rooms):
                lines.append(f"*** ... and {event.total - len(event.rooms)} more")
            return "\n".join(lines) + "\n"
        case p.FormatChanged():
            return f"*** output format is now {event.format}\n"
    raise TypeError(f"no text form for {event!r}")
