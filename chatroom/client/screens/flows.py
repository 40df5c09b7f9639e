"""The chat screen's longer conversations with the user, each a function of the screen:
a paste of several lines (asked first when long) and F4's actions on a user (Ban asked
first, saying who else shares the address)."""

from __future__ import annotations

from typing import Any

from chatroom.client.moderation import UserAction, ban_question
from chatroom.client.outgoing import history_form
from chatroom.client.screens.confirm_dialog import ConfirmDialog
from chatroom.client.screens.password_dialog import PasswordDialog
from chatroom.client.screens.paste_dialog import PasteDialog
from chatroom.client.screens.user_actions import UserActionsDialog
from chatroom.client.widgets.chat_input import ChatInput
from chatroom.client.widgets.user_list import UserList

# The chat screen (chatroom/client/screens/chat.py), which calls these; not imported here,
# so that the screen's module and this one do not import each other.
ChatScreen = Any

TOAST_SECONDS = 3


def send_paste(screen: ChatScreen, event: ChatInput.MultiLinePaste) -> None:
    chat_input = screen.query_one(ChatInput)
    lines = event.paste.lines

    def send_all(confirmed: bool | None = True) -> None:
        if not confirmed:
            chat_input.set_line(event.draft)
            chat_input.focus()
            return
        for index, line in enumerate(lines):
            chat_input.history.add(history_form(line))
            if not screen.send_typed(line):
                # Nothing more can go out: give the rest back to the user, not a drop.
                chat_input.set_line(" ".join(lines[index:]))
                break
        chat_input.focus()

    if event.paste.needs_confirmation:
        screen.app.push_screen(PasteDialog(lines), send_all)
    else:
        send_all()


def user_actions(screen: ChatScreen) -> None:
    users = screen.query_one(UserList)
    user_id = users.highlighted_user
    name = users.name_of(user_id)
    if user_id is None or name is None:
        screen.notify("Highlight a user in the list first (F3, ↑↓)", timeout=TOAST_SECONDS)
        return
    actions = screen.session.user_actions(user_id)
    if not actions:
        return

    def chosen(action: UserAction | None) -> None:
        if action is UserAction.BAN:
            question = ban_question(screen.roster, user_id, name)
            screen.app.push_screen(
                ConfirmDialog(f"Ban {name}?", question, "Ban"),
                lambda yes: screen.act_on_user(action, name) if yes else None,
            )
        elif action is not None:
            screen.act_on_user(action, name)

    screen.app.push_screen(UserActionsDialog(name, actions), chosen)


def ask_password(screen: ChatScreen, reason: str | None) -> None:
    """The room's password, asked in a dialog (unless it is open); cancelled, the log
    says how to get in after all."""
    if isinstance(screen.app.screen, PasswordDialog):
        return

    def entered(secret: str | None) -> None:
        if secret is not None:
            screen.session.password_entered(secret)
        else:
            screen.apply(screen.session.password_cancelled())

    screen.app.push_screen(PasswordDialog(screen.settings.address, reason), entered)
