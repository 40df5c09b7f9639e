"""One room across nodes, without I/O: Room objects joined by an in-memory ledger.

The ledger here does what the Redis ledger does — one seq counter, atomic name claims,
refusals — so these tests pin down the room's side of the contract: every node applies
the same events in the same order, names stay unique across nodes, and a refusal reaches
the user whose line it was.
"""

from __future__ import annotations

import json
from dataclasses import replace

from chatroom import protocol as p
from chatroom.server.actions import Append, Close, SendPrivate
from chatroom.server.cluster_room import ClusterRoom
from chatroom.server.config import RoomRules, ServerConfig
from chatroom.server.outbox import Outbox

RULES = RoomRules.from_config(ServerConfig(idle_timeout=0, history=5))


class LedgerSim:
    """The shared ledger: sequences appends and keeps the room-wide names atomically."""

    def __init__(self) -> None:
        self.seq = 0
        self.users: dict[str, tuple[str, str]] = {}  # id -> (name, node)
        self.available = True

    def append(self, event: p.BroadcastEvent, node: str) -> p.BroadcastEvent | str:
        if not self.available:
            return "unavailable"
        names = {p.name_key(name): uid for uid, (name, _) in self.users.items()}
        match event:
            case p.Join():
                holder = names.get(p.name_key(event.name))
                if holder is not None and holder != event.id:
                    return "taken"
                self.users[event.id] = (event.name, node)
            case p.Rename():
                if event.id not in self.users:
                    return "gone"
                holder = names.get(p.name_key(event.new))
                if holder is not None and holder != event.id:
                    return "taken"
                self.users[event.id] = (event.new, self.users[event.id][1])
            case p.Leave():
                if self.users.pop(event.id, None) is None:
                    return "gone"
            case _:
                if event.id not in self.users:
                    return "gone"
        self.seq += 1
        return replace(event, seq=self.seq)


class Cluster:
    """Nodes, their outboxes, and the ledger; appends are held until :meth:`settle`."""

    def __init__(self, *nodes: str) -> None:
        self.ledger = LedgerSim()
        self.rooms = {node: ClusterRoom(RULES, node=node) for node in nodes}
        self.outboxes = {node: Outbox() for node in nodes}
        self.node_of: dict[int, str] = {}
        self.pending: list[tuple[str, Append]] = []
        self.received: dict[int, list[dict]] = {}
        self.raw: dict[int, bytes] = {}  # every byte each connection got, text lines too
        self.closed: list[int] = []
        self.now = 1000.0
        self._next_conn = 0

    def run(self, node: str, actions) -> None:
        outbox = self.outboxes[node]
        for action in actions:
            if outbox.queue(action):  # as the server does
                continue
            match action:
                case Close():
                    self.closed.append(action.conn)
                case Append():
                    self.pending.append((node, action))
                case SendPrivate():
                    self.run(
                        action.node,
                        self.rooms[action.node].remote_private(action.recipient_id, action.event),
                    )

    def settle(self) -> None:
        """The ledger takes every pending append in order; every node applies the results."""
        while self.pending:
            node, append = self.pending.pop(0)
            result = self.ledger.append(append.event, node)
            if isinstance(result, str):
                self.run(node, self.rooms[node].refused(append.conn, append.event, result))
                continue
            for other, room in self.rooms.items():
                self.run(other, room.sequenced(result, node))
        self._collect()

    def _collect(self) -> None:
        for outbox in self.outboxes.values():
            for conn, data in outbox.take():
                self.raw[conn] = self.raw.get(conn, b"") + data
                for line in data.decode().splitlines():
                    if line.startswith("{"):
                        self.received.setdefault(conn, []).append(json.loads(line))

    def join(self, node: str) -> int:
        """A JSON-mode user on ``node``; returns its connection id."""
        self._next_conn += 1
        conn = self._next_conn
        self.node_of[conn] = node
        self.run(node, self.rooms[node].connect(conn, "127.0.0.1", 40000 + conn, self.now))
        self.settle()
        self.say(conn, "/format json")
        return conn

    def say(self, conn: int, line: str) -> None:
        node = self.node_of[conn]
        self.run(node, self.rooms[node].receive(conn, line, self.now))
        self.settle()

    def events(self, conn: int, kind: str) -> list[dict]:
        return [e for e in self.received.get(conn, []) if e["type"] == kind]


def uid(conn: int) -> str:
    return f"127.0.0.1:{40000 + conn}"


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
    actions = room.resync([("127.0.0.1:9", "ghost", "a")], 1, [], cluster.now)
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
                    reason=p.LeaveReason.ERROR)  # fmt: skip
    for room_node, room in cluster.rooms.items():
        cluster.run(room_node, room.sequenced(leave, "b"))
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
