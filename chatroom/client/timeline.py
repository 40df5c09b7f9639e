"""Where the log stands in the room's order: replayed history, and events that were missed.

No Textual here. :class:`Timeline` looks at every server event and says which marks the log
shows before it: a divider around the messages replayed to a newcomer, and a warning when
the sequence numbers of live events jump.

- After ``welcome`` the server replays recent chat, each event marked ``history``. The
  first one opens an "earlier messages" section; the first live event closes it with
  "now". So does the ``who`` reply to the ``/who`` sent on connecting, which arrives right
  after the replay: without it, a quiet room would leave the section open.
- Every broadcast (message, action, join, leave, rename) has a ``seq`` one above the one
  before it, so a live event whose ``seq`` is not the next one means events were missed.
  Replayed events keep their old numbers and are not counted.
- Each ``welcome`` starts over: what happened while the link was down is not reported as
  missed (the log already said the connection was lost).
"""

from __future__ import annotations

from dataclasses import dataclass

from chatroom.protocol import (
    Action,
    Event,
    Join,
    Leave,
    Message,
    Rename,
    UnknownEvent,
    Welcome,
    Who,
)


@dataclass(frozen=True, slots=True)
class Divider:
    """A line across the log: "earlier messages" before the replay, "now" after it."""

    text: str


@dataclass(frozen=True, slots=True)
class Missed:
    """``count`` broadcasts never arrived between the last live event and this one."""

    count: int


Mark = Divider | Missed

EARLIER = Divider("earlier messages")
NOW = Divider("now")


class Timeline:
    def __init__(self) -> None:
        self._in_history = False
        self._last_seq: int | None = None  # of the last live broadcast on this connection

    def marks_before(self, event: Event | UnknownEvent) -> list[Mark]:
        """What the log shows before ``event`` (in order), given every event as it arrives."""
        match event:
            case Welcome():
                self._in_history = False
                self._last_seq = None
                return []
            case Who():
                return self._end_history()
            case Message() | Action() | Join() | Leave() | Rename():
                return self._place(event)
            case _:
                return []

    def _place(self, event: Message | Action | Join | Leave | Rename) -> list[Mark]:
        if isinstance(event, Message | Action) and event.history:
            if self._in_history:
                return []
            self._in_history = True
            return [EARLIER]
        marks = self._end_history()
        if self._last_seq is not None and event.seq != self._last_seq + 1:
            marks.append(Missed(event.seq - self._last_seq - 1))
        self._last_seq = event.seq
        return marks

    def _end_history(self) -> list[Mark]:
        if not self._in_history:
            return []
        self._in_history = False
        return [NOW]
