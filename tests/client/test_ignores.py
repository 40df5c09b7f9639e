"""Ignored users marked in the client's user list: the server's replies read on their own,
the roster's marks by id, and the app (Pilot) against a real server with nc users."""

from __future__ import annotations

import pytest
from chat_helpers import eventually, log_text, submit
from test_app import SIZE, client, joined

from chatroom.client.ignores import Ignored, IgnoreList, Unignored, ignore_change
from chatroom.client.roster import Roster
from chatroom.client.widgets.user_list import UserList
from chatroom.protocol import (
    Fact,
    Join,
    Leave,
    LeaveReason,
    Notice,
    NoticeCode,
    Rename,
    Welcome,
    Who,
)
from chatroom.protocol import WhoEntry as Entry


def fact(fact: Fact, text: str = "", **fields) -> Notice:
    return Notice(code=NoticeCode.INFO, text=text, fact=fact, **fields)


@pytest.mark.parametrize(
    ("notice", "change"),
    [
        (fact(Fact.IGNORED, "you ignore bob (...)", id="b:1", name="bob"), Ignored("b:1")),
        (fact(Fact.UNIGNORED, "you no longer ignore bob", id="b:1", name="bob"), Unignored("b:1")),
        (fact(Fact.IGNORE_LIST, "you ignore: bob", ids=("b:1",)), IgnoreList(("b:1",))),
        (fact(Fact.IGNORE_LIST, "you ignore nobody", ids=()), IgnoreList(())),
        # A fact without the field it needs, and other facts, say nothing of ignores.
        (fact(Fact.IGNORED, "you ignore bob (/unignore bob to undo)"), None),
        (fact(Fact.IGNORE_LIST, "you ignore: bob"), None),
        (fact(Fact.AWAY, "you are marked away: lunch"), None),
        (fact(Fact.OPERATOR, "you are now an operator (ann); /help lists your commands"), None),
    ],
)
def test_the_servers_replies_to_ignore_and_unignore(notice, change):
    assert ignore_change(notice) == change


@pytest.mark.parametrize(
    "text",
    [
        "you ignore bob (/unignore bob to undo)",
        "you no longer ignore bob",
        "you ignore: bob, cat",
        "you ignore nobody",
    ],
)
def test_the_words_alone_say_nothing(text):
    # The replies' words are for people: without the fact, the client reads nothing.
    assert ignore_change(Notice(code=NoticeCode.INFO, text=text)) is None


def test_only_info_notices_are_replies():
    motd = Notice(code=NoticeCode.MOTD, text="you ignore bob (/unignore bob to undo)")
    assert ignore_change(motd) is None


def roster_with(*users: tuple[str, str]) -> Roster:
    roster = Roster()
    roster.welcome(Welcome(id="me:1", name="ann", idle_timeout=0, users=len(users) + 1))
    roster.apply(Who(users=(Entry(id="me:1", name="ann", idle=0),
                            *(Entry(id=i, name=n, idle=0) for i, n in users))))  # fmt: skip
    return roster


def test_the_mark_follows_the_id_across_renames_and_goes_with_unignore():
    roster = roster_with(("b:1", "bob"), ("c:1", "cat"))
    roster.ignoring(Ignored("b:1"))  # the server says whom, by id
    assert roster.ignored() == {"b:1"}
    roster.apply(Rename(seq=1, ts=0, id="b:1", old="bob", new="robert"))
    roster.apply(Join(seq=2, ts=0, id="x:1", name="bob"))  # someone else takes the name
    assert roster.ignored() == {"b:1"}
    roster.ignoring(Unignored("b:1"))
    assert roster.ignored() == set()


def test_the_mark_goes_when_the_user_leaves_or_the_connection_ends():
    roster = roster_with(("b:1", "bob"), ("c:1", "cat"))
    roster.ignoring(IgnoreList(("b:1", "c:1")))
    assert roster.ignored() == {"b:1", "c:1"}
    roster.apply(Leave(seq=1, ts=0, id="b:1", name="bob", reason=LeaveReason.QUIT))
    roster.apply(Join(seq=2, ts=0, id="b:2", name="bob"))  # back: the server forgot it
    assert roster.ignored() == {"c:1"}
    roster.ignoring(Ignored("x:9"))  # an id nobody holds marks nobody
    assert roster.ignored() == {"c:1"}
    roster.welcome(Welcome(id="me:2", name="ann", idle_timeout=0, users=3))
    assert roster.ignored() == set()


def prompts(users: UserList) -> list[str]:
    return [str(option.prompt) for option in users.options]


async def test_an_ignored_user_is_marked_in_the_list_across_a_rename_until_unignored(room, join_nc):
    bob = await join_nc(room, "bob")
    await join_nc(room, "cat")
    app = client(room.port)
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot)
        users = app.chat.query_one(UserList)
        await eventually(lambda: {"bob", "cat"} <= set(users.names()), pilot)
        await submit(pilot, "/ignore BOB")
        await eventually(lambda: "bob (ignored)" in prompts(users), pilot)
        assert "cat" in prompts(users)
        option = next(o for o in users.options if users.name_of(o.id) == "bob")
        assert "dim" in str(option.prompt.spans)  # dimmed as well as marked

        await bob.say("/nick robert")
        await eventually(lambda: "robert (ignored)" in prompts(users), pilot)
        await bob.say("nobody hears me")  # the server keeps it from the client
        await submit(pilot, "/unignore robert")
        await eventually(lambda: "robert" in prompts(users), pilot)
        assert "you no longer ignore robert" in log_text(app)
        assert "nobody hears me" not in log_text(app)
        assert not any("(ignored)" in prompt for prompt in prompts(users))
        await bob.say("heard again")  # the first line after the hidden one: no "missed"
        await eventually(lambda: "heard again" in log_text(app), pilot)
        assert "missed" not in log_text(app)


async def test_a_refused_ignore_marks_nobody_and_a_leave_ends_the_mark(room, join_nc):
    bob = await join_nc(room, "bob")
    app = client(room.port)
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot)
        users = app.chat.query_one(UserList)
        await submit(pilot, "/ignore ann")  # oneself: the server refuses
        await submit(pilot, "/ignore nobody")
        await eventually(lambda: "no user named nobody is online" in log_text(app), pilot)
        assert "you cannot ignore yourself" in log_text(app)
        assert not any("(ignored)" in prompt for prompt in prompts(users))

        await submit(pilot, "/ignore bob")
        await eventually(lambda: "bob (ignored)" in prompts(users), pilot)
        await bob.close()
        await eventually(lambda: "bob" not in users.names(), pilot)
        again = await join_nc(room, "bob")  # a new user to the server: not ignored
        await eventually(lambda: "bob" in prompts(users), pilot)
        await again.say("hello again")
        await eventually(lambda: "hello again" in log_text(app), pilot)
