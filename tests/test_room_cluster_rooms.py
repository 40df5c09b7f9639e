"""Rooms in a shared room, without I/O: Room objects joined by an in-memory ledger that,
as lua/append.lua does, gives each room its own seq and keeps each user's rooms and the
server-wide names (tests/room_helpers.py, LedgerSim)."""

from __future__ import annotations

import json

from chatroom import protocol as p
from chatroom.server.core import inputs as i
from tests.room_helpers import Cluster, uid


def in_room(events: list[dict], room: str) -> list[dict]:
    return [e for e in events if e.get("room") == room]


def test_chat_in_a_room_reaches_its_members_on_every_node_and_nobody_else():
    cluster = Cluster("a", "b")
    ann, bob, cat = cluster.join("a"), cluster.join("b"), cluster.join("b")
    cluster.say(ann, "/join dev")
    cluster.say(bob, "/join dev")
    cluster.say(ann, "hello dev")
    cluster.say(cat, "hello main")
    (said,) = cluster.events(bob, "message")[:1]
    assert (said["room"], said["text"]) == ("dev", "hello dev")
    assert [e["text"] for e in cluster.events(cat, "message")] == ["hello main"]
    # Each room numbers its own events: #dev's join, join, message are 1, 2, 3.
    dev = [e["seq"] for e in in_room(cluster.received[ann], "dev") if "seq" in e]
    assert dev == [1, 2, 3]
    assert [e["seq"] for e in in_room(cluster.received[bob], "dev") if "seq" in e] == [2, 3]
    cluster.say(bob, json.dumps({"room": "dev", "text": "/who"}))
    who = cluster.events(bob, "who")[-1]
    assert (who["room"], {u["id"] for u in who["users"]}) == ("dev", {uid(ann), uid(bob)})
    cluster.say(cat, "/who")
    assert {u["id"] for u in cluster.events(cat, "who")[-1]["users"]} == {
        uid(ann),
        uid(bob),
        uid(cat),
    }


def test_a_part_keeps_the_name_and_a_quit_leaves_every_room_on_every_node():
    cluster = Cluster("a", "b")
    ann, bob = cluster.join("a"), cluster.join("b")
    cluster.say(ann, "/nick ann")
    cluster.say(ann, "/join dev")
    cluster.say(ann, "/join ops")
    cluster.say(bob, "/join dev")
    cluster.say(ann, "/part ops")
    assert cluster.ledger.users[uid(ann)][0] == "ann"  # a part frees nothing
    assert cluster.ledger.rooms_of[uid(ann)] == ["main", "dev"]
    cluster.say(bob, "/nick ANN")
    assert [e["code"] for e in cluster.events(bob, "error")] == ["name_taken"]
    cluster.say(ann, "/quit")
    leaves = [e for e in cluster.events(bob, "leave") if e["id"] == uid(ann)]
    assert sorted(e["room"] for e in leaves) == ["dev", "main"]
    assert {e["reason"] for e in leaves} == {"quit"}
    assert uid(ann) not in cluster.ledger.users
    cluster.say(bob, "/nick ann")  # free once it left its last room
    assert cluster.events(bob, "rename")[-1]["new"] == "ann"


def test_a_text_user_moving_rooms_keeps_its_name_across_nodes():
    cluster = Cluster("a", "b")
    bob = cluster.join("b")
    cluster.node_of[9] = "a"  # an nc user on node a
    cluster.run("a", cluster.rooms["a"].connect(9, "127.0.0.1", 40009, cluster.now))
    cluster.settle()
    cluster.say(9, "/nick zed")
    cluster.say(9, "/join dev")
    assert b"now in #dev" in cluster.raw[9]
    assert cluster.ledger.rooms_of[uid(9)] == ["dev"]
    cluster.say(bob, "/nick zed")
    assert [e["code"] for e in cluster.events(bob, "error")] == ["name_taken"]
    cluster.say(9, "/part")
    assert cluster.ledger.rooms_of[uid(9)] == ["main"]
    assert [e["room"] for e in cluster.events(bob, "join") if e["id"] == uid(9)] == ["main"] * 2


def test_resync_takes_every_room_and_rejoins_the_rooms_the_ledger_lost():
    cluster = Cluster("a", "b")
    ann, bob = cluster.join("a"), cluster.join("b")
    cluster.say(ann, "/join dev")
    cluster.say(bob, "/join dev")
    cluster.say(ann, "before")
    room = cluster.rooms["b"]
    # The ledger lost ann's #dev (as after a restart of Redis from an older snapshot):
    # node a sees it lists ann in main only, and ann joins #dev again.
    said = p.Message(seq=3, ts=1.0, id=uid(ann), name=uid(ann), text="before", room="dev")
    synced = i.Resynced(
        [(uid(ann), uid(ann), "a", ("main",)), (uid(bob), uid(bob), "b", ("main", "dev"))],
        cluster.ledger.seq,
        [],
        "e1",
        rooms=(i.RoomSynced("dev", 3, [said]),),
    )
    cluster.ledger.rooms_of[uid(ann)].remove("dev")
    cluster.run("b", room.handle(synced, cluster.now))
    cluster.run("a", cluster.rooms["a"].handle(synced, cluster.now))
    cluster.settle()
    rejoined = [e for e in cluster.events(bob, "join") if e["id"] == uid(ann)]
    assert rejoined[-1]["room"] == "dev"
    assert cluster.ledger.rooms_of[uid(ann)] == ["main", "dev"]
    cluster.say(bob, json.dumps({"room": "dev", "text": "/who"}))
    assert {u["id"] for u in cluster.events(bob, "who")[-1]["users"]} == {uid(ann), uid(bob)}
    cluster.say(bob, json.dumps({"room": "dev", "text": "/history"}))
    assert "before" in cluster.raw[bob].decode()


def test_a_reaped_member_joins_each_of_its_rooms_again_told_once():
    cluster = Cluster("a", "b")
    ann, bob = cluster.join("a"), cluster.join("b")
    cluster.say(ann, "/join dev")
    cluster.say(bob, "/join dev")
    # Another node took node a for dead: the ledger appends ann's leaves, one per room.
    name, _ = cluster.ledger.users.pop(uid(ann))
    rooms = cluster.ledger.rooms_of.pop(uid(ann))
    for room in rooms:
        seq = cluster.ledger._next(room)
        leave = p.Leave(seq=seq, ts=cluster.now, id=uid(ann), name=name,
                        reason=p.LeaveReason.ERROR, room=room)  # fmt: skip
        for node, each in cluster.rooms.items():
            cluster.run(node, each.handle(i.Sequenced(leave, "b"), cluster.now))
    cluster.settle()
    rejoined = sorted(e["room"] for e in cluster.events(bob, "join") if e["id"] == uid(ann))
    assert rejoined == ["dev", "main"]  # bob came after ann's first joins
    told = [e for e in cluster.events(ann, "notice") if "taken for gone" in e["text"]]
    assert len(told) == 1


def test_a_room_past_the_ledger_s_limit_is_refused_and_an_nc_user_comes_back_home():
    cluster = Cluster("a", "b")
    bob = cluster.join("b")
    cluster.say(bob, "/join dev")
    cluster.ledger.max_rooms = 2  # main and #dev: another node's #dev counts here too
    cluster.node_of[9] = "a"
    cluster.run("a", cluster.rooms["a"].connect(9, "127.0.0.1", 40009, cluster.now))
    cluster.settle()
    cluster.say(9, "/join ops")  # an nc user: it leaves main first, then is refused
    assert b"error: the server has" in cluster.raw[9]
    assert cluster.ledger.rooms_of[uid(9)] == ["main"]  # back home
    cluster.say(bob, json.dumps({"room": "main", "text": "/who"}))
    assert uid(9) in {u["id"] for u in cluster.events(bob, "who")[-1]["users"]}
    cluster.say(9, "/join dev")  # a room in use is no new room
    assert cluster.ledger.rooms_of[uid(9)] == ["dev"]


def test_a_topic_of_another_room_is_shared_with_the_other_nodes():
    cluster = Cluster("a", "b")
    ann, bob = cluster.join("a"), cluster.join("b")
    cluster.say(bob, "/join dev")
    room = cluster.rooms["a"]
    cluster.run("a", room.handle(i.ModerationChanged("topic", "#dev", {"text": "ship it"}), 1))
    cluster.run("b", cluster.rooms["b"].handle(
        i.ModerationChanged("topic", "#dev", {"text": "ship it", "by": "op"}), 1
    ))  # fmt: skip
    cluster.settle()
    (topic,) = cluster.events(bob, "topic")
    assert (topic["room"], topic["text"]) == ("dev", "ship it")
    assert cluster.events(ann, "topic") == []  # ann is not in #dev
    loaded = cluster.rooms["b"].handle(i.ModerationLoaded({"topic": {}}), 2)
    cluster.run("b", loaded)  # the record is gone from Redis: the topic is cleared
    cluster.settle()
    assert cluster.events(bob, "topic")[-1]["text"] == ""


def test_an_nc_user_whose_move_went_through_while_cut_off_is_where_the_ledger_says():
    cluster = Cluster("a")
    cluster.node_of[9] = "a"
    cluster.run("a", cluster.rooms["a"].connect(9, "127.0.0.1", 40009, cluster.now))
    cluster.settle()
    # Its /join dev reached the ledger (part of main, join of #dev) but the answers were
    # lost with the connection to Redis: the re-sync has it in #dev alone.
    cluster.ledger.rooms_of[uid(9)] = ["dev"]
    cluster.ledger.seqs["dev"] = 1
    synced = i.Resynced(
        [(uid(9), uid(9), "a", ("dev",))],
        cluster.ledger.seq,
        [],
        "e1",
        rooms=(i.RoomSynced("dev", 1, []),),
    )
    cluster.run("a", cluster.rooms["a"].handle(synced, cluster.now))
    cluster.settle()
    assert b"now in #dev" in cluster.raw[9]
    assert cluster.ledger.rooms_of[uid(9)] == ["dev"]  # not joined to main again
    cluster.say(9, "hello")
    cluster.say(9, "/who")
    assert b"Online users (1)" in cluster.raw[9]
