"""Moderation as the client sees it: operators, the topic, and what can be done to a user.

No Textual here.

- The server's answer to a good ``/oper`` (or to one from an operator) is a ``notice`` with
  the fact ``operator``; :func:`grants_operator` reads it so the client asks for ``who``
  again, and the roster marks us once our own ``who`` entry has ``op``.
- The topic arrives in the ``welcome`` and as ``topic`` events; the header shows it cut to
  :data:`TOPIC_WIDTH` characters with an ellipsis (:func:`truncate`).
- The user list's context action (F4) offers :func:`actions_for` a user: a private message
  for everyone; kick, mute for 10 minutes and ban for operators. :func:`command_for` is the
  line each one sends, formatted from the shared command (chatroom/protocol/commands.py).
"""

from __future__ import annotations

from enum import StrEnum

from chatroom.client.roster import Roster, address_of
from chatroom.protocol import Fact, Notice, Topic
from chatroom.protocol import commands as c

TOPIC_WIDTH = 60  # characters of the topic the header shows before "…"
MUTE_SECONDS = 600.0  # the context action's mute: 10 minutes
MUTE_FOR = c.format_duration(MUTE_SECONDS)  # as the dialog says it: "10m"


def truncate(text: str, width: int = TOPIC_WIDTH) -> str:
    """``text`` on one line, cut to ``width`` characters (the last one "…" if it was cut)."""
    line = " ".join(text.split())
    if len(line) <= width:
        return line
    return line[: max(0, width - 1)].rstrip() + "…"


def grants_operator(event: Notice) -> bool:
    """Whether ``event`` is the server saying this connection is an operator now."""
    return event.fact is Fact.OPERATOR


def topic_line(event: Topic) -> str:
    """The log line for a ``topic`` event."""
    if not event.text:
        return "no topic is set"
    if event.by:
        return f"{event.by} set the topic: {event.text}"
    return f"topic: {event.text}"


class UserAction(StrEnum):
    """What the context action on a user in the list can do (the dialog's result)."""

    MESSAGE = "message"
    KICK = "kick"
    MUTE = "mute"
    BAN = "ban"


LABELS = {
    UserAction.MESSAGE: "Private message (/msg)",
    UserAction.KICK: "Kick",
    UserAction.MUTE: f"Mute {MUTE_FOR}",
    UserAction.BAN: "Ban",
}


def actions_for(*, operator: bool, own: bool = False) -> list[UserAction]:
    """What can be done to a user: operators may kick, mute and ban (not themselves)."""
    actions = [] if own else [UserAction.MESSAGE]
    if operator and not own:
        actions += [UserAction.KICK, UserAction.MUTE, UserAction.BAN]
    return actions


def command_for(action: UserAction, name: str) -> str | None:
    """The line an action sends for the user ``name`` (None: it sends nothing by itself,
    a private message is started in the input line)."""
    match action:
        case UserAction.KICK:
            return c.format_line(c.Kick(name))
        case UserAction.MUTE:
            return c.format_line(c.Mute(name, MUTE_SECONDS))
        case UserAction.BAN:
            return c.format_line(c.Ban(name))
    return None


def ban_question(roster: Roster, user_id: str, name: str) -> str:
    """What the Ban dialog asks: a ban is on the address, so it says who else is there
    (as far as the ids tell: a room that hides addresses gives opaque ids)."""
    shared = roster.sharing_address(user_id)
    if shared is None:
        return f"The ban is on {name}'s address (this room does not show addresses)."
    if len(shared) > 1:
        who = f"{len(shared)} users there now: " + ", ".join(shared)
    else:
        who = f"only {name} there now"
    address = address_of(user_id)
    return f"The ban is on {name}'s address, {address}: {who}. All are sent away and refused."
