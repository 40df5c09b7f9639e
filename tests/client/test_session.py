"""The session without Textual: constructed events in, effects out, a stand-in wire.

What the server would send is built here by hand, facts and all, so these tests do not
depend on a server that sends them; the Pilot tests against the real server are in
test_app.py, test_ignores.py and test_moderation.py.
"""

from __future__ import annotations

import ast
from datetime import UTC
from pathlib import Path

import pytest

from chatroom.client import effects as fx
from chatroom.client.link import LinkState, LinkStatus
from chatroom.client.moderation import UserAction
from chatroom.client.own_requests import NameGranted, NameRefused
from chatroom.client.session import Session
from chatroom.client.settings import ClientSettings
from chatroom.protocol import (
    Ack,
    Error,
    ErrorCode,
    Fact,
    Join,
    Message,
    Notice,
    NoticeCode,
    Private,
    Rename,
    Topic,
    Welcome,
    Who,
    WhoEntry,
)

ME, BOB, CAT = "10.0.0.1:5000", "10.0.0.2:5000", "10.0.0.3:5000"


class Wire:
    """Stands in for the link: records what was sent; ``up`` False means no connection."""

    def __init__(self) -> None:
        self.up = True
        self.lines: list[str] = []

    def __call__(self, line: str) -> bool:
        if self.up:
            self.lines.append(line)
        return self.up


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(name: str | None = "ann", **settings) -> tuple[Session, Wire, Clock]:
    wire, clock = Wire(), Clock()
    settings.setdefault("tz", UTC)
    settings.setdefault("now", lambda: 1_700_000_000.0)  # the time of lines without their own
    session = Session(ClientSettings("chat.example.org", 8087, name, **settings), wire, clock=clock)
    return session, wire, clock


def shown(effects: list[fx.Effect]) -> list[str]:
    """The log lines among ``effects``, as plain text without the time column."""
    return [e.line.text.plain[6:] for e in effects if isinstance(e, fx.ShowLine)]


def of(kind: type, effects: list[fx.Effect]) -> list:
    return [effect for effect in effects if isinstance(effect, kind)]


def notice(text: str, code: NoticeCode = NoticeCode.INFO, **fields) -> Notice:
    return Notice(code=code, text=text, **fields)


def joined(session: Session, wire: Wire, *others: tuple[str, str]) -> None:
    """Connected as ann, the quiet /who answered with ``others`` in the room."""
    session.handle(LinkStatus(LinkState.CONNECTED))
    session.handle(Welcome(id=ME, name="ann", idle_timeout=60, users=1 + len(others)))
    users = (WhoEntry(ME, "ann", 0), *(WhoEntry(i, n, 0) for i, n in others))
    session.handle(Who(users=users))
    wire.lines.clear()


# --- connecting ---------------------------------------------------------------------------


def test_a_welcome_shows_who_we_are_and_asks_for_the_user_list_and_our_name():
    session, wire, _ = make("ann")
    out = session.handle(Welcome(id=ME, name=ME, idle_timeout=60, users=1, topic="hi"))
    assert of(fx.ShowName, out) == [fx.ShowName(ME)]
    assert of(fx.ShowTopic, out) == [fx.ShowTopic("hi")]
    assert of(fx.ShowUsers, out) == [fx.ShowUsers(((ME, ME),), ME)]
    assert shown(out) == [f"-- connected as {ME}"]
    assert wire.lines == ["/who", "/nick ann"]
    quiet = session.handle(Who(users=(WhoEntry(ME, ME, 0), WhoEntry(BOB, "bob", 3))))
    assert shown(quiet) == [] and of(fx.ShowUsers, quiet)  # the reply to our own /who
    typed = session.handle(Who(users=(WhoEntry(ME, ME, 0),)))
    assert shown(typed) == [f"1 online: {ME} 0s"]  # one the user typed goes to the log


def test_the_link_going_down_is_logged_once_per_outage_and_the_first_failure_gives_up():
    session, _, _ = make()
    assert session.handle(LinkStatus(LinkState.DISCONNECTED, "refused", first_attempt=True)) == [
        fx.GiveUp("cannot reach chat.example.org:8087: refused")
    ]
    out = session.handle(LinkStatus(LinkState.CONNECTING, "chat.example.org:8087"))
    assert shown(out) == ["-- connecting to chat.example.org:8087…"]
    session.handle(LinkStatus(LinkState.CONNECTED))
    down = session.handle(LinkStatus(LinkState.DISCONNECTED, "connection lost", retry_in=1.0))
    assert shown(down) == ["-- disconnected: connection lost; reconnecting in 1 s"]
    assert fx.ShowLink(LinkState.DISCONNECTED, "connection lost · retry in 1s") in down
    assert fx.StopCountdown() in down and fx.ShowUsers((), None) in down
    assert session.may_reconnect  # Ctrl+R need not wait for the retry
    assert shown(session.handle(LinkStatus(LinkState.CONNECTING))) == []  # a retry: header only
    again = session.handle(LinkStatus(LinkState.DISCONNECTED, "connection lost", retry_in=2.0))
    assert shown(again) == []
    wait = session.handle(LinkStatus(LinkState.DISCONNECTED, "idle timeout"))
    assert shown(wait) == ["-- disconnected: idle timeout; press ctrl+r to reconnect"]
    assert session.may_reconnect


# --- facts --------------------------------------------------------------------------------


def test_ignore_facts_mark_users_by_id_and_the_words_alone_mark_nobody():
    session, _, _ = make()
    joined(session, Wire(), (BOB, "bob"), (CAT, "cat"))
    words = session.handle(notice("you ignore bob (/unignore bob to undo)"))
    assert shown(words) == ["you ignore bob (/unignore bob to undo)"]
    assert not of(fx.ShowUsers, words) and session.roster.ignored() == set()

    out = session.handle(notice("…", fact=Fact.IGNORED, id=BOB, name="bob"))
    assert of(fx.ShowUsers, out)[0].ignored == {BOB}
    session.handle(notice("…", fact=Fact.IGNORE_LIST, ids=(BOB, CAT)))
    assert session.roster.ignored() == {BOB, CAT}
    session.handle(notice("…", fact=Fact.UNIGNORED, id=CAT, name="cat"))
    assert session.roster.ignored() == {BOB}
    session.handle(notice("…", fact=Fact.IGNORE_LIST, ids=()))
    assert session.roster.ignored() == set()


def test_the_operator_fact_asks_for_who_quietly_and_its_reply_marks_us():
    session, wire, _ = make()
    joined(session, wire, (BOB, "bob"))
    session.handle(notice("you are now an operator (ann); /help lists your commands"))
    assert wire.lines == []  # words alone: nothing
    session.handle(notice("you are an operator", fact=Fact.OPERATOR))
    assert wire.lines == ["/who"]
    reply = session.handle(Who(users=(WhoEntry(ME, "ann", 0, op=True), WhoEntry(BOB, "bob", 0))))
    assert shown(reply) == [] and of(fx.ShowUsers, reply)[0].operators == {ME}
    assert session.user_actions(BOB) == [
        UserAction.MESSAGE,
        UserAction.KICK,
        UserAction.MUTE,
        UserAction.BAN,
    ]


def test_the_idle_fact_starts_the_countdown_and_a_key_sends_ping_whose_pong_stays_quiet():
    session, wire, clock = make()
    joined(session, wire)
    words = session.handle(notice("you will be disconnected in 9s", NoticeCode.IDLE_WARNING))
    assert shown(words) and not of(fx.StartCountdown, words)  # no seconds: no countdown
    assert session.key_pressed() == [] and wire.lines == []

    warning = notice("…", NoticeCode.IDLE_WARNING, fact=Fact.IDLE, seconds=10)
    assert fx.StartCountdown() in session.handle(warning)
    assert session.idle.left() == 10
    clock.now += 2.5
    assert session.idle.left() == 8
    assert session.key_pressed() == [fx.StopCountdown()]
    assert wire.lines == ["/ping"] and session.idle.left() is None
    assert session.key_pressed() == []  # no countdown: keys send nothing
    assert session.handle(notice("pong", NoticeCode.PONG)) == []
    assert shown(session.handle(notice("pong", NoticeCode.PONG))) == ["pong"]  # typed /ping


def test_the_identity_fact_moves_our_own_entry_and_a_reconnect_claims_the_chosen_name():
    session, wire, _ = make()
    joined(session, wire, (BOB, "bob"))
    session.handle(Who(users=(WhoEntry(ME, "ann", 0, op=True), WhoEntry(BOB, "bob", 0))))
    new_id = "10.0.0.1:5001"
    out = session.handle(notice("…", fact=Fact.IDENTITY, id=new_id, name="ann_"))
    assert fx.ShowName("ann_") in out
    users = of(fx.ShowUsers, out)[-1]
    assert users.own_id == new_id and (new_id, "ann_") in users.users
    assert ME not in dict(users.users) and users.operators == {new_id}
    session.handle(Message(seq=1, ts=0, id=BOB, name="bob", text="hi ann_"))
    assert session.roster.own_name == "ann_" and session.roster.is_own(new_id)
    lost = notice("your name ann_ was taken…", fact=Fact.IDENTITY, id=new_id, name=new_id)
    assert fx.ShowName(new_id) in session.handle(lost)  # the server gave back the id
    session.handle(Welcome(id="10.0.0.1:6000", name="10.0.0.1:6000", idle_timeout=60, users=1))
    assert wire.lines[-1] == "/nick ann"  # not the id: no /nick could take it


# --- the password -------------------------------------------------------------------------


def test_the_password_file_is_sent_once_per_connection_then_the_dialog_asks():
    session, wire, _ = make(password="open sesame")
    session.handle(LinkStatus(LinkState.CONNECTED))
    asked = notice("this room needs a password: /pass SECRET", NoticeCode.PASSWORD)
    assert of(fx.AskPassword, session.handle(asked)) == []
    assert wire.lines == ["/pass open sesame"]
    wrong = Error(ErrorCode.BAD_PASSWORD, "wrong password (2 tries left)")
    out = session.handle(wrong)
    assert shown(out) == ["! wrong password (2 tries left)"]
    assert of(fx.AskPassword, out) == [fx.AskPassword("wrong password (2 tries left)")]
    session.password_entered("typed")
    assert wire.lines[-1] == "/pass typed"
    # A new connection: the one typed in the dialog, kept for the session (issue 21).
    session.handle(LinkStatus(LinkState.CONNECTED))
    session.handle(asked)
    assert wire.lines[-1] == "/pass typed"
    assert all("sesame" not in line for line in shown(out))


def test_without_a_password_file_the_dialog_asks():
    session, wire, _ = make()
    out = session.handle(notice("this room needs a password", NoticeCode.PASSWORD))
    assert of(fx.AskPassword, out) == [fx.AskPassword(None)] and wire.lines == []


# --- names ----------------------------------------------------------------------------------


def test_the_rename_dialog_is_answered_by_our_rename_or_a_name_error():
    session, wire, _ = make()
    joined(session, wire)
    assert session.ask_for_name("zoe") and wire.lines == ["/nick zoe"]
    refused = session.handle(Error(ErrorCode.NAME_TAKEN, "name zoe is taken"))
    assert refused == [fx.AnswerRenameDialog(NameRefused("name zoe is taken"))]  # not logged
    session.ask_for_name("zoë")
    out = session.handle(Rename(seq=5, ts=0, id=ME, old="ann", new="zoë"))
    assert fx.ShowName("zoë") in out and fx.AnswerRenameDialog(NameGranted("zoë")) in out
    assert shown(out) == ["~ ann is now zoë"]
    session.rename_dialog_closed()
    wire.up = False
    assert not session.ask_for_name("x")


def test_a_refused_name_claim_opens_the_rename_dialog_with_the_claimed_name():
    session, _, _ = make("bob")
    session.handle(Welcome(id=ME, name=ME, idle_timeout=60, users=2))
    out = session.handle(Error(ErrorCode.NAME_TAKEN, "name bob is taken"))
    assert shown(out) == ["! name bob is taken"]
    assert of(fx.OpenRenameDialog, out) == [fx.OpenRenameDialog("name bob is taken", "bob")]


# --- the user's side ------------------------------------------------------------------------


def test_typed_lines_are_sent_refused_shown_or_given_back():
    session, wire, _ = make()
    joined(session, wire)
    assert session.typed("   ") == (True, [])
    assert session.typed("//shrug") == (True, []) and wire.lines == ["//shrug"]
    sent, out = session.typed("/shrug")  # no command: refused here, kept in the input
    assert not sent and "unknown command 'shrug'" in shown(out)[0]
    sent, out = session.typed("/format text")
    assert not sent and shown(out)[0].startswith("-- /format is not available here")
    sent, out = session.typed("/help")
    assert sent and wire.lines == ["//shrug"] and len(shown(out)) > 5
    wire.up = False
    sent, out = session.typed("hello")
    assert not sent and shown(out) == ["-- not connected: nothing was sent"]


@pytest.mark.parametrize(
    ("action", "line"),
    [
        (UserAction.KICK, "/kick bob"),
        (UserAction.MUTE, "/mute bob 10m"),
        (UserAction.BAN, "/ban bob"),
    ],
)
def test_user_actions_send_their_command(action, line):
    session, wire, _ = make()
    joined(session, wire, (BOB, "bob"))
    assert session.act_on_user(action, "bob") == [] and wire.lines == [line]
    wire.up = False
    assert shown(session.act_on_user(action, "bob")) == ["-- not connected: nothing was sent"]


def test_a_private_message_action_starts_one_in_the_input():
    session, wire, _ = make()
    assert session.act_on_user(UserAction.MESSAGE, "bob") == [fx.StartPrivateMessage("bob")]
    assert wire.lines == []


# --- the log --------------------------------------------------------------------------------


def test_mentions_and_private_messages_alert_replays_and_our_own_lines_do_not():
    session, wire, _ = make()
    joined(session, wire, (BOB, "bob"))
    out = session.handle(Message(seq=1, ts=0, id=BOB, name="bob", text="ann: hi"))
    assert of(fx.Alert, out) == [fx.Alert("bob mentioned you", "ann: hi")]
    replay = Message(seq=0, ts=1, id=BOB, name="bob", text="ann, earlier", history=True)
    assert of(fx.Alert, session.handle(replay)) == []
    own = session.handle(Message(seq=2, ts=0, id=ME, name="ann", text="ann here"))
    assert of(fx.Alert, own) == []
    private = session.handle(Private(ts=0, sender="bob", recipient="ann", text="psst"))
    assert of(fx.Alert, private) == [fx.Alert("private message from bob", "psst")]
    assert session.handle(replay) == []  # a replay the log holds: nothing at all


def test_joins_topics_and_closing_notices():
    session, wire, _ = make()
    joined(session, wire)
    out = session.handle(Join(seq=1, ts=0, id=CAT, name="cat"))
    assert shown(out) == ["→ cat joined"] and (CAT, "cat") in of(fx.ShowUsers, out)[0].users
    topic = session.handle(Topic(text="release", by="root"))
    assert fx.ShowTopic("release") in topic and shown(topic) == ["root set the topic: release"]
    closing = session.handle(notice("idle for too long", NoticeCode.TIMEOUT))
    assert of(fx.Warn, closing) == [fx.Warn("idle for too long")]
    assert session.handle(notice("reset", NoticeCode.RESET, epoch="e2")) == [
        fx.ShowLine(session.render.status("the room's history was reset", alarm=True))
    ]


# --- no Textual -----------------------------------------------------------------------------

PACKAGE = Path(__file__).resolve().parents[2] / "chatroom"


def _imports(module: str) -> set[str]:
    path = PACKAGE.parent / (module.replace(".", "/") + ".py")
    if not path.exists():
        path = path.with_suffix("") / "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_the_session_and_everything_it_imports_are_free_of_textual():
    """Derived from the imports, not a list: whatever the session, the link or the
    settings come to use must stay testable without Textual."""
    seen: set[str] = set()
    todo = ["chatroom.client.session", "chatroom.client.link", "chatroom.client.settings"]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        for name in _imports(module):
            assert not name.startswith("textual"), f"{module} imports {name}"
            if name.startswith("chatroom.client") and (
                (PACKAGE.parent / (name.replace(".", "/") + ".py")).exists()
            ):
                todo.append(name)
    assert {"chatroom.client.roster", "chatroom.client.effects"} <= seen


def test_chat_starting_with_a_brace_goes_as_a_request_and_its_ack_shows_nothing():
    session, wire, _ = make()
    assert session.typed("{curly} text") == (True, [])
    assert wire.lines == ['{"id":"typed-1","text":"{curly} text"}']
    assert session.handle(Ack(id="typed-1", seq=3)) == []
