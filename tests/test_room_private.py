"""Private messages: /msg to one user by name or address, and its usage errors."""

from __future__ import annotations

import pytest

from chatroom.protocol import Error, ErrorCode, Private
from tests.room_helpers import T0, only_to, room_with


def test_private_message_to_sender_and_receiver_only() -> None:
    sim = room_with(3)
    sim.send(2, "rename|Zoë")
    sim.inbox.clear()
    seq = sim.room.seq
    outs = sim.send(1, "/msg zoë psst, a secret")  # names match without regard to case
    private = Private(ts=T0, sender=sim.id(1), recipient="Zoë", text="psst, a secret")
    assert sim.take(1) == [private]
    assert sim.take(2) == [private]
    assert sim.inbox[3] == []
    assert set().union(*(o.recipients for o in outs)) == {1, 2}
    assert outs[0].payload == f"[private] {sim.id(1)} -> Zoë: psst, a secret\n".encode()
    assert sim.room.seq == seq


def test_private_message_by_address_name_and_to_oneself() -> None:
    sim = room_with(2)
    outs = sim.send(1, f"/msg {sim.id(2)} hi")
    assert {c for o in outs for c in o.recipients} == {1, 2}
    outs = sim.send(1, f"/msg {sim.id(1)} note to self")
    assert len(outs) == 1 and outs[0].recipients == {1}  # once, not twice


def test_private_message_to_unknown_user() -> None:
    sim = room_with(2)
    events = only_to(sim.send(1, "/msg nobody hello"), 1)
    assert [(type(e), e.code) for e in events] == [(Error, ErrorCode.UNKNOWN_USER)]
    assert sim.inbox[2] == []


@pytest.mark.parametrize(
    "line",
    ["/msg", "/msg   ", "/msg Zoë", "/msg Zoë    ", "/msg Zoë \x1b[31m", "/msg Zoë \x07\x07"],
)
def test_private_message_bad_usage(line: str) -> None:
    sim = room_with(2)
    sim.send(2, "rename|Zoë")
    sim.inbox.clear()
    events = only_to(sim.send(1, line), 1)
    assert [(type(e), e.code) for e in events] == [(Error, ErrorCode.BAD_USAGE)]
    assert sim.inbox[2] == []


def test_private_message_text_is_cleaned() -> None:
    sim = room_with(2)
    sim.send(2, "rename|Zoë")
    sim.inbox.clear()
    sim.send(1, "/msg Zoë \x1b]0;pwned\x07hi \x1b[1mthere\x1b[0m")
    assert sim.take(2)[0].text == "hi there"
