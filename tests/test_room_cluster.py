"""One room across nodes, without I/O: Room objects joined by an in-memory ledger.

The ledger (:class:`~tests.room_helpers.LedgerSim`) does what the Redis ledger does — one
seq counter, atomic name claims, refusals — so these tests pin down the room's side of the
contract: every node applies the same events in the same order, names stay unique across
nodes, and a refusal reaches the user whose line it was. Each node's output is checked on a
wire of its own, as a single server's is.
"""

from __future__ import annotations

import math
import random

from chatroom import protocol as p
from chatroom.server.core import inputs as i
from chatroom.server.core.addresses import peer_id
from tests.room_helpers import LOCAL, Cluster, LedgerSim, uid


def test_users_on_two_nodes_see_one_order():
    cluster = Cluster("a", "b")
    ann, bob = cluster.join("a"), cluster.join("b")
    for n in range(3):
        cluster.say(ann, f"a{n}")
        cluster.say(bob, f"b{n}")
    seen = [[(e["seq"], e["text"]) for e in cluster.events(c, "message")] for c in (ann, bob)]
    assert seen[0] == seen[1]
    assert [text for _, text in seen[0]] == ["a0", "b0", "a1", "b1", "a2", "b2"]
    seqs = [seq for seq, _ in seen[0]]
    assert seqs == list(range(seqs[0], seqs[0] + 6))


def test_join_is_announced_on_every_node_and_who_spans_nodes():
    cluster = Cluster("a", "b")
    ann = cluster.join("a")
    bob = cluster.join("b")
    assert [e["id"] for e in cluster.events(ann, "join")] == [uid(bob)]
    welcome = cluster.events(bob, "welcome")[-1]
    assert welcome["users"] == 2
    cluster.say(bob, "/who")
    (who,) = cluster.events(bob, "who")
    assert {u["id"] for u in who["users"]} == {uid(ann), uid(bob)}


def test_names_are_unique_across_nodes_and_a_race_has_one_winner():
    cluster = Cluster("a", "b")
    ann, bob = cluster.join("a"), cluster.join("b")
    # Both renames reach the ledger before either is applied anywhere.
    cluster.run("a", cluster.rooms["a"].receive(ann, "/nick Duke", cluster.now))
    cluster.run("b", cluster.rooms["b"].receive(bob, "/nick duke", cluster.now))
    cluster.settle()
    assert [e["new"] for e in cluster.events(ann, "rename")] == ["Duke"]
    assert [e["new"] for e in cluster.events(bob, "rename")] == ["Duke"]
    assert [e["code"] for e in cluster.events(bob, "error")] == ["name_taken"]
    assert cluster.events(ann, "error") == []
    assert cluster.rooms["a"].name_of(ann) == "Duke"
    assert cluster.rooms["b"].name_of(bob) == uid(bob)
    cluster.say(bob, "/nick DUKE")  # now refused by the node itself, from its view
    assert [e["code"] for e in cluster.events(bob, "error")] == ["name_taken", "name_taken"]


def test_a_line_sent_right_after_a_rename_carries_the_new_name():
    """On one server a line after /nick is said under the new name; so it is in a shared
    room, where the rename is still with the ledger when the line arrives: it waits."""
    cluster = Cluster("a", "b")
    ann, bob = cluster.join("a"), cluster.join("b")
    room = cluster.rooms["a"]
    for line in ("/nick Duke", "hello", "/me waves"):
        cluster.run("a", room.receive(ann, line, cluster.now))
    cluster.settle()
    for conn in (ann, bob):
        seen = [e for e in cluster.received[conn] if e["type"] in ("rename", "message", "action")]
        assert [(e["type"], e.get("name")) for e in seen] == [
            ("rename", None), ("message", "Duke"), ("action", "Duke"),
        ]  # fmt: skip


def test_lines_after_a_refused_rename_go_under_the_old_name_after_the_error():
    cluster = Cluster("a", "b")
    ann, bob = cluster.join("a"), cluster.join("b")
    cluster.run("b", cluster.rooms["b"].receive(bob, "/nick Duke", cluster.now))
    cluster.run("a", cluster.rooms["a"].receive(ann, "/nick duke", cluster.now))
    cluster.run("a", cluster.rooms["a"].receive(ann, "still me", cluster.now))
    cluster.settle()
    assert [e["code"] for e in cluster.events(ann, "error")] == ["name_taken"]
    (message,) = cluster.events(bob, "message")
    assert (message["name"], message["text"]) == (uid(ann), "still me")


def test_private_message_crosses_nodes_to_its_recipient_only():
    cluster = Cluster("a", "b")
    ann, bob, cat = cluster.join("a"), cluster.join("b"), cluster.join("b")
    cluster.say(bob, "/nick bob")
    cluster.say(ann, "/msg BOB psst")
    expected = {"type": "private", "from": uid(ann), "to": "bob", "text": "psst"}
    for conn in (ann, bob):
        (private,) = cluster.events(conn, "private")
        assert {k: private[k] for k in expected} == expected
    assert cluster.events(cat, "private") == []


def test_an_ignored_users_private_message_from_another_node_is_dropped_silently():
    cluster = Cluster("a", "b")
    ann, bob = cluster.join("a"), cluster.join("b")
    cluster.say(bob, "/nick bob")
    cluster.say(ann, "/nick ann")
    cluster.say(bob, "/ignore ann")
    cluster.say(ann, "/msg bob psst")
    assert cluster.events(bob, "private") == []
    (mine,) = cluster.events(ann, "private")  # the sender has its copy and no hint
    assert mine["text"] == "psst" and cluster.events(ann, "error") == []
    cluster.say(bob, "/unignore ann")
    cluster.say(ann, "/msg bob again")
    assert [e["text"] for e in cluster.events(bob, "private")] == ["again"]


def test_leave_on_one_node_reaches_the_other_and_frees_the_name():
    cluster = Cluster("a", "b")
    ann, bob = cluster.join("a"), cluster.join("b")
    cluster.say(bob, "/nick bob")
    cluster.say(bob, "/quit later")
    (leave,) = cluster.events(ann, "leave")
    assert (leave["id"], leave["reason"], leave["text"]) == (uid(bob), "quit", "later")
    assert bob in cluster.closed
    cluster.say(ann, "/nick bob")
    assert cluster.rooms["a"].name_of(ann) == "bob"


def test_lines_sent_before_the_join_is_sequenced_follow_the_welcome():
    cluster = Cluster("a")
    room = cluster.rooms["a"]
    cluster.run("a", room.connect(1, "127.0.0.1", 40001, cluster.now))
    cluster.node_of[1] = "a"
    cluster.run("a", room.receive(1, "/format json", cluster.now))
    cluster.run("a", room.receive(1, "early bird", cluster.now))
    assert 1 not in cluster.received  # nothing yet: the join is still with the ledger
    cluster.settle()
    kinds = [e["type"] for e in cluster.received[1]]
    assert kinds == ["format", "welcome", "message"]
    assert cluster.received[1][-1]["text"] == "early bird"


def test_history_on_join_comes_from_the_shared_order():
    cluster = Cluster("a", "b")
    ann = cluster.join("a")
    cluster.say(ann, "one")
    cluster.say(ann, "two")
    bob = cluster.join("b")
    history = [e["text"] for e in cluster.events(bob, "message") if e.get("history")]
    assert history == ["one", "two"]


def test_an_unavailable_ledger_is_reported_to_the_sender():
    cluster = Cluster("a")
    ann = cluster.join("a")
    cluster.ledger.available = False
    cluster.say(ann, "lost?")
    assert [e["code"] for e in cluster.events(ann, "error")] == ["unavailable"]
    cluster.say(ann, "/nick Zed")
    assert [e["code"] for e in cluster.events(ann, "error")] == ["unavailable", "unavailable"]
    cluster.ledger.available = True
    cluster.say(ann, "/nick Zed")  # a refused rename does not block the next one
    assert cluster.rooms["a"].name_of(ann) == "Zed"


def test_resync_rejoins_members_the_ledger_lost_and_leaves_ghosts():
    cluster = Cluster("a")
    ann = cluster.join("a")
    cluster.say(ann, "/nick ann")
    room = cluster.rooms["a"]
    # The ledger restarted empty, but still lists a user of ours that is gone from here.
    cluster.ledger = LedgerSim()
    cluster.ledger.users["127.0.0.1:9"] = ("ghost", "a")
    cluster.ledger.seq = 1
    actions = room.handle(i.Resynced([("127.0.0.1:9", "ghost", "a")], 1, [], "e1"), cluster.now)
    cluster.run("a", actions)
    cluster.settle()
    joins = [e for e in cluster.events(ann, "join") if e["id"] == uid(ann)]
    assert joins and joins[-1]["name"] == "ann"
    (leave,) = cluster.events(ann, "leave")
    assert (leave["name"], leave["reason"]) == ("ghost", "error")
    cluster.say(ann, "/who")
    assert [u["name"] for u in cluster.events(ann, "who")[-1]["users"]] == ["ann"]


def test_a_member_reaped_while_its_node_was_slow_joins_again():
    cluster = Cluster("a", "b")
    ann, bob = cluster.join("a"), cluster.join("b")
    cluster.say(ann, "/nick ann")
    # Another node declared node "a" dead: the ledger appends ann's leave (reason error).
    name, node = cluster.ledger.users.pop(uid(ann))
    cluster.ledger.seq += 1
    leave = p.Leave(seq=cluster.ledger.seq, ts=cluster.now, id=uid(ann), name=name,
                    reason=p.LeaveReason.ERROR, room="main")  # fmt: skip
    for room_node, room in cluster.rooms.items():
        cluster.run(room_node, room.handle(i.Sequenced(leave, "b"), cluster.now))
    cluster.settle()
    rejoined = [e for e in cluster.events(bob, "join") if e["id"] == uid(ann)]
    assert rejoined and rejoined[-1]["name"] == "ann"
    cluster.say(ann, "still here")
    assert cluster.events(bob, "message")[-1]["text"] == "still here"


def test_a_newcomer_switching_to_json_early_still_sees_its_own_join():
    cluster = Cluster("a")
    room = cluster.rooms["a"]
    cluster.node_of[1] = "a"
    cluster.run("a", room.connect(1, "127.0.0.1", 40001, cluster.now))
    cluster.run("a", room.receive(1, "/format json", cluster.now))  # before the join is back
    cluster.settle()
    text, _, json_part = cluster.raw[1].partition(b'{"type":"format"')
    assert text.startswith(b"*** Welcome") and text.endswith(b"*** 127.0.0.1:40001 joined\n")
    assert [e["type"] for e in cluster.received[1]] == ["format", "welcome"]


def test_one_address_on_two_nodes_is_two_users_with_two_ids():
    cluster = Cluster("a", "b")
    # Both connect before either join is sequenced: neither node knows of the other's user.
    for conn, node in ((1, "a"), (2, "b")):
        cluster.node_of[conn] = node
        cluster.run(node, cluster.rooms[node].connect(conn, LOCAL, 41000, cluster.now))
    cluster._next_conn = 2
    cluster.settle()
    for conn in (1, 2):
        cluster.say(conn, "/format json")
    ids = {conn: cluster.events(conn, "welcome")[-1]["id"] for conn in (1, 2)}
    assert ids[1] == peer_id(LOCAL, 41000) and ids[2] != ids[1]
    assert ids[2].startswith(peer_id(LOCAL, 41000))  # the operator still sees the address
    cluster.say(1, "/who")
    assert {u["id"] for u in cluster.events(1, "who")[-1]["users"]} == set(ids.values())
    cluster.say(2, "twin here")
    assert [m["id"] for m in cluster.events(1, "message")] == [ids[2]]
    cluster.say(2, "/quit")
    cluster.say(1, "/who")
    assert [u["id"] for u in cluster.events(1, "who")[-1]["users"]] == [ids[1]]
    assert 1 not in cluster.closed


def test_a_newcomer_while_the_ledger_is_unavailable_has_its_lines_refused_not_queued():
    cluster = Cluster("a")
    room = cluster.rooms["a"]
    cluster.ledger.available = False
    cluster.node_of[1] = "a"
    cluster.run("a", room.connect(1, "127.0.0.1", 40001, cluster.now))
    cluster.settle()
    assert b"you will join when it is back" in cluster.raw[1]
    for line in ("hello", "again", "/nick Zed", "/format json", "/me waves"):
        cluster.run("a", room.receive(1, line, cluster.now))
    cluster.settle()
    assert cluster.raw[1].count(b"error: ") == 4  # everything but /format, at once
    cluster.ledger.available = True
    cluster.run("a", room.handle(i.Resynced([], cluster.ledger.seq, [], "e1"), cluster.now))
    cluster.settle()
    # It joins, in JSON as it asked; what it said meanwhile was never appended.
    assert [e["type"] for e in cluster.received[1]][:2] == ["format", "welcome"]
    assert cluster.events(1, "message") == cluster.events(1, "action") == []
    assert room.name_of(1) == "127.0.0.1:40001"


def test_lines_held_for_a_pending_join_are_bounded():
    cluster = Cluster("a", held_lines=3)
    room = cluster.rooms["a"]
    cluster.node_of[1] = "a"
    cluster.run("a", room.connect(1, "127.0.0.1", 40001, cluster.now))  # its join pending
    for n in range(5):
        cluster.run("a", room.receive(1, f"line {n}", cluster.now))
    cluster.settle()
    assert cluster.raw[1].count(b"error: ") == 2
    assert b"> line 2\n" in cluster.raw[1] and b"> line 3" not in cluster.raw[1]


def test_lines_held_for_a_pending_rename_are_bounded_and_say_why():
    cluster = Cluster("a", held_lines=3)
    room = cluster.rooms["a"]
    ann = cluster.join("a")
    cluster.run("a", room.receive(ann, "/nick Zed", cluster.now))  # with the ledger
    for n in range(5):
        cluster.run("a", room.receive(ann, f"line {n}", cluster.now))
    cluster.settle()
    errors = cluster.events(ann, "error")
    assert [e["code"] for e in errors] == ["unavailable", "unavailable"]
    assert errors[0]["message"] == "your line was not sent: the room has not taken your rename yet"
    said = [(e["name"], e["text"]) for e in cluster.events(ann, "message")]
    assert said == [("Zed", "line 0"), ("Zed", "line 1"), ("Zed", "line 2")]


def test_a_member_reaped_while_paused_is_told_and_told_when_its_name_was_taken():
    cluster = Cluster("a", "b")
    ann, bob = cluster.join("a"), cluster.join("b")
    cluster.say(ann, "/nick ann")
    # Node "a" is paused: it is reaped, and bob takes ann's name, before "a" hears of either.
    name, _ = cluster.ledger.users.pop(uid(ann))
    cluster.ledger.users[uid(bob)] = ("ann", "b")
    leave = p.Leave(seq=cluster.ledger.seq + 1, ts=cluster.now, id=uid(ann), name=name,
                    reason=p.LeaveReason.ERROR, room="main")  # fmt: skip
    rename = p.Rename(seq=cluster.ledger.seq + 2, ts=cluster.now, id=uid(bob), old=uid(bob),
                      new="ann", room="main")  # fmt: skip
    cluster.ledger.seq += 2
    for event in (leave, rename):
        for room_node, room in cluster.rooms.items():
            cluster.run(room_node, room.handle(i.Sequenced(event, "b"), cluster.now))
    cluster.settle()
    texts = [n["text"] for n in cluster.events(ann, "notice")]
    assert any("joining again" in t for t in texts), texts
    assert any("ann was taken" in t and uid(ann) in t for t in texts), texts
    rejoined = [e for e in cluster.events(bob, "join") if e["id"] == uid(ann)]
    assert rejoined and rejoined[-1]["name"] == uid(ann)
    assert cluster.rooms["a"].name_of(ann) == uid(ann)


def test_hidden_addresses_draw_another_guest_name_when_another_node_holds_it() -> None:
    cluster = Cluster("a", "b", hide_addresses=True)
    for room in cluster.rooms.values():
        room._random = random.Random(7)  # both nodes draw the same ids and guest names
    ann, bob = cluster.join("a"), cluster.join("b")
    users = cluster.rooms["a"].who(cluster.now).users
    assert len(users) == 2 and len({u.name for u in users}) == 2
    assert all(u.name.startswith("guest-") for u in users)
    assert len({u.id for u in users}) == 2 and not any("127.0.0.1" in u.id for u in users)
    assert [e["name"] for e in cluster.events(ann, "join")][-1] == users[1].name
    assert cluster.closed == []  # nobody was turned away
    assert bob not in cluster.closed


def test_a_look_alike_name_is_taken_across_nodes() -> None:
    cluster = Cluster("a", "b")
    ann, bob = cluster.join("a"), cluster.join("b")
    cluster.say(ann, "/nick ann")
    cluster.say(bob, "/nick \u0430nn")  # Cyrillic а: another node's user holds the look
    (error,) = cluster.events(bob, "error")
    assert error["code"] == "name_taken"


def test_bans_mutes_and_the_topic_set_on_one_node_hold_on_every_node():
    cluster = Cluster("a", "b")
    remote = "198.51.100.7"
    boss, ann = cluster.join("a"), cluster.join("a", host=remote)
    bob = cluster.join("b", host=remote)
    cluster.rooms["a"].state.member(boss).operator = True
    cluster.say(ann, "/nick ann")
    cluster.say(boss, "/mute ann 1h")
    assert cluster.rooms["b"].moderation.muted_names == {"ann": cluster.now + 3600}
    cluster.say(boss, "/unmute ann")
    assert cluster.rooms["b"].moderation.muted_names == {}
    cluster.say(boss, "/topic be kind")
    assert [e["text"] for e in cluster.events(bob, "topic")] == ["be kind"]
    assert cluster.rooms["b"].moderation.topic == p.Topic(text="be kind", by=uid(boss), room="main")
    cluster.say(boss, f"/ban {remote} 1h spam")  # ann's and bob's address
    assert bob in cluster.closed and ann in cluster.closed and boss not in cluster.closed
    leave = cluster.events(boss, "leave")[-1]
    assert (leave["reason"], leave["text"]) == ("kicked", "spam")
    assert cluster.rooms["b"].moderation.refusal(remote, cluster.now) is not None
    cluster.say(boss, f"/unban {remote}")
    assert cluster.rooms["b"].moderation.bans == {}
    records = {"ban": {}, "mute": {"bob": {"name": "bob", "until": None}}, "topic": {}}
    loaded = cluster.rooms["b"].handle(i.ModerationLoaded(records), cluster.now)
    assert cluster.rooms["b"].moderation.muted_names == {"bob": math.inf}
    assert cluster.rooms["b"].moderation.topic is None
    assert loaded == []  # nobody left on b to tell the topic was cleared
