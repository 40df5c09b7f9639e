"""The client in a room with a password, the rename dialog explaining a look-alike name
(issue 10, items 2 and 4), and our own identity changed by the server."""

from __future__ import annotations

from chat_helpers import eventually, log_text
from test_app import SIZE, client, header_text, joined
from textual.widgets import Input, Label

from chatroom.client.messages import ServerEventReceived
from chatroom.client.screens.password_dialog import PasswordDialog
from chatroom.client.screens.rename_dialog import RenameDialog
from chatroom.client.widgets.user_list import UserList
from chatroom.protocol import Fact, Notice, NoticeCode

SECRET = "open sesame"


async def test_the_client_asks_for_the_password_in_a_masked_dialog(make_room, join_nc):
    room = await make_room(password=SECRET.encode())
    app = client(room.port)
    async with app.run_test(size=SIZE) as pilot:
        await eventually(lambda: isinstance(app.screen, PasswordDialog), pilot)
        assert app.screen.query_one("#secret", Input).password
        await pilot.press(*"wrong", "enter")
        await eventually(lambda: "wrong password (2 tries left)" in log_text(app), pilot)
        await eventually(lambda: isinstance(app.screen, PasswordDialog), pilot)
        problem = app.screen.query_one("#password-problem", Label)
        assert str(problem.content) == "wrong password (2 tries left)"
        await pilot.press(*SECRET, "enter")
        await joined(pilot)
        assert SECRET not in log_text(app) and "wrong" in log_text(app)


async def test_the_password_from_a_file_is_sent_without_asking(make_room):
    room = await make_room(password=SECRET.encode())
    app = client(room.port, password=SECRET)
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot)
        assert not isinstance(app.screen, PasswordDialog)
        assert SECRET not in log_text(app)


async def test_the_rename_dialog_says_which_name_a_look_alike_imitates(room, join_nc):
    await join_nc(room, "bob")
    app = client(room.port)
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot)
        app.chat.open_rename_dialog()
        await eventually(lambda: isinstance(app.screen, RenameDialog), pilot)
        await pilot.press("ctrl+u", *"b\u043eb", "enter")  # Cyrillic о

        def shown() -> str:
            return str(app.screen.query_one("#problem", Label).content)

        await eventually(lambda: "looks like bob" in shown(), pilot)
        assert shown() == "the name b\u043eb is taken: it looks like bob, who is online"


def test_an_empty_or_missing_password_file_is_a_one_line_error(tmp_path, capsys):
    from chatroom.client.cli import main

    empty = tmp_path / "empty"
    empty.write_text("\n")
    for path, reason in [(empty, "the file holds no password"),
                         (tmp_path / "none", "No such file or directory")]:  # fmt: skip
        try:
            main(["127.0.0.1:1", "--password-file", str(path)])
        except SystemExit as exit:
            assert exit.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"--password-file {path}: {reason}" in err


async def test_the_server_changing_our_identity_shows_in_the_header_and_the_user_list(room):
    # A shared room after an outage may give us another id or name by itself (the fact
    # identity); constructed here, as the worker would post it.
    app = client(room.port)
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot)
        users = app.chat.query_one(UserList)
        changed = Notice(
            NoticeCode.INFO,
            "the room is back: your name was taken meanwhile, you are ann_ now",
            fact=Fact.IDENTITY,
            id="10.9.9.9:1",
            name="ann_",
        )
        app.chat.post_message(ServerEventReceived(changed))
        await eventually(lambda: "ann_" in header_text(app), pilot)
        assert users.names() == ["ann_"]
        assert "(you)" in str(users.get_option_at_index(0).prompt)
        assert "you are ann_ now" in log_text(app)
