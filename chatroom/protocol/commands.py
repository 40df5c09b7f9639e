"""A user's line, read as what it asks for: one frozen command. No I/O, no room state.

:func:`parse` is the only place that knows the command syntax — the bare ``who`` and
``rename|NAME`` every nc user knows, the IRC-style ``/commands``, ``//`` for chat that starts
with a slash — and the text it cleans (escape sequences and control characters, see
:func:`chatroom.protocol.strip_controls`). The room then decides what each command does in
the room as it is. A new command is a class here, a case in :func:`parse`, and a case in
the room's ``_run``.
"""

from __future__ import annotations

import msgspec

from chatroom.protocol.durations import (  # noqa: F401 (re-exported)
    DURATION_USAGE,
    format_duration,
    parse_duration,
)
from chatroom.protocol.events import OutputFormat
from chatroom.protocol.text_rules import strip_controls

HELP_TEXT = """\
Commands:
  who, /who, /names         list the users online
  /who TEXT                 list the users whose names contain TEXT
  rename|NAME, /nick NAME   change your name
  /msg NAME TEXT            send a private message
  /me TEXT                  send an action ("* you TEXT")
  /quit [REASON]            leave the room
  /format json|text         switch this connection's output format
  /ping [TEXT]              ask the server for "pong" (counts as activity: not idle)
  /pass SECRET              give the room's password (a room that has one asks for it)
  /help                     this list
  //TEXT                    send a line that starts with "/" as chat
  /topic                    show the room's topic
  /motd                     show the message of the day
  /oper NAME PASSWORD       become an operator
  /ignore NAME              see nothing more from NAME (chat, /me, private messages)
  /unignore NAME, /ignore   stop ignoring NAME; list whom you ignore
  /away [TEXT]              mark yourself away (shown in who); no TEXT: back
Any other line is chat, seen by everyone (you too)."""

OPERATOR_HELP_TEXT = """\
Operator commands (you are marked @NAME in who):
  /kick NAME [REASON]       send a user away (everyone sees who did it)
  /mute NAME [DURATION]     refuse a user's chat (they still read); DURATION: 30s 10m 2h 1d
  /unmute NAME              let them speak again
  /topic TEXT               set the room's topic
  /ban NAME|ADDRESS|CIDR [DURATION] [REASON]
                            send away everyone from that address (a NAME: the user's)
                            and refuse it at connect, for DURATION or until /unban
  /unban NAME|ADDRESS|CIDR  lift a ban
  /bans                     list the bans and the time they have left"""


# Slash commands the server understands (the word after "/", lower case). A client uses
# this to decide whether a line starting with "/" must be escaped as "//" to be chat.
SLASH_COMMANDS = frozenset(
    {"who", "names", "nick", "msg", "me", "quit", "help", "ping", "format", "pass"}
)
# Moderation (docs/PROTOCOL.md, "Operators").
SLASH_COMMANDS |= {"oper", "kick", "mute", "unmute", "topic", "motd", "ban", "unban", "bans"}
SLASH_COMMANDS |= {"ignore", "unignore", "away"}  # docs/PROTOCOL.md, "Ignore and away"


class _Command(msgspec.Struct, frozen=True, gc=False):
    """A frozen value (a msgspec Struct: one is made per line, at a ninth of a frozen
    dataclass's cost)."""


class Nothing(_Command):
    """A blank line (or chat that was only control characters): it only counts as activity."""


class TooLong(_Command):
    limit: int  # the longest line allowed, in bytes


class Chat(_Command):
    text: str


class Me(_Command):
    text: str


class Who(_Command):
    query: str = ""  # list only the names containing this (compared without case)


class Nick(_Command):
    name: str  # as typed: the room says whether it may be used


class Msg(_Command):
    target: str
    text: str


class Quit(_Command):
    reason: str | None


class Help(_Command):
    pass


class Ping(_Command):
    """Answered to the sender alone: proof the link is alive, and activity (not idle)."""

    text: str = ""


class Pass(_Command):
    """The room's password, as typed (the room compares it; it is never logged or shown)."""

    secret: str

    def __repr__(self) -> str:  # never shown in a log or a traceback
        return "Pass(secret=***)"


class SetFormat(_Command):
    format: OutputFormat


class Oper(_Command):
    name: str
    password: str

    def __repr__(self) -> str:  # the password is never shown in a log or a traceback
        return f"Oper(name={self.name!r}, password=***)"


class Kick(_Command):
    target: str
    reason: str | None = None


class Mute(_Command):
    target: str
    seconds: float | None = None  # None: until unmuted or gone


class Unmute(_Command):
    target: str


class Topic(_Command):
    text: str | None = None  # None: show it


class Motd(_Command):
    pass


class Ban(_Command):
    target: str  # a name, an address or a CIDR network, as typed (the room tells which)
    seconds: float | None = None  # None: until /unban
    reason: str | None = None


class Unban(_Command):
    target: str


class Bans(_Command):
    pass


class Ignore(_Command):
    target: str | None = None  # None: list whom one ignores


class Unignore(_Command):
    target: str


class Away(_Command):
    text: str | None = None  # None: back


class Usage(_Command):
    """A known command used wrongly: ``message`` says how to use it."""

    message: str


class Unknown(_Command):
    word: str  # cleaned and cut short, fit to show back to the user


Command = (
    Nothing | TooLong | Chat | Me | Who | Nick | Msg | Quit | Help | Ping | Pass | SetFormat
    | Oper | Kick | Mute | Unmute | Topic | Motd | Ban | Unban | Bans
    | Ignore | Unignore | Away | Usage | Unknown
)  # fmt: skip


def parse(line: str) -> Command:
    """The command ``line`` asks for (a line over the server's limit never gets here: the
    server reads it as :class:`TooLong`)."""
    command = line.strip()
    if not command:
        return Nothing()
    if command == "who":
        return Who()
    if command.startswith("rename|"):
        return Nick(command[len("rename|") :].strip())
    if line.startswith("//"):
        return _chat(line[1:])
    if line.startswith("/"):
        word, _, rest = command[1:].partition(" ")
        return _slash(word.lower(), rest.strip())
    return _chat(line)


def _chat(text: str) -> Chat | Nothing:
    text = strip_controls(text)
    return Chat(text) if text.strip() else Nothing()


def _slash(word: str, arg: str) -> Command:
    match word:
        case "who" | "names":
            return Who(strip_controls(arg)[:40])
        case "nick":
            return Nick(arg) if arg else Usage("usage: /nick NEW_NAME")
        case "msg":
            target, _, text = arg.partition(" ")
            text = strip_controls(text).strip()
            return Msg(target, text) if target and text else Usage("usage: /msg NAME TEXT")
        case "me":
            text = strip_controls(arg)
            return Me(text) if text.strip() else Usage("usage: /me TEXT")
        case "quit":
            return Quit(strip_controls(arg).strip() or None)
        case "help":
            return Help()
        case "ping":
            return Ping(strip_controls(arg).strip()[:100])
        case "pass":
            return Pass(arg) if arg else Usage("usage: /pass SECRET")
        case "ignore":
            return Ignore(arg or None) if " " not in arg else Usage("usage: /ignore [NAME]")
        case "unignore":
            return Unignore(arg) if arg and " " not in arg else Usage("usage: /unignore NAME")
        case "away":
            return Away(strip_controls(arg).strip()[:200] or None)
        case "format":
            try:
                return SetFormat(OutputFormat(arg.lower()))
            except ValueError:
                return Usage("usage: /format json|text")
    return _moderation(word, arg) or Unknown(strip_controls(word)[:40])


def _moderation(word: str, arg: str) -> Command | None:
    """The moderation commands (chatroom/server/moderation.py), None for another word."""
    match word:
        case "oper":
            name, _, password = arg.partition(" ")
            password = password.strip()
            return (
                Oper(name, password) if name and password else Usage("usage: /oper NAME PASSWORD")
            )
        case "kick":
            target, _, reason = arg.partition(" ")
            reason = strip_controls(reason).strip()[:200] or None
            return Kick(target, reason) if target else Usage("usage: /kick NAME [REASON]")
        case "mute":
            target, _, duration = arg.partition(" ")
            if not target:
                return Usage("usage: /mute NAME [DURATION]")
            if not duration.strip():
                return Mute(target)
            seconds = parse_duration(duration.strip())
            if seconds is None:
                return Usage(DURATION_USAGE)
            return Mute(target, seconds)
        case "unmute":
            return Unmute(arg) if arg and " " not in arg else Usage("usage: /unmute NAME")
        case "topic":
            return Topic(strip_controls(arg).strip()[:300] or None)
        case "motd":
            return Motd()
        case "ban":
            return _ban(arg)
        case "unban":
            usage = Usage("usage: /unban NAME|ADDRESS|CIDR")
            return Unban(arg) if arg and " " not in arg else usage
        case "bans":
            return Bans()
    return None


def _ban(arg: str) -> Ban | Usage:
    """``/ban TARGET [DURATION] [REASON]``: a second word starting with a digit (or a sign
    and a digit: ``-5m`` is no duration) is a duration (a bad one is an error), any other is
    the reason's first word."""
    target, _, rest = arg.partition(" ")
    if not target:
        return Usage("usage: /ban NAME|ADDRESS|CIDR [DURATION] [REASON]")
    word, _, after = rest.strip().partition(" ")
    seconds = None
    if word.lstrip("+-")[:1].isdigit():
        seconds = parse_duration(word)
        if seconds is None:
            return Usage(DURATION_USAGE)
        rest = after
    reason = strip_controls(rest).strip()[:200] or None
    return Ban(target, seconds, reason)


def format_line(command: Command) -> str:
    """The line that asks for ``command``, without its line ending: what a client sends
    (``parse(format_line(c)) == c`` for every command a client can send). A chat text
    starting with ``/`` is escaped as ``//``. ValueError for what only the server makes
    (:class:`TooLong`, :class:`Usage`, :class:`Unknown`)."""
    match command:
        case Nothing():
            return ""
        case Chat(text):
            return "/" + text if text.startswith("/") else text
        case Me(text):
            return f"/me {text}"
        case Who(query):
            return f"/who {query}" if query else "/who"
        case Nick(name):
            return f"/nick {name}"
        case Msg(target, text):
            return f"/msg {target} {text}"
        case Quit(reason):
            return f"/quit {reason}" if reason else "/quit"
        case Help():
            return "/help"
        case Ping(text):
            return f"/ping {text}" if text else "/ping"
        case Pass(secret):
            return f"/pass {secret}"
        case SetFormat(fmt):
            return f"/format {fmt.value}"
        case Oper(name, password):
            return f"/oper {name} {password}"
        case Kick(target, reason):
            return _words("/kick", target, reason)
        case Mute(target, seconds):
            return _words("/mute", target, _duration(seconds))
        case Unmute(target):
            return f"/unmute {target}"
        case Topic(text):
            return _words("/topic", text)
        case Motd():
            return "/motd"
        case Ban(target, seconds, reason):
            return _words("/ban", target, _duration(seconds), reason)
        case Unban(target):
            return f"/unban {target}"
        case Bans():
            return "/bans"
        case Ignore(target):
            return _words("/ignore", target)
        case Unignore(target):
            return f"/unignore {target}"
        case Away(text):
            return _words("/away", text)
    raise ValueError(f"not a command a client sends: {command!r}")


def _duration(seconds: float | None) -> str | None:
    return None if seconds is None else format_duration(seconds)


def _words(*words: str | None) -> str:
    return " ".join(word for word in words if word)
