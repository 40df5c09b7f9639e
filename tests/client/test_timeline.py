"""The timeline: history dividers and missed events, without Textual."""

from __future__ import annotations

import pytest

from chatroom.client.timeline import EARLIER, NOW, RESET, Missed, Timeline
from chatroom.protocol import (
    Action,
    Error,
    ErrorCode,
    FormatChanged,
    Join,
    Leave,
    LeaveReason,
    Message,
    Notice,
    NoticeCode,
    OutputFormat,
    Private,
    Rename,
    UnknownEvent,
    Welcome,
    Who,
    WhoEntry,
    replace,
)

ME = "10.0.0.1:1"
WELCOME = Welcome(id=ME, name=ME, idle_timeout=60, users=1)
WHO = Who(users=(WhoEntry(ME, ME, 0),))


def chat(seq: int, *, history: bool = False) -> Message:
    return Message(seq=seq, ts=0, id="x:1", name="bob", text=f"m{seq}", history=history)


def marks(timeline: Timeline, *events) -> list[list]:
    return [timeline.marks_before(event) for event in events]


def test_the_dividers_read_as_the_log_shows_them():
    assert [EARLIER.text, NOW.text] == ["earlier messages", "now"]


def test_replayed_history_is_framed_and_the_first_live_event_closes_it():
    timeline = Timeline()
    assert marks(timeline, WELCOME, chat(3, history=True), chat(4, history=True), chat(9)) == [
        [],
        [EARLIER],
        [],
        [NOW],
    ]


def test_a_replayed_action_opens_the_history_too():
    timeline = Timeline()
    action = Action(seq=2, ts=0, id="x:1", name="bob", text="waves", history=True)
    assert timeline.marks_before(action) == [EARLIER]


def test_the_who_reply_after_the_replay_closes_the_history():
    timeline = Timeline()
    assert marks(timeline, WELCOME, chat(3, history=True), WHO, chat(10)) == [
        [],
        [EARLIER],
        [NOW],
        [],
    ]


def test_a_who_reply_outside_history_shows_nothing():
    timeline = Timeline()
    assert marks(timeline, WELCOME, WHO, chat(1), WHO) == [[], [], [], []]


def test_consecutive_live_events_show_nothing_whatever_their_kind():
    timeline = Timeline()
    events = [
        chat(5),
        Action(seq=6, ts=0, id="x:1", name="bob", text="waves"),
        Join(seq=7, ts=0, id="y:2", name="amy"),
        Rename(seq=8, ts=0, id="y:2", old="amy", new="bea"),
        Leave(seq=9, ts=0, id="y:2", name="bea", reason=LeaveReason.QUIT),
    ]
    assert marks(timeline, *events) == [[]] * 5


def test_a_gap_in_live_seq_reports_how_many_events_were_missed():
    timeline = Timeline()
    assert marks(timeline, chat(1), Join(seq=5, ts=0, id="y:2", name="amy"), chat(6)) == [
        [],
        [Missed(3)],
        [],
    ]


def test_the_first_live_event_after_history_can_close_it_and_report_a_gap():
    timeline = Timeline()
    events = [chat(10), chat(4, history=True), chat(13)]
    assert marks(timeline, *events) == [[], [EARLIER], [NOW, Missed(2)]]


def test_replayed_events_keep_their_old_numbers_and_are_not_counted():
    timeline = Timeline()
    assert marks(timeline, chat(20), chat(3, history=True), chat(21)) == [[], [EARLIER], [NOW]]


def test_history_after_live_events_opens_a_new_section():
    timeline = Timeline()
    events = [chat(1), chat(1, history=True), chat(2), chat(2, history=True)]
    assert marks(timeline, *events) == [[], [EARLIER], [NOW], [EARLIER]]


def test_a_seq_going_backwards_is_a_reset_never_a_negative_count():
    # A server that sends no epoch (or a reset notice that was lost): the count starts again.
    timeline = Timeline()
    assert marks(timeline, chat(41), chat(1), chat(2), chat(2), chat(4)) == [
        [],
        [RESET],
        [],
        [RESET],
        [Missed(1)],
    ]
    assert RESET.text == "the room's history was reset"


def test_a_reset_notice_starts_the_count_again_in_the_new_epoch():
    timeline = Timeline()
    reset = Notice(NoticeCode.RESET, "started over", epoch="e2")
    welcome = replace(WELCOME, epoch="e1")
    assert marks(timeline, welcome, chat(40), chat(41), reset, chat(1), chat(2)) == [
        [],
        [],
        [],
        [RESET],
        [],
        [],
    ]
    # Reconnected in the epoch the notice gave: nothing reset; in another one: a reset.
    assert marks(timeline, replace(WELCOME, epoch="e2"), chat(3)) == [[], []]
    assert marks(timeline, replace(WELCOME, epoch="e3"), chat(1)) == [[RESET], []]


def test_a_reset_notice_closes_the_replayed_history():
    timeline = Timeline()
    reset = Notice(NoticeCode.RESET, "started over", epoch="e2")
    assert marks(timeline, chat(4, history=True), reset, chat(1)) == [[EARLIER], [NOW, RESET], []]


def test_welcomes_without_an_epoch_reset_nothing():
    timeline = Timeline()
    assert marks(timeline, WELCOME, chat(5), replace(WELCOME, epoch="e1"), WELCOME) == [
        [],
        [],
        [],
        [],
    ]


def test_a_new_welcome_starts_over():
    timeline = Timeline()
    assert marks(timeline, chat(1), chat(2, history=True)) == [[], [EARLIER]]
    # Reconnected: no "now" for the old section, no gap counted across the outage.
    assert marks(timeline, WELCOME, chat(50), chat(51)) == [[], [], []]
    assert marks(timeline, WELCOME, chat(7, history=True)) == [[], [EARLIER]]


@pytest.mark.parametrize(
    "event",
    [
        Private(ts=0, sender="bob", recipient="ann", text="psst"),
        Notice(NoticeCode.INFO, "hello"),
        Error(ErrorCode.NAME_TAKEN, "taken"),
        FormatChanged(OutputFormat.JSON),
        UnknownEvent("future", {"type": "future"}),
    ],
)
def test_events_outside_the_room_order_show_nothing_and_change_nothing(event):
    timeline = Timeline()
    assert marks(timeline, chat(1), chat(2, history=True), event, chat(2)) == [
        [],
        [EARLIER],
        [],
        [NOW],
    ]


def test_a_reconnect_replays_only_what_the_log_does_not_hold():
    timeline = Timeline()
    first = [WELCOME, chat(1, history=True), chat(2, history=True), WHO, chat(3)]
    assert marks(timeline, *first) == [[], [EARLIER], [], [NOW], []]

    # The same replay after a reconnect, plus one message sent while the link was down.
    again = [chat(1, history=True), chat(2, history=True), chat(3, history=True)]
    missed = chat(4, history=True)
    assert [timeline.already_shown(event) for event in [*again, missed]] == [1, 1, 1, 0]
    assert marks(timeline, WELCOME, missed, WHO) == [[], [EARLIER], [NOW]]
    assert timeline.already_shown(missed)


def test_a_replay_with_nothing_new_adds_no_divider():
    timeline = Timeline()
    marks(timeline, WELCOME, chat(1, history=True), WHO)
    shown = [e for e in [chat(1, history=True)] if not timeline.already_shown(e)]
    assert marks(timeline, WELCOME, *shown, WHO) == [[], []]


def test_a_restarted_server_numbering_again_is_not_mistaken_for_a_replay():
    timeline = Timeline()
    marks(timeline, WELCOME, chat(1))
    reused = Message(seq=1, ts=5, id="y:2", name="cat", text="new", history=True)
    assert not timeline.already_shown(reused)
    assert not timeline.already_shown(chat(1))  # a live message is never left out


def test_only_the_last_remembered_messages_are_recognised():
    timeline = Timeline(remember=2)
    marks(timeline, WELCOME, chat(1), chat(2), chat(3))
    assert not timeline.already_shown(chat(1, history=True))
    assert timeline.already_shown(chat(3, history=True))


def test_while_ignoring_someone_a_jump_is_not_reported_as_missed():
    """The server leaves an ignored user's lines out, seq and all: not 'missed' — also for
    the first event after the ignore ended, since the jump may be a line from before."""
    timeline = Timeline()
    timeline.ignoring = True
    assert marks(timeline, chat(1), chat(3)) == [[], []]
    marks(timeline, chat(4))  # hidden from view: the next one jumps
    timeline.ignoring = False  # /unignore came before the next event
    assert marks(timeline, chat(6)) == [[]]
    assert marks(timeline, chat(8)) == [[Missed(1)]]  # from here on, a jump is a jump
    assert marks(timeline, chat(7)) == [[RESET]]  # backwards is still a reset


def test_a_reconnect_asks_for_what_it_missed_by_seq_and_shows_exactly_that():
    timeline = Timeline()
    welcome = replace(WELCOME, epoch="e1")
    assert marks(timeline, welcome, chat(1, history=True), WHO, chat(2)) == [
        [],
        [EARLIER],
        [NOW],
        [],
    ]
    assert timeline.resume_request() is None  # a first connect asks for nothing
    marks(timeline, welcome)
    assert timeline.resume_request() == "/history since 2 e1"
    # The welcome's replay is left out whole (chat 3 too: the answer brings it, in order).
    replay = [chat(2, history=True), chat(3, history=True)]
    assert [timeline.skip(e) for e in replay] == [True, True]
    answer = Notice(code=NoticeCode.HISTORY, text="2", count=2, seq=4)
    missed = [chat(3, history=True), chat(4, history=True)]
    assert marks(timeline, answer) == [[]]
    assert [timeline.skip(e) for e in missed] == [False, False]
    assert marks(timeline, *missed, WHO) == [[EARLIER], [], [NOW]]
    assert timeline.skip(chat(4)) and not timeline.skip(chat(5))  # by seq, live too


def test_a_reconnect_to_another_epoch_does_not_resume():
    timeline = Timeline()
    marks(timeline, replace(WELCOME, epoch="e1"), chat(1))
    assert marks(timeline, replace(WELCOME, epoch="e2")) == [[RESET]]
    assert timeline.resume_request() is None
    assert not timeline.skip(chat(1))
