"""Output formats: /format, and a broadcast encoded once per format in use."""

from __future__ import annotations

import pytest

from chatroom.protocol import (
    Error,
    ErrorCode,
    FormatChanged,
    Message,
    Welcome,
    decode_json,
    encode_json,
)
from tests.room_helpers import JSON, T0, broadcast_events, only_to, room_with

# --- output format ---------------------------------------------------------------------------


def test_format_json_then_welcome_then_history_and_later_events_in_json() -> None:
    sim = room_with(2, history=5)
    sim.send(1, "earlier")
    sim.inbox.clear()
    outs = sim.send(2, "/format json")
    events = only_to(outs, 2)
    assert events[0] == FormatChanged(format=JSON)
    assert events[1] == Welcome(id=sim.id(2), name=sim.id(2), idle_timeout=60, users=2, room="main")
    assert events[2:] == [
        Message(
            seq=3, ts=T0, id=sim.id(1), name=sim.id(1), text="earlier", history=True, room="main"
        )
    ]
    payload = b"".join(o.payload for o in outs)
    assert payload.startswith(b'{"type":"format","format":"json"}\n')
    assert [decode_json(line) for line in payload.decode().splitlines()] == events

    outs = sim.send(1, "later")
    by_recipients = {o.recipients: o.payload for o in outs}
    message = broadcast_events(outs)[0]
    assert by_recipients == {
        frozenset({1}): f"<{sim.id(1)}> later\n".encode(),
        frozenset({2}): (encode_json(message) + "\n").encode(),
    }
    (error,) = sim.send(2, "/bogus")
    assert decode_json(error.payload.decode()).code is ErrorCode.UNKNOWN_COMMAND


def test_format_is_case_insensitive_and_switches_back() -> None:
    sim = room_with(1)
    sim.send(1, "/format JSON")
    (out,) = sim.send(1, "hi")
    assert out.payload.startswith(b'{"type":"message"')
    outs = sim.send(1, "/format text")
    assert outs[0].payload == b"*** output format is now text\n"
    (out,) = sim.send(1, "hi")
    assert out.payload == f"<{sim.id(1)}> hi\n".encode()


@pytest.mark.parametrize("line", ["/format xml", "/format", "/format json please"])
def test_bad_format(line: str) -> None:
    sim = room_with(1)
    events = only_to(sim.send(1, line), 1)
    assert [(type(e), e.code) for e in events] == [(Error, ErrorCode.BAD_USAGE)]
    (out,) = sim.send(1, "still text")
    assert out.payload == f"<{sim.id(1)}> still text\n".encode()


# --- fan-out ---------------------------------------------------------------------------------


def test_a_broadcast_is_encoded_once_per_format_in_use() -> None:
    sim = room_with(5)
    sim.send(2, "/format json")
    sim.send(4, "/format json")
    for line in ["hello", "/me waves", "rename|Duke"]:
        outs = sim.send(1, line)
        assert len(outs) == 2
        assert {o.recipients for o in outs} == {frozenset({1, 3, 5}), frozenset({2, 4})}
        assert len({o.events for o in outs}) == 1  # the same event for both
    sim.send(2, "/format text")
    sim.send(4, "/format text")
    (out,) = sim.send(1, "all text again")
    assert out.recipients == {1, 2, 3, 4, 5}


def test_every_format_change_combination_keeps_one_payload_per_format() -> None:
    sim = room_with(2)
    sim.send(1, "/format json")
    sim.send(2, "/format json")
    (out,) = sim.send(1, "all json")
    assert out.recipients == {1, 2}
    assert out.payload.startswith(b'{"type":"message"')
    outs = sim.disconnect(1)
    assert len(outs) == 1 and outs[0].payload.startswith(b'{"type":"leave"')
