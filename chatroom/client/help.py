"""``/help``: the client's own table of commands and keys. No Textual.

Shown in the log as a two-column table whose second column wraps under itself, so it fits
any width. Every command the server understands is here (the server's own ``/help`` lists
``/format``, which the client refuses), and so is every key.
"""

from __future__ import annotations

from chatroom.client.render import LineRenderer, LogLine

COLUMN = 22  # the first column's width, in cells

COMMAND_ROWS = (
    ("/who [TEXT], /names", "the users online (with TEXT: those whose names contain it)"),
    ("/nick NAME", "change your name (or F2)"),
    ("/join ROOM", "join ROOM (#dev), or show it if joined; it gets a line in the panel"),
    ("/part [ROOM]", "leave ROOM (default: the room shown)"),
    ("/rooms, /list", "the rooms on the server, with their users and topics"),
    ("/msg NAME TEXT", "a private message; it opens NAME's conversation"),
    ("/query NAME", "open a private conversation with NAME (plain lines go to NAME)"),
    ("/r TEXT", "answer the last private message"),
    ("/close", "close the private conversation shown"),
    ("/me TEXT", 'an action ("* you TEXT")'),
    ("/away [TEXT]", "mark yourself away (no TEXT: back)"),
    ("/ignore [NAME]", "see nothing more from NAME (alone: whom you ignore)"),
    ("/unignore NAME", "see NAME's lines again"),
    ("/register PASSWORD", "keep your name: only you may use it"),
    ("/login NAME PASSWORD", "take your registered name"),
    ("/unregister", "let go of your registered name"),
    ("/history [N]", "the last N messages, to you alone"),
    ("/history since SEQ", "what you missed since SEQ"),
    ("/bot", "mark this connection as a program"),
    ("/topic", "show the room's topic (also in the header)"),
    ("/motd", "show the message of the day"),
    ("/ping [TEXT]", 'the server answers "pong" to you alone'),
    ("/pass SECRET", "the room's password (asked in a dialog when needed)"),
    ("/oper NAME PASSWORD", "become an operator (marked @NAME)"),
    ("/clear", "empty the conversation shown"),
    ("/quit [REASON]", "leave the room (Ctrl+R joins again)"),
    ("/help", "this table"),
    ("//TEXT", 'send a line that starts with "/" as chat'),
)

OPERATOR_ROWS = (
    ("/kick NAME [REASON]", "send a user away (or F4 on a user)"),
    ("/mute NAME [DURATION]", "refuse a user's chat: 30s 10m 2h 1d (or F4)"),
    ("/unmute NAME", "let them speak again"),
    ("/topic TEXT", "set the room's topic"),
    ("/ban TARGET [DURATION] [REASON]", "NAME, ADDRESS or CIDR: send away and refuse (F4)"),
    ("/unban TARGET", "lift a ban"),
    ("/bans", "the bans and the time they have left"),
)

KEY_ROWS = (
    ("Enter", "send the line"),
    ("Up / Down", "the lines you sent (secrets left out)"),
    ("Tab", "complete a name or /command (after /msg: names)"),
    ("Home/End, Ctrl+A/E", "start / end of the input line"),
    ("Ctrl+W, Ctrl+U, Ctrl+K", "delete a word left, all left, all right"),
    ("Alt+B / Alt+F", "a word left / right"),
    ("PgUp / PgDn", "scroll the log a page"),
    ("Ctrl+Home / Ctrl+End", "the oldest line / the newest (following again)"),
    ("Ctrl+F", "search the log; Enter or Up: older match, Down: newer, Esc: close"),
    ("F6", "jump to the next line that mentions you"),
    ("Alt+Left / Alt+Right", "the conversation before / after (Alt+1..9: by number)"),
    ("Ctrl+P / Ctrl+N", "the conversation before / after (or a click in the panel)"),
    ("Alt+L", "bare view: the log alone, no borders (to select text); again to leave"),
    ("Esc", "back to the input line"),
    ("F2", "rename dialog"),
    ("F3", "show or hide the user list"),
    ("F4", "act on the user highlighted in the list (operators: kick, mute, ban)"),
    ("Shift+Tab", "to the user list; Enter there starts /msg"),
    ("Ctrl+R", "reconnect (when disconnected and waiting)"),
    ("Ctrl+Q", "leave the room and quit"),
)

SECTIONS = (
    ("Commands (any other line is chat, seen by everyone):", COMMAND_ROWS),
    ("Operators:", OPERATOR_ROWS),
    ("Keys:", KEY_ROWS),
)


def help_lines(render: LineRenderer) -> list[LogLine]:
    """The table as log lines: each section's title, then its rows."""
    lines: list[LogLine] = []
    for title, rows in SECTIONS:
        lines.append(render.status(title))
        lines += [render.table_row(first, rest, COLUMN) for first, rest in rows]
    return lines
