"""Rooms, in the room's rules without I/O: /join, /part, /rooms, what is per room and what
is server-wide (docs/PROTOCOL.md, "Rooms"), and a Hypothesis state machine over join,
part, rename and quit across rooms."""

from __future__ import annotations

from collections import defaultdict

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from chatroom import protocol as p
from tests.room_helpers import JSON, LOCAL, Sim, broadcast_events, room_with
from tests.test_room_operators import oper_room


def errors(events: list[p.Event]) -> list[p.ErrorCode]:
    return [e.code for e in events if isinstance(e, p.Error)]


def test_join_moves_a_text_user_the_old_room_sees_it_part_the_new_one_join() -> None:
    sim = room_with(3)
    sim.send(1, "/join #Dev")
    got1 = sim.take(1)
    entered = [e for e in got1 if isinstance(e, p.RoomEntered)]
    assert entered == [p.RoomEntered(room="dev", users=1)]
    assert p.Join(seq=1, ts=sim.now, id=sim.id(1), name=sim.id(1), room="dev") in got1
    left = [e for e in sim.take(2) if isinstance(e, p.Leave)]
    assert left == [
        p.Leave(
            seq=4, ts=sim.now, id=sim.id(1), name=sim.id(1), reason=p.LeaveReason.PART, room="main"
        )
    ]
    assert sim.room.state.member(1).rooms == ["dev"]
    # chat in #dev reaches #dev alone; who lists the room one is in
    sim.send(2, "/join dev")
    sim.take(1), sim.take(2), sim.take(3)
    sim.send(1, "hello dev")
    assert [e.text for e in sim.take(2) if isinstance(e, p.Message)] == ["hello dev"]
    assert sim.take(3) == []
    sim.send(1, "who")
    (who,) = [e for e in sim.take(1) if isinstance(e, p.Who)]
    assert who.room == "dev" and {u.id for u in who.users} == {sim.id(1), sim.id(2)}


def test_each_room_numbers_its_own_events_and_keeps_its_own_history() -> None:
    sim = room_with(2)
    main_seq = sim.room.seq
    sim.send(1, "/join dev")
    sim.send(1, "one")
    sim.send(1, "two")
    dev = sim.room.state.rooms.get("dev")
    assert dev is not None and dev.seq == 3  # join, one, two
    assert [e.text for e in dev.history] == ["one", "two"]
    assert sim.room.seq == main_seq + 1  # main saw only the part
    assert sim.room.state.rooms.main.history.events == ()
    sim.send(2, "/join dev")  # a newcomer to #dev is replayed #dev's history
    replay = [e for e in sim.take(2) if isinstance(e, p.Message)]
    got = [(e.text, e.history, e.room) for e in replay]
    assert got == [("one", True, "dev"), ("two", True, "dev")]


def test_part_takes_a_text_user_back_and_main_cannot_be_parted() -> None:
    sim = room_with(2)
    sim.send(1, "/part")
    assert errors(sim.take(1)) == [p.ErrorCode.NOT_IN_ROOM]
    sim.send(1, "/join dev")
    sim.send(1, "/part")
    assert sim.room.state.member(1).rooms == ["main"]
    assert sim.room.state.rooms.get("dev") is None  # empty and not listed: gone
    assert any(isinstance(e, p.Join) and e.room == "main" for e in sim.take(2))


def test_a_json_client_is_in_several_rooms_and_a_request_names_the_room() -> None:
    sim = room_with(2)
    sim.send(1, "/format json")
    sim.send(1, "/join dev")
    sim.send(1, "/join ops")
    assert sim.room.state.member(1).rooms == ["main", "dev", "ops"]
    sim.take(1), sim.take(2)
    sim.send(1, '{"room": "main", "text": "hi main"}')
    sim.send(1, "plain goes to the current room")
    got = [(e.room, e.text) for e in sim.take(1) if isinstance(e, p.Message)]
    assert got == [("main", "hi main"), ("ops", "plain goes to the current room")]
    assert [e.text for e in sim.take(2) if isinstance(e, p.Message)] == ["hi main"]
    sim.send(1, '{"room": "nowhere", "text": "x"}')
    sim.send(1, '{"room": "bad room!", "text": "x"}')
    assert errors(sim.take(1)) == [p.ErrorCode.NOT_IN_ROOM, p.ErrorCode.BAD_ROOM]
    # /part leaves one room; the parter sees its own leave; the last room stays
    sim.send(1, "/part ops")
    leaves = [e for e in sim.take(1) if isinstance(e, p.Leave)]
    assert [(e.room, e.reason) for e in leaves] == [("ops", p.LeaveReason.PART)]
    sim.send(1, "/part dev")
    sim.send(1, "/part main")
    assert errors(sim.take(1)) == [p.ErrorCode.NOT_IN_ROOM]
    assert sim.room.state.member(1).rooms == ["main"]


def test_bad_room_names_and_limits_get_one_error_and_change_nothing() -> None:
    sim = room_with(1, max_rooms=3, rooms_per_connection=2)
    for bad in ("/join #", "/join a*b", "/join " + "x" * 33, "/join ##dev"):
        sim.send(1, bad)
        assert errors(sim.take(1)) == [p.ErrorCode.BAD_ROOM], bad
    assert sim.room.state.member(1).rooms == ["main"]
    sim.send(1, "/format json")
    sim.send(1, "/join a")
    sim.take(1)
    sim.send(1, "/join b")
    assert errors(sim.take(1)) == [p.ErrorCode.ROOM_LIMIT]  # two rooms per connection
    sim.connect(2)
    sim.send(2, "/join b")
    sim.connect(3)
    sim.send(3, "/join c")
    assert errors(sim.take(3)) == [p.ErrorCode.ROOM_LIMIT]  # main, a, b: the server's three
    assert sorted(c.key for c in sim.room.state.rooms.all()) == ["a", "b", "main"]


def test_rooms_lists_rooms_with_users_and_listed_ones_with_topics() -> None:
    sim = room_with(3, rooms=("lobby",))
    sim.send(2, "/join dev")
    sim.send(1, "/rooms")
    (listing,) = [e for e in sim.take(1) if isinstance(e, p.RoomList)]
    assert listing.rooms == (
        p.RoomEntry(room="dev", users=1),
        p.RoomEntry(room="lobby", users=0),
        p.RoomEntry(room="main", users=2),
    )
    assert listing.total is None


def test_names_and_private_messages_are_server_wide() -> None:
    sim = room_with(2)
    sim.send(1, "/join dev")
    sim.send(1, "/nick ann")
    sim.send(2, "/nick ANN")
    assert errors(sim.take(2)) == [p.ErrorCode.NAME_TAKEN]
    sim.send(2, "/msg ann psst")
    assert [e.text for e in sim.take(1) if isinstance(e, p.Private)] == ["psst"]


def test_a_rename_is_seen_in_each_room_with_that_rooms_seq_and_a_quit_leaves_every_room() -> None:
    sim = room_with(2)
    sim.send(1, "/format json")
    sim.send(1, "/join dev")
    sim.send(2, "/format json")
    sim.send(2, "/join dev")
    sim.take(1), sim.take(2)
    sim.send(1, "/nick ann")
    renames = [e for e in sim.take(2) if isinstance(e, p.Rename)]
    assert sorted((e.room, e.new) for e in renames) == [("dev", "ann"), ("main", "ann")]
    sim.disconnect(1, p.LeaveReason.QUIT)
    leaves = [e for e in sim.take(2) if isinstance(e, p.Leave)]
    assert sorted(e.room for e in leaves) == ["dev", "main"]
    assert sim.room.state.holder_of("ann") is None


def test_an_operator_kicks_out_of_a_room_and_sets_its_topic() -> None:
    sim = oper_room(1)
    op = 1
    sim.send(op, "/oper boss s3cret")
    assert sim.room.state.member(op).operator
    sim.connect(9)
    sim.send(op, "/join dev")
    sim.send(9, "/join dev")
    sim.send(op, "/topic release on friday")
    assert sim.room.moderation.topic_of("dev") == p.Topic(
        text="release on friday", by=sim.room.name_of(op), room="dev"
    )
    assert sim.room.moderation.topic is None  # main's is untouched
    sim.take(9)
    sim.send(op, f"/kick {sim.room.name_of(9)} spam")
    assert 9 not in sim.closed
    assert sim.room.state.member(9).rooms == ["main"]  # an nc user lands in main
    got = sim.take(9)
    assert any(isinstance(e, p.Notice) and "kicked out of #dev" in e.text for e in got)


# --- the state machine --------------------------------------------------------------------------

ROOMS = ("main", "dev", "ops", "x.y")


class RoomsMachine(RuleBasedStateMachine):
    """Connections join, part, rename and quit across rooms, in text and JSON mode. An
    observer (connection 0, JSON) is in every room from the start and sees every event."""

    def __init__(self) -> None:
        super().__init__()
        self.sim = Sim(idle_timeout=0, history=3)
        self.next_conn = 1
        self.seen: dict[str, list[int]] = defaultdict(list)  # each room's seqs, as observed
        self._apply(self.sim.room.connect(0, LOCAL, 4999, self.sim.now))
        for line in ("/format json", *(f"/join {room}" for room in ROOMS)):
            self._apply(self.sim.room.receive(0, line, self.sim.now))

    def _apply(self, actions: list) -> None:
        before = {c: set(r) for c, r in self.sim.wire.rooms.items()}
        self.sim.apply(actions)
        for conn, events in self.sim.inbox.items():
            for event in events:
                room = getattr(event, "room", None)
                if not isinstance(event, p.BroadcastEvent) or room is None:
                    continue
                # no event crosses rooms: what a connection gets is for a room it is in
                rooms = before.get(conn, set()) | self.sim.wire.rooms.get(conn, set())
                assert room in rooms, (conn, event)
                if conn == 0 and not getattr(event, "history", False):
                    self.seen[room].append(event.seq)
        self.sim.inbox.clear()

    @property
    def conns(self) -> list[int]:
        return [m.conn for m in self.sim.room.state.members() if m.conn != 0]

    @rule(json=st.booleans())
    def connect(self, json: bool) -> None:
        conn, self.next_conn = self.next_conn, self.next_conn + 1
        self._apply(self.sim.room.connect(conn, LOCAL, 5000 + conn, self.sim.now))
        if json:
            self._apply(self.sim.room.receive(conn, "/format json", self.sim.now))

    @precondition(lambda self: self.conns)
    @rule(data=st.data(), room=st.sampled_from(ROOMS), how=st.sampled_from(["/join", "/part"]))
    def join_or_part(self, data: st.DataObject, room: str, how: str) -> None:
        conn = data.draw(st.sampled_from(self.conns))
        self._apply(self.sim.room.receive(conn, f"{how} {room}", self.sim.now))

    @precondition(lambda self: self.conns)
    @rule(data=st.data(), name=st.sampled_from(["ann", "Ann", "bob", "cat", "ﬀ", "ff"]))
    def rename(self, data: st.DataObject, name: str) -> None:
        conn = data.draw(st.sampled_from(self.conns))
        self._apply(self.sim.room.receive(conn, f"/nick {name}", self.sim.now))

    @precondition(lambda self: self.conns)
    @rule(data=st.data(), text=st.sampled_from(["hi", "/me waves", "who"]))
    def say(self, data: st.DataObject, text: str) -> None:
        conn = data.draw(st.sampled_from(self.conns))
        self._apply(self.sim.room.receive(conn, text, self.sim.now))

    @precondition(lambda self: self.conns)
    @rule(data=st.data())
    def quit(self, data: st.DataObject) -> None:
        conn = data.draw(st.sampled_from(self.conns))
        self._apply(self.sim.room.disconnect(conn, p.LeaveReason.QUIT, self.sim.now))

    @invariant()
    def names_are_unique_server_wide(self) -> None:
        state = self.sim.room.state
        users = state.users()
        skeletons = [p.name_skeleton(u.name) for u in users]
        assert len(skeletons) == len(set(skeletons))
        for user in users:
            assert state.holder_of(user.name) == user.id

    @invariant()
    def who_of_each_room_is_its_members(self) -> None:
        state = self.sim.room.state
        for channel in state.rooms.all():
            listed = {u.id for u in state.users(channel.key)}
            members = {m.id for m in state.members() if channel.key in m.rooms}
            assert listed == members, channel.key
        for member in state.members():
            assert member.rooms, "a connection is always in a room"
            if member.format is p.OutputFormat.TEXT:
                assert len(member.rooms) == 1

    @invariant()
    def each_room_counts_its_events_one_by_one(self) -> None:
        for room in ROOMS:
            seqs = self.seen[room]
            assert seqs == list(range(1, len(seqs) + 1)), room
            assert self.sim.room.state.rooms.get(room).seq == len(seqs)


TestRoomsMachine = RoomsMachine.TestCase
TestRoomsMachine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)


def test_broadcast_events_helper_still_sees_room_events() -> None:
    sim = room_with(1)
    outs = sim.send(1, "hello")
    assert [e.room for e in broadcast_events(outs)] == ["main"]
    assert JSON is p.OutputFormat.JSON


def test_a_mute_given_in_a_room_holds_there_alone_one_given_in_main_everywhere() -> None:
    sim = oper_room(1)
    op = 1
    sim.send(op, "/oper boss s3cret")
    sim.connect(9)
    sim.send(op, "/format json")
    sim.send(op, "/join dev")
    sim.send(9, "/join dev")
    target = sim.room.name_of(9)
    sim.send(op, f"/mute {target} 10m")  # in #dev, where the operator's lines go
    sim.take(9)
    sim.send(9, "quiet please")
    assert errors(sim.take(9)) == [p.ErrorCode.MUTED]
    sim.send(9, "/part")  # back in main: it may speak
    sim.take(9)
    sim.send(9, "hello main")
    assert [e.text for e in sim.take(9) if isinstance(e, p.Message)] == ["hello main"]
    sim.send(op, f'{{"room": "main", "text": "/mute {target}"}}')  # in main: everywhere
    sim.send(9, "/join ops")
    sim.send(9, "still muted?")
    assert p.ErrorCode.MUTED in errors(sim.take(9))
    sim.send(op, f"/unmute {target}")
    sim.send(9, "free")
    assert [e.text for e in sim.take(9) if isinstance(e, p.Message)] == ["free"]


def test_coming_back_to_main_is_a_room_greeting_not_a_second_welcome() -> None:
    sim = room_with(2)
    sim.send(1, "/join dev")
    sim.send(1, "/part")
    got = sim.take(1)
    assert not any(isinstance(e, p.Welcome) for e in got)
    assert p.RoomEntered(room="main", users=2) in got


def test_kicked_out_of_its_only_room_a_user_keeps_its_name_and_is_not_welcomed_again() -> None:
    sim = oper_room(1)
    sim.send(1, "/oper boss s3cret")
    sim.connect(9)
    sim.send(9, "/nick zed")
    sim.send(9, "/join dev")
    sim.send(1, "/join dev")
    sim.take(9)
    sim.send(1, "/kick zed")
    got = sim.take(9)
    assert not any(isinstance(e, p.Welcome) for e in got)
    assert any(isinstance(e, p.RoomEntered) and e.room == "main" for e in got)
    assert sim.room.state.holder_of("zed") == sim.id(9)
    assert sim.room.state.member(9).rooms == ["main"]
