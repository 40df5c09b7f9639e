"""What a room's history covers across a crash and a shared room's re-sync, and the seq
lease that lets a killed server go on in its epoch: the rules without I/O."""

from __future__ import annotations

from chatroom import protocol as p
from chatroom.server.core import inputs as i
from chatroom.server.core.actions import Persist, Restored
from chatroom.server.core.history import ChatHistory
from chatroom.server.core.room import Room
from chatroom.server.core.sequencer import LocalSequencer
from tests.room_helpers import Sim, only_to, room_rules


def said(seq: int, text: str | None = None) -> p.Message:
    return p.Message(seq=seq, ts=1.0, id="a:1", name="ann", text=text or f"m{seq}")


def asked(sim: Sim, conn: int, line: str) -> tuple[list[p.Notice], list[int]]:
    events = only_to(sim.send(conn, line), conn)
    notices = [e for e in events if isinstance(e, p.Notice)]
    return notices, [e.seq for e in events if isinstance(e, p.Message)]


# --- the seq lease (a --state file's hi/lo) -------------------------------------------------


def leased(lease: int, block: int = 100) -> Sim:
    rules = room_rules(seq_lease=block, max_clients=4)  # 3 x 4 + 16 seqs kept back
    return Sim(Room(rules, epoch="e1", restored=Restored(lease=lease)))


def lease_asks(sim: Sim) -> list[int]:
    return [a.data["lease"] for a in sim.room.handle(i.StateFlushDue(), sim.now)
            if isinstance(a, Persist) and a.kind == "epoch"]  # fmt: skip


def test_no_seq_is_given_past_the_lease_until_the_file_holds_a_longer_one() -> None:
    sim = leased(lease=60)
    sim.connect(1)
    sim.send(1, "/format json")
    highest = 0
    refused = 0
    for n in range(100):  # far more than the lease holds, with nothing granted
        events = only_to(sim.send(1, f"line {n}"), 1)
        highest = max([highest, *(e.seq for e in events if isinstance(e, p.Message))])
        refused += sum(isinstance(e, p.Error) and e.code is p.ErrorCode.UNAVAILABLE for e in events)
        assert sim.room.seq <= 60
    assert refused > 0 and highest + 3 * 4 + LocalSequencer.RESERVE >= 60
    sim.connect(2)  # a newcomer too is turned away, told why
    assert 2 in sim.closed and sim.room.seq <= 60
    sim.disconnect(1)  # a leave is never refused: the lease kept room for it
    assert sim.room.seq <= 60
    # Asked once (a longer lease is outstanding), then taken once the file has it.
    sim = leased(lease=60)
    sim.connect(1)
    asks = []
    for n in range(40):
        actions = sim.room.receive(1, f"line {n}", sim.now)
        asks += [a.data["lease"] for a in actions if isinstance(a, Persist) and a.kind == "epoch"]
        sim.apply(actions)
    asks += lease_asks(sim)
    (ask,) = asks  # asked once: not again while it is outstanding
    assert ask > 60
    sim.apply(sim.room.handle(i.LeaseGranted(ask), sim.now))
    sim.send(1, "/format json")
    events = only_to(sim.send(1, "after the grant"), 1)
    assert [e.text for e in events if isinstance(e, p.Message)] == ["after the grant"]


def test_a_room_without_a_lease_never_refuses() -> None:
    sim = Sim(Room(room_rules(seq_lease=1), epoch="e1", restored=Restored()))
    sim.connect(1)
    sim.send(1, "/format json")
    for n in range(50):
        sim.send(1, f"line {n}")
    assert sim.room.seq > 50 and lease_asks(sim) == []


# --- a crash: the restart goes on above the lease, and tells the hole -----------------------


def test_after_a_crash_history_since_stops_at_the_hole_and_tells_it() -> None:
    kept = tuple(said(seq) for seq in (3, 5, 8))
    restored = Restored(history=kept, epoch="e1", seq=120, lost=True, lease=500)
    sim = Sim(Room(room_rules(max_clients=4), epoch="e1", restored=restored))
    sim.connect(1)
    sim.send(1, "/format json")
    assert sim.room.seq == 121  # its join: above the lease, never a seq given twice
    notices, seqs = asked(sim, 1, "/history since 4 e1")
    assert seqs == [5, 8] and notices[-1].more and notices[-1].seq == 8
    notices, seqs = asked(sim, 1, "/history since 8 e1")
    assert [n.code for n in notices] == [p.NoticeCode.HISTORY_GAP, p.NoticeCode.HISTORY]
    assert notices[0].seq == 120 and "may be missing" in notices[0].text and seqs == []
    sim.send(1, "new")
    notices, seqs = asked(sim, 1, "/history since 30 e1")  # inside the hole: the same gap
    assert notices[0].code is p.NoticeCode.HISTORY_GAP and seqs == [122]
    notices, seqs = asked(sim, 1, "/history since 120 e1")
    assert [n.code for n in notices] == [p.NoticeCode.HISTORY] and seqs == [122]


def test_after_a_clean_stop_there_is_no_hole() -> None:
    kept = tuple(said(seq) for seq in (3, 5, 8))
    restored = Restored(history=kept, epoch="e1", seq=10, lease=500)
    sim = Sim(Room(room_rules(max_clients=4), epoch="e1", restored=restored))
    sim.connect(1)
    sim.send(1, "/format json")
    notices, seqs = asked(sim, 1, "/history since 4 e1")
    assert [n.code for n in notices] == [p.NoticeCode.HISTORY] and seqs == [5, 8]
    assert not notices[0].more


# --- a shared room's re-sync (item 4: no false gap) ----------------------------------------


def test_a_resync_after_a_trim_past_joins_tells_no_gap_for_what_the_stream_holds() -> None:
    history = ChatHistory(100)
    # A new node: the stream was trimmed to seq 40 on; its first message is seq 50 (joins
    # and leaves before it). Nothing after 39 is missing.
    history.resync([said(50), said(51)], kept_from=39, applied=0, same=False)
    assert history.gap(39, 51) is None and history.gap(45, 51) is None
    assert history.gap(20, 51) == 39


def test_a_node_that_kept_up_keeps_its_own_older_messages_after_a_resync() -> None:
    history = ChatHistory(100)
    history.restore([said(s) for s in (2, 4, 6)], known=0)
    for seq in (8, 9):
        history.append(said(seq))
    # Redis lost and found: the stream now starts at seq 7, the node had applied up to 9.
    history.resync([said(8), said(9)], kept_from=6, applied=9, same=True)
    assert [e.seq for e in history] == [2, 4, 6, 8, 9]
    assert history.gap(1, 9) is None  # it had them all: no gap


def test_a_node_the_trim_outran_keeps_what_it_had_and_tells_the_hole() -> None:
    history = ChatHistory(100)
    history.restore([said(s) for s in (2, 4)], known=0)
    # It had applied up to seq 5; the stream now starts at seq 20 (6..19 trimmed unread).
    history.resync([said(21), said(22)], kept_from=19, applied=5, same=True)
    assert [e.seq for e in history] == [2, 4, 21, 22]
    assert history.gap(1, 22) is None  # 2 and 4 are here
    events, more = history.after(1, 50)
    assert [e.seq for e in events] == [2, 4] and more  # stops at the hole
    assert history.gap(4, 22) == 19 and history.gap(12, 22) == 19
    assert history.gap(19, 22) is None


def test_after_a_crash_every_room_the_file_keeps_goes_on_above_the_lease() -> None:
    dev = p.Message(seq=4, ts=1.0, id="a:1", name="ann", text="in dev", room="dev")
    restored = Restored(
        history=(said(3),),
        histories={"dev": (dev,)},
        seqs={"dev": 9},  # a clean stop's: not used after a crash
        epoch="e1",
        seq=120,
        lost=True,
        lease=500,
    )
    room = Room(room_rules(max_clients=4, rooms=("dev",)), epoch="e1", restored=restored)
    channel = room.state.rooms.get("dev")
    assert channel is not None and channel.seq == 120 and room.state.rooms.main.seq == 120
    assert channel.history.gap(4, 120) == 120  # its own hole: after its last kept message
    assert room.state.rooms.main.history.gap(3, 120) == 120
