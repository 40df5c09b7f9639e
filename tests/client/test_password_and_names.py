"""The client in a room with a password, and the rename dialog explaining a look-alike
name (issue 10, items 2 and 4), against a real server."""

from __future__ import annotations

from chat_helpers import eventually, log_text
from test_app import SIZE, client, joined
from textual.widgets import Input, Label

from chatroom.client.screens.password_dialog import PasswordDialog
from chatroom.client.screens.rename_dialog import RenameDialog

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
