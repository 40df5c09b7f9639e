"""F4 on a user in the list: what can be done to them (a private message; for operators
kick, mute for 10 minutes, ban). Dismissed with the chosen :class:`UserAction`, or None."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from chatroom.client.moderation import LABELS, UserAction


class UserActionsDialog(ModalScreen[UserAction | None]):
    AUTO_FOCUS = "#user-actions-list"
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, name: str, actions: list[UserAction]) -> None:
        super().__init__()
        self.user_name = name
        self.actions = actions

    def compose(self) -> ComposeResult:
        with Vertical(id="user-actions") as dialog:
            dialog.border_title = "User"
            yield Label(Content.assemble("Do what to ", (self.user_name, "bold"), "?"))
            yield OptionList(
                *(Option(LABELS[action], id=str(action)) for action in self.actions),
                id="user-actions-list",
                markup=False,
            )

    @on(OptionList.OptionSelected, "#user-actions-list")
    def chosen(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(UserAction(event.option_id))

    def action_cancel(self) -> None:
        self.dismiss(None)
