"""The operators' commands (docs/PROTOCOL.md, "Operators"): their Structs, how a line asks
for one (:func:`parse_operator`) and the line for one (:func:`operator_line`). No I/O.
Re-exported by :mod:`chatroom.protocol.commands`, where every other command lives.
"""

from __future__ import annotations

from chatroom.protocol.arguments import ban_arguments
from chatroom.protocol.command_base import Usage, _Command
from chatroom.protocol.durations import DURATION_USAGE, format_duration, parse_duration
from chatroom.protocol.text_rules import strip_controls

OPERATOR_WORDS = frozenset(
    {"oper", "kick", "mute", "unmute", "topic", "motd", "ban", "unban", "bans"}
)


class Oper(_Command):
    name: str
    password: str


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


OperatorCommand = Oper | Kick | Mute | Unmute | Topic | Motd | Ban | Unban | Bans


def parse_operator(word: str, arg: str) -> OperatorCommand | Usage | None:
    """An operator's command (``/WORD ARG``), None for another word."""
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
    """``/ban TARGET [DURATION] [REASON]`` (:func:`~chatroom.protocol.arguments.ban_arguments`)."""
    found = ban_arguments(arg)
    return Ban(*found) if isinstance(found, tuple) else Usage(found)


def operator_line(command: OperatorCommand) -> str:
    """The line that asks for ``command`` (see :func:`chatroom.protocol.commands.format_line`)."""
    match command:
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


def _duration(seconds: float | None) -> str | None:
    return None if seconds is None else format_duration(seconds)


def _words(*words: str | None) -> str:
    return " ".join(word for word in words if word)
