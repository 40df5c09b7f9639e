"""Registered names in the I/O-free room (issue 24): /register, /login, /unregister, the
name held for its owner alone (look-alikes too), the limits on guessing and registering,
and what is kept (Persist) and restored. The adapter's pool is played by the Sim: the
hash and the check are real scrypt, made when the Sim carries out the actions."""

from __future__ import annotations

import math
import random

from chatroom.protocol import Error, ErrorCode, Fact, LeaveReason, Notice, Rename, Who
from chatroom.server.core import inputs as i
from chatroom.server.core.actions import Check, CheckPassword, HashPassword, Moderated, Restored
from chatroom.server.core.passwords import check_password, hash_password
from chatroom.server.core.room import Room
from chatroom.server.core.text_format import render_text
from tests.room_helpers import LOCAL, Cluster, Sim, room_rules, uid

CYRILLIC_A = "\u0430"  # looks like a Latin a


def sim_with(n: int = 0, restored: Restored | None = None, **rules: object) -> Sim:
    """A room kept in a state file (it reports Persist) with connections 1..n joined."""
    sim = Sim(Room(room_rules(**rules), restored=restored or Restored()))
    for conn in range(1, n + 1):
        sim.connect(conn)
    sim.inbox.clear()
    return sim


def told(sim: Sim, conn: int) -> list[tuple[str, str]]:
    """The errors and notices ``conn`` got since the last look: (code, text)."""
    return [
        (e.code.value, e.message if isinstance(e, Error) else e.text)
        for e in sim.take(conn)
        if isinstance(e, Error | Notice)
    ]


def registered(sim: Sim, conn: int, name: str, password: str = "hunter2") -> None:
    """``conn`` takes ``name`` and registers it."""
    sim.send(conn, f"/nick {name}")
    sim.send(conn, f"/register {password}")
    [(code, text)] = [t for t in told(sim, conn) if t[0] == "info"]
    assert text.startswith(f"{name} is registered to you"), text
    assert sim.room.accounts.get(name) is not None


def test_a_registered_name_is_refused_to_others_with_a_hint_to_login() -> None:
    sim = sim_with(2)
    registered(sim, 1, "alice")
    sim.disconnect(1)
    sim.send(2, "/nick alice")
    assert told(sim, 2) == [
        ("registered", "the name alice is registered: if it is yours, /login alice PASSWORD")
    ]
    assert sim.room.name_of(2) == sim.id(2)


def test_a_look_alike_of_a_registered_name_is_refused_too() -> None:
    sim = sim_with(2)
    registered(sim, 1, "alice")
    sim.disconnect(1)
    for name in (f"{CYRILLIC_A}lice", "ALICE", "a1ice"):  # Cyrillic a; case; 1 for l
        sim.send(2, f"/nick {name}")
        [(code, text)] = told(sim, 2)
        assert code == "registered" and "/login alice PASSWORD" in text, (name, text)
    assert "looks like the registered name alice" in render_text(
        Error(code=ErrorCode.REGISTERED, message=text)
    )


def test_login_takes_the_name_as_a_rename_and_who_marks_it() -> None:
    sim = sim_with(2)
    registered(sim, 1, "alice")
    sim.disconnect(1)
    sim.inbox.clear()
    sim.send(2, "/login ALICE hunter2")  # any form of the name: the registered one is taken
    renames = [e for e in sim.take(2) if isinstance(e, Rename)]
    assert [(r.old, r.new) for r in renames] == [(sim.id(2), "alice")]
    sim.send(2, "/who")
    [who] = [e for e in sim.take(2) if isinstance(e, Who)]
    assert [(u.name, u.registered) for u in who.users] == [("alice", True)]
    assert render_text(who).splitlines()[1] == f"  alice  ({sim.id(2)}, idle 0s) (registered)"
    assert sim.room.who(sim.now).users[0].registered


def test_a_newcomer_logs_in_right_after_joining() -> None:
    sim = sim_with(1)
    registered(sim, 1, "alice")
    sim.disconnect(1)
    sim.connect(5)
    sim.send(5, "/login alice hunter2")
    assert sim.room.name_of(5) == "alice"
    facts = [e.fact for e in sim.take(5) if isinstance(e, Notice)]
    assert Fact.REGISTERED in facts


def test_a_wrong_login_is_bad_password_and_logged_without_the_password() -> None:
    sim = sim_with(2)
    registered(sim, 1, "alice")
    sim.disconnect(1)
    sim.send(2, "/login alice sesame-guess")
    assert told(sim, 2) == [("bad_password", "wrong password for alice")]
    reports = [r for r in sim.wire.reports if isinstance(r, Moderated) and r.flood]
    assert [(r.text, r.flood) for r in reports] == [("wrong /login for 'alice'", "wrong /login")]
    assert "sesame-guess" not in repr(sim.wire.reports)
    assert sim.room.name_of(2) == sim.id(2)


def test_the_work_asked_of_the_pool_hides_the_password() -> None:
    sim = sim_with(1)
    sim.send(1, "/nick alice")
    [work] = sim.room.receive(1, "/register hunter2", sim.now)
    assert work == HashPassword(1, "alice", "hunter2") and "hunter2" not in repr(work)
    sim.apply([work])
    sim.disconnect(1)
    sim.connect(2)
    [check] = [a for a in sim.room.receive(2, "/login alice guess", sim.now)]
    assert isinstance(check, CheckPassword) and check.purpose is Check.LOGIN
    assert "guess" not in repr(check) and check_password("hunter2", check.stored)


def test_missing_arguments_and_bad_passwords_are_one_line_errors() -> None:
    sim = sim_with(1)
    for line, expected in (
        ("/register", ("bad_usage", "usage: /register PASSWORD")),
        ("/login alice", ("bad_usage", "usage: /login NAME PASSWORD")),
        ("/login", ("bad_usage", "usage: /login NAME PASSWORD")),
        ("/unregister a b", ("bad_usage", "usage: /unregister [NAME]")),
        (
            "/register pw",
            ("bad_usage", "choose a name first (/nick NAME), then /register PASSWORD to keep it"),
        ),  # noqa: E501
        (
            "/login nobody pw",
            ("bad_usage", "no registered name nobody (/register PASSWORD keeps yours)"),
        ),  # noqa: E501
        ("/unregister", ("bad_usage", f"the name {sim.id(1)} is not registered")),
    ):
        sim.send(1, line)
        assert told(sim, 1) == [expected], line
    sim.send(1, "/nick alice")
    sim.take(1)
    sim.send(1, "/register abc")
    assert told(sim, 1) == [("bad_usage", "a password has 4 to 128 characters")]
    sim.send(1, "/register " + "x" * 129)
    assert told(sim, 1) == [("bad_usage", "a password has 4 to 128 characters")]
    assert len(sim.room.accounts) == 0


def test_registering_twice_or_a_name_registered_meanwhile() -> None:
    sim = sim_with(2)
    registered(sim, 1, "alice")
    sim.send(1, "/register other-password")
    assert told(sim, 1) == [("info", "alice is registered to you already (/unregister lets it go)")]


def test_the_owner_renames_away_and_back_without_logging_in_again() -> None:
    sim = sim_with(1)
    registered(sim, 1, "alice")
    sim.send(1, "/nick al")
    sim.send(1, "/nick alice")
    assert sim.room.name_of(1) == "alice"


def test_login_while_another_connection_holds_the_name_is_name_taken() -> None:
    sim = sim_with(2)
    registered(sim, 1, "alice")
    sim.send(2, "/login alice hunter2")
    [(code, text)] = told(sim, 2)
    assert code == "name_taken" and "in use by another connection" in text
    assert sim.checks == []  # refused before any hashing


def test_wrong_logins_are_limited_per_name_from_any_address() -> None:
    sim = sim_with(1, login_name_fail_burst=2, login_name_fail_rate=6.0)  # a token every 10s
    registered(sim, 1, "alice")
    sim.disconnect(1)
    for n, host in enumerate(("198.51.100.1", "198.51.100.2", "198.51.100.3"), start=10):
        sim.connect(n, host)
        sim.send(n, "/login alice guess")
    assert told(sim, 10)[-1] == ("bad_password", "wrong password for alice")
    assert told(sim, 11)[-1] == ("bad_password", "wrong password for alice")
    assert told(sim, 12)[-1] == (
        "bad_password", "too many wrong passwords for alice; try again in 10s"
    )  # fmt: skip
    sim.send(12, "/login alice hunter2")  # the owner too: the name takes no guess now
    assert told(sim, 12)[-1][0] == "bad_password"
    sim.now += 10
    sim.send(12, "/login alice hunter2")
    assert sim.room.name_of(12) == "alice"


def test_logins_are_limited_per_address_and_a_right_one_costs_nothing() -> None:
    sim = sim_with(1, login_fail_burst=2, login_fail_rate=6.0, login_name_fail_burst=100)
    registered(sim, 1, "alice")
    sim.send(1, "/nick bob")
    sim.send(1, "/register hunter2")
    sim.disconnect(1)
    sim.take(1)
    sim.connect(2)
    sim.send(2, "/login alice hunter2")  # right: its token comes back
    sim.send(2, "/login bob guess1")
    sim.send(2, "/login bob guess2")
    sim.send(2, "/login bob hunter2")
    assert told(sim, 2)[-1] == (
        "bad_password", "too many /login attempts from your address; try again in 10s"
    )  # fmt: skip
    sim.disconnect(2)
    sim.connect(3)  # the same address: reconnecting gains nothing
    sim.send(3, "/login bob hunter2")
    assert told(sim, 3)[-1][0] == "bad_password" and sim.room.name_of(3) != "bob"


def test_registrations_are_limited_per_address() -> None:
    sim = sim_with(1, register_burst=2, register_rate=1.0)  # a token a minute
    for name in ("n1", "n2", "n3"):
        sim.send(1, f"/nick {name}")
        sim.send(1, "/register hunter2")
    assert told(sim, 1)[-1] == (
        "bad_usage", "too many names registered from your address; try again in 1m"
    )  # fmt: skip
    assert len(sim.room.accounts) == 2
    sim.connect(2, "198.51.100.7")  # another address has its own
    sim.send(2, "/nick n4")
    sim.send(2, "/register hunter2")
    assert len(sim.room.accounts) == 3


def test_the_room_keeps_at_most_max_accounts() -> None:
    sim = sim_with(1, max_accounts=1)
    registered(sim, 1, "alice")
    sim.send(1, "/nick bob")
    sim.send(1, "/register hunter2")
    assert told(sim, 1)[-1] == ("unavailable", "this server keeps 1 registered names, all taken")


def test_a_busy_pool_refuses_and_gives_the_token_back() -> None:
    sim = sim_with(1, register_burst=1)
    sim.hold_checks = True
    sim.send(1, "/nick alice")
    sim.send(1, "/register hunter2")
    sim.send(1, "/register again")  # one piece of work at a time per connection
    assert told(sim, 1)[-1][1].startswith("your last /login, /register or /oper is still")
    sim.run_checks(busy=True)
    assert told(sim, 1)[-1] == (
        "unavailable", "the server is busy checking other passwords; try again in a moment"
    )  # fmt: skip
    sim.hold_checks = False
    sim.send(1, "/register hunter2")  # its only token was given back
    assert sim.room.accounts.get("alice") is not None


def test_the_pool_is_shared_with_oper() -> None:
    ops = {"boss": ("boss", hash_password("s3cret"))}
    rules = room_rules(oper_check_threads=1, oper_check_queue=1)
    sim = Sim(Room(rules, restored=Restored(), operators=ops))
    for conn in (1, 2, 3):
        sim.connect(conn)
    sim.hold_checks = True
    sim.send(1, "/oper boss s3cret")  # one place of the two
    sim.send(2, "/nick n2")
    sim.send(2, "/register hunter2")  # the other
    sim.send(3, "/nick n3")
    sim.send(3, "/register hunter2")
    assert len(sim.checks) == 2
    assert told(sim, 3)[-1] == (
        "unavailable", "the server is busy checking other passwords; try again in a moment"
    )  # fmt: skip


def test_a_rename_while_the_hash_is_made_registers_nothing() -> None:
    sim = sim_with(1)
    sim.hold_checks = True
    sim.send(1, "/nick alice")
    sim.send(1, "/register hunter2")
    sim.send(1, "/nick bob")
    sim.run_checks()
    assert told(sim, 1)[-1] == (
        "registered", "you are no longer alice: /register again to keep bob"
    )  # fmt: skip
    assert len(sim.room.accounts) == 0


def test_unregister_lets_the_name_go_and_only_operators_drop_others() -> None:
    sim = sim_with(2)
    registered(sim, 1, "alice")
    sim.send(2, "/unregister alice")
    assert told(sim, 2)[-1][0] == "not_operator"
    sim.send(1, "/unregister")
    assert told(sim, 1)[-1] == ("info", "alice is no longer registered")
    assert sim.room.accounts.get("alice") is None
    assert sim.room.name_of(1) == "alice"  # the name stays, unregistered
    kept = [(a.kind, a.key, a.data) for a in sim.wire.persisted if a.kind == "account"]
    assert kept[-1] == ("account", "alice", None)


def test_an_operator_drops_any_registered_name_and_its_owner_is_told() -> None:
    ops = {"boss": ("boss", hash_password("s3cret"))}
    sim = Sim(Room(room_rules(), restored=Restored(), operators=ops))
    sim.connect(1)
    sim.connect(2)
    registered(sim, 1, "alice")
    sim.send(2, "/oper boss s3cret")
    sim.take(2)
    sim.send(2, "/unregister ALICE")
    assert told(sim, 2) == [("info", "dropped the registered name alice")]
    assert told(sim, 1) == [("info", "alice is no longer registered (dropped by 127.0.0.1:5002)")]
    reports = [r.text for r in sim.wire.reports if isinstance(r, Moderated)]
    assert "127.0.0.1:5002 unregistered alice" in reports


def test_a_name_dropped_and_registered_again_is_another_account() -> None:
    # The ledger's view replaces this node's (after an outage, say): alice was dropped and
    # registered again by someone else meanwhile, with another password.
    sim = sim_with(1)
    registered(sim, 1, "alice")
    sim.send(1, "/nick al")  # the old owner's connection stays, under another name
    again = {"name": "alice", "hash": hash_password("another"), "created": sim.now + 1}
    sim.apply(sim.room.handle(i.ModerationLoaded({"account": {"alice": again}}), sim.now))
    sim.send(1, "/nick alice")
    assert told(sim, 1)[-1][0] == "registered"


def test_a_ban_by_name_refuses_the_registered_names_login() -> None:
    ops = {"boss": ("boss", hash_password("s3cret"))}
    sim = Sim(Room(room_rules(), restored=Restored(), operators=ops))
    sim.connect(1, "198.51.100.9")
    sim.connect(2)
    registered(sim, 1, "alice")
    sim.send(2, "/oper boss s3cret")
    sim.send(2, "/ban alice 1h spam")
    assert 1 in sim.closed
    sim.connect(3, "198.51.100.44")  # another address
    sim.send(3, "/login alice hunter2")
    assert told(sim, 3)[-1] == ("bad_usage", "the name alice is banned for 1h more")
    sim.send(2, "/unban alice")
    sim.send(3, "/login alice hunter2")
    assert sim.room.name_of(3) == "alice"


def test_a_guest_is_never_given_a_registered_name() -> None:
    draws = random.Random(7)
    sim = Sim(Room(room_rules(hide_addresses=True), rng=draws, restored=Restored()))
    sim.connect(1)
    name = sim.room.name_of(1)
    sim.send(1, "/register hunter2")  # a guest name is a name: it may be kept
    assert sim.room.accounts.get(name) is not None
    sim.disconnect(1)
    draws.seed(7)  # the same draws again: the same guest name first
    sim.connect(2)
    assert sim.room.name_of(2) != name


def test_what_is_kept_comes_back_and_bad_records_are_skipped() -> None:
    sim = sim_with(1)
    registered(sim, 1, "alice")
    [kept] = [a for a in sim.wire.persisted if a.kind == "account"]
    assert kept.key == "alice" and kept.data["name"] == "alice"
    assert check_password("hunter2", kept.data["hash"])
    restored = Restored(
        accounts={
            kept.key: kept.data,
            "x": {"name": "bad name", "hash": kept.data["hash"], "created": 1.0},
            "y": {"name": "bob", "hash": "scrypt$1$1$1$AA$AA", "created": 1.0},
            "z": {"name": "carol", "hash": kept.data["hash"], "created": math.nan},
        }
    )
    again = sim_with(0, restored)
    assert len(again.room.accounts) == 1
    again.connect(1)
    again.send(1, "/login alice hunter2")
    assert again.room.name_of(1) == "alice"


def test_registered_names_are_shared_by_every_node() -> None:
    cluster = Cluster("a", "b")
    a, b = cluster.rooms["a"], cluster.rooms["b"]
    one, two = 1, 2
    cluster.node_of[one] = "a"
    cluster.run("a", a.connect(one, LOCAL, 40000 + one, cluster.now))
    cluster.run("b", b.connect(two, LOCAL, 40000 + two, cluster.now))
    cluster.settle()
    for line in ("/nick alice", "/register hunter2"):
        cluster.run("a", a.receive(one, line, cluster.now))
        cluster.settle()
    assert b.accounts.get("alice") is not None  # the Persist reached b
    cluster.run("a", a.disconnect(one, LeaveReason.EOF, cluster.now))
    cluster.settle()
    cluster.run("b", b.receive(two, "/nick alice", cluster.now))
    cluster.settle()
    assert b.name_of(two) == uid(two)
    cluster.run("b", b.receive(two, "/login alice hunter2", cluster.now))
    cluster.settle()
    assert b.name_of(two) == "alice"
    assert [u.registered for u in a.who(cluster.now).users] == [True]
