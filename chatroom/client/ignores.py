"""Whom this user ignores, as the server says it: the user list marks them. No Textual.

The server does the ignoring (``/ignore NAME``: an ignored user's lines never reach the
client); the client only shows it, and it decides from the server's replies, not from what
was typed. Only the server knows whether an ``/ignore`` took: it finds the user by a name
compared without case or look-alikes, refuses some (nobody by that name, oneself, too many
ignored), and forgets an ignore when either user leaves. Its replies, each a ``notice``
``info`` (chatroom/server/selfservice.py):

- ``you ignore NAME (/unignore NAME to undo)``: NAME is ignored now;
- ``you no longer ignore NAME``: it is not any more;
- ``you ignore: A, B`` or ``you ignore nobody`` (``/ignore`` alone): the whole list.

A name in a reply is the user's name when the server sent it, and the client has applied
every event before it (they come in order on one connection), so the roster turns it into
the user's id at once; the mark then follows the id across renames. It goes when that user
leaves (the server forgot the ignore) and when the connection ends (a new connection
ignores nobody).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from chatroom.protocol import Notice, NoticeCode


@dataclass(frozen=True, slots=True)
class Ignored:
    name: str


@dataclass(frozen=True, slots=True)
class Unignored:
    name: str


@dataclass(frozen=True, slots=True)
class IgnoreList:
    """Everyone this user ignores, by name (names hold no spaces, so ", " parts them)."""

    names: tuple[str, ...]


IgnoreChange = Ignored | Unignored | IgnoreList

_IGNORED = re.compile(r"you ignore (\S+) \(/unignore (\S+) to undo\)")
_UNIGNORED = re.compile(r"you no longer ignore (\S+)")
_LISTED = "you ignore: "


def ignore_change(event: Notice) -> IgnoreChange | None:
    """What a notice says about whom this user ignores, if it is one of the server's
    replies to ``/ignore`` or ``/unignore`` (None for any other notice)."""
    if event.code is not NoticeCode.INFO:
        return None
    text = event.text
    if (found := _IGNORED.fullmatch(text)) and found[1] == found[2]:
        return Ignored(found[1])
    if found := _UNIGNORED.fullmatch(text):
        return Unignored(found[1])
    if text == "you ignore nobody":
        return IgnoreList(())
    if text.startswith(_LISTED) and " " not in text.removeprefix(_LISTED).replace(", ", ""):
        return IgnoreList(tuple(text.removeprefix(_LISTED).split(", ")))
    return None
