"""Whom this user ignores, as the server says it: the user list marks them. No Textual.

The server does the ignoring (``/ignore NAME``: an ignored user's lines never reach the
client); the client only shows it, and it decides from the server's replies, not from what
was typed. Only the server knows whether an ``/ignore`` took: it finds the user by a name
compared without case or look-alikes, refuses some (nobody by that name, oneself, too many
ignored), and forgets an ignore when either user leaves. Its replies are ``notice``\\ s whose
``fact`` says what changed (their words are for people, and never read here):

- ``ignored``, with the user's ``id`` (and ``name``): that user is ignored now;
- ``unignored``, with ``id``: not any more;
- ``ignore_list``, with ``ids`` (``/ignore`` alone): everyone ignored, maybe nobody.

The roster keeps the marks by id, so a mark follows its user across renames. It goes when
that user leaves (the server forgot the ignore) and when the connection ends (a new
connection ignores nobody).
"""

from __future__ import annotations

from dataclasses import dataclass

from chatroom.protocol import Fact, Notice


@dataclass(frozen=True, slots=True)
class Ignored:
    id: str


@dataclass(frozen=True, slots=True)
class Unignored:
    id: str


@dataclass(frozen=True, slots=True)
class IgnoreList:
    """Everyone this user ignores, by id."""

    ids: tuple[str, ...]


IgnoreChange = Ignored | Unignored | IgnoreList


def ignore_change(event: Notice) -> IgnoreChange | None:
    """What a notice says about whom this user ignores (None if it says nothing of it, or
    lacks the field its fact needs)."""
    match event.fact:
        case Fact.IGNORED if event.id is not None:
            return Ignored(event.id)
        case Fact.UNIGNORED if event.id is not None:
            return Unignored(event.id)
        case Fact.IGNORE_LIST if event.ids is not None:
            return IgnoreList(event.ids)
    return None
