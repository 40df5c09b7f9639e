"""How events look in the message log: one ``rich.text.Text`` per line.

Remote text (names, chat) is only ever appended as plain strings, never parsed as markup,
so ``[bold]`` or ``a[/]b`` arrive on screen exactly as typed. Colours are explicit
foreground/background pairs or mid-tone foregrounds, so they read on light and dark themes.
"""

from __future__ import annotations

import re
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo

from rich.text import Text

from chatroom.client.moderation import topic_line
from chatroom.protocol import (
    Action,
    Error,
    Join,
    Leave,
    LeaveReason,
    Message,
    Notice,
    NoticeCode,
    Private,
    Rename,
    RoomEntered,
    RoomList,
    Topic,
    Who,
    name_key,
)
from chatroom.protocol.room_names import shown_room

# Mid-tone colours that stay readable on both a dark and a light background.
SENDER_COLOURS = (
    "dodger_blue2",
    "green3",
    "dark_orange",
    "medium_purple",
    "deep_pink3",
    "dark_cyan",
    "gold3",
    "orchid",
    "spring_green3",
    "indian_red",
    "steel_blue",
    "chartreuse3",
)
OWN_NAME = "bold white on dodger_blue3"
PRIVATE = "bold white on magenta3"
MENTION = "bold black on gold1"
WARNING = "bold black on orange1"
ERROR = "bold red"
EVENT = "dim"
HISTORY_TIME = "dim italic"

LEAVE_WORDS = {
    LeaveReason.QUIT: "left",
    LeaveReason.EOF: "left",
    LeaveReason.ERROR: "lost the connection",
    LeaveReason.TIMEOUT: "timed out",
    LeaveReason.SLOW: "was disconnected (too slow)",
    LeaveReason.SHUTDOWN: "left (server shutdown)",
    LeaveReason.KICKED: "was kicked",
}


def sender_colour(name: str) -> str:
    """The same colour for the same name, in every client and every session."""
    return SENDER_COLOURS[zlib.crc32(name_key(name).encode("utf-8")) % len(SENDER_COLOURS)]


def mentions(text: str, name: str | None) -> bool:
    """Whether ``text`` names ``name`` as a word of its own (case-insensitively)."""
    if not name:
        return False
    pattern = rf"(?<!\w){re.escape(name_key(name))}(?!\w)"
    return re.search(pattern, name_key(text)) is not None


TIME_WIDTH = 6  # "HH:MM " before every line but dividers
TIME_FORMAT = "%H:%M"
TIME_FORMAT_SECONDS = "%H:%M:%S"  # --seconds


@dataclass(frozen=True, slots=True)
class LogLine:
    text: Text
    mentions_me: bool = False
    hang: int = TIME_WIDTH  # continuation rows start this far in, under the text
    ts: float | None = None  # when it was said (or shown): the --log file's date and time


class LineRenderer:
    """Turns events into log lines, from the point of view of the user ``own_id``.

    Every line starts with its time: the event's own (``ts``) where it has one, else the
    time it arrived (``now``), so notices, ``who`` replies and the client's own lines
    (disconnected, ...) have one too."""

    def __init__(
        self,
        tz: tzinfo | None = None,
        *,
        seconds: bool = False,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.tz = tz  # None: the local time zone
        self.time_format = TIME_FORMAT_SECONDS if seconds else TIME_FORMAT
        self.hang = len(self.clock(0)) + 1
        self.now = now

    def clock(self, ts: float) -> str:
        return datetime.fromtimestamp(ts, self.tz).strftime(self.time_format)

    def _start(self, ts: float | None, history: bool = False) -> Text:
        line = Text()  # not Text(style=...): a base style would cover the whole line
        line.append(self.clock(self.now() if ts is None else ts) + " ",
                    style=HISTORY_TIME if history else "dim")  # fmt: skip
        return line

    def _line(self, text: Text, ts: float | None = None, mention: bool = False) -> LogLine:
        return LogLine(text, mention, self.hang, self.now() if ts is None else ts)

    def chat(self, event: Message | Action, own_id: str | None, own_name: str | None) -> LogLine:
        line = self._start(event.ts, event.history)
        is_own = event.id == own_id
        name_style = OWN_NAME if is_own else f"bold {sender_colour(event.name)}"
        mention = not is_own and mentions(event.text, own_name if own_name != own_id else None)
        text_style = MENTION if mention else ""
        if isinstance(event, Action):
            line.append("* ", style="italic")
            line.append(event.name, style=name_style)
            line.append(" ")
            line.append(event.text, style=f"italic {text_style}".strip())
        else:
            line.append(event.name, style=name_style)
            line.append(" ")
            line.append(event.text, style=text_style)
        return self._line(line, event.ts, mention)

    def private(self, event: Private, own_name: str | None) -> LogLine:
        line = self._start(event.ts)
        outgoing = own_name is not None and name_key(event.sender) == name_key(own_name)
        chip = f"→ {event.recipient}" if outgoing else f"{event.sender} →"
        line.append(f"[private] {chip}", style=PRIVATE)
        line.append(" ")
        line.append(event.text, style="italic")
        return self._line(line, event.ts, not outgoing)

    def join(self, event: Join) -> LogLine:
        line = self._start(event.ts)
        line.append(f"→ {event.name} joined", style=EVENT)
        return self._line(line, event.ts)

    def leave(self, event: Leave) -> LogLine:
        line = self._start(event.ts)
        words = LEAVE_WORDS.get(event.reason, f"left ({event.reason})")
        if event.reason == LeaveReason.KICKED and event.by:
            words += f" by {event.by}"
        line.append(f"← {event.name} {words}", style=EVENT)
        if event.text:
            line.append(f" ({event.text})", style=EVENT)
        return self._line(line, event.ts)

    def rename(self, event: Rename) -> LogLine:
        line = self._start(event.ts)
        line.append(f"~ {event.old} is now {event.new}", style=EVENT)
        return self._line(line, event.ts)

    def who(self, event: Who, query: str = "") -> LogLine:
        """A ``who`` reply; ``query``: the TEXT of the ``/who TEXT`` it answers."""
        users = sorted(event.users, key=lambda user: name_key(user.name))
        total = len(users) if event.total is None else event.total
        line = self._start(None)
        if not total:
            line.append(f"nobody online has {query!r} in their name" if query else "nobody online")
            return self._line(line)
        line.append(f"{total} online: ", style="bold")
        for n, user in enumerate(users):
            if n:
                line.append(", ")
            line.append(f"@{user.name}" if user.op else user.name)
            line.append(f" {_idle(user.idle)}", style="dim")
            if user.away is not None:
                line.append(" (away)", style="dim italic")
        if total > len(users):
            line.append(f" … and {total - len(users)} more (/who TEXT finds them)", style="dim")
        return self._line(line)

    def notice(self, event: Notice) -> LogLine:
        line = self._start(None)
        if event.code in (NoticeCode.IDLE_WARNING, NoticeCode.TIMEOUT, NoticeCode.SERVER_FULL):
            line.append(f" {event.text} ", style=WARNING)
        elif event.code is NoticeCode.SHUTDOWN:
            line.append(event.text, style=ERROR)
        else:
            line.append(event.text, style="italic")
        return self._line(line)

    def topic(self, event: Topic) -> LogLine:
        line = self._start(None)
        line.append(topic_line(event), style="italic")
        return self._line(line)

    def room_entered(self, event: RoomEntered) -> LogLine:
        """A room's greeting: ``now in #dev (2 users)``."""
        line = self._start(None)
        users = "1 user" if event.users == 1 else f"{event.users} users"
        line.append(f"now in {shown_room(event.room)} ({users})", style="bold")
        return self._line(line)

    def rooms(self, event: RoomList) -> list[LogLine]:
        """The answer to ``/rooms``: a line each, ``#dev (2 users): its topic``."""
        total = len(event.rooms) if event.total is None else event.total
        head = self._start(None)
        head.append(f"{total} room{'' if total == 1 else 's'}", style="bold")
        if total > len(event.rooms):
            head.append(f" ({len(event.rooms)} listed)", style="dim")
        lines = [self._line(head)]
        for entry in event.rooms:
            line = self._start(None)
            line.append(f"  {shown_room(entry.room)}", style="bold")
            line.append(f" ({entry.users} user{'' if entry.users == 1 else 's'})", style="dim")
            if entry.topic:
                line.append(": ")
                line.append(entry.topic, style="italic")
            lines.append(self._line(line))
        return lines

    def error(self, event: Error) -> LogLine:
        line = self._start(None)
        line.append(f"! {event.message}", style=ERROR)
        return self._line(line)

    def status(self, text: str, *, alarm: bool = False) -> LogLine:
        """A line from the client itself (connecting, disconnected, ...)."""
        line = self._start(None)
        line.append(f"-- {text}", style=ERROR if alarm else "dim italic")
        return self._line(line)

    def divider(self, text: str) -> LogLine:
        return LogLine(Text(f"── {text} ──", style="dim"), hang=0, ts=self.now())

    def table_row(self, first: str, rest: str, width: int) -> LogLine:
        """A row of a table (``/help``): ``first`` in a column ``width`` wide, then ``rest``,
        whose continuation rows hang under it."""
        line = Text(" " * self.hang)
        line.append(first.ljust(width - 1) + " ", style="bold")
        line.append(rest)
        return LogLine(line, hang=self.hang + width, ts=self.now())


def _idle(seconds: int) -> str:
    """How long a user has been quiet, short: 42s, 5m, 3h, 2d."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
