"""The outbox against the obvious model: a list of bytes per connection."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from chatroom.server.core.outbox import Outbox

CONNS = st.integers(min_value=1, max_value=6)
GROUPS = st.sampled_from(["text", "json"])

operations = st.lists(
    st.one_of(
        st.tuples(st.just("subscribe"), CONNS, GROUPS),
        st.tuples(st.just("unsubscribe"), CONNS),
        st.tuples(st.just("broadcast"), GROUPS),
        st.tuples(st.just("broadcast"), GROUPS, st.frozensets(CONNS, max_size=3)),
        st.tuples(st.just("send"), CONNS),
        st.tuples(st.just("forget"), CONNS),
        st.tuples(st.just("answer_in_crlf"), CONNS),
        st.tuples(st.just("take")),
    ),
    max_size=60,
)


class NaiveOutbox:
    """Every broadcast appended to every current member's queue: obviously right, slow."""

    def __init__(self) -> None:
        self.group_of: dict[int, str] = {}
        self.queues: dict[int, list[bytes]] = {}
        self.crlf: set[int] = set()

    def subscribe(self, conn: int, group: str) -> None:
        self.group_of[conn] = group

    def unsubscribe(self, conn: int) -> None:
        self.group_of.pop(conn, None)

    def broadcast(self, group: str, payload: bytes, skip: frozenset[int] = frozenset()) -> None:
        for conn, member_group in self.group_of.items():
            if member_group == group and conn not in skip:
                self.queues.setdefault(conn, []).append(payload)

    def send(self, conn: int, payload: bytes) -> None:
        self.queues.setdefault(conn, []).append(payload)

    def forget(self, conn: int) -> None:
        self.group_of.pop(conn, None)
        self.queues.pop(conn, None)
        self.crlf.discard(conn)

    def answer_in_crlf(self, conn: int) -> None:
        self.crlf.add(conn)

    def take(self) -> dict[int, bytes]:
        out = {conn: b"".join(parts) for conn, parts in self.queues.items() if parts}
        for conn in self.crlf & out.keys():
            out[conn] = out[conn].replace(b"\n", b"\r\n")
        self.queues.clear()
        return out


@settings(max_examples=400, deadline=None)
@given(operations)
def test_outbox_delivers_exactly_what_the_naive_model_does(ops):
    outbox, model = Outbox(), NaiveOutbox()
    counter = 0
    for op in ops:
        name, *args = op
        if name in ("broadcast", "send"):
            counter += 1
            payload = f"<{counter}>\n".encode()  # every payload distinct: order is visible
            args = [args[0], payload, *args[1:]]
        if name == "take":
            taken = outbox.take()
            assert len({conn for conn, _ in taken}) == len(taken), "one write per connection"
            assert dict(taken) == model.take()
        else:
            getattr(outbox, name)(*args)
            getattr(model, name)(*args)
    assert dict(outbox.take()) == model.take()


def test_subscribers_without_own_output_share_one_bytes_object():
    outbox = Outbox()
    for conn in range(100):
        outbox.subscribe(conn, "text")
    outbox.take()
    outbox.broadcast("text", b"a\n")
    outbox.broadcast("text", b"b\n")
    outbox.send(7, b"just for 7\n")
    outbox.broadcast("text", b"c\n")
    taken = dict(outbox.take())
    assert taken[7] == b"a\nb\njust for 7\nc\n"
    blobs = {id(data) for conn, data in taken.items() if conn != 7}
    assert len(blobs) == 1 and taken[0] == b"a\nb\nc\n"


def test_a_newcomer_gets_only_what_was_broadcast_after_it_subscribed():
    outbox = Outbox()
    outbox.subscribe("old", "text")
    outbox.broadcast("text", b"before\n")
    outbox.send("new", b"welcome\n")
    outbox.subscribe("new", "text")
    outbox.broadcast("text", b"joined\n")
    assert dict(outbox.take()) == {
        "old": b"before\njoined\n",
        "new": b"welcome\njoined\n",
    }


def test_a_leaver_keeps_what_it_was_owed_before_leaving():
    outbox = Outbox()
    outbox.subscribe("a", "text")
    outbox.subscribe("b", "text")
    outbox.broadcast("text", b"a says bye\n")
    outbox.unsubscribe("a")
    outbox.broadcast("text", b"a left\n")
    assert dict(outbox.take()) == {"a": b"a says bye\n", "b": b"a says bye\na left\n"}
    assert not outbox


def test_switching_group_keeps_order_across_formats():
    outbox = Outbox()
    outbox.subscribe("a", "text")
    outbox.broadcast("text", b"t1\n")
    outbox.subscribe("a", "json")
    outbox.send("a", b"{format}\n")
    outbox.broadcast("json", b"{j1}\n")
    outbox.broadcast("text", b"t2\n")
    assert dict(outbox.take()) == {"a": b"t1\n{format}\n{j1}\n"}


def test_forget_drops_what_was_queued():
    outbox = Outbox()
    outbox.subscribe("a", "text")
    outbox.broadcast("text", b"x\n")
    outbox.send("a", b"y\n")
    outbox.forget("a")
    assert outbox.take() == []


def test_a_skipping_broadcast_costs_only_the_skipped_a_copy():
    outbox = Outbox()
    for conn in range(100):
        outbox.subscribe(conn, "text")
    outbox.take()
    outbox.broadcast("text", b"a\n")
    outbox.broadcast("text", b"from the ignored\n", frozenset({7, 500}))  # 500: not here
    outbox.broadcast("text", b"c\n")
    taken = dict(outbox.take())
    assert taken[7] == b"a\nc\n" and taken[0] == b"a\nfrom the ignored\nc\n"
    assert len({id(data) for conn, data in taken.items() if conn != 7}) == 1
    assert 500 not in taken


def test_crlf_subscribers_share_one_widened_copy_and_cost_the_others_nothing():
    outbox = Outbox()
    for conn in range(100):
        outbox.subscribe(conn, "text")
    outbox.answer_in_crlf(3)
    outbox.answer_in_crlf(4)
    outbox.take()
    outbox.broadcast("text", b"a\n")
    outbox.broadcast("text", b"b\n")
    taken = dict(outbox.take())
    assert taken[0] == b"a\nb\n" and taken[3] == taken[4] == b"a\r\nb\r\n"
    assert len({id(data) for conn, data in taken.items() if conn not in (3, 4)}) == 1
    assert taken[3] is taken[4]  # widened once for both
    assert outbox.deliveries == 200
    outbox.send(3, b"just for 3\n")
    outbox.broadcast("text", b"c\n")
    taken = dict(outbox.take())
    assert taken[3] == b"just for 3\r\nc\r\n" and taken[4] == b"c\r\n" and taken[5] == b"c\n"


def test_no_widened_copy_without_a_crlf_subscriber():
    outbox = Outbox()
    for conn in range(10):
        outbox.subscribe(conn, "text")
    outbox.answer_in_crlf(99)  # not subscribed (yet): no group member
    outbox.take()
    outbox.broadcast("text", b"a\n")
    taken = outbox.take()
    assert {data for _, data in taken} == {b"a\n"}
    assert all(data is taken[0][1] for _, data in taken)


def test_a_room_used_once_costs_the_outbox_nothing_after() -> None:
    """A group goes with its last subscriber: one connection walking through 1000 rooms
    (as /join does) leaves only the rooms someone is in, and what a room still shared
    when its last member left reaches that member, once."""
    from chatroom.protocol import OutputFormat

    text, json_ = OutputFormat.TEXT, OutputFormat.JSON
    box = Outbox()
    box.subscribe(1, text, "main")
    box.subscribe(2, json_, "main")
    box.subscribe(2, json_, "dev")  # personal in both
    box.subscribe(3, text, "r0")
    for n in range(1, 1000):
        box.broadcast(text, b"in r%d\n" % (n - 1), room=f"r{n - 1}")
        box.subscribe(3, text, f"r{n}")
        box.unsubscribe(3, f"r{n - 1}")
    assert box.groups == 4  # main (text, json), dev (json), r999 (text)
    box.unsubscribe(2, "dev")
    assert box.groups == 3
    taken = dict(box.take())
    assert taken[3] == b"".join(b"in r%d\n" % n for n in range(999))
    assert not box
