"""Registered names in the client (issue 24): the user list marks them (``name ✓``) as
``who`` says, and ``--account-password-file`` takes a registered ``--name`` with /login.
Pilot against a real server with nc users."""

from __future__ import annotations

from chat_helpers import eventually, log_text
from test_app import SIZE, client, joined
from test_ignores import prompts, roster_with

from chatroom.client.screens.password_dialog import PasswordDialog
from chatroom.client.screens.rename_dialog import RenameDialog
from chatroom.client.widgets.user_list import REGISTERED_MARK, UserList
from chatroom.protocol import Leave, LeaveReason, Rename, Who
from chatroom.protocol import WhoEntry as Entry

ACCOUNT = "hunter2"


def test_the_roster_marks_registered_names_as_who_says_until_a_rename_or_leave():
    roster = roster_with(("b:1", "bob"), ("c:1", "cat"))
    roster.apply(Who(users=(Entry(id="me:1", name="ann", idle=0),
                            Entry(id="b:1", name="bob", idle=0, registered=True),
                            Entry(id="c:1", name="cat", idle=0, registered=True))))  # fmt: skip
    assert roster.registered() == {"b:1", "c:1"}
    roster.apply(Rename(seq=1, ts=0, id="b:1", old="bob", new="robert"))  # maybe not registered
    roster.apply(Leave(seq=2, ts=0, id="c:1", name="cat", reason=LeaveReason.QUIT))
    assert roster.registered() == set()


async def registered_by_nc(room, join_nc, name: str):
    user = await join_nc(room, name)
    await user.say(f"/register {ACCOUNT}")
    await user.read_until("is registered to you")
    return user


async def test_a_registered_name_is_marked_in_the_user_list(room, join_nc):
    await registered_by_nc(room, join_nc, "bob")
    await join_nc(room, "cat")
    app = client(room.port)
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot)
        users = app.chat.query_one(UserList)
        await eventually(lambda: f"bob{REGISTERED_MARK}" in prompts(users), pilot)
        assert "cat" in prompts(users)  # not registered: no mark


async def test_the_client_takes_a_registered_name_with_its_password_file(room, join_nc):
    owner = await registered_by_nc(room, join_nc, "alice")
    await owner.close()
    app = client(room.port, "alice", account_password=ACCOUNT)
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot, "alice")
        users = app.chat.query_one(UserList)
        await eventually(lambda: f"alice{REGISTERED_MARK} (you)" in prompts(users), pilot)
        assert ACCOUNT not in log_text(app)


async def test_a_registered_name_claimed_without_its_password_asks_for_another(room, join_nc):
    owner = await registered_by_nc(room, join_nc, "alice")
    await owner.close()
    app = client(room.port, "alice")
    async with app.run_test(size=SIZE) as pilot:
        await eventually(lambda: isinstance(app.screen, RenameDialog), pilot)
        assert "/login alice PASSWORD" in log_text(app)


async def test_a_wrong_account_password_asks_for_a_name_not_the_rooms_password(room, join_nc):
    owner = await registered_by_nc(room, join_nc, "alice")
    await owner.close()
    app = client(room.port, "alice", account_password="wrong")
    async with app.run_test(size=SIZE) as pilot:
        await eventually(lambda: isinstance(app.screen, RenameDialog), pilot)
        assert "wrong password for alice" in log_text(app)
        assert not any(isinstance(screen, PasswordDialog) for screen in app.screen_stack)


def test_an_empty_or_missing_account_password_file_is_a_one_line_error(tmp_path, capsys):
    from chatroom.client.cli import main

    empty = tmp_path / "empty"
    empty.write_text("\n")
    for path, reason in [(empty, "the file holds no password"),
                         (tmp_path / "none", "No such file or directory")]:  # fmt: skip
        try:
            main(["127.0.0.1:1", "--account-password-file", str(path)])
        except SystemExit as exit:
            assert exit.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"--account-password-file {path}: {reason}" in err
