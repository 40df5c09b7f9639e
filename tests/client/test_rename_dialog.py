"""The rename dialog on its own: what it asks for, what it shows, what it dismisses with.

The server is stood in for by the ``request`` function the dialog is given; conversations
with a real server are in test_app.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from chat_helpers import eventually
from textual.app import App
from textual.widgets import Input, Label

import chatroom.client
from chatroom.client.own_requests import NameAnswer, NameGranted, NameRefused
from chatroom.client.screens.rename_dialog import RenameDialog


class DialogApp(App[None]):
    CSS_PATH = Path(chatroom.client.__file__).parent / "client.tcss"

    def __init__(self, *, connected: bool = True, **dialog_options) -> None:
        super().__init__()
        self.connected = connected
        self.dialog_options = dialog_options
        self.asked: list[str] = []
        self.answer: asyncio.Future[NameAnswer] | None = None
        self.results: list[str | None] = []

    def request(self, name: str) -> asyncio.Future[NameAnswer] | None:
        if not self.connected:
            return None
        self.asked.append(name)
        self.answer = asyncio.get_running_loop().create_future()
        return self.answer

    def on_mount(self) -> None:
        dialog = RenameDialog("ann", self.request, **self.dialog_options)
        self.push_screen(dialog, self.results.append)


def problem(app: App) -> Label:
    return app.screen.query_one("#problem", Label)


async def test_dismisses_with_the_name_the_server_granted():
    app = DialogApp()
    async with app.run_test() as pilot:
        await pilot.press("ctrl+u", *"Zoë", "enter")
        assert app.asked == ["Zoë"]
        assert str(problem(app).content) == "asking the server for Zoë…"
        assert problem(app).has_class("waiting")
        app.answer.set_result(NameGranted("zoë"))
        await eventually(lambda: app.results, pilot)
        assert app.results == ["zoë"]
        assert not isinstance(app.screen, RenameDialog)


async def test_a_refusal_is_shown_and_the_dialog_stays_open():
    app = DialogApp()
    async with app.run_test() as pilot:
        await pilot.press("ctrl+u", *"bob", "enter")
        app.answer.set_result(NameRefused("name bob is taken"))
        await eventually(lambda: "taken" in str(problem(app).content), pilot)
        assert problem(app).has_class("refused") and not problem(app).has_class("waiting")
        name_input = app.screen.query_one("#new-name", Input)
        assert name_input.has_focus

        await pilot.press("backspace")
        assert str(problem(app).content) == ""
        await pilot.press("b")  # the refused name again: the server's word stands
        assert str(problem(app).content) == "name bob is taken"

        await pilot.press("ctrl+u", *"bea", "enter")
        assert app.asked == ["bob", "bea"]
        app.answer.set_result(NameGranted("bea"))
        await eventually(lambda: app.results == ["bea"], pilot)


async def test_cannot_ask_while_not_connected():
    app = DialogApp(connected=False)
    async with app.run_test() as pilot:
        await pilot.press("ctrl+u", *"bob", "enter")
        assert "not connected" in str(problem(app).content)
        assert problem(app).has_class("refused")
        assert isinstance(app.screen, RenameDialog) and app.results == []


async def test_cancel_and_an_unchanged_name_dismiss_with_none_without_asking():
    app = DialogApp()
    async with app.run_test() as pilot:
        await pilot.press("escape")
        assert app.results == [None]
    app = DialogApp()
    async with app.run_test() as pilot:
        await pilot.press("enter")  # still "ann"
        assert app.results == [None] and app.asked == []


async def test_cancelling_while_the_server_answers_dismisses_with_none():
    app = DialogApp()
    async with app.run_test() as pilot:
        await pilot.press("ctrl+u", *"bob", "enter")
        await pilot.press("escape")
        assert app.results == [None]
        await eventually(lambda: app.answer.cancelled(), pilot)  # nobody waits any more


async def test_an_invalid_name_is_refused_before_asking():
    app = DialogApp()
    async with app.run_test() as pilot:
        await pilot.press("ctrl+u", "enter")
        assert app.asked == [] and app.results == []
        assert problem(app).has_class("refused")


async def test_opened_with_a_reason_shows_it_for_the_suggested_name():
    app = DialogApp(reason="name Ann is taken", suggestion="Ann")
    async with app.run_test() as pilot:
        name_input = app.screen.query_one("#new-name", Input)
        assert name_input.has_focus and name_input.value == "Ann"
        assert str(problem(app).content) == "name Ann is taken"
        assert problem(app).has_class("refused")
        await pilot.press("2")
        assert str(problem(app).content) == ""
