"""What the input line sends: commands as typed, everything else as chat."""

from __future__ import annotations

from dataclasses import dataclass

from chatroom.protocol import SLASH_COMMANDS, compact_json
from chatroom.protocol import commands as c

# Commands of issue 12 a server may not list yet (bans, ignores, away): sent as typed, so
# a server without them answers ``unknown_command`` rather than the room reading the line.
NEWER_COMMANDS = frozenset({"ban", "unban", "bans", "ignore", "unignore", "away"})


# The longest line the server takes, line ending not counted: the server's default. The
# welcome does not say the server's own (yet); a ``line_too_long`` error halves it.
DEFAULT_MAX_LINE = 2048
# Local commands: the client does them itself, the server never sees them.
LOCAL_COMMANDS = frozenset({"help", "clear", "r", "query", "close"})


@dataclass(frozen=True, slots=True)
class Send:
    lines: tuple[str, ...]  # a long chat line split in several, each within the limit


@dataclass(frozen=True, slots=True)
class Refuse:
    """Not sent, for ``reason``: the line stays in the input, to correct."""

    reason: str


@dataclass(frozen=True, slots=True)
class ShowHelp:
    """``/help``: the client's own table of commands and keys, shown locally (not the
    server's list, which offers ``/format``, a command the client must refuse)."""


@dataclass(frozen=True, slots=True)
class Clear:
    """``/clear``: empty the conversation shown."""


@dataclass(frozen=True, slots=True)
class Query:
    """``/query NAME``: open (or show) the private conversation with NAME."""

    name: str


@dataclass(frozen=True, slots=True)
class Close:
    """``/close``: close the private conversation shown."""


@dataclass(frozen=True, slots=True)
class Reply:
    """``/r TEXT``: answer the last private conversation (the session knows which)."""

    said: str


Plan = Send | Refuse | ShowHelp | Clear | Query | Close | Reply

# A sentence for people that starts with a command's name (not a line to send).
FORMAT_REFUSED = "/format is not available here: the client needs its connection in JSON"


def command_word(line: str) -> str | None:
    """The lower-cased word of a ``/word ...`` line ("" for a bare "/"), else None."""
    if not line.startswith("/") or line.startswith("//"):
        return None
    words = line[1:].split(maxsplit=1)
    return words[0].lower() if words else ""


def plan_input(
    text: str, *, conversation: str | None = None, limit: int = DEFAULT_MAX_LINE
) -> Plan | None:
    """What to do with the line the user typed, or None for nothing.

    Known commands go out as typed, and so do the bare commands ``who`` and ``rename|X``
    (the slash-less forms the server also accepts). A line that starts with "/" but names
    no command is refused here, with a one-line error, and stays in the input: a typo
    (``/mgs alice ...``) must never reach the room. ``//text`` is chat that starts with
    "/" (sent as ``/text``). In a private conversation (``conversation``: the peer's
    name), chat goes to that peer alone. A chat line longer than ``limit`` bytes is split
    at spaces into lines that fit; any other line that long is refused.
    """
    if not text.strip():
        return None
    word = command_word(text)
    if word is None:
        chat = text[1:] if text.startswith("//") else text
        if conversation is not None:
            return _split(lambda part: c.Msg(conversation, part), chat, limit)
        return _split(c.Chat, chat, limit)
    rest = text[1:].split(maxsplit=1)[1] if len(text[1:].split(maxsplit=1)) > 1 else ""
    if word in LOCAL_COMMANDS:
        return _local(word, rest)
    if word == "format":
        return Refuse(FORMAT_REFUSED)
    if word not in SLASH_COMMANDS and word not in NEWER_COMMANDS:
        shown = word[:20] or "/"
        return Refuse(f"unknown command {shown!r}: nothing was sent (/help lists them; "
                      "start a line with // to send it as chat)")  # fmt: skip
    if word == "me" and rest.strip():
        return _split(c.Me, rest, limit)
    if word == "msg":
        target, _, said = rest.partition(" ")
        if target and said.strip():
            return _split(lambda part: c.Msg(target, part), said.strip(), limit)
    return _fits((text,), limit)


def _local(word: str, rest: str) -> Plan:
    match word:
        case "help":
            return ShowHelp()
        case "clear":
            return Clear()
        case "close":
            return Close()
        case "query":
            name = rest.strip()
            if not name or " " in name:
                return Refuse("usage: query NAME (a private conversation with NAME)")
            return Query(name)
    return Reply(rest)


def split_text(text: str, budget: int) -> list[str]:
    """``text`` in parts of at most ``budget`` UTF-8 bytes, cut at a space where one is
    in the second half of a part (else inside a word), never inside a character."""
    parts: list[str] = []
    while len(text.encode()) > budget:
        fits = text.encode()[:budget].decode("utf-8", "ignore")
        cut = len(fits)
        space = fits.rfind(" ")
        if space > cut // 2:
            cut = space
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    return [*parts, text] if text else parts


def _split(make, text: str, limit: int) -> Plan:
    """The lines that say ``text`` with the command ``make(part)``, each within ``limit``."""
    overhead = len(c.format_line(make("x")).encode()) - 1 + 1  # + a "/" escape, if needed
    budget = limit - overhead
    if budget < 16:
        return Refuse(f"line too long: the server takes {limit} bytes; nothing was sent")
    return _fits(tuple(c.format_line(make(part)) for part in split_text(text, budget)), limit)


def _fits(lines: tuple[str, ...], limit: int) -> Send | Refuse:
    for line in lines:
        size = len(line.encode())
        if size > limit:
            return Refuse(f"line too long ({size} bytes, the server takes {limit}): "
                          "nothing was sent")  # fmt: skip
    return Send(lines)


def argument(line: str) -> str:
    """What follows the command word of a ``/word ...`` line, stripped."""
    parts = line.strip().split(maxsplit=1)
    return parts[1].strip() if len(parts) > 1 else ""


def history_form(line: str) -> str:
    """What the input history keeps of a line the user sent: a secret is left out
    (``/oper NAME`` and ``/pass`` are kept without their password), so Up never shows it."""
    match command_word(line):
        case "oper":
            words = line.split(maxsplit=2)
            return c.format_line(c.Oper(words[1] if len(words) > 1 else "", ""))
        case "pass":
            return c.format_line(c.Pass(""))
    return line


def private_message_draft(name: str) -> str:
    """What the input line holds to start a private message to ``name``: ``/msg NAME ``,
    the text left for the user to type."""
    return c.format_line(c.Msg(name, ""))


def describe(text: str) -> str:
    """Who a typed line goes to, for lines that do not go to the room as plain chat."""
    word = command_word(text)
    if word == "msg":
        parts = text.split(maxsplit=2)
        return f"private to {parts[1]}" if len(parts) > 1 else "private message"
    if word == "me":
        return "action, seen by the whole room"
    return ""


# A paste of more lines than this asks once before sending (weechat's paste confirmation).
PASTE_CONFIRM_OVER = 3


@dataclass(frozen=True, slots=True)
class Paste:
    """What a paste into the input line does.

    ``lines`` are sent in order (blank ones left out); ``keep`` stays in the input line.
    A paste without a line break is typed into the line as it is (``lines`` empty).
    """

    lines: tuple[str, ...]
    keep: str

    @property
    def needs_confirmation(self) -> bool:
        return len(self.lines) > PASTE_CONFIRM_OVER


def plan_paste(value: str, cursor: int, pasted: str) -> Paste:
    """Split a paste at ``cursor`` of the input ``value`` into the lines it sends.

    Every line of a multi-line paste is sent, the text around the cursor becoming part of
    the first and last line, so what the user sees is what the room gets. Nothing is
    dropped: even a last line without a line break is sent (a paste is finished text).
    """
    text = value[:cursor] + pasted + value[cursor:]
    if "\n" not in pasted and "\r" not in pasted:
        return Paste((), text)
    return Paste(tuple(line for line in text.splitlines() if line.strip()), "")


def in_room(room: str, line: str) -> str:
    """``line`` as sent to a server with rooms: a request naming the room it is for
    (docs/PROTOCOL.md, "Rooms"); the id is left out (no ack is needed)."""
    return compact_json({"room": room, "text": line})


def request_overhead(room: str, text: str) -> int:
    """How many bytes a request naming ``room`` adds to lines cut from ``text``, at most
    (JSON escapes each quote, backslash and control character of the text)."""
    escaped = len(compact_json(text).encode()) - 2 - len(text.encode())
    return len(in_room(room, "").encode()) + escaped


def as_request(line: str, number: int) -> str:
    """``line`` as sent: in JSON mode a line starting with ``{`` is a request, so chat that
    starts so goes inside one, request ``number`` (its ack shows nothing). The user's words,
    not the server's."""
    if line[:1] != "{":
        return line
    return compact_json({"id": f"typed-{number}", "text": line})
