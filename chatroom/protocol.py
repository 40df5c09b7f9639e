"""The wire contract both sides speak: event types, their JSON form, and the shared rules.

The server writes one event per line. In JSON mode each line is one compact JSON object
whose ``type`` names one of the event classes below; docs/PROTOCOL.md is the prose version
of this module. A client sends plain text lines (chat and commands) in either mode.

Nothing here does I/O. The server encodes events with :func:`encode_json`; the client
turns received lines back into the same objects with :func:`decode_json`, so neither side
parses JSON by hand.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

DEFAULT_PORT = 8087
NAME_MAX_CHARS = 32


class OutputFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class LeaveReason(StrEnum):
    QUIT = "quit"  # the user typed /quit (optionally with a text)
    EOF = "eof"  # the client closed its side of the connection
    ERROR = "error"  # connection reset or another socket error
    TIMEOUT = "timeout"  # idle for longer than the room's idle timeout
    SLOW = "slow"  # the client did not read; its output queue overflowed
    SHUTDOWN = "shutdown"  # the server is stopping


class NoticeCode(StrEnum):
    INFO = "info"
    HELP = "help"
    IDLE_WARNING = "idle_warning"
    TIMEOUT = "timeout"
    SHUTDOWN = "shutdown"
    SERVER_FULL = "server_full"


class ErrorCode(StrEnum):
    NAME_TAKEN = "name_taken"
    NAME_INVALID = "name_invalid"
    UNKNOWN_COMMAND = "unknown_command"
    UNKNOWN_USER = "unknown_user"
    LINE_TOO_LONG = "line_too_long"
    BAD_USAGE = "bad_usage"
    UNAVAILABLE = "unavailable"  # several nodes share the room and it cannot be reached now


# Slash commands the server understands (the word after "/", lower case). A client uses
# this to decide whether a line starting with "/" must be escaped as "//" to be chat.
SLASH_COMMANDS = frozenset({"who", "names", "nick", "msg", "me", "quit", "help", "format"})


# --- events


@dataclass(frozen=True, slots=True)
class Welcome:
    type: ClassVar[str] = "welcome"
    id: str
    name: str
    idle_timeout: float
    users: int


@dataclass(frozen=True, slots=True)
class Message:
    type: ClassVar[str] = "message"
    seq: int
    ts: float
    id: str
    name: str
    text: str
    history: bool = False


@dataclass(frozen=True, slots=True)
class Action:
    type: ClassVar[str] = "action"
    seq: int
    ts: float
    id: str
    name: str
    text: str
    history: bool = False


@dataclass(frozen=True, slots=True)
class Join:
    type: ClassVar[str] = "join"
    seq: int
    ts: float
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class Leave:
    type: ClassVar[str] = "leave"
    seq: int
    ts: float
    id: str
    name: str
    reason: LeaveReason | str  # a str only for a reason this version does not know
    text: str | None = None


@dataclass(frozen=True, slots=True)
class Rename:
    type: ClassVar[str] = "rename"
    seq: int
    ts: float
    id: str
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class Private:
    """A private message. On the wire ``sender``/``recipient`` are ``from``/``to`` (names)."""

    type: ClassVar[str] = "private"
    ts: float
    sender: str
    recipient: str
    text: str


@dataclass(frozen=True, slots=True)
class WhoEntry:
    id: str
    name: str
    idle: int  # whole seconds since the user's last line


@dataclass(frozen=True, slots=True)
class Who:
    type: ClassVar[str] = "who"
    users: tuple[WhoEntry, ...]


@dataclass(frozen=True, slots=True)
class Notice:
    type: ClassVar[str] = "notice"
    code: NoticeCode
    text: str


@dataclass(frozen=True, slots=True)
class Error:
    type: ClassVar[str] = "error"
    code: ErrorCode
    message: str


@dataclass(frozen=True, slots=True)
class FormatChanged:
    type: ClassVar[str] = "format"
    format: OutputFormat


@dataclass(frozen=True, slots=True)
class UnknownEvent:
    """A line whose ``type`` this version does not know; clients must ignore it."""

    type: str
    data: dict[str, Any] = field(default_factory=dict)


Event = (
    Welcome
    | Message
    | Action
    | Join
    | Leave
    | Rename
    | Private
    | Who
    | Notice
    | Error
    | FormatChanged
)
# Events that take a room-wide sequence number: everyone in the room sees them, in one order.
BroadcastEvent = Message | Action | Join | Leave | Rename


class ProtocolError(ValueError):
    """A line from the server that is not a valid protocol event."""


# --- JSON form

_compact = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def to_wire_dict(event: Event) -> dict[str, Any]:
    """The JSON object for ``event``, ``type`` first, optional fields left out when unset."""
    match event:
        case Private():
            return {
                "type": "private",
                "ts": event.ts,
                "from": event.sender,
                "to": event.recipient,
                "text": event.text,
            }
        case Who():
            return {
                "type": "who",
                "users": [{"id": u.id, "name": u.name, "idle": u.idle} for u in event.users],
            }
        case Message() | Action():
            obj = {
                "type": event.type,
                "seq": event.seq,
                "ts": event.ts,
                "id": event.id,
                "name": event.name,
                "text": event.text,
            }
            if event.history:
                obj["history"] = True
            return obj
        case Leave():
            obj = {
                "type": "leave",
                "seq": event.seq,
                "ts": event.ts,
                "id": event.id,
                "name": event.name,
                "reason": str(event.reason),
            }
            if event.text is not None:
                obj["text"] = event.text
            return obj
    obj = {"type": event.type}
    for name in event.__dataclass_fields__:
        value = getattr(event, name)
        obj[name] = str(value) if isinstance(value, StrEnum) else value
    return obj


# How the compact encoder writes a str (non-ASCII kept): C-accelerated, quotes included.
_json_str = json.encoder.encode_basestring


def encode_json(event: Event) -> str:
    """One compact JSON line for ``event``, without the line ending."""
    # Chat and joins are the hot path of a busy room: the same text as
    # ``_compact(to_wire_dict(event))`` (ints and floats are written as their repr), without
    # building a dict for it.
    cls = type(event)
    if (cls is Message or cls is Action) and not event.history:
        return (
            f'{{"type":"{cls.type}","seq":{event.seq!r},"ts":{event.ts!r},'
            f'"id":{_json_str(event.id)},"name":{_json_str(event.name)},'
            f'"text":{_json_str(event.text)}}}'
        )
    if cls is Join:
        return (
            f'{{"type":"join","seq":{event.seq!r},"ts":{event.ts!r},'
            f'"id":{_json_str(event.id)},"name":{_json_str(event.name)}}}'
        )
    return _compact(to_wire_dict(event))


def _require(data: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = data.get(key)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ProtocolError(f"field {key!r} missing or not {kind}")
    return value


def _number(data: dict[str, Any], key: str) -> float:
    return float(_require(data, key, (int, float)))


def _leave_reason(value: str) -> LeaveReason | str:
    # A reason a newer server adds must not cost an older client the leave itself.
    try:
        return LeaveReason(value)
    except ValueError:
        return value


def decode_json(line: str) -> Event | UnknownEvent:
    """Parse one JSON line from the server. Raises :class:`ProtocolError` if malformed."""
    try:
        data = json.loads(line)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise ProtocolError(f"not JSON: {line[:80]!r}") from exc
    return from_wire_dict(data)


def from_wire_dict(data: Any) -> Event | UnknownEvent:
    """The event for a decoded JSON object (see :func:`decode_json`)."""
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ProtocolError(f"not a protocol event: {str(data)[:80]!r}")
    kind = data["type"]
    try:
        match kind:
            case "welcome":
                return Welcome(
                    id=_require(data, "id", str),
                    name=_require(data, "name", str),
                    idle_timeout=_number(data, "idle_timeout"),
                    users=_require(data, "users", int),
                )
            case "message" | "action":
                cls = Message if kind == "message" else Action
                return cls(
                    seq=_require(data, "seq", int),
                    ts=_number(data, "ts"),
                    id=_require(data, "id", str),
                    name=_require(data, "name", str),
                    text=_require(data, "text", str),
                    history=data.get("history") is True,
                )
            case "join":
                return Join(
                    seq=_require(data, "seq", int),
                    ts=_number(data, "ts"),
                    id=_require(data, "id", str),
                    name=_require(data, "name", str),
                )
            case "leave":
                text = data.get("text")
                return Leave(
                    seq=_require(data, "seq", int),
                    ts=_number(data, "ts"),
                    id=_require(data, "id", str),
                    name=_require(data, "name", str),
                    reason=_leave_reason(_require(data, "reason", str)),
                    text=text if isinstance(text, str) else None,
                )
            case "rename":
                return Rename(
                    seq=_require(data, "seq", int),
                    ts=_number(data, "ts"),
                    id=_require(data, "id", str),
                    old=_require(data, "old", str),
                    new=_require(data, "new", str),
                )
            case "private":
                return Private(
                    ts=_number(data, "ts"),
                    sender=_require(data, "from", str),
                    recipient=_require(data, "to", str),
                    text=_require(data, "text", str),
                )
            case "who":
                users = _require(data, "users", list)
                return Who(
                    users=tuple(
                        WhoEntry(
                            id=_require(u, "id", str),
                            name=_require(u, "name", str),
                            idle=_require(u, "idle", int),
                        )
                        for u in users
                        if isinstance(u, dict)
                    )
                )
            case "notice":
                code = _require(data, "code", str)
                text = _require(data, "text", str)
                try:
                    return Notice(code=NoticeCode(code), text=text)
                except ValueError:
                    return UnknownEvent(type=kind, data=data)
            case "error":
                code = _require(data, "code", str)
                message = _require(data, "message", str)
                try:
                    return Error(code=ErrorCode(code), message=message)
                except ValueError:
                    return UnknownEvent(type=kind, data=data)
            case "format":
                return FormatChanged(format=OutputFormat(_require(data, "format", str)))
    # ProtocolError, an enum value we do not know, or an integer too large for a float
    except (ValueError, OverflowError) as exc:
        raise ProtocolError(f"bad {kind!r} event: {exc}") from exc
    return UnknownEvent(type=kind, data=data)


# --- rules both sides apply


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be chosen, or None if it can.

    A name is 1-32 characters with no whitespace, no control or other unprintable
    characters, no ``|`` (the tutorial's rename separator) and no ``:``, which is kept for
    the ``ip:port`` names users start with so nobody can pose as an address. Names are
    refused, never cleaned: what a user asked for is what they get, or an error.
    """
    if not name:
        return "a name cannot be empty"
    if len(name) > NAME_MAX_CHARS:
        return f"a name has at most {NAME_MAX_CHARS} characters"
    for char in name:
        if char.isspace():
            return "a name cannot contain spaces"
        if not char.isprintable():
            return "a name cannot contain control or invisible characters"
        if char in "|:":
            return f"a name cannot contain {char!r}"
    return None


def name_key(name: str) -> str:
    """Names are unique without regard to case: this is the key they are compared by."""
    return name.casefold()


# CSI and other escape sequences (7-bit and 8-bit introducers), OSC/DCS strings up to their
# terminator, then any remaining C0 (but tab), DEL and C1 character.
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x9d\x98\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
    r"|[\x00-\x08\x0a-\x1f\x7f-\x9f]"
    r"|[\u202a-\u202e\u2066-\u2069]"  # bidi overrides: they reorder the rest of the line
)


def strip_controls(text: str) -> str:
    """``text`` without escape sequences or control characters (tab is kept).

    Applied to everything a user writes that others will see, so nobody can move another
    user's cursor, change colours, set the window title or ring bells in a loop.
    """
    if text.isprintable():  # fast path: the common case has nothing to remove
        return text
    return _ESCAPES.sub("", text)


def chat_line(text: str) -> str:
    """The line a client sends so that ``text`` arrives as chat rather than a slash command.

    The tutorial's bare commands ``who`` and ``rename|NAME`` stay commands: the protocol
    has no escape for them, and users of the tutorial type them on purpose.
    """
    if text.startswith("/"):
        return "/" + text
    return text
