"""A user's line, read as what it asks for: one frozen command. No I/O, no room state.

:func:`parse` is the only place that knows the command syntax — the bare ``who`` and
``rename|NAME`` every nc user knows, the IRC-style ``/commands``, ``//`` for chat that starts
with a slash — and the text it cleans (escape sequences and control characters, see
:func:`chatroom.protocol.strip_controls`). The room then decides what each command does in
the room as it is (docs/ARCHITECTURE.md, "How to add a command").
"""

from __future__ import annotations

from chatroom.protocol.arguments import history_arguments
from chatroom.protocol.command_base import Usage, _Command
from chatroom.protocol.durations import (  # noqa: F401 (re-exported)
    DURATION_USAGE,
    format_duration,
    parse_duration,
)
from chatroom.protocol.events import OutputFormat
from chatroom.protocol.help import HELP_TEXT, OPERATOR_HELP_TEXT  # noqa: F401 (re-exported)
from chatroom.protocol.operator_commands import (  # noqa: F401 (re-exported)
    OPERATOR_WORDS,
    Ban,
    Bans,
    Kick,
    Motd,
    Mute,
    Oper,
    OperatorCommand,
    Topic,
    Unban,
    Unmute,
    operator_line,
    parse_operator,
)
from chatroom.protocol.text_rules import strip_controls

_SECRETS = frozenset({"secret", "password"})
# Slash commands the server understands (the word after "/", lower case). A client uses
# this to decide whether a line starting with "/" must be escaped as "//" to be chat.
SLASH_COMMANDS = frozenset(
    {"who", "names", "nick", "msg", "me", "quit", "help", "ping", "format", "pass", "away"}
    | OPERATOR_WORDS
    | {"ignore", "unignore", "register", "login", "unregister", "history", "bot"}
    | {"join", "part", "rooms", "list"}
)  # docs/PROTOCOL.md says what each does


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


class SetFormat(_Command):
    format: OutputFormat


class Ignore(_Command):
    target: str | None = None  # None: list whom one ignores


class Unignore(_Command):
    target: str


class Away(_Command):
    text: str | None = None  # None: back


class Register(_Command):
    """Register the name one has now, with ``password`` (never logged or shown)."""

    password: str


class Login(_Command):
    """Take the registered name ``name`` on this connection, with its ``password``."""

    name: str
    password: str


class Unregister(_Command):
    name: str | None = None  # None: the name one has (another's: operators only)


class History(_Command):
    """The last ``count`` messages (None: the room's replay count), to the asker alone; 0:
    none, only the notice saying how far the room got (its ``seq``)."""

    count: int | None = None


class HistorySince(_Command):
    """The messages after ``seq`` of ``epoch`` (None: the room's own, unchecked)."""

    seq: int
    epoch: str | None = None


class Bot(_Command):
    """This connection is a program."""


class Join(_Command):
    """Go to (text mode) or add (JSON mode) the room ``room`` (its key: see room_names)."""

    room: str


class Part(_Command):
    room: str | None = None  # None: the room the line is for


class Rooms(_Command):
    """List the rooms (``/rooms``, ``/list``)."""


class Unknown(_Command):
    word: str  # cleaned and cut short, fit to show back to the user


Command = (
    Nothing | TooLong | Chat | Me | Who | Nick | Msg | Quit | Help | Ping | Pass | SetFormat
    | OperatorCommand | Ignore | Unignore | Away | Register | Login | Unregister | History
    | HistorySince | Bot | Join | Part | Rooms | Usage | Unknown
)  # fmt: skip

HISTORY_USAGE = "usage: /history [N] or /history since SEQ [EPOCH]"


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
        case "register":  # the password is the rest of the line, spaces and all
            return Register(arg) if arg else Usage("usage: /register PASSWORD")
        case "login":
            name, _, password = arg.partition(" ")
            password = password.strip()
            return Login(name, password) if password else Usage("usage: /login NAME PASSWORD")
        case "unregister":
            return Unregister(arg or None) if " " not in arg else Usage("usage: /unregister [NAME]")
        case "history":
            return _history(arg)
        case "bot":
            return Bot() if not arg else Usage("usage: /bot")
        case "join" | "part" | "rooms" | "list":
            return _room(word, arg)
        case "format":
            try:
                return SetFormat(OutputFormat(arg.lower()))
            except ValueError:
                return Usage("usage: /format json|text")
    return parse_operator(word, arg) or Unknown(strip_controls(word)[:40])


def _history(arg: str) -> History | HistorySince | Usage:
    """``/history [N]`` or ``/history since SEQ [EPOCH]`` (the room caps N)."""
    found = history_arguments(arg)
    if found is None:
        return Usage(HISTORY_USAGE)
    return HistorySince(*found[1:]) if found[0] == "since" else History(found[1])


def _room(word: str, arg: str) -> Join | Part | Rooms | Usage:
    """``/join ROOM``, ``/part [ROOM]``, ``/rooms`` (``/list``): a room as typed, ``#`` and
    all (the room checks the name: a bad one is its ``bad_room`` error, not a usage)."""
    if word in ("rooms", "list"):
        return Rooms() if not arg else Usage(f"usage: /{word}")
    if word == "join":
        return Join(arg) if arg and " " not in arg else Usage("usage: /join ROOM")
    return Part(arg or None) if " " not in arg else Usage("usage: /part [ROOM]")


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
        case Ignore(target):
            return _words("/ignore", target)
        case Unignore(target):
            return f"/unignore {target}"
        case Away(text):
            return _words("/away", text)
        case Register(password):
            return f"/register {password}"
        case Login(name, password):
            return f"/login {name} {password}"
        case Unregister(name):
            return _words("/unregister", name)
        case History(count):
            return _words("/history", None if count is None else str(count))
        case HistorySince(seq, epoch):
            return _words("/history since", str(seq), epoch)
        case Bot():
            return "/bot"
        case Join(room):
            return f"/join {room}"
        case Part(room):
            return _words("/part", room)
        case Rooms():
            return "/rooms"
        case Oper() | Kick() | Mute() | Unmute() | Topic() | Motd() | Ban() | Unban() | Bans():
            return operator_line(command)
    raise ValueError(f"not a command a client sends: {command!r}")


def _words(*words: str | None) -> str:
    return " ".join(word for word in words if word)
