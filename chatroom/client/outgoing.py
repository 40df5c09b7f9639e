"""What the input line sends: commands as typed, everything else as chat."""

from __future__ import annotations

from dataclasses import dataclass

from chatroom.protocol import SLASH_COMMANDS
from chatroom.protocol import commands as c

# Commands of issue 12 a server may not list yet (bans, ignores, away): sent as typed, so
# a server without them answers ``unknown_command`` rather than the room reading the line.
NEWER_COMMANDS = frozenset({"ban", "unban", "bans", "ignore", "unignore", "away"})


@dataclass(frozen=True, slots=True)
class Send:
    line: str


@dataclass(frozen=True, slots=True)
class Refuse:
    reason: str


@dataclass(frozen=True, slots=True)
class ShowHelp:
    """``/help``: the client's own commands and keys, shown locally (not the server's list,
    which offers ``/format``, a command the client must refuse)."""

    text: str


CLIENT_HELP = """Commands:
  /who [TEXT], /names       list the users online (with their idle time)
  /nick NAME                change your name (or F2)
  /msg NAME TEXT            send a private message
  /me TEXT                  send an action ("* you TEXT")
  /ping [TEXT]              the server answers "pong" to you alone
  /quit [REASON]            leave the room (Ctrl+R joins again)
  /help                     this list
  /topic                    show the room's topic (also in the header)
  /motd                     show the message of the day
  /ignore NAME, /unignore NAME   hide (show again) someone's lines
  /oper NAME PASSWORD       become an operator (marked @NAME in the user list)
  //TEXT                    send a line that starts with "/" as chat
Operators: /kick NAME [REASON], /mute NAME [DURATION], /unmute NAME, /ban NAME,
  /topic TEXT; or F4 on a user in the list.
Any other line is chat, seen by everyone.
Keys: Enter sends · Tab completes · Up/Down history · PgUp/PgDn/Home/End scroll the log ·
  Esc back to the input · F2 rename · F3 user list · F4 act on the highlighted user ·
  Ctrl+R reconnect · Ctrl+Q quit"""


# A sentence for people that starts with a command's name (not a line to send).
FORMAT_REFUSED = "/format is not available here: the client needs its connection in JSON"


def command_word(line: str) -> str | None:
    """The lower-cased word of a ``/word ...`` line ("" for a bare "/"), else None."""
    if not line.startswith("/") or line.startswith("//"):
        return None
    words = line[1:].split(maxsplit=1)
    return words[0].lower() if words else ""


def plan_input(text: str) -> Send | Refuse | ShowHelp | None:
    """The line to send for what the user typed, a reason not to, or None for nothing.

    Known commands go out as typed, and so do the bare commands ``who`` and ``rename|X``
    (the slash-less forms the server also accepts; the protocol has no way to send those
    words as chat). A line that starts with "/" but names no command is chat, so it is
    escaped as "//..." and everybody sees exactly what was typed.
    """
    if not text.strip():
        return None
    word = command_word(text)
    if word == "help":
        return ShowHelp(CLIENT_HELP)
    if word == "format":
        return Refuse(FORMAT_REFUSED)
    if word in SLASH_COMMANDS or word in NEWER_COMMANDS:
        return Send(text)
    return Send(c.format_line(c.Chat(text)))


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
