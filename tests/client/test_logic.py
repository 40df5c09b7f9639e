"""The client's plain modules, without Textual and without a network."""

from __future__ import annotations

import getpass
from datetime import UTC

import pytest

from chatroom.client.cli import login_name
from chatroom.client.completion import TabCompleter
from chatroom.client.connection import AddressError, CloseCause, ReconnectPolicy, parse_address
from chatroom.client.help import SECTIONS
from chatroom.client.input_history import InputHistory
from chatroom.client.outgoing import (
    Paste,
    Refuse,
    Send,
    ShowHelp,
    describe,
    history_form,
    plan_input,
    plan_paste,
)
from chatroom.client.render import LineRenderer, mentions, sender_colour
from chatroom.client.roster import Roster
from chatroom.protocol import (
    DEFAULT_PORT,
    SLASH_COMMANDS,
    Action,
    Join,
    Leave,
    LeaveReason,
    Message,
    Private,
    Rename,
    Welcome,
    Who,
    WhoEntry,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("example.org:9000", ("example.org", 9000)),
        ("127.0.0.1", ("127.0.0.1", DEFAULT_PORT)),
        ("[::1]:9000", ("::1", 9000)),
        ("[::1]", ("::1", DEFAULT_PORT)),
    ],
)
def test_parse_address(text, expected):
    assert parse_address(text) == expected


@pytest.mark.parametrize(
    "text", [":9000", "host:0", "host:70000", "host:x", "[::1", "[::1]x", "127.0.0.1:", "[::1]:"]
)
def test_parse_address_refuses(text):
    with pytest.raises(AddressError):
        parse_address(text)


@pytest.mark.parametrize(
    ("typed", "sent"),
    [
        ("hello", "hello"),
        ("who", "who"),  # the bare commands without a slash go out as typed too
        ("rename|Duke", "rename|Duke"),
        ("/who", "/who"),
        ("/NICK Duke", "/NICK Duke"),
        ("/msg bob hi", "/msg bob hi"),
        ("/me waves", "/me waves"),
        ("/quit bye", "/quit bye"),
        ("//shrug", "//shrug"),  # chat starting with "/": arrives as "/shrug"
        ("//", "//"),
        ("  spaced  ", "  spaced  "),
    ],
)
def test_plan_input_sends(typed, sent):
    assert plan_input(typed) == Send((sent,))


@pytest.mark.parametrize("typed", ["/shrug", "/mgs alice my password", "/query", "/"])
def test_plan_input_refuses_what_is_no_command_and_keeps_it(typed):
    # Issue 21: a typo never reaches the room (it was sent as chat, "//mgs alice ...").
    plan = plan_input(typed)
    assert isinstance(plan, Refuse)
    assert "unknown command" in plan.reason or "usage" in plan.reason


def test_a_long_chat_line_is_split_at_spaces_within_the_limit():
    words = " ".join(f"w{n}" for n in range(800))  # about 3.9 kB
    plan = plan_input(words, limit=1000)
    assert isinstance(plan, Send) and len(plan.lines) == 4
    assert all(len(line.encode()) <= 1000 for line in plan.lines)
    assert " ".join(plan.lines).split() == words.split()  # nothing lost, no word cut
    private = plan_input("/msg bob " + words, limit=1000)
    assert all(line.startswith("/msg bob w") for line in private.lines)
    wide = plan_input("é" * 1500, limit=1000)  # two bytes each: never cut inside one
    assert "".join(wide.lines) == "é" * 1500
    assert isinstance(plan_input("/topic " + "x" * 1200, limit=1000), Refuse)


def test_the_history_keeps_no_secret():
    assert history_form("/oper root hunter2") == "/oper root "
    assert history_form("/pass open sesame") == "/pass "
    assert history_form("hello") == "hello"


def test_plan_input_keeps_the_connection_in_json():
    assert isinstance(plan_input("/format text"), Refuse)


@pytest.mark.parametrize("typed", ["", "   "])
def test_plan_input_sends_nothing_for_blank_lines(typed):
    assert plan_input(typed) is None


def test_history_walks_back_and_forth_and_restores_the_draft():
    history = InputHistory()
    for line in ["one", "two", "three"]:
        history.add(line)
    assert history.previous("draft") == "three"
    assert history.previous("three") == "two"
    assert history.previous("two") == "one"
    assert history.previous("one") is None  # oldest: stay
    assert history.next() == "two"
    assert history.next() == "three"
    assert history.next() == "draft"
    assert history.next() is None  # not browsing any more


def test_history_skips_repeats_and_is_bounded():
    history = InputHistory(limit=3)
    for line in ["a", "a", "b", "c", "d"]:
        history.add(line)
    assert len(history) == 3
    assert [history.previous(""), history.previous(""), history.previous("")] == ["d", "c", "b"]


def test_completion_of_a_name_first_on_the_line_cycles_through_matches():
    completer = TabCompleter()
    names = ["alice", "Alfred", "bob"]
    first = completer.complete("al", 2, names)
    assert first is not None and (first.value, first.cursor) == ("Alfred: ", 8)
    second = completer.complete(first.value, first.cursor, names)
    assert second is not None and second.value == "alice: "
    third = completer.complete(second.value, second.cursor, names)
    assert third is not None and third.value == "Alfred: "


def test_completion_inside_a_line_keeps_the_rest():
    completer = TabCompleter()
    done = completer.complete("/msg b hello", 6, ["bob", "carol"])
    assert done is not None
    assert (done.value, done.cursor) == ("/msg bob  hello", 9)


def test_completion_of_commands_and_nothing_to_complete():
    completer = TabCompleter()
    done = completer.complete("/ni", 3, [])
    assert done is not None and done.value == "/nick "
    assert completer.complete("/for", 4, []) is None  # /format is not offered
    assert completer.complete("zed", 3, ["bob"]) is None
    assert completer.complete("", 0, ["bob"]) is None
    assert completer.complete("hi ", 3, ["bob"]) is None


def test_roster_follows_events_by_id():
    roster = Roster()
    roster.welcome(Welcome(id="1.1.1.1:1", name="1.1.1.1:1", idle_timeout=60, users=2))
    roster.apply(
        Who(users=(WhoEntry("1.1.1.1:1", "1.1.1.1:1", 0), WhoEntry("2.2.2.2:2", "zed", 3)))
    )
    roster.apply(Join(seq=1, ts=0, id="3.3.3.3:3", name="Amy"))
    roster.apply(Rename(seq=2, ts=0, id="1.1.1.1:1", old="1.1.1.1:1", new="me"))
    roster.apply(Rename(seq=3, ts=0, id="2.2.2.2:2", old="zed", new="bea"))
    assert roster.names() == ["Amy", "bea", "me"]
    assert roster.own_name == "me"
    roster.apply(Leave(seq=4, ts=0, id="3.3.3.3:3", name="Amy", reason=LeaveReason.QUIT))
    assert roster.users() == [("2.2.2.2:2", "bea"), ("1.1.1.1:1", "me")]
    assert len(roster) == 2


def test_rendering_keeps_markup_and_brackets_verbatim():
    render = LineRenderer(UTC)
    line = render.chat(
        Message(seq=1, ts=3600, id="x:1", name="a[/]b", text="[bold]x[/bold]"), "me:1", "me"
    )
    assert line.text.plain == "01:00 a[/]b [bold]x[/bold]"
    assert not line.mentions_me


def test_rendering_marks_mentions_of_own_name_but_not_own_lines():
    render = LineRenderer(UTC)
    theirs = render.chat(Message(seq=1, ts=0, id="x:1", name="bob", text="hi Ann!"), "me:1", "ann")
    mine = render.chat(Message(seq=2, ts=0, id="me:1", name="ann", text="I am ann"), "me:1", "ann")
    action = render.chat(Action(seq=3, ts=0, id="x:1", name="bob", text="waves"), "me:1", "ann")
    assert theirs.mentions_me and not mine.mentions_me
    assert action.text.plain == "00:00 * bob waves"


@pytest.mark.parametrize(
    ("text", "name", "expected"),
    [
        ("hey ann", "ann", True),
        ("annie", "ann", False),
        ("ANN: yo", "ann", True),
        ("x.y", "x.y", True),
        ("anything", None, False),
    ],
)
def test_mentions(text, name, expected):
    assert mentions(text, name) is expected


def test_private_lines_show_direction():
    render = LineRenderer(UTC)
    incoming = render.private(Private(ts=0, sender="bob", recipient="ann", text="psst"), "ann")
    outgoing = render.private(Private(ts=0, sender="ann", recipient="bob", text="yes"), "ann")
    assert incoming.text.plain == "00:00 [private] bob → psst" and incoming.mentions_me
    assert outgoing.text.plain == "00:00 [private] → bob yes" and not outgoing.mentions_me


def test_sender_colour_is_stable_and_ignores_case():
    assert sender_colour("Bob") == sender_colour("bob")
    assert len({sender_colour(f"user{i}") for i in range(50)}) > 5


def test_reconnect_policy_backs_off_and_resets():
    policy = ReconnectPolicy(initial=1, factor=2, maximum=5, jitter=0)
    delays = [policy.next_delay(CloseCause.LOST) for _ in range(5)]
    assert delays == [1, 2, 4, 5, 5]
    policy.connected()
    assert policy.next_delay(CloseCause.SHUTDOWN) == 1


@pytest.mark.parametrize("cause", [CloseCause.IDLE_TIMEOUT, CloseCause.QUIT])
def test_reconnect_policy_waits_for_the_user_after_idle_timeout_or_quit(cause):
    assert ReconnectPolicy().next_delay(cause) is None


def test_only_the_timestamp_is_dimmed_in_a_chat_line():
    line = LineRenderer(UTC).chat(Message(seq=1, ts=0, id="x:1", name="bob", text="hi"), None, None)
    assert not line.text.style
    assert [(span.start, span.end, str(span.style)) for span in line.text.spans][0] == (
        0,
        6,
        "dim",
    )


@pytest.mark.parametrize(
    ("login", "expected"),
    [
        ("ann", "ann"),
        ("Ann Lee", "AnnLee"),
        ("dom|ain:user", "domainuser"),
        ("x" * 40, "x" * 32),
        (" ", None),
    ],
)
def test_login_name_is_cleaned_to_a_valid_name(monkeypatch, login, expected):
    monkeypatch.setattr(getpass, "getuser", lambda: login)
    assert login_name() == expected


@pytest.mark.parametrize(
    ("value", "cursor", "pasted", "lines", "keep"),
    [
        ("", 0, "one line", (), "one line"),
        ("ab", 1, "X", (), "aXb"),
        ("", 0, "a\nb\nc", ("a", "b", "c"), ""),
        ("", 0, "a\r\nb\r\n", ("a", "b"), ""),
        ("say: ", 5, "a\n\n  \nb", ("say: a", "b"), ""),
        ("", 0, "just one\n", ("just one",), ""),
        ("x", 0, "a\nb", ("a", "bx"), ""),
    ],
)
def test_plan_paste_sends_every_line_in_order(value, cursor, pasted, lines, keep):
    assert plan_paste(value, cursor, pasted) == Paste(lines, keep)


def test_a_long_paste_asks_first():
    assert not plan_paste("", 0, "1\n2\n3").needs_confirmation
    assert plan_paste("", 0, "1\n2\n3\n4").needs_confirmation


def test_an_ambiguous_command_offers_the_established_one_first_and_shows_the_others():
    completer = TabCompleter()
    first = completer.complete("/m", 2, [])
    assert first is not None and first.value == "/msg "
    assert first.hint() == "Tab: [/msg] /me /motd /mute"
    second = completer.complete(first.value, first.cursor, [])
    assert second is not None and second.value == "/me "
    assert second.hint() == "Tab: /msg [/me] /motd /mute"
    assert completer.complete("/n", 2, []).hint() == "Tab: [/nick] /names"


def test_describe_says_who_a_line_goes_to():
    assert describe("/msg bob hi") == "private to bob"
    assert describe("/me waves").startswith("action")
    assert describe("hello") == "" and describe("/who") == ""


def test_help_is_the_clients_own_table_shown_locally() -> None:
    assert plan_input("/help") == plan_input("/HELP ") == ShowHelp()
    listed = " ".join(first for _, rows in SECTIONS for first, _ in rows)
    assert "/format" not in listed
    for command in SLASH_COMMANDS - {"format", "names"}:
        assert f"/{command}" in listed, command
    for key in ["F2", "F3", "F4", "F6", "Ctrl+F", "PgUp", "Esc", "Alt+L", "Ctrl+R", "Ctrl+Q"]:
        assert key in listed, key


def test_who_shows_everyone_s_idle_time_and_how_many_more_there_are():
    render = LineRenderer(UTC)
    users = (
        WhoEntry("x:1", "zed", 59),
        WhoEntry("x:2", "ann", 3600 * 3 + 5),
        WhoEntry("x:3", "bo", 61),
    )
    text = render.who(Who(users=users, total=503)).text.plain
    assert text.endswith("503 online: ann 3h, bo 1m, zed 59s … and 500 more (/who TEXT finds them)")
    assert render.who(Who(users=users[:1])).text.plain.endswith("1 online: zed 59s")
