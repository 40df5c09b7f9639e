"""An operator's /kick, /ban NAME, /mute and /unmute on a user of another node, without I/O:
ClusterRoom nodes joined by the in-memory ledger, their requests and answers carried in
their JSON form (tests/room_helpers.py, Cluster)."""

from __future__ import annotations

import pytest

from chatroom.server.core import node_requests
from chatroom.server.core.actions import Moderated
from tests.room_helpers import LOCAL, REMOTE, Cluster


def room_with_operator(**rules: object) -> tuple[Cluster, int, int, int]:
    """Nodes a and b: boss, an operator, and cat on a; bob on b. Returns them."""
    cluster = Cluster("a", "b", **rules)
    boss, cat, bob = cluster.join("a"), cluster.join("a"), cluster.join("b", host=REMOTE)
    cluster.rooms["a"].state.member(boss).operator = True
    for conn, name in ((boss, "boss"), (cat, "cat"), (bob, "bob")):
        cluster.say(conn, f"/nick {name}")
    return cluster, boss, cat, bob


def notices(cluster: Cluster, conn: int) -> list[str]:
    return [e["text"] for e in cluster.events(conn, "notice")]


def errors(cluster: Cluster, conn: int) -> list[tuple[str, str]]:
    return [(e["code"], e["message"]) for e in cluster.events(conn, "error")]


def test_an_operator_kicks_a_user_of_another_node():
    cluster, boss, cat, bob = room_with_operator()
    cluster.say(boss, "/kick bob spam")
    assert "you were kicked by boss: spam" in notices(cluster, bob)
    assert bob in cluster.closed
    for conn in (boss, cat):
        leave = cluster.events(conn, "leave")[-1]
        assert (leave["name"], leave["reason"], leave["by"], leave["text"]) == (
            "bob",
            "kicked",
            "boss",
            "spam",
        )
    assert errors(cluster, boss) == []
    cluster.say(boss, "/who")
    assert [u["name"] for u in cluster.events(boss, "who")[-1]["users"]] == ["boss", "cat"]
    # Each node logs its side: the request, and what it did and for whom.
    logged = {node: [r.text for r in w.reports if isinstance(r, Moderated)]
              for node, w in cluster.wires.items()}  # fmt: skip
    assert "boss asks node b to kick bob" in logged["a"]
    assert "boss kicked bob (an operator on node a)" in logged["b"]


def test_a_ban_by_name_of_a_user_of_another_node_holds_on_every_node():
    cluster, boss, cat, bob = room_with_operator()
    cluster.say(boss, "/ban bob 1h flooding")
    assert "you were banned by boss for 1h: flooding" in notices(cluster, bob)
    assert bob in cluster.closed
    # The same confirmation as for a user of boss's own node, made by bob's node.
    assert notices(cluster, boss)[-1] == f"banned {REMOTE}/32 (bob) for 1h; 1 user sent away"
    for room in cluster.rooms.values():
        assert room.moderation.refusal(REMOTE, cluster.now) is not None
        assert room.moderation.refusal(LOCAL, cluster.now) is None
    for node in ("a", "b"):  # refused at connect on either node
        again = cluster.join(node, host=REMOTE)
        assert b"your address is banned from this server for 1h" in cluster.raw[again]
        assert again in cluster.closed
    assert boss not in cluster.closed and cat not in cluster.closed


def test_a_ban_by_name_spares_the_operator_at_the_same_address_on_its_own_node():
    cluster = Cluster("a", "b")
    boss, cat, bob = cluster.join("a"), cluster.join("a"), cluster.join("b")  # all LOCAL
    cluster.rooms["a"].state.member(boss).operator = True
    cluster.say(boss, "/nick boss")
    cluster.say(bob, "/nick bob")
    cluster.say(boss, "/ban bob")
    assert bob in cluster.closed and cat in cluster.closed  # the ban covers their address
    assert boss not in cluster.closed  # as on the node of a user banned there


def test_a_ban_by_name_follows_the_target_nodes_rules():
    cluster, boss, _, bob = room_with_operator(max_bans=1)
    cluster.say(boss, "/ban 198.51.100.0/24")
    cluster.say(boss, "/ban bob")
    assert errors(cluster, boss) == [("bad_usage", "too many bans (at most 1): /unban one first")]
    assert bob not in cluster.closed


def test_a_mute_of_a_user_of_another_node_and_its_unmute():
    cluster, boss, cat, bob = room_with_operator()
    cluster.say(boss, "/mute bob 10m")
    assert notices(cluster, boss)[-1] == "bob is muted for 10m"
    assert notices(cluster, bob)[-1] == "you were muted by boss for 10m"
    cluster.say(bob, "can I speak?")
    assert [code for code, _ in errors(cluster, bob)] == ["muted"]
    assert cluster.rooms["a"].moderation.muted_names == {"bob": cluster.now + 600}
    cluster.say(boss, "/unmute BOB")
    assert notices(cluster, boss)[-1] == "bob is no longer muted"
    assert notices(cluster, bob)[-1] == "you were unmuted by boss"
    cluster.say(bob, "thanks")
    assert cluster.events(cat, "message")[-1]["text"] == "thanks"
    cluster.say(boss, "/unmute bob")
    assert notices(cluster, boss)[-1] == "bob is not muted"


def test_a_mute_holds_the_users_address_on_every_node():
    cluster, boss, cat, bob = room_with_operator()
    cluster.say(boss, "/mute bob 1h")
    cluster.say(bob, "/quit")
    for node in ("a", "b"):  # back from bob's address, on either node, by another name
        again = cluster.join(node, host=REMOTE)
        cluster.say(again, f"/nick innocent-{node}")
        cluster.say(again, "hello again")
        assert [code for code, _ in errors(cluster, again)] == ["muted"]
        cluster.say(again, "/quit")
    cluster.say(boss, "/unmute cat")  # cat is not muted: nothing of bob's is lifted
    assert notices(cluster, boss)[-1] == "cat is not muted"
    again = cluster.join("a", host=REMOTE)
    cluster.say(again, "/nick bob2")
    cluster.say(boss, "/unmute bob2")  # lifted by the address it holds, on every node
    assert notices(cluster, boss)[-1] == "bob2 is no longer muted"
    for room in cluster.rooms.values():
        assert room.moderation.kept_mutes == {}
    cluster.say(again, "free")
    assert cluster.events(cat, "message")[-1]["text"] == "free"


def test_an_unknown_name_is_unknown_user():
    cluster, boss, _, _ = room_with_operator()
    for line in ("/kick nobody", "/mute nobody", "/unmute nobody", "/ban nobody"):
        cluster.say(boss, line)
    assert errors(cluster, boss) == [("unknown_user", "no user named nobody is online")] * 4
    assert cluster.mail == []


@pytest.mark.parametrize("meanwhile", ["/nick robert", "/quit"])
def test_a_target_that_renamed_or_left_before_the_request_arrived_is_unknown_user(meanwhile):
    cluster, boss, _, bob = room_with_operator()
    # The request is on its way to b, and bob's rename or leave reaches the room first.
    cluster.run("a", cluster.rooms["a"].receive(boss, "/kick bob", cluster.now))
    cluster.say(bob, meanwhile)
    assert errors(cluster, boss) == [("unknown_user", "no user named bob is online")]
    assert "you were kicked by boss" not in notices(cluster, bob)
    assert [e["reason"] for e in cluster.events(boss, "leave")] == (
        ["quit"] if meanwhile == "/quit" else []
    )


def test_a_node_nobody_hears_or_that_does_not_answer_is_unavailable():
    cluster, boss, _, bob = room_with_operator()
    cluster.unreachable.add("b")
    cluster.say(boss, "/kick bob")
    assert errors(cluster, boss)[-1] == (
        "unavailable",
        "bob's server cannot be reached: /kick bob was not done",
    )
    cluster.unreachable.clear()
    cluster.unanswering.add("b")
    cluster.say(boss, "/mute bob")
    assert errors(cluster, boss)[-1] == (
        "unavailable",
        "no answer from bob's server: /mute bob may not have been done",
    )
    assert bob not in cluster.closed


def test_only_an_operator_asks_another_node():
    cluster, _, cat, bob = room_with_operator()
    cluster.say(cat, "/kick bob")
    assert [code for code, _ in errors(cluster, cat)] == ["not_operator"]
    assert cluster.mail == [] and bob not in cluster.closed


def test_an_answer_for_an_operator_that_left_is_dropped():
    cluster, boss, _, bob = room_with_operator()
    cluster.run("a", cluster.rooms["a"].receive(boss, "/mute bob", cluster.now))
    cluster.say(boss, "/quit")  # before the answer comes back
    assert notices(cluster, bob)[-1] == "you were muted by boss"


def request_payload(**changes: object) -> dict:
    payload = {
        "type": "moderate",
        "request": 1,
        "command": "kick",
        "target_id": "127.0.0.1:1",
        "target": "bob",
        "by": "boss",
        "by_id": "127.0.0.1:2",
        "by_node": "a",
    }
    return {**payload, **changes}


@pytest.mark.parametrize(
    "payload",
    [
        request_payload(command="oper"),  # only the four commands
        request_payload(command="topic"),
        request_payload(by=None),
        request_payload(target=""),
        request_payload(seconds=-5),
        request_payload(seconds=float("nan")),
        request_payload(reason="x" * 201),
        {k: v for k, v in request_payload().items() if k != "by_node"},
        {"type": "moderated", "request": 1, "to_id": "x", "events": [{"type": "who", "users": []}]},
        {"type": "moderated", "request": "1", "to_id": "x"},
    ],
)
def test_a_payload_is_taken_only_in_its_exact_shape(payload):
    with pytest.raises(ValueError, match="not a node request"):
        node_requests.from_payload(payload)


def test_a_request_and_an_answer_survive_their_json_form():
    request = node_requests.from_payload(request_payload(command="ban", seconds=60, reason="x"))
    assert isinstance(request, node_requests.ModerationRequest)
    assert (request.command, request.seconds, request.reason) == ("ban", 60.0, "x")
    answer = node_requests.from_payload(
        {"type": "moderated", "request": 1, "to_id": "x",
         "events": [{"type": "error", "code": "unknown_user", "message": "no"}]}
    )  # fmt: skip
    assert isinstance(answer, node_requests.ModerationAnswer)
    assert answer.events[0].message == "no"
