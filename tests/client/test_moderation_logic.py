"""The client's moderation logic on its own: the topic's truncation, the operator notice,
what can be done to a user, marks in the roster and in rendered lines."""

from __future__ import annotations

from datetime import UTC

from chatroom.client.moderation import (
    UserAction,
    actions_for,
    command_for,
    grants_operator,
    topic_line,
    truncate,
)
from chatroom.client.outgoing import Send, plan_input
from chatroom.client.own_requests import OwnRequests
from chatroom.client.render import LineRenderer
from chatroom.client.roster import Roster
from chatroom.protocol import (
    Fact,
    Leave,
    LeaveReason,
    Notice,
    NoticeCode,
    Topic,
    Welcome,
    Who,
    WhoEntry,
)


def test_truncate_keeps_short_topics_and_cuts_long_ones_with_an_ellipsis():
    assert truncate("  welcome\n to  the room ") == "welcome to the room"
    assert truncate("x" * 60) == "x" * 60
    cut = truncate("word " * 30, width=20)
    assert len(cut) <= 20 and cut.endswith("…") and cut.startswith("word word")
    assert truncate("") == ""


def test_only_the_servers_operator_notice_grants():
    granted = Notice(
        code=NoticeCode.INFO, text="you are now an operator (root); /help ...", fact=Fact.OPERATOR
    )
    assert grants_operator(granted)
    assert not grants_operator(Notice(code=NoticeCode.INFO, text="you are an operator"))
    assert not grants_operator(Notice(code=NoticeCode.MOTD, text="you are now an operator"))


def test_operators_get_kick_mute_and_ban_and_everyone_a_private_message():
    assert actions_for(operator=False) == [UserAction.MESSAGE]
    assert actions_for(operator=True) == [
        UserAction.MESSAGE,
        UserAction.KICK,
        UserAction.MUTE,
        UserAction.BAN,
    ]
    assert actions_for(operator=True, own=True) == []
    assert command_for(UserAction.KICK, "bob") == "/kick bob"
    assert command_for(UserAction.MUTE, "bob") == "/mute bob 10m"
    assert command_for(UserAction.BAN, "bob") == "/ban bob"
    assert command_for(UserAction.MESSAGE, "bob") is None


def test_roster_knows_operators_from_who_and_forgets_them_on_leave():
    roster = Roster()
    roster.welcome(Welcome(id="me:1", name="ann", idle_timeout=0, users=2))
    assert not roster.own_is_operator
    roster.apply(Who(users=(WhoEntry("me:1", "ann", 0, op=True), WhoEntry("b:2", "bob", 0))))
    assert roster.own_is_operator and not roster.is_operator("b:2")
    assert roster.operators() == {"me:1"}
    roster.apply(Leave(seq=1, ts=0, id="me:1", name="ann", reason=LeaveReason.QUIT))
    assert roster.operators() == set()
    roster.apply(Who(users=(WhoEntry("b:2", "bob", 0, op=True),)))
    roster.clear()
    assert not roster.is_operator("b:2")


def test_who_line_marks_operators():
    render = LineRenderer(UTC)
    who = Who(users=(WhoEntry("a:1", "root", 5, op=True), WhoEntry("b:2", "bob", 3)))
    assert render.who(who).text.plain.endswith("2 online: bob 3s, @root 5s")


def test_a_kick_names_the_operator_and_the_reason():
    render = LineRenderer(UTC)
    kicked = Leave(seq=1, ts=0, id="b:2", name="bob", reason="kicked", by="root", text="spam")
    assert render.leave(kicked).text.plain.endswith("← bob was kicked by root (spam)")
    bare = Leave(seq=1, ts=0, id="b:2", name="bob", reason="kicked")
    assert render.leave(bare).text.plain.endswith("← bob was kicked")


def test_topic_lines():
    assert topic_line(Topic(text="hello", by="root")) == "root set the topic: hello"
    assert topic_line(Topic(text="hello")) == "topic: hello"
    assert topic_line(Topic(text="")) == "no topic is set"


def test_asking_who_again_keeps_the_reply_out_of_the_log():
    requests = OwnRequests()
    requests.ask_who(lambda line: line == "/who")
    assert requests.who_reply_is_ours() and not requests.who_reply_is_ours()
    requests.ask_who(lambda line: False)  # not connected: nothing is awaited
    assert not requests.who_reply_is_ours()


def test_moderation_commands_go_out_as_typed_never_as_chat():
    for typed in ["/oper ann pw", "/kick bob spam", "/mute bob 10m", "/topic hi", "/ban bob"]:
        assert plan_input(typed) == Send((typed,))
    assert plan_input("/ignore bob") == Send(("/ignore bob",))
    assert plan_input("/unignore bob") == Send(("/unignore bob",))
