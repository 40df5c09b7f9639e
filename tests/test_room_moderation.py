"""Moderation in the I/O-free room: operators (/oper), and what only they may do."""

from __future__ import annotations

import pytest

from chatroom.protocol import (
    Error,
    ErrorCode,
    Leave,
    LeaveReason,
    Notice,
    NoticeCode,
    Topic,
    Who,
    decode_json,
)
from chatroom.protocol.commands import parse_duration
from chatroom.server.core.actions import Left, Moderated, Restored, TurnedAway, encode
from chatroom.server.core.admission import Cause
from chatroom.server.core.passwords import check_password, hash_password, parse_operators
from chatroom.server.core.room import Room
from tests.room_helpers import JSON, REMOTE, TEXT, Sim, only_to, room_rules

HASH = hash_password("s3cret")
OPS = f"# operators\n\nboss {HASH}\n"
SALT, DIGEST = "A" * 24, "A" * 44  # 16 and 32 bytes of base64
OUT_OF_RANGE = "scrypt parameters out of range (N a power of two, r and p at least 1)"


def mod_room(
    n: int, restored: Restored | None = None, motd: str | None = None, **rules: object
) -> Sim:
    """A room with operators ``boss``/``s3cret``, connections 1..n joined, inboxes empty;
    with ``restored``, a room made from what a state file kept."""
    room = Room(room_rules(**rules), restored=restored, operators=parse_operators(OPS), motd=motd)
    sim = Sim(room)
    for conn in range(1, n + 1):
        sim.connect(conn)
    sim.inbox.clear()
    return sim


def op(sim: Sim, conn: int = 1) -> None:
    sim.send(conn, "/oper boss s3cret")
    sim.inbox.clear()


def errors(events: list) -> list[ErrorCode]:
    return [e.code for e in events if isinstance(e, Error)]


# --- passwords and the ops file


def test_a_hash_checks_its_password_only() -> None:
    assert check_password("s3cret", HASH)
    assert not check_password("s3cret ", HASH)
    assert hash_password("s3cret") != HASH  # salted


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("boss", "line 1: expected: NAME scrypt$..."),
        (f"# c\nboss {HASH} extra", "line 2: expected: NAME scrypt$..."),
        ("boss md5$x", "line 1: expected: NAME scrypt$..."),
        ("boss sha$1$2$3$4$5", "line 1: unknown hash kind 'sha' (scrypt$... expected)"),
        (f"boss scrypt$3$8$1${SALT}${DIGEST}", f"line 1: {OUT_OF_RANGE}"),
        (f"boss scrypt$0$8$1${SALT}${DIGEST}", f"line 1: {OUT_OF_RANGE}"),
        (f"boss scrypt$1024$0$1${SALT}${DIGEST}", f"line 1: {OUT_OF_RANGE}"),
        (f"boss scrypt$1024$8$0${SALT}${DIGEST}", f"line 1: {OUT_OF_RANGE}"),
        (f"boss scrypt$-1024$8$1${SALT}${DIGEST}",
         "line 1: scrypt parameters out of range (N, r and p are whole numbers)"),
        (f"boss scrypt$1e3$8$1${SALT}${DIGEST}",
         "line 1: scrypt parameters out of range (N, r and p are whole numbers)"),
        (f"boss scrypt$99999999999$8$1${SALT}${DIGEST}",
         "line 1: scrypt parameters out of range (N, r and p are whole numbers)"),
        # What the old check let through, and scrypt refused at the first /oper:
        (f"boss scrypt$65536$32$1${SALT}${DIGEST}", "line 1: scrypt needs 256 MiB a check "
         "with N=65536 r=32 p=1, more than the 64 MiB allowed"),
        (f"boss scrypt$262144$8$1${SALT}${DIGEST}", "line 1: scrypt needs 256 MiB a check "
         "with N=262144 r=8 p=1, more than the 64 MiB allowed"),
        # ... and what held up the event loop 0.6 s a check:
        (f"boss scrypt$16384$8$16${SALT}${DIGEST}", "line 1: scrypt costs N*r*p = 2097152 a "
         "check, more than 1048576 (8 times the default's)"),
        (f"boss scrypt$1024$8$1$AA==${DIGEST}", "line 1: a salt of 1 bytes (8 to 64)"),
        (f"boss scrypt$1024$8$1${'A' * 88}${DIGEST}", "line 1: a salt of 66 bytes (8 to 64)"),
        (f"boss scrypt$1024$8$1${SALT}$AAAA", "line 1: a hash of 3 bytes (16 to 64)"),
        (f"boss scrypt$1024$8$1${SALT}$", "line 1: a hash of 0 bytes (16 to 64)"),
        (f"boss scrypt$1024$8$1${SALT}$AA=", "line 1: the salt or the hash is not valid base64"),
        (f"boss scrypt$1024$8$1$!!!!${DIGEST}",
         "line 1: the salt or the hash is not valid base64"),
        (f"a|b {HASH}", "line 1: a name cannot contain '|'"),
    ],
)  # fmt: skip
def test_a_bad_ops_file_is_refused_with_its_line(text: str, problem: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_operators(text)
    assert str(info.value) == problem


# --- /oper


def test_oper_with_the_right_password_marks_the_user_in_who() -> None:
    sim = mod_room(2)
    events = only_to(sim.send(1, "/oper BOSS s3cret"), 1)  # names match without case
    assert [(type(e), e.code) for e in events] == [(Notice, NoticeCode.INFO)]
    assert "now an operator" in events[0].text
    assert any(isinstance(r, Moderated) for r in sim.wire.reports)
    who = only_to(sim.send(2, "who"), 2)[0]
    assert isinstance(who, Who)
    assert [u.op for u in who.users] == [True, False]
    text = encode(who, TEXT).decode()
    assert f"  @{sim.id(1)}  (" in text and f"  {sim.id(2)}  (" in text
    line = encode(who, JSON).decode()
    assert line.count('"op":true') == 1 and '"op":false' not in line
    assert decode_json(line) == who


def test_wrong_oper_attempts_are_refused_logged_without_password_and_slowed() -> None:
    sim = mod_room(1)
    events = only_to(sim.send(1, "/oper boss wrong-pass"), 1)
    assert errors(events) == [ErrorCode.NOT_OPERATOR]
    reports = [r for r in sim.wire.reports if isinstance(r, Moderated)]
    assert len(reports) == 1 and "wrong-pass" not in reports[0].text
    # at once again: refused without checking, even with the right password
    events = only_to(sim.send(1, "/oper boss s3cret"), 1)
    assert errors(events) == [ErrorCode.NOT_OPERATOR] and "try again in" in events[0].message
    sim.now += 2
    events = only_to(sim.send(1, "/oper nobody s3cret"), 1)  # an unknown name: the same
    assert errors(events) == [ErrorCode.NOT_OPERATOR] and "wrong" in events[0].message
    sim.now += 3  # the second failure waits 4 s
    events = only_to(sim.send(1, "/oper boss s3cret"), 1)
    assert errors(events) == [ErrorCode.NOT_OPERATOR]
    sim.now += 1
    assert "now an operator" in only_to(sim.send(1, "/oper boss s3cret"), 1)[0].text


def test_oper_needs_both_arguments_and_a_room_without_operators_has_none() -> None:
    sim = mod_room(1)
    assert errors(only_to(sim.send(1, "/oper boss"), 1)) == [ErrorCode.BAD_USAGE]
    plain = Sim()
    plain.connect(1)
    plain.inbox.clear()
    assert errors(only_to(plain.send(1, "/oper boss s3cret"), 1)) == [ErrorCode.NOT_OPERATOR]


def test_help_lists_operator_commands_to_operators_only() -> None:
    sim = mod_room(2)
    op(sim)
    assert "Operator commands" in only_to(sim.send(1, "/help"), 1)[0].text
    assert "Operator commands" not in only_to(sim.send(2, "/help"), 2)[0].text


# --- durations


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("10m", 600), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), ("2H", 7200)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10", "m", "0s", "-5m", "1.5h", "10x", "1 h", "9" * 9 + "s"])
def test_bad_durations(text: str) -> None:
    assert parse_duration(text) is None


# --- operators' commands


@pytest.mark.parametrize(
    "line", ["/kick x", "/mute x", "/unmute x", "/topic new topic", "/mute x 10m"]
)
def test_operator_commands_refuse_others(line: str) -> None:
    sim = mod_room(2)
    events = only_to(sim.send(2, line), 2)
    assert errors(events) == [ErrorCode.NOT_OPERATOR]


def test_kick_sends_the_user_away_and_everyone_sees_who_did_it() -> None:
    sim = mod_room(3)
    op(sim)
    sim.send(1, f"/kick {sim.id(2)} flooding")
    assert 2 in sim.closed and 2 not in sim.room
    told = sim.take(2)
    assert told[-1] == Notice(
        code=NoticeCode.INFO, text=f"you were kicked by {sim.id(1)}: flooding"
    )
    leave = sim.take(3)[-1]
    assert isinstance(leave, Leave) and leave.reason is LeaveReason.KICKED
    assert (leave.by, leave.text) == (sim.id(1), "flooding")
    assert encode(leave, TEXT) == f"*** {sim.id(2)} was kicked by {sim.id(1)} (flooding)\n".encode()
    assert any(isinstance(r, Left) and r.reason is LeaveReason.KICKED for r in sim.wire.reports)


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("/kick nobody", ErrorCode.UNKNOWN_USER),
        ("/kick", ErrorCode.BAD_USAGE),
        ("/mute nobody", ErrorCode.UNKNOWN_USER),
        ("/mute", ErrorCode.BAD_USAGE),
        ("/mute x soon", ErrorCode.BAD_USAGE),
        ("/unmute", ErrorCode.BAD_USAGE),
        ("/unmute nobody", ErrorCode.UNKNOWN_USER),
    ],
)
def test_bad_operator_commands_get_one_error(line: str, code: ErrorCode) -> None:
    sim = mod_room(2)
    op(sim)
    assert errors(only_to(sim.send(1, line), 1)) == [code]


def test_mute_refuses_chat_for_its_duration_and_unmute_ends_it() -> None:
    sim = mod_room(3)
    op(sim)
    sim.send(1, f"/mute {sim.id(2)} 10m")
    assert "muted by" in sim.take(2)[-1].text
    seq = sim.room.seq
    events = only_to(sim.send(2, "spam"), 2)
    assert errors(events) == [ErrorCode.MUTED] and "10m" in events[0].message
    assert errors(only_to(sim.send(2, "/me spams"), 2)) == [ErrorCode.MUTED]
    assert sim.room.seq == seq and sim.inbox[3] == []
    sim.inbox.clear()
    sim.send(1, "still heard")
    assert [e.text for e in sim.take(2)] == ["still heard"]  # they still read
    sim.now += 601
    sim.inbox.clear()
    sim.send(2, "back")
    assert sim.take(3)[-1].text == "back"
    sim.send(1, f"/mute {sim.id(2)}")  # no duration: until unmuted
    sim.now += 10**6
    assert errors(only_to(sim.send(2, "x"), 2)) == [ErrorCode.MUTED]
    sim.send(1, f"/unmute {sim.id(2)}")
    sim.send(2, "free")
    assert sim.take(3)[-1].text == "free"


def test_topic_is_set_by_operators_shown_to_anyone_and_in_the_welcome() -> None:
    sim = mod_room(2)
    assert only_to(sim.send(2, "/topic"), 2) == [Topic(text="", room="main")]
    assert encode(Topic(text="", room="main"), TEXT) == b"*** no topic is set\n"
    op(sim)
    sim.send(1, "/topic be kind")
    topic = Topic(text="be kind", by=sim.id(1), room="main")
    assert sim.take(2) == [topic] and sim.take(1) == [topic]
    assert only_to(sim.send(2, "/topic"), 2) == [topic]
    sim.connect(3)
    welcome = sim.take(3)[0]
    assert welcome.topic == "be kind"
    assert encode(welcome, TEXT).decode().endswith("\n*** Topic: be kind\n")


def test_motd_follows_the_welcome_and_answers_motd() -> None:
    sim = mod_room(1)
    assert only_to(sim.send(1, "/motd"), 1)[0].text == "no motd"
    sim = mod_room(1, motd="line one\nline two")
    sim.connect(2)
    events = sim.take(2)
    motd = Notice(code=NoticeCode.MOTD, text="line one\nline two")
    assert events[1] == motd
    assert encode(motd, TEXT) == b"*** line one\n*** line two\n"
    assert only_to(sim.send(1, "/motd"), 1) == [motd]


# --- bans


def banned_room() -> Sim:
    """An operator (1, loopback) and two users from REMOTE (2, 3) and one from elsewhere (4)."""
    sim = mod_room(1)
    sim.connect(2, REMOTE)
    sim.connect(3, REMOTE)
    sim.connect(4, "198.51.100.7")
    op(sim)
    sim.inbox.clear()
    return sim


def test_ban_by_name_sends_away_everyone_from_that_address_and_refuses_them() -> None:
    sim = banned_room()
    name = sim.room.name_of(2)
    sim.send(1, f"/ban {name} 1h spamming links")
    assert {2, 3} <= set(sim.closed) and 4 in sim.room
    told = sim.take(2)
    assert told[0] == Notice(
        code=NoticeCode.INFO, text=f"you were banned by {sim.id(1)} for 1h: spamming links"
    )
    leaves = [e for e in sim.take(4) if isinstance(e, Leave)]
    assert [(e.reason, e.by, e.text) for e in leaves] == [
        (LeaveReason.KICKED, sim.id(1), "spamming links")
    ] * 2
    done = sim.take(1)[-1]
    assert done.text == f"banned {REMOTE}/32 ({name}) for 1h; 2 users sent away"
    sim.now += 60
    outs = sim.connect(5, REMOTE)
    assert 5 in sim.closed and 5 not in sim.room
    [refused] = sim.take(5)
    assert refused == Notice(
        code=NoticeCode.SERVER_FULL,
        text="your address is banned from this server for 59m more: spamming links",
    )
    assert encode(refused, TEXT).count(b"\n") == 1 and outs
    turned = [r for r in sim.wire.reports if isinstance(r, TurnedAway)]
    assert turned[-1].cause is Cause.BANNED
    sim.now += 3600  # expired: forgotten
    sim.connect(6, REMOTE)
    assert 6 in sim.room and sim.room.moderation.bans == {}


def test_ban_a_cidr_without_end_then_unban_and_list() -> None:
    sim = banned_room()
    sim.send(1, "/ban 203.0.113.0/24")
    assert {2, 3} <= set(sim.closed)
    sim.send(1, "/ban 2001:db8::1 30m")  # an IPv6 address: its /64 as counted
    sim.connect(7, "2001:db8::99")
    assert 7 not in sim.room
    text = only_to(sim.send(1, "/bans"), 1)[0].text
    assert text.splitlines() == [
        "bans (2):",
        f"  203.0.113.0/24, no end, by {sim.id(1)}",
        f"  2001:db8::1/128, 30m left, by {sim.id(1)}",
    ]
    sim.connect(5, REMOTE)
    assert "with no end" in sim.take(5)[0].text
    assert only_to(sim.send(1, "/unban 203.0.113.0/24"), 1)[0].text == "unbanned 203.0.113.0/24"
    sim.connect(6, REMOTE)
    assert 6 in sim.room
    assert only_to(sim.send(1, "/unban 10.0.0.1"), 1)[0].text == "no ban matches 10.0.0.1"
    sim.send(1, "/unban 2001:db8::1")
    assert only_to(sim.send(1, "/bans"), 1)[0].text == "no bans"


def test_unban_by_name_and_a_ban_of_a_hidden_address() -> None:
    sim = mod_room(1, hide_addresses=True)
    sim.connect(2, REMOTE)
    op(sim)
    name = sim.room.name_of(2)
    assert name.startswith("guest-")
    sim.send(1, f"/ban {name}")
    assert 2 in sim.closed
    sim.connect(3, REMOTE)
    assert 3 not in sim.room
    sim.send(1, f"/unban {name.upper()}")
    sim.connect(4, REMOTE)
    assert 4 in sim.room


def test_bans_are_bounded() -> None:
    sim = mod_room(1, max_bans=2)
    sim.connect(2, REMOTE)
    op(sim)
    sim.send(1, f"/ban {REMOTE}")
    assert 1 in sim.room and 2 not in sim.room
    sim.send(1, "/ban 10.0.0.1 1m")
    events = only_to(sim.send(1, "/ban 10.0.0.2"), 1)
    assert errors(events) == [ErrorCode.BAD_USAGE] and "at most 2" in events[0].message
    sim.send(1, "/ban 10.0.0.1 5m")  # the same target again replaces its ban
    sim.now += 301
    sim.send(1, "/ban 10.0.0.2")  # the expired one is forgotten
    assert set(sim.room.moderation.bans) == {f"{REMOTE}/32", "10.0.0.2/32"}


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("/ban", ErrorCode.BAD_USAGE),
        ("/ban nobody", ErrorCode.UNKNOWN_USER),
        ("/ban 10.0.0.0/33", ErrorCode.BAD_USAGE),
        ("/ban 10.0.0.1/x", ErrorCode.BAD_USAGE),
        ("/ban fe80::zz", ErrorCode.BAD_USAGE),
        ("/ban 10.0.0.1 10x", ErrorCode.BAD_USAGE),
        ("/unban", ErrorCode.BAD_USAGE),
        ("/unban a b", ErrorCode.BAD_USAGE),
    ],
)
def test_bad_ban_commands_get_one_error(line: str, code: ErrorCode) -> None:
    sim = mod_room(2)
    op(sim)
    assert errors(only_to(sim.send(1, line), 1)) == [code]


@pytest.mark.parametrize("line", ["/ban x", "/unban x", "/bans", "/ban 10.0.0.1 1h"])
def test_ban_commands_refuse_others(line: str) -> None:
    sim = mod_room(2)
    assert errors(only_to(sim.send(2, line), 2)) == [ErrorCode.NOT_OPERATOR]


def test_ban_reason_and_duration_are_optional_in_either_form() -> None:
    from chatroom.protocol import commands as c

    assert c.parse("/ban x") == c.Ban("x")
    assert c.parse("/ban x spam bot") == c.Ban("x", None, "spam bot")
    assert c.parse("/ban x 2h spam") == c.Ban("x", 7200.0, "spam")
    assert c.parse("/ban x 2") == c.Usage(c.DURATION_USAGE)


def test_a_parsed_password_never_shows_in_a_repr() -> None:
    """Commands end up in logs and tracebacks: /pass and /oper keep their secret out."""
    from chatroom.protocol import commands as c

    oper, given = c.parse("/oper ann hunter2"), c.parse("/pass hunter2")
    assert oper == c.Oper("ann", "hunter2") and given == c.Pass("hunter2")
    assert "hunter2" not in repr(oper) and "ann" in repr(oper)
    assert "hunter2" not in repr(given)


# --- mutes hold the user, not the connection (issue 18, item 5)

ELSEWHERE = "198.51.100.7"


def muted(sim: Sim, conn: int) -> bool:
    """Whether ``conn``'s chat is refused as muted (what it was told is taken)."""
    sim.take(conn)
    sim.send(conn, "may I speak")
    return errors(sim.take(conn)) == [ErrorCode.MUTED]


def test_a_mute_holds_the_address_across_reconnects_and_renames() -> None:
    sim = mod_room(1, restored=Restored())
    sim.connect(2, REMOTE)
    op(sim)
    sim.send(1, f"/mute {sim.room.name_of(2)} 1h")
    [kept] = [a for a in sim.wire.persisted if a.kind == "mute"]
    assert kept.data == {"name": f"{REMOTE}:5002", "until": sim.now + 3600, "address": REMOTE}
    sim.disconnect(2)
    sim.connect(3, REMOTE)  # another connection, another id and name: the same address
    assert muted(sim, 3)
    sim.send(3, "/nick innocent")
    assert muted(sim, 3)
    sim.connect(4, ELSEWHERE)
    assert not muted(sim, 4)
    sim.send(1, "/unmute innocent")  # by the name it has now: the mute by address is lifted
    assert sim.wire.persisted[-1].data is None and sim.wire.persisted[-1].key == kept.key
    assert not muted(sim, 3)
    sim.now += 3601
    sim.send(1, "/mute innocent 1m")
    sim.now += 61
    assert not muted(sim, 3) and sim.room.moderation.kept_mutes == {}  # ran out: forgotten


def test_a_mute_of_a_shared_exempt_address_holds_the_name_and_the_connection() -> None:
    sim = mod_room(3, restored=Restored())  # loopback: exempt, as a proxy's address, shared
    op(sim)
    sim.send(2, "/nick bob")
    sim.send(1, "/mute bob")
    [kept] = [a for a in sim.wire.persisted if a.kind == "mute"]
    assert kept.data == {"name": "bob", "until": None}  # no address: the record as before
    assert muted(sim, 2) and not muted(sim, 3)  # not everyone behind that address
    sim.send(2, "/nick renamed")
    assert muted(sim, 2)  # its connection
    sim.disconnect(2)
    sim.connect(4)
    assert not muted(sim, 4)
    sim.send(4, "/nick bob")
    assert muted(sim, 4)  # the name: whoever takes it


def test_a_mute_of_a_user_at_the_operators_own_address_holds_the_name_only() -> None:
    sim = mod_room(0, restored=Restored())
    sim.connect(1, REMOTE)
    sim.connect(2, REMOTE)  # behind the same NAT as the operator
    op(sim)
    sim.send(2, "/nick bob")
    sim.send(1, "/mute bob")
    assert sim.wire.persisted[-1].data == {"name": "bob", "until": None}
    assert muted(sim, 2) and not muted(sim, 1)
    sim.send(1, "/mute " + sim.room.name_of(1))  # an operator muting itself: its address
    assert sim.wire.persisted[-1].data["address"] == REMOTE
    assert muted(sim, 1)
    sim.send(1, "/unmute " + sim.room.name_of(1))  # commands still work
    assert not muted(sim, 1)


def test_a_kept_mute_holds_the_address_after_a_restart_and_an_old_record_the_name() -> None:
    records = {
        "bob": {"name": "bob", "until": None, "address": REMOTE},
        "carol": {"name": "Carol", "until": None},  # kept by an older server
    }
    sim = mod_room(0, restored=Restored(mutes=records))
    sim.connect(1, REMOTE)
    sim.send(1, "/nick someone-else")
    assert muted(sim, 1)
    sim.connect(2, ELSEWHERE)
    assert not muted(sim, 2)
    sim.send(2, "/nick carol")
    assert muted(sim, 2)
    sim.send(2, "/nick dave")
    assert not muted(sim, 2)


@pytest.mark.parametrize(
    "record",
    [{"name": "x", "until": "soon"}, {"name": "x", "until": [1]}, "not a dict", None],
)
def test_an_unreadable_kept_mute_is_skipped(record: object) -> None:
    sim = mod_room(1, restored=Restored(mutes={"x": record}))  # type: ignore[dict-item]
    assert sim.room.moderation.kept_mutes == {}


# --- bans that would lock everyone out are refused (issue 18, item 5)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("/ban 0.0.0.0/0", "/ban 0.0.0.0/0 would ban every IPv4 address; refused"),
        ("/ban ::/0", "/ban ::/0 would ban every IPv6 address; refused"),
        ("/ban ::ffff:0:0/96", "/ban 0.0.0.0/0 would ban every IPv4 address; refused"),
        ("/ban 127.0.0.1", "/ban 127.0.0.1/32 would ban your own address; refused"),
        ("/ban ::ffff:127.0.0.1", "/ban 127.0.0.1/32 would ban your own address; refused"),
        ("/ban 127.0.0.0/31 1h", "/ban 127.0.0.0/31 would ban your own address; refused"),
        ("/ban 10.9.0.0/16", "/ban 10.9.0.0/16 would ban the exempt network 10.9.8.0/24 "
                             "(--exempt-ip); refused"),
        ("/ban 10.0.0.0/8 1d", "/ban 10.0.0.0/8 would ban the exempt network 10.9.8.0/24 "
                               "(--exempt-ip); refused"),
    ],
)  # fmt: skip
def test_a_ban_of_everyone_the_operator_or_an_exempt_network_is_refused(
    line: str, message: str
) -> None:
    sim = mod_room(2, exempt_ip=("127.0.0.0/8", "10.9.8.0/24"), restored=Restored())
    op(sim)
    events = only_to(sim.send(1, line), 1)
    assert [(e.code, e.message) for e in events] == [(ErrorCode.BAD_USAGE, message)]
    assert sim.room.moderation.bans == {} and sim.wire.persisted == [] and 2 in sim.room


def test_a_ban_within_an_exempt_network_is_allowed() -> None:
    sim = mod_room(1, exempt_ip=("10.9.8.0/24",))
    sim.connect(2, "10.9.8.7")
    op(sim)
    sim.send(1, "/ban 10.9.8.7")
    assert 2 not in sim.room and set(sim.room.moderation.bans) == {"10.9.8.7/32"}


def test_a_ban_by_name_of_a_user_sharing_the_operators_address_is_refused() -> None:
    sim = mod_room(2)
    op(sim)
    events = only_to(sim.send(1, f"/ban {sim.room.name_of(2)}"), 1)
    assert errors(events) == [ErrorCode.BAD_USAGE] and "your own address" in events[0].message
    assert 2 in sim.room


@pytest.mark.parametrize("word", ["-5m", "+5m", "-1h30m", "--5m", "-5"])
def test_a_signed_duration_is_the_duration_usage(word: str) -> None:
    from chatroom.protocol import commands as c

    assert c.parse(f"/ban x {word} spam") == c.Usage(c.DURATION_USAGE)
    assert c.parse(f"/mute x {word}") == c.Usage(c.DURATION_USAGE)
    assert c.parse("/ban x - spam") == c.Ban("x", None, "- spam")  # a reason's dash


# --- one form for an IPv4-mapped address (issue 18, item 5)


def test_an_ipv4_mapped_client_is_shown_counted_and_banned_as_ipv4() -> None:
    sim = mod_room(1)
    sim.connect(2, "::ffff:198.51.100.7", 4000)
    assert sim.room.name_of(2) == "198.51.100.7:4000"
    assert sim.room.state.member(2).address == "198.51.100.7"
    op(sim)
    sim.send(1, "/ban ::ffff:198.51.100.7 1h")  # either form bans the one address
    assert 2 not in sim.room and set(sim.room.moderation.bans) == {"198.51.100.7/32"}
    sim.connect(3, "198.51.100.7")
    sim.connect(4, "::ffff:198.51.100.7")
    assert 3 not in sim.room and 4 not in sim.room
    sim.send(1, "/unban 198.51.100.7")
    sim.send(1, "/ban ::ffff:198.51.100.0/120")
    assert set(sim.room.moderation.bans) == {"198.51.100.0/24"}
