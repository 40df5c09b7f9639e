"""The wire contract both sides speak: event types, their JSON form, and the shared rules.

The server writes one event per line. In JSON mode each line is one compact JSON object
whose ``type`` names one of the event classes below; docs/PROTOCOL.md is the prose version
of this module. A client sends plain text lines (chat and commands) in either mode.

Nothing here does I/O. The server encodes events with :func:`encode_json`; the client
turns received lines back into the same objects with :func:`decode_json`, so neither side
parses JSON by hand.

Each event is written once, as a `msgspec <https://jcristharif.com/msgspec/>`_ tagged
``Struct``: its fields, their order and wire names, which are optional, and its ``type``
tag. msgspec generates the encoder and the validating decoder from those classes; nothing
else lists an event's fields. Against the hand-written code it replaced (an f-string fast
path, dicts, ``json``; measured on the 2-core dev box): encoding a message 730 -> 390 ns, a
leave 3200 -> 450 ns, a ``who`` of 10,000 users 10 -> 0.6 ms; decoding a message 4000 -> 260
ns; building one 950 -> 80 ns. No hand-written fast path is left: none would be faster.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import unicodedata
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import msgspec
import precis_i18n

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
    KICKED = "kicked"  # an operator sent it away (/kick): the leave's ``by`` says who


class NoticeCode(StrEnum):
    INFO = "info"
    HELP = "help"
    IDLE_WARNING = "idle_warning"
    TIMEOUT = "timeout"
    SHUTDOWN = "shutdown"
    SERVER_FULL = "server_full"
    PONG = "pong"  # the answer to /ping, to the sender alone (older clients ignore it)
    PASSWORD = "password"  # the room needs a password: send /pass SECRET (older: ignored)
    # The room's history started over (its epoch changed): seq counts again from where the
    # new epoch is; earlier seqs are no longer comparable (older clients ignore it).
    RESET = "reset"
    MOTD = "motd"  # the message of the day (--motd-file), after the welcome and on /motd


class ErrorCode(StrEnum):
    NAME_TAKEN = "name_taken"
    NAME_INVALID = "name_invalid"
    UNKNOWN_COMMAND = "unknown_command"
    UNKNOWN_USER = "unknown_user"
    LINE_TOO_LONG = "line_too_long"
    BAD_USAGE = "bad_usage"
    UNAVAILABLE = "unavailable"  # several nodes share the room and it cannot be reached now
    BAD_PASSWORD = "bad_password"  # a wrong /pass, or /pass too often from one address
    NOT_OPERATOR = "not_operator"  # an operator's command from someone who is not one
    MUTED = "muted"  # an operator muted this user: its chat is refused, it still reads


# Slash commands the server understands (the word after "/", lower case). A client uses
# this to decide whether a line starting with "/" must be escaped as "//" to be chat.
SLASH_COMMANDS = frozenset(
    {"who", "names", "nick", "msg", "me", "quit", "help", "ping", "format", "pass"}
)
# Moderation (docs/PROTOCOL.md, "Operators").
SLASH_COMMANDS |= {"oper", "kick", "mute", "unmute", "topic", "motd", "ban", "unban", "bans"}
SLASH_COMMANDS |= {"ignore", "unignore", "away"}  # docs/PROTOCOL.md, "Ignore and away"


# --- events


class _Event(msgspec.Struct, frozen=True, gc=False, tag_field="type", omit_defaults=True):
    """What every event is: a frozen value, equal by value, hashable.

    On the wire ``type`` (the class's tag) comes first, then the fields in the order they are
    declared; a field equal to its default is left out (``history`` unless true, a leave's
    ``text`` unless set). ``gc=False``: events hold only strings, numbers and tuples of
    entries, so they can never be part of a reference cycle.
    """

    type: ClassVar[str]  # the class's tag, e.g. "message" (set below, once tags are known)


class Welcome(_Event, tag="welcome"):
    id: str
    name: str
    idle_timeout: float
    users: int
    # Which history the room's seqs count in: two seqs compare only within one epoch. A
    # server restart or a shared store that starts over (Redis restarted empty) makes a new
    # one. Left out by servers that predate it.
    epoch: str | None = None
    topic: str | None = None  # the room's topic (/topic), left out when none is set


class Message(_Event, tag="message"):
    seq: int
    ts: float
    id: str
    name: str
    text: str
    history: bool = False


class Action(_Event, tag="action"):
    seq: int
    ts: float
    id: str
    name: str
    text: str
    history: bool = False


class Join(_Event, tag="join"):
    seq: int
    ts: float
    id: str
    name: str


_KNOWN_REASONS = {reason.value: reason for reason in LeaveReason}


class Leave(_Event, tag="leave"):
    seq: int
    ts: float
    id: str
    name: str
    # A LeaveReason; a plain str only for a reason this version does not know, so that a
    # reason a newer server adds does not cost an older client the leave itself.
    reason: str
    text: str | None = None
    by: str | None = None  # for a kick: the operator's name

    def __post_init__(self) -> None:
        known = _KNOWN_REASONS.get(self.reason)
        if known is not None and known is not self.reason:
            msgspec.structs.force_setattr(self, "reason", known)


class Rename(_Event, tag="rename"):
    seq: int
    ts: float
    id: str
    old: str
    new: str


class Private(_Event, tag="private"):
    """A private message. On the wire ``sender``/``recipient`` are ``from``/``to`` (names)."""

    ts: float
    sender: str = msgspec.field(name="from")
    recipient: str = msgspec.field(name="to")
    text: str


class WhoEntry(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    id: str
    name: str
    idle: int  # whole seconds since the user's last line
    op: bool = False  # an operator (/oper); left out unless true
    away: str | None = None  # its /away text; left out unless away


class Who(_Event, tag="who"):
    users: tuple[WhoEntry, ...]
    # Set when the list was cut short (a big room): how many users there are in all, or
    # match the query of ``/who TEXT``. Left out when ``users`` is everyone.
    total: int | None = None


class Notice(_Event, tag="notice"):
    code: NoticeCode
    text: str
    epoch: str | None = None  # a ``reset`` notice's new epoch; left out by the others


class Error(_Event, tag="error"):
    code: ErrorCode
    message: str


class FormatChanged(_Event, tag="format"):
    format: OutputFormat


class Topic(_Event, tag="topic"):
    """The room's topic: broadcast when an operator sets it, sent alone on ``/topic``.
    ``text`` is empty when none is set; ``by`` names who set it."""

    text: str
    by: str | None = None


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
    | Topic
)
for _cls in Event.__args__:
    _cls.type = _cls.__struct_config__.tag

# Events that take a room-wide sequence number: everyone in the room sees them, in one order.
BroadcastEvent = Message | Action | Join | Leave | Rename

_E = TypeVar("_E", bound=_Event)


def replace(event: _E, /, **changes: Any) -> _E:
    """A copy of ``event`` with some fields changed (events are not dataclasses: use this,
    not :func:`dataclasses.replace`)."""
    return msgspec.structs.replace(event, **changes)


class ProtocolError(ValueError):
    """A line from the server that is not a valid protocol event."""


# --- JSON form

_compact = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def compact_json(obj: Any) -> str:
    """The compact JSON text of a plain object, non-ASCII kept: the form of every line, and
    of what the room keeps in Redis."""
    return _compact(obj)


def to_wire_dict(event: Event) -> dict[str, Any]:
    """The JSON object for ``event``, ``type`` first, optional fields left out when unset."""
    return msgspec.to_builtins(event)


_encode = msgspec.json.Encoder().encode
_FLOATS = {
    cls: tuple(f.name for f in msgspec.structs.fields(cls) if f.type is float)
    for cls in Event.__args__
}


def encode_json(event: Event) -> str:
    """One compact JSON line for ``event``, without the line ending.

    The same text as ``compact_json(to_wire_dict(event))``. msgspec writes a float as
    Python's ``repr`` does between 1e-4 and 1e16 (every Unix time and timeout); outside that
    range (``1e-05`` vs ``0.00001``, ``1e+16`` vs ``1e16``, NaN) the standard library writes
    the line, so no float is ever written differently from before.
    """
    for name in _FLOATS[type(event)]:
        if not 1e-4 <= getattr(event, name) < 1e16:
            return compact_json(to_wire_dict(event))
    return _encode(event).decode()


_decode = msgspec.json.Decoder(Event).decode
_BY_TYPE: dict[str, type[_Event]] = {cls.type: cls for cls in Event.__args__}
# Code vocabularies that grow: a code this version does not know makes the whole line an
# UnknownEvent, which a client ignores, rather than a protocol error.
_OPEN_CODES: dict[type[_Event], frozenset[str]] = {
    Notice: frozenset(code.value for code in NoticeCode),
    Error: frozenset(code.value for code in ErrorCode),
}
# (wire name, type) of each event's optional fields
_OPTIONAL: dict[type[_Event], tuple[tuple[str, Any], ...]] = {
    cls: tuple((f.encode_name, f.type) for f in msgspec.structs.fields(cls) if not f.required)
    for cls in _BY_TYPE.values()
}


def decode_json(line: str) -> Event | UnknownEvent:
    """Parse one JSON line from the server. Raises :class:`ProtocolError` if malformed."""
    try:
        return _decode(line)
    except (msgspec.MsgspecError, ValueError, RecursionError):
        pass  # not a valid event as it stands: the forgiving path decides (see below)
    try:
        data = json.loads(line)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise ProtocolError(f"not JSON: {line[:80]!r}") from exc
    return from_wire_dict(data)


def from_wire_dict(data: Any) -> Event | UnknownEvent:
    """The event for a decoded JSON object (see :func:`decode_json`).

    Beyond what the classes say, it forgives what clients always had to: a ``type`` or a
    ``notice``/``error`` code this version does not know gives an :class:`UnknownEvent`; an
    optional field with a bad value counts as unset; ``who`` entries that are not objects
    are skipped. Fields it does not know are ignored.
    """
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ProtocolError(f"not a protocol event: {str(data)[:80]!r}")
    kind = data["type"]
    cls = _BY_TYPE.get(kind)
    if cls is None:
        return UnknownEvent(type=kind, data=data)
    checked = data
    for wire_name, field_type in _OPTIONAL[cls]:
        if wire_name in checked and not _valid(checked[wire_name], field_type):
            checked = {k: v for k, v in checked.items() if k != wire_name}
    if cls is Who and isinstance(checked.get("users"), list):
        checked = {**checked, "users": [u for u in checked["users"] if isinstance(u, dict)]}
    codes = _OPEN_CODES.get(cls)
    code = checked.get("code")
    unknown_code = codes is not None and isinstance(code, str) and code not in codes
    if unknown_code:  # the rest must still be valid
        checked = {**checked, "code": min(codes)}
    try:
        event = msgspec.convert(checked, cls)
    except msgspec.ValidationError as exc:
        raise ProtocolError(f"bad {kind!r} event: {exc}") from exc
    return UnknownEvent(type=kind, data=data) if unknown_code else event


def _valid(value: Any, kind: Any) -> bool:
    try:
        msgspec.convert(value, kind)
    except msgspec.ValidationError:
        return False
    return True


# --- rules both sides apply


_NICKNAME = precis_i18n.get_profile("NicknameCasePreserved")
# Characters that draw nothing but are letters or symbols (so neither whitespace nor
# invisible): a name made of them looks blank, and one with them looks like several words.
# The Hangul fillers are also refused by PRECIS; listed so the reason given is this one.
_BLANK_LOOKING = frozenset("\u2800\u3164\uffa0\u115f\u1160")
MAX_COMBINING_RUN = 3  # combining marks in a row on one letter (more is "zalgo")


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be chosen, or None if it can.

    A name is 1-32 characters with no whitespace, no control, invisible or direction-changing
    characters, no blank-looking ones (U+2800, U+3164, U+FFA0...), no ``|`` (the separator
    of ``rename|NAME``), nothing that PRECIS's nickname profile (RFC 8266) disallows, no
    leading combining mark and no run of more than 3 of them, and nothing that looks like
    ``:`` (by the Unicode confusables skeleton), which is kept for the ``ip:port``
    names users start with so nobody can pose as an address. Names are refused, never
    cleaned: what a user asked for is what they get (in its normal form, see
    :func:`normal_name`), or an error.
    """
    if not name:
        return "a name cannot be empty"
    if len(name) > NAME_MAX_CHARS:
        return f"a name has at most {NAME_MAX_CHARS} characters"
    for char in name:
        if char.isspace():
            return "a name cannot contain spaces"
        if not char.isprintable():
            return "a name cannot contain control, invisible or direction-changing characters"
        if char in _BLANK_LOOKING:
            return "a name cannot contain characters that look blank"
        if char in "|:":
            return f"a name cannot contain {char!r}"
    try:
        normal = _NICKNAME.enforce(name)
    except UnicodeError:
        return "a name cannot contain invisible, unassigned or other disallowed characters"
    if len(normal) > NAME_MAX_CHARS:
        return f"a name has at most {NAME_MAX_CHARS} characters"
    if _is_mark(normal[0]):
        return "a name cannot start with a combining mark"
    run = 0
    for char in normal:
        run = run + 1 if _is_mark(char) else 0
        if run > MAX_COMBINING_RUN:
            return f"a name cannot stack more than {MAX_COMBINING_RUN} combining marks"
    if ":" in name_skeleton(name):  # ꞉ ∶ ։ ： look like the colon of an ip:port name
        return "a name cannot contain a character that looks like ':'"
    return None


def _is_mark(char: str) -> bool:
    return unicodedata.category(char) in ("Mn", "Me", "Mc")


def normal_name(name: str) -> str:
    """The form a valid name is held and shown in: PRECIS's nickname profile, case kept
    (NFKC: ``José`` typed decomposed is the precomposed one, fullwidth ``Ａｎｎ`` is ``Ann``)."""
    if name.isascii():
        return name
    return _NICKNAME.enforce(name)


def name_key(name: str) -> str:
    """Names compared without case or Unicode form: for sorting, searching, mentions."""
    if name.isascii():
        return name.casefold()
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())


def name_skeleton(name: str) -> str:
    """What ``name`` looks like: the key names are held by, so two names that look alike
    cannot both be online (``аnn`` with a Cyrillic а is ``ann``; ``rn`` is ``m``).

    The UTS #39 skeleton (NFD, each character to its prototype in Unicode's confusables
    data, NFD again) of the name's :func:`name_key`. The data is read once, when first
    needed (see :func:`_prototypes`).
    """
    table = _prototypes()
    key = name_key(name)
    if key.isascii():
        return key.translate(table)
    decomposed = unicodedata.normalize("NFD", key)
    return unicodedata.normalize("NFD", decomposed.translate(table))


def load_name_data() -> None:
    """Read the confusables data now rather than with the first name: a server does it as it
    starts, when a file can still be opened (not at its file-descriptor limit) and before
    its memory is measured against its connections."""
    _prototypes()


@functools.cache
def _prototypes() -> dict[int, str]:
    """Unicode's confusables mapping (UTS #39 ``confusables.txt``) as a translate table.

    The data is the one ``confusable-homoglyphs`` ships (found, not imported), which lists
    each line of Unicode's file both ways: a character with a single look-alike is the
    source of that line, mapped to its prototype; a character several map to is a prototype.
    Where two characters list only each other, the data does not say which is the
    prototype: the later code point is mapped to the earlier, which makes the same pairs
    equal (what a skeleton is for).
    """
    spec = importlib.util.find_spec("confusable_homoglyphs")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("confusable-homoglyphs (Unicode's confusables data) is missing")
    folder = Path(next(iter(spec.submodule_search_locations)))
    data = json.loads((folder / "confusables.json").read_text(encoding="utf-8"))
    table: dict[int, str] = {}
    for char, entries in data.items():
        if len(char) != 1 or len(entries) != 1:
            continue  # a prototype: several characters look like it
        target = entries[0]["c"]
        back = data.get(target, ())
        if len(back) == 1 and back[0]["c"] == char and char < target:
            continue  # the earlier of a pair that only look like each other
        table[ord(char)] = target
    return table


# Invisible characters that can forge a line or hide or reorder text. Kept: ZWJ and ZWNJ
# (emoji sequences, Persian and Indic spelling), variation selectors (emoji presentation,
# ideographic variants). Each is listed with its reason in docs/PROTOCOL.md.
_INVISIBLE = (
    "\u2028\u2029"  # line and paragraph separators: str.splitlines() breaks lines there
    "\u00ad"  # soft hyphen: invisible except at a line break
    "\u180e"  # Mongolian vowel separator: invisible since Unicode 6.3
    "\u200b"  # zero-width space
    "\u200e\u200f\u061c"  # LRM, RLM, ALM: invisible bidi marks that reorder what is near
    "\u202a-\u202e\u2066-\u2069"  # bidi embeddings, overrides, isolates: reorder the line
    "\u2060-\u2064"  # word joiner, invisible math operators
    "\u206a-\u206f"  # deprecated format characters
    "\ufeff"  # zero-width no-break space (byte order mark)
    "\ufff9-\ufffb"  # interlinear annotation: hides the annotation text
    "\U000e0000-\U000e007f"  # tags: invisible ASCII (kept only in a flag, see below)
)
# CSI and other escape sequences (7-bit and 8-bit introducers), OSC/DCS strings up to their
# terminator, then any remaining C0 (but tab), DEL and C1 character and the invisible ones.
_ESCAPES_RE = (
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x9d\x98\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
    r"|[\x00-\x08\x0a-\x1f\x7f-\x9f" + _INVISIBLE + "]"
)
_ESCAPES = re.compile(_ESCAPES_RE)
# A subdivision flag (England, Scotland, Wales...): black flag, a CLDR subdivision id of 3-7
# tag letters or digits, cancel tag: the one place tag characters are kept (group 1). Only
# used when a black flag is present: keeping a match costs twice the time of removing.
_BLACK_FLAG = "\U0001f3f4"
_ESCAPES_BUT_FLAGS = re.compile(
    "("
    + _BLACK_FLAG
    + "[\U000e0030-\U000e0039\U000e0061-\U000e007a]{3,7}\U000e007f)|"
    + _ESCAPES_RE
)


def strip_controls(text: str) -> str:
    """``text`` without escape sequences, control characters (tab is kept) or the invisible
    characters that can forge a line or hide text, in Unicode normal form NFC.

    Applied to everything a user writes that others will see, so nobody can move another
    user's cursor, change colours, set the window title, ring bells in a loop, start what a
    client shows as a new line (U+2028), or hide or reorder text. docs/PROTOCOL.md lists
    what is removed and what is kept. Every removed character is unprintable, so printable
    ASCII, the common case, is returned as it is at the cost of one check.
    """
    if text.isprintable():  # fast path: nothing to remove
        if text.isascii() or unicodedata.is_normalized("NFC", text):
            return text
        return unicodedata.normalize("NFC", text)
    if _BLACK_FLAG in text:  # there may be a flag to keep
        return unicodedata.normalize("NFC", _ESCAPES_BUT_FLAGS.sub(r"\1", text))
    return unicodedata.normalize("NFC", _ESCAPES.sub("", text))


def chat_line(text: str) -> str:
    """The line a client sends so that ``text`` arrives as chat rather than a slash command.

    The bare commands ``who`` and ``rename|NAME`` stay commands: the protocol has no escape
    for them, and nc users type them on purpose.
    """
    if text.startswith("/"):
        return "/" + text
    return text
