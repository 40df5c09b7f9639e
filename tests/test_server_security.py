"""A room you can put on the internet, over real sockets (issue 10): names nobody can
impersonate, a room password, hidden addresses."""

from __future__ import annotations

import unicodedata

import pytest

# --- names nobody can impersonate ------------------------------------------------------------


@pytest.mark.parametrize(
    ("held", "look_alike"),
    [("ann", "\u0430nn"), ("Jos\u00e9", "Jose\u0301"), ("root", "r\u043e\u043et")],
)
async def test_a_look_alike_of_a_present_users_name_is_taken(server, make_peer, held, look_alike):
    alice, mallory = await make_peer(server), await make_peer(server)
    await alice.send(f"/nick {held}")
    await mallory.until_contains(f"is now {held}")
    await mallory.send(f"rename|{look_alike}")
    error = unicodedata.normalize("NFC", await mallory.line())
    assert error.startswith(f"error: the name {unicodedata.normalize('NFC', look_alike)} is taken")
    await mallory.send("who")
    await mallory.until_contains("Online users (2)")
    listed = [await mallory.line(), await mallory.line()]
    assert any(line.strip().startswith(f"{mallory.local_id}  ") for line in listed)


async def test_nobody_can_pose_as_an_address_with_a_modifier_colon(server, make_peer):
    alice, mallory = await make_peer(server), await make_peer(server)
    fake = alice.local_id.replace(":", "\ua789")
    await mallory.send(f"/nick {fake}")
    assert await mallory.line() == (
        "error: cannot use that name: a name cannot contain a character that looks like ':'"
    )


@pytest.mark.parametrize("name", ["\u3164", "\u2800", "\uffa0", "admin\u2800is\u2800now\u2800root",
                                  "\u0301\u0301", "Z\u0351\u036b\u0343\u036a\u0302a"])  # fmt: skip
async def test_blank_looking_and_zalgo_names_are_invalid(server, make_peer, name):
    peer = await make_peer(server)
    await peer.to_json()
    await peer.send(f"/nick {name}")
    error = await peer.until_event("error")
    assert error["code"] == "name_invalid"


async def test_json_user_sees_the_name_in_its_normal_form(server, make_peer):
    peer = await make_peer(server)
    await peer.to_json()
    await peer.send("/nick Jose\u0301")
    assert (await peer.until_event("rename"))["new"] == "Jos\u00e9"
