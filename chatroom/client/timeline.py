"""Where the log stands in the room's order: replayed history, and events that were missed.

No Textual here. :class:`Timeline` looks at every server event and says which marks the log
shows before it: a divider around the messages replayed to a newcomer, and a warning when
the sequence numbers of live events jump.

- After ``welcome`` the server replays recent chat, each event marked ``history``. The
  first one opens an "earlier messages" section; the first live event closes it with
  "now". So does the ``who`` reply to the ``/who`` sent on connecting, which arrives right
  after the replay: without it, a quiet room would leave the section open.
- Every broadcast (message, action, join, leave, rename) has a ``seq`` one above the one
  before it, so a live event whose ``seq`` is above the next one means events were missed.
  Replayed events keep their old numbers and are not counted.
- A ``seq`` counts within the room's *epoch* (sent in ``welcome``). When the room's history
  starts over — a ``reset`` notice with the new epoch, a ``welcome`` with an epoch other
  than the last one, or a ``seq`` that goes backwards (a server that sends no epoch) — the
  log says "the room's history was reset", never a negative count of missed events.
- Each ``welcome`` starts over: what happened while the link was down is not reported as
  missed (the log already said the connection was lost).
- While this user ignores anyone (:attr:`Timeline.ignoring`), and for the first live event
  after it stopped, a jump is not reported: the
  server leaves the ignored users' lines out, seq and all, and a client cannot tell those
  from events lost, so it says nothing rather than "missed" for every ignored line (as IRC
  clients drop ignored lines without a trace).
- A reconnect is welcomed with the same replay again. A replayed message the log already
  shows is left out (:meth:`Timeline.already_shown`): a chat message is known by its
  ``seq``, ``ts``, sender id and text together, which stays right across a server restart
  that starts numbering again. Only what the log does not hold is replayed (messages sent
  while the link was down), under its own "earlier messages" divider; if nothing is new,
  there is no divider at all.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from chatroom.protocol import (
    Action,
    Event,
    Join,
    Leave,
    Message,
    Notice,
    NoticeCode,
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


@dataclass(frozen=True, slots=True)
class Reset:
    """The room's history started over: seq counts again, from wherever the new one is."""

    text: str = "the room's history was reset"


Mark = Divider | Missed | Reset

EARLIER = Divider("earlier messages")
NOW = Divider("now")
RESET = Reset()


ChatKey = tuple[int, float, str, str]  # seq, ts, sender id, text

REMEMBERED = 5000  # chat messages remembered for spotting replays (the default scrollback)


def chat_key(event: Message | Action) -> ChatKey:
    return (event.seq, event.ts, event.id, event.text)


class Timeline:
    def __init__(self, remember: int = REMEMBERED) -> None:
        self._in_history = False
        self._last_seq: int | None = None  # of the last live broadcast on this connection
        self._epoch: str | None = None  # the room's, as the last welcome or reset said
        self._shown: set[ChatKey] = set()  # chat messages the log holds
        self._order: deque[ChatKey] = deque()  # the same, oldest first, to forget the oldest
        self._remember = remember
        self._ignoring = False
        self._jump_expected = False  # it ignored someone since the last live event

    @property
    def ignoring(self) -> bool:
        """Whether this user ignores someone now (the chat screen says, from its roster)."""
        return self._ignoring

    @ignoring.setter
    def ignoring(self, value: bool) -> None:
        self._ignoring = value
        self._jump_expected = self._jump_expected or value

    def already_shown(self, event: Event | UnknownEvent) -> bool:
        """Whether ``event`` is a replayed message the log shows already (leave it out)."""
        return (
            isinstance(event, Message | Action) and event.history and chat_key(event) in self._shown
        )

    def _remember_chat(self, event: Message | Action) -> None:
        key = chat_key(event)
        if key in self._shown:
            return
        self._shown.add(key)
        self._order.append(key)
        if len(self._order) > self._remember:
            self._shown.discard(self._order.popleft())

    def marks_before(self, event: Event | UnknownEvent) -> list[Mark]:
        """What the log shows before ``event`` (in order), given every event as it arrives."""
        match event:
            case Welcome():
                self._in_history = False
                self._last_seq = None
                return self._new_epoch(event.epoch)
            case Notice(code=NoticeCode.RESET):
                self._last_seq = None  # the next live event starts the count again
                return [*self._end_history(), *self._new_epoch(event.epoch, always=True)]
            case Who():
                return self._end_history()
            case Message() | Action() | Join() | Leave() | Rename():
                return self._place(event)
            case _:
                return []

    def _place(self, event: Message | Action | Join | Leave | Rename) -> list[Mark]:
        if isinstance(event, Message | Action):
            self._remember_chat(event)
        if isinstance(event, Message | Action) and event.history:
            if self._in_history:
                return []
            self._in_history = True
            return [EARLIER]
        marks = self._end_history()
        if self._last_seq is not None and event.seq > self._last_seq + 1:
            if not self._jump_expected:
                marks.append(Missed(event.seq - self._last_seq - 1))
        elif self._last_seq is not None and event.seq <= self._last_seq:
            marks.append(RESET)  # a server that sends no epoch, or its reset notice was lost
        self._last_seq = event.seq
        self._jump_expected = self._ignoring
        return marks

    def _new_epoch(self, epoch: str | None, always: bool = False) -> list[Mark]:
        """The room's epoch is ``epoch`` now: a reset if it was known and is another one."""
        changed = always or (None not in (self._epoch, epoch) and epoch != self._epoch)
        if epoch is not None:
            self._epoch = epoch
        return [RESET] if changed else []

    def _end_history(self) -> list[Mark]:
        if not self._in_history:
            return []
        self._in_history = False
        return [NOW]
