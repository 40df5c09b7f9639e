"""F2: choose a new name, checked as you type, confirmed (or refused) by the server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label

from chatroom.client.own_requests import NameAnswer, NameGranted
from chatroom.protocol import name_problem

# Sends a rename to the server: None if it could not, else the server's answer to wait for.
RequestName = Callable[[str], Awaitable[NameAnswer] | None]


class RenameDialog(ModalScreen[str | None]):
    """Dismissed with the new name once the server confirms it, or None if cancelled.

    The dialog stays open while the server answers: a refusal is shown under the name,
    which can then be changed and tried again.
    """

    AUTO_FOCUS = "#new-name"
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self,
        current: str,
        request: RequestName,
        *,
        reason: str | None = None,
        suggestion: str | None = None,
    ) -> None:
        super().__init__()
        self._current = current
        self._suggestion = suggestion
        self._request = request
        self._reason = reason
        # (name, why) while it is still typed: a reason given is the server's refusal of
        # the name the dialog opens with, shown from the start (compose, not on_mount: a
        # query there could run before the children are in, on a loaded machine).
        opened_with = suggestion or current
        self._refused: tuple[str, str] | None = (opened_with, reason) if reason else None

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog") as dialog:
            dialog.border_title = "Change your name"
            yield Label(Content.assemble("Current name: ", (self._current, "bold")), id="current")
            yield Input(
                value=self._suggestion or self._current, id="new-name", select_on_focus=False
            )
            yield Label(
                Content(self._reason or ""), id="problem", classes="refused" if self._reason else ""
            )
            with Horizontal(id="buttons"):
                yield Button("Rename", variant="primary", id="apply")
                yield Button("Cancel", id="cancel")

    def on_resize(self, event) -> None:
        # A small terminal (40x12): no padding or gaps, so the whole dialog fits.
        self.set_class(event.size.height < 16 or event.size.width < 60, "-small")

    def _show_problem(self, text: str, *, refused: bool = False, waiting: bool = False) -> None:
        label = self.query_one("#problem", Label)
        label.update(Content(text))
        label.set_class(refused, "refused")
        label.set_class(waiting, "waiting")

    @on(Input.Changed, "#new-name")
    def check_as_typed(self, event: Input.Changed) -> None:
        problem = name_problem(event.value)
        buttons = list(self.query("#apply").results(Button))
        if not buttons:  # a change that arrives as the dialog is taken down: nothing to show
            return
        for button in buttons:
            button.disabled = problem is not None
        if problem is None and self._refused and self._refused[0] == event.value:
            self._show_problem(self._refused[1], refused=True)  # the server's word stands
        else:
            self._show_problem(problem or "")

    @on(Input.Submitted, "#new-name")
    @on(Button.Pressed, "#apply")
    def apply(self) -> None:
        name = self.query_one("#new-name", Input).value
        if (problem := name_problem(name)) is not None:
            self._show_problem(problem, refused=True)
            return
        if name == self._current:
            self.dismiss(None)
            return
        answer = self._request(name)
        if answer is None:
            self._show_problem(
                "not connected: try again once the client has reconnected", refused=True
            )
            return
        self._show_problem(f"asking the server for {name}…", waiting=True)
        self._wait_for_answer(name, answer)

    @work(exclusive=True, group="answer")
    async def _wait_for_answer(self, name: str, answer: Awaitable[NameAnswer]) -> None:
        result = await answer
        if isinstance(result, NameGranted):
            self.dismiss(result.name)
            return
        self._refused = (name, result.reason)
        self._show_problem(result.reason, refused=True)
        self.query_one("#new-name", Input).focus()

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
