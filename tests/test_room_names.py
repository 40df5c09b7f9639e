"""Names: renaming with rename| and /nick, invalid and taken names, names set free."""

from __future__ import annotations

import pytest

from chatroom.protocol import Error, ErrorCode, Notice, Rename, name_key
from tests.room_helpers import T0, broadcast_events, only_to, room_with


@pytest.mark.parametrize("line", ["rename|Duke", "/nick Duke", "rename| Duke ", "/NICK   Duke"])
def test_rename_is_broadcast(line: str) -> None:
    sim = room_with(2)
    seq = sim.room.seq
    outs = sim.send(1, line)
    assert len(outs) == 1 and outs[0].recipients == {1, 2}
    assert outs[0].events == (
        Rename(seq=seq + 1, ts=T0, id=sim.id(1), old=sim.id(1), new="Duke", room="main"),
    )
    assert outs[0].payload == f"*** {sim.id(1)} is now Duke\n".encode()
    assert sim.room.name_of(1) == "Duke"
    (chat,) = sim.send(1, "hi")
    assert chat.events[0].name == "Duke" and chat.events[0].id == sim.id(1)


BAD_NAMES = [
    "two words",
    "a" * 33,
    "Du\x1bke",
    "\x1b[31mDuke",
    "Du\x00ke",
    "Du\x07ke",
    "Du\x7fke",
    "Du\x85ke",
    "Du\x9bke",
    "a|b",
    "a:b",
    "Du\u200bke",
]


@pytest.mark.parametrize("form", ["rename|{}", "/nick {}"])
@pytest.mark.parametrize("name", BAD_NAMES)
def test_invalid_name_is_refused_and_the_name_stays(form: str, name: str) -> None:
    sim = room_with(2)
    seq = sim.room.seq
    events = only_to(sim.send(1, form.format(name)), 1)
    assert [type(e) for e in events] == [Error]
    assert events[0].code is ErrorCode.NAME_INVALID
    assert sim.room.name_of(1) == sim.id(1)
    assert sim.room.seq == seq


def test_empty_names() -> None:
    sim = room_with(1)
    assert only_to(sim.send(1, "rename|"), 1)[0].code is ErrorCode.NAME_INVALID
    assert only_to(sim.send(1, "/nick"), 1)[0].code is ErrorCode.BAD_USAGE
    assert only_to(sim.send(1, "/nick   "), 1)[0].code is ErrorCode.BAD_USAGE
    assert sim.room.name_of(1) == sim.id(1)


def test_a_taken_name_is_refused_whatever_its_case() -> None:
    sim = room_with(3)
    sim.send(1, "rename|Duke")
    sim.send(3, "/nick Straße")
    seq = sim.room.seq
    for attempt in ["Duke", "duke", "DUKE", "dUkE", "STRASSE", "strasse"]:
        for line in [f"rename|{attempt}", f"/nick {attempt}"]:
            events = only_to(sim.send(2, line), 2)
            assert [(type(e), e.code) for e in events] == [(Error, ErrorCode.NAME_TAKEN)]
    assert sim.room.name_of(2) == sim.id(2)
    assert sim.room.seq == seq


def test_rename_to_own_name_in_another_case() -> None:
    sim = room_with(2)
    sim.send(1, "rename|Duke")
    (out,) = sim.send(1, "rename|DUKE")
    assert out.recipients == {1, 2}
    assert out.events[0] == Rename(
        seq=sim.room.seq, ts=T0, id=sim.id(1), old="Duke", new="DUKE", room="main"
    )
    assert sim.room.name_of(1) == "DUKE"
    assert only_to(sim.send(2, "rename|duke"), 2)[0].code is ErrorCode.NAME_TAKEN


def test_rename_to_the_same_name_is_only_a_notice() -> None:
    sim = room_with(2)
    sim.send(1, "rename|Duke")
    seq = sim.room.seq
    events = only_to(sim.send(1, "/nick Duke"), 1)
    assert [type(e) for e in events] == [Notice]
    assert sim.room.seq == seq


def test_a_name_is_free_again_after_a_rename_or_a_leave() -> None:
    sim = room_with(3)
    sim.send(1, "rename|Duke")
    sim.send(1, "rename|Earl")
    assert broadcast_events(sim.send(2, "rename|duke"))[0].new == "duke"
    sim.send(1, "/quit")
    assert broadcast_events(sim.send(3, "rename|EARL"))[0].new == "EARL"


def test_nobody_can_take_an_address_name() -> None:
    sim = room_with(2)
    events = only_to(sim.send(2, f"rename|{sim.id(1)}"), 2)
    assert events[0].code is ErrorCode.NAME_INVALID


# --- names nobody can impersonate (issue 10, item 4) --------------------------------------

LOOK_ALIKES = [  # (a user's name, a name that looks like it, refused as taken)
    ("ann", "\u0430nn"),  # Cyrillic а
    ("Jos\u00e9", "Jose\u0301"),  # é precomposed, then e + combining acute
    ("Jose\u0301", "Jos\u00e9"),
    ("paypal", "p\u0430yp\u0430l"),
    ("bill", "bi11"),
    ("Ann", "\uff21nn"),  # fullwidth A
    ("modern", "rnodern"),
]


@pytest.mark.parametrize(("held", "look_alike"), LOOK_ALIKES)
def test_a_name_that_looks_like_a_present_users_is_taken(held: str, look_alike: str) -> None:
    sim = room_with(2)
    sim.send(1, f"/nick {held}")
    seq = sim.room.seq
    (error,) = only_to(sim.send(2, f"/nick {look_alike}"), 2)
    assert error.code is ErrorCode.NAME_TAKEN
    same = name_key(held) == name_key(look_alike)  # the same name, in another form
    assert ("looks like" in error.message) is not same
    assert sim.room.name_of(2) == sim.id(2) and sim.room.seq == seq


def test_a_look_alike_is_free_once_its_holder_is_gone() -> None:
    sim = room_with(2)
    sim.send(1, "/nick ann")
    sim.send(1, "/quit")
    assert broadcast_events(sim.send(2, "/nick \u0430nn"))[0].new == "\u0430nn"


def test_a_name_is_held_in_its_normal_form() -> None:
    sim = room_with(1)
    (rename,) = broadcast_events(sim.send(1, "/nick Jose\u0301"))
    assert rename.new == "Jos\u00e9" and sim.room.name_of(1) == "Jos\u00e9"
    (rename,) = broadcast_events(sim.send(1, "/nick \uff21nn"))
    assert rename.new == "Ann"


INVISIBLE_OR_BLANK = [
    "\u3164",  # Hangul filler
    "\u2800",  # Braille blank
    "\uffa0",  # halfwidth Hangul filler
    "ann\u3164",
    "admin\u2800is\u2800now\u2800root",
    "\u0301",  # only combining marks
    "\u0301\u0302\u0303",
    "a\u0301\u0302\u0303\u0304\u0305",  # zalgo: more than 3 marks on one letter
    "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319a\u0350l\u0357go",
    "ann\u202e",  # right-to-left override
    "\u2067ann",  # right-to-left isolate
    "an\u200fn",  # right-to-left mark
    "an\u200dn",  # zero-width joiner (outside the scripts that need it)
    "ann\u180e",
]


@pytest.mark.parametrize("name", INVISIBLE_OR_BLANK)
def test_invisible_blank_or_direction_changing_names_are_invalid(name: str) -> None:
    sim = room_with(1)
    (error,) = only_to(sim.send(1, f"/nick {name}"), 1)
    assert error.code is ErrorCode.NAME_INVALID
    assert sim.room.name_of(1) == sim.id(1)


@pytest.mark.parametrize("colon", ["\ua789", "\u2236", "\u0589", "\uff1a"])
def test_nobody_can_pose_as_an_address_with_a_look_alike_colon(colon: str) -> None:
    sim = room_with(2)
    address = sim.id(1)
    (error,) = only_to(sim.send(2, f"/nick {address.replace(':', colon)}"), 2)
    assert error.code is ErrorCode.NAME_INVALID
    assert "looks like ':'" in error.message


@pytest.mark.parametrize("name", ["Ελένη", "Владимир", "नमस्ते", "José", "🙂", "Zoë", "李小龍"])
def test_names_in_any_script_are_still_fine(name: str) -> None:
    sim = room_with(1)
    assert broadcast_events(sim.send(1, f"/nick {name}"))[0].new == name
