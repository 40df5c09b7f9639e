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
- Resume: a reconnect to a room whose epoch is known asks for what was missed by seq,
  ``/history since SEQ EPOCH`` (:meth:`Timeline.resume_request`, SEQ the last broadcast
  the log shows). The welcome's replay is then left out whole (:meth:`Timeline.skip`),
  and the answer — a ``history`` notice, then its messages — is shown instead, under its
  own "earlier messages" divider (if it holds any); a ``more`` answer is asked again from
  its last seq. A live event whose seq the log already has (in the same epoch) is left
  out too. Another epoch is answered with a ``reset`` notice, then the newest messages.
- A server that sends no epoch cannot be asked by seq: its replay on a reconnect is
  de-duplicated instead. A chat message is known by its ``seq``, ``ts``, sender id and
  text together (:meth:`Timeline.already_shown`).
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
from chatroom.protocol import commands as c


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
    def __init__(self, remember: int = REMEMBERED, *, epoch: str | None = None) -> None:
        self._in_history = False
        self._last_seq: int | None = None  # of the last live broadcast on this connection
        self._epoch = epoch  # the room's, as the last welcome, greeting or reset said
        self._shown: set[ChatKey] = set()  # chat messages the log holds
        self._order: deque[ChatKey] = deque()  # the same, oldest first, to forget the oldest
        self._remember = remember
        self._ignoring = False
        self._jump_expected = False  # it ignored someone since the last live event
        # Resume: the last broadcast seq the log shows (in ``_epoch``), whether a reconnect
        # is resuming (the replay is left out until the answer comes), how many of the
        # answer's messages are still to come, and where to ask again (``more``).
        self._seen: int | None = None
        self._resuming = False
        self._answer_left = 0
        self._ask_again: int | None = None

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

    def skip(self, event: Event | UnknownEvent) -> bool:
        """Whether to leave ``event`` out: a replay the log holds (a server without epochs),
        while resuming the welcome's replay, or a live event whose seq the log has."""
        if not isinstance(event, Message | Action | Join | Leave | Rename):
            return False
        if isinstance(event, Message | Action) and event.history:
            if self._answer_left > 0:
                self._answer_left -= 1
                return False
            return self._resuming or self.already_shown(event)
        return self._seen is not None and event.seq <= self._seen and self._epoch is not None

    def resume_request(self) -> str | None:
        """The line that asks for what was missed, once after a reconnect's welcome (or
        again after a ``more`` answer was shown): None when there is nothing to ask."""
        if self._ask_again is not None and self._answer_left == 0:
            seq, self._ask_again = self._ask_again, None
            return c.format_line(c.HistorySince(seq, self._epoch))
        if not self._resuming or self._seen is None or self._epoch is None:
            return None
        return c.format_line(c.HistorySince(self._seen, self._epoch))

    def _answered(self, notice: Notice) -> None:
        """The answer to /history since begins: its messages are shown from here."""
        self._resuming = False
        self._answer_left = notice.count or 0
        if notice.more and notice.seq is not None:
            self._ask_again = notice.seq

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
                return self.entered(event.epoch)
            case Notice(code=NoticeCode.HISTORY):
                self._answered(event)
                return []
            case Notice(code=NoticeCode.RESET):
                self._last_seq = None  # the next live event starts the count again
                self._seen = None
                return [*self._end_history(), *self._new_epoch(event.epoch, always=True)]
            case Who():
                return self._end_history()
            case Message() | Action() | Join() | Leave() | Rename():
                return self._place(event)
            case _:
                return []

    def entered(self, epoch: str | None) -> list[Mark]:
        """The room greeted this connection (a welcome, or a joined room's greeting, whose
        seq counts in the welcome's ``epoch``): what happened while away is not "missed";
        a reconnect in the same epoch asks for it (:meth:`resume_request`)."""
        self._in_history = False
        self._last_seq = None
        marks = self._new_epoch(epoch)
        self._resuming = not marks and self._seen is not None and epoch is not None
        self._answer_left, self._ask_again = 0, None
        return marks

    def _place(self, event: Message | Action | Join | Leave | Rename) -> list[Mark]:
        self._seen = event.seq if self._seen is None else max(self._seen, event.seq)
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
        if changed:
            self._seen = None  # seqs of another epoch: nothing to resume from
        if epoch is not None:
            self._epoch = epoch
        return [RESET] if changed else []

    def _end_history(self) -> list[Mark]:
        if not self._in_history:
            return []
        self._in_history = False
        return [NOW]
