"""The protocol's vocabularies: output formats, leave reasons, notice and error codes, and
the facts a notice tells a program. Re-exported by :mod:`chatroom.protocol.events` and the
package (``p.NoticeCode``...); docs/PROTOCOL.md lists them for people.

A code this version does not know makes a notice or an error an
:class:`~chatroom.protocol.events.UnknownEvent` (ignored) when decoding, so each vocabulary
may grow.
"""

from __future__ import annotations

from enum import StrEnum


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
    PART = "part"  # it left this room for another, or parted it (/join, /part)


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
    # The answer to /history: ``count`` messages follow (each marked ``history``), ``seq``
    # the last seq they cover; ``more`` when /history since must be asked again from the
    # last of them (docs/PROTOCOL.md, "History on demand").
    HISTORY = "history"
    # /history since SEQ: messages after SEQ are no longer kept (``seq``: the last seq
    # before the first one kept); what is kept follows.
    HISTORY_GAP = "history_gap"
    # Flood control paces this connection's lines: the next is read in ``retry_after``
    # seconds (once per pacing episode, to JSON connections alone).
    RATE_LIMITED = "rate_limited"


class Fact(StrEnum):
    """What a notice tells a program, beside its words (a notice's ``fact`` field, with the
    fields it names): a client reads these, never the ``text``, which is for people and may
    change. A fact this version does not know is left out when decoding."""

    IGNORED = "ignored"  # the user ``id`` (called ``name``) is ignored now
    UNIGNORED = "unignored"  # the user ``id`` (called ``name``) is not ignored any more
    IGNORE_LIST = "ignore_list"  # ``ids``: everyone this connection ignores
    OPERATOR = "operator"  # this connection is an operator (it became one, or already was)
    AWAY = "away"  # this connection is marked away, ``text`` says with what
    BACK = "back"  # this connection is no longer away
    IDLE = "idle"  # an idle warning: ``seconds`` left before the kick
    # The server changed this connection's own ``id`` or ``name`` by itself (a shared room
    # after an outage: the name was taken meanwhile, or another node's user has the id).
    IDENTITY = "identity"
    # This connection owns the registered name ``name`` now (/register, /login), or no
    # longer has it registered (/unregister, or an operator dropped it).
    REGISTERED = "registered"
    UNREGISTERED = "unregistered"
    BOT = "bot"  # this connection is marked as a program (/bot)


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
    REGISTERED = "registered"  # a name (or one like it) registered to someone: /login NAME
    BAD_REQUEST = "bad_request"  # a JSON request line that is not {"id": ID, "text": LINE}
    BAD_ROOM = "bad_room"  # not a room name (docs/PROTOCOL.md, "Rooms")
    ROOM_LIMIT = "room_limit"  # in too many rooms, or the server has too many
    NOT_IN_ROOM = "not_in_room"  # /part of a room one is not in, or of one's last room
