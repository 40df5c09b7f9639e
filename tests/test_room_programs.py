"""History on demand, requests with ids, the pacing notice and /bot, in the I/O-free room."""

from __future__ import annotations

import json
import math

from chatroom import protocol as p
from chatroom.server.core import inputs as i
from chatroom.server.core.actions import Persist, Restored
from chatroom.server.core.moderation_state import Mute
from chatroom.server.core.room import Room
from tests.room_helpers import Sim, only_to, room_rules


def room(n: int, **rules: object) -> Sim:
    sim = Sim(Room(room_rules(**rules), epoch="e1"))
    for conn in range(1, n + 1):
        sim.connect(conn)
        sim.send(conn, "/format json")
    sim.inbox.clear()
    return sim


def texts(events: list[p.Event]) -> list[str]:
    return [e.text for e in events if isinstance(e, p.Message | p.Action)]


def say(sim: Sim, conn: int, count: int, prefix: str = "m") -> None:
    for n in range(count):
        sim.send(conn, f"{prefix}{n}")


# --- history ----------------------------------------------------------------------------


def test_history_n_answers_the_sender_alone_from_what_is_kept_beyond_the_replay() -> None:
    sim = room(2, history=3, keep=50)
    say(sim, 1, 30)
    sim.inbox.clear()
    got = sim.send(2, "/history 10")
    events = only_to(got, 2)
    head = events[0]
    assert isinstance(head, p.Notice) and head.code is p.NoticeCode.HISTORY
    assert head.count == 10 and not head.more
    assert texts(events) == [f"m{n}" for n in range(20, 30)]
    assert all(e.history for e in events[1:])
    assert head.seq == events[-1].seq
    assert sim.take(1) == []


def test_history_is_capped_and_a_newcomer_is_replayed_only_the_tail() -> None:
    sim = room(1, history=3, keep=1000, history_max=100)
    say(sim, 1, 150)
    assert len(sim.room.state.rooms.main.history.events) == 150
    events = only_to(sim.send(1, "/history 1000"), 1)
    assert events[0].count == 100 and texts(events)[0] == "m50"
    sim.connect(2)
    assert texts(sim.take(2)) == ["m147", "m148", "m149"]


def test_history_since_gives_what_came_after_and_pages_with_more() -> None:
    sim = room(2, keep=100, history_max=4)
    say(sim, 1, 3, "a")
    mark = sim.room.seq
    say(sim, 1, 6, "b")
    first = only_to(sim.send(2, f"/history since {mark} e1"), 2)
    assert texts(first) == ["b0", "b1", "b2", "b3"] and first[0].more
    second = only_to(sim.send(2, f"/history since {first[0].seq} e1"), 2)
    assert texts(second) == ["b4", "b5"] and not second[0].more
    none = only_to(sim.send(2, f"/history since {sim.room.seq}"), 2)
    assert none[0].count == 0 and texts(none) == []


def test_history_since_another_epoch_is_a_reset_with_the_replay() -> None:
    sim = room(1, history=2)
    say(sim, 1, 4)
    events = only_to(sim.send(1, "/history since 3 olderepoch"), 1)
    reset = events[0]
    assert isinstance(reset, p.Notice) and reset.code is p.NoticeCode.RESET
    assert reset.epoch == "e1" and texts(events) == ["m2", "m3"]
    ahead = only_to(sim.send(1, f"/history since {sim.room.seq + 5} e1"), 1)
    assert ahead[0].code is p.NoticeCode.RESET  # a seq this server never reached


def test_history_since_older_than_what_is_kept_says_so_first() -> None:
    sim = room(1, history=1, keep=5)
    say(sim, 1, 10)
    events = only_to(sim.send(1, "/history since 1 e1"), 1)
    gap = events[0]
    assert isinstance(gap, p.Notice) and gap.code is p.NoticeCode.HISTORY_GAP
    assert gap.seq == sim.room.state.rooms.main.history.events[0].seq - 1
    assert texts(events) == [f"m{n}" for n in range(5, 10)]
    # Within what is kept: no gap notice.
    kept = only_to(sim.send(1, f"/history since {gap.seq} e1"), 1)
    assert kept[0].code is p.NoticeCode.HISTORY and len(texts(kept)) == 5


def test_a_new_room_that_kept_everything_has_no_gap() -> None:
    sim = room(2, keep=100)
    sim.send(1, "only")
    events = only_to(sim.send(2, "/history since 0 e1"), 2)
    assert [e.code for e in events if isinstance(e, p.Notice)] == [p.NoticeCode.HISTORY]


def test_bad_history_lines_are_usage_errors() -> None:
    sim = room(1)
    for line in (
        "/history -1",
        "/history x",
        "/history since",
        "/history since -1",
        "/history a b",
    ):
        (error,) = only_to(sim.send(1, line), 1)
        assert isinstance(error, p.Error) and error.code is p.ErrorCode.BAD_USAGE, line


def test_history_in_text_mode_reads_as_history_lines() -> None:
    sim = Sim(Room(room_rules(), epoch="e1"))
    sim.connect(1)
    sim.send(1, "hello")
    sim.inbox.clear()
    out = sim.send(1, "/history 5")
    assert out[0].payload.decode().endswith("] <127.0.0.1:5001> hello\n")


# --- requests with ids ------------------------------------------------------------------


def request(rid: object, text: str) -> str:
    return json.dumps({"id": rid, "text": text})


def test_a_chat_request_is_broadcast_then_acked_with_its_seq() -> None:
    sim = room(2)
    sim.send(1, request("r1", "hello"))
    mine = sim.take(1)
    assert [type(e) for e in mine] == [p.Message, p.Ack]
    assert mine[1] == p.Ack(id="r1", seq=mine[0].seq)
    assert texts(sim.take(2)) == ["hello"]


def test_a_retried_id_is_acked_with_the_original_seq_not_said_again() -> None:
    sim = room(2)
    sim.send(1, "/nick robo")
    sim.send(1, request(7, "/me waves"))
    seq = sim.take(1)[-2].seq
    sim.disconnect(1)
    sim.connect(3)
    sim.send(3, "/format json")
    sim.send(3, "/nick Robo")  # the same name (as names compare) on a new connection
    sim.inbox.clear()
    assert only_to(sim.send(3, request(7, "/me waves")), 3) == [p.Ack(id=7, seq=seq)]
    assert sim.take(2) == []
    # Another name's same id is its own request.
    sim.send(2, request(7, "mine"))
    assert texts(sim.take(3)) == ["mine"]


def test_ids_are_forgotten_after_the_ttl() -> None:
    sim = room(1, request_ttl=60.0)
    sim.send(1, request("x", "one"))
    sim.now += 61
    sim.inbox.clear()
    sim.send(1, request("x", "one"))
    assert texts(sim.take(1)) == ["one"]


def test_the_id_table_is_bounded() -> None:
    sim = room(1, request_table=3)
    for n in range(5):
        sim.send(1, request(n, f"l{n}"))
    assert len(sim.room.ctx.requests) == 3
    sim.inbox.clear()
    sim.send(1, request(0, "l0"))  # forgotten: said again
    assert texts(sim.take(1)) == ["l0"]


def test_a_command_request_is_acked_after_its_replies_and_errors_carry_the_id() -> None:
    sim = room(1)
    events = only_to(sim.send(1, request("w", "/who")), 1)
    assert [type(e) for e in events] == [p.Who, p.Ack] and events[1].seq is None
    events = only_to(sim.send(1, request("u", "/nosuch")), 1)
    assert events[0].code is p.ErrorCode.UNKNOWN_COMMAND and events[0].id == "u"
    assert events[1] == p.Ack(id="u")


def test_bad_requests_are_one_error_each() -> None:
    sim = room(1)
    for line, rid in (
        ("{not json", None),
        ('{"id": "a"}', "a"),
        ('{"text": "hi"}', None),
        ('{"id": true, "text": "hi"}', None),
        ('{"id": "' + "x" * 65 + '", "text": "hi"}', None),
        ('{"id": "n", "text": "two\\nlines"}', "n"),
        ("[1, 2]", None),
    ):
        line = line if line.startswith("{") else "{" + line
        (error,) = only_to(sim.send(1, line), 1)
        assert isinstance(error, p.Error) and error.code is p.ErrorCode.BAD_REQUEST, line
        assert error.id == rid, line
    assert sim.room.state.rooms.main.history.events == ()


def test_in_text_mode_a_brace_is_still_chat() -> None:
    sim = Sim(Room(room_rules()))
    sim.connect(1)
    sim.inbox.clear()
    sim.send(1, '{"id": 1, "text": "x"}')
    assert texts(sim.take(1)) == ['{"id": 1, "text": "x"}']


def test_a_muted_request_is_an_error_with_its_id_and_no_ack() -> None:
    sim = room(2)
    sim.send(1, "/nick bob")
    sim.room.moderation.mute(sim.id(1), "bob", Mute(name="bob", address=None, until=math.inf))
    sim.inbox.clear()
    events = only_to(sim.send(1, request("m", "hi")), 1)
    assert [type(e) for e in events] == [p.Error] and events[0].id == "m"


# --- pacing and /bot --------------------------------------------------------------------


def test_pacing_tells_a_json_connection_and_not_a_text_one() -> None:
    sim = room(1)
    (notice,) = only_to(sim.apply(sim.room.handle(i.Paced(1, 0.1234567), sim.now)), 1)
    assert notice.code is p.NoticeCode.RATE_LIMITED and notice.retry_after == 0.123
    sim.connect(2)
    sim.inbox.clear()
    assert sim.apply(sim.room.handle(i.Paced(2, 0.5), sim.now)) == []


def test_a_bot_is_marked_in_who_and_greeted_without_a_replay() -> None:
    sim = room(1, history=5)
    say(sim, 1, 3)
    sim.connect(2)
    sim.send(2, "/bot")
    sim.inbox.clear()
    sim.send(2, "/format json")
    greeted = sim.take(2)
    assert isinstance(greeted[1], p.Welcome) and texts(greeted) == []
    who = only_to(sim.send(1, "/who"), 1)[0]
    assert [u.bot for u in who.users] == [False, True]
    assert '"bot":true' in p.encode_json(who)
    assert len(texts(only_to(sim.send(2, "/history"), 2))) == 3  # it asks


# --- a clean stop and a restart ---------------------------------------------------------


def test_a_clean_stop_keeps_epoch_seq_and_ids_and_a_restored_room_goes_on() -> None:
    rules = room_rules()
    sim = Sim(Room(rules, epoch="e1", restored=Restored()))
    sim.connect(1)
    sim.send(1, "/format json")
    sim.send(1, request("r", "kept"))
    seq = sim.room.seq
    stop = [a for a in sim.room.shutdown(sim.now) if isinstance(a, Persist)]
    (record,) = [a for a in stop if a.kind == "epoch"]
    assert record.data == {"epoch": "e1", "seq": seq}
    (ids,) = [a for a in stop if a.kind == "requests"]  # as every flush hands them
    history = sim.room.state.rooms.main.history.events
    restored = Restored(
        history=history,
        epoch="e1",
        seq=record.data["seq"],
        requests=tuple(tuple(e) for e in ids.data["entries"]),
    )
    again = Sim(Room(rules, epoch="e1", restored=restored))
    again.connect(1)
    again.send(1, "/format json")
    again.inbox.clear()
    assert only_to(again.send(1, request("r", "kept")), 1) == [p.Ack(id="r", seq=history[0].seq)]
    assert again.room.seq == seq + 1  # its join: seqs go on, none reused
    events = only_to(again.send(1, f"/history since {seq} e1"), 1)
    assert events[0].code is p.NoticeCode.HISTORY and events[0].count == 0
