"""The chat room on screen: header, log, user list, input and footer.

A view: the :class:`~chatroom.client.session.Session` decides what every server event,
change of the link, typed line and key means, and returns it as effects
(chatroom/client/effects.py), which :meth:`ChatScreen.apply` carries out. The screen owns
only what is on screen — its widgets, its dialogs, the timer that redraws the idle
countdown — and starts the :class:`~chatroom.client.link.Link`'s loop in a worker.
"""

from __future__ import annotations

import asyncio

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, OptionList

from chatroom.client import effects as fx
from chatroom.client.connection import ServerConnection
from chatroom.client.effects import Effect
from chatroom.client.link import Link, LinkState
from chatroom.client.log_buffer import Conversation
from chatroom.client.logfiles import ConversationLogs
from chatroom.client.messages import (
    LinkChanged,
    ServerEventReceived,
    ServerEventsReceived,
    batched,
)
from chatroom.client.moderation import UserAction
from chatroom.client.own_requests import NameAnswer, OwnRequests
from chatroom.client.roster import Roster
from chatroom.client.screens import flows
from chatroom.client.screens.rename_dialog import RenameDialog
from chatroom.client.session import Session
from chatroom.client.settings import ClientSettings
from chatroom.client.widgets.chat_input import ChatInput
from chatroom.client.widgets.chat_log import ChatLog, NewMessagesBar
from chatroom.client.widgets.conversations import ConversationView
from chatroom.client.widgets.status_header import StatusHeader
from chatroom.client.widgets.user_list import UserList

TOAST_SECONDS = 3  # toasts cover the log's corner: short, the log keeps the line anyway


# The screen's keys (the input line has its own: chatroom/client/widgets/chat_input.py).
KEYS = [
    Binding("f2", "rename", "Rename"),
    Binding("ctrl+r", "reconnect", "Reconnect"),
    Binding("escape", "focus_input", "Input", show=False),
    Binding("f3", "toggle_users", "Users"),
    Binding("f4", "user_actions", "User…"),
    Binding("ctrl+f", "search", "Search"),
    Binding("f6", "next_mention", "Mention"),
    # Alt+key: priority, or the input line would type the letter a terminal sends with
    # it (ESC l arrives as alt+l with the character "l").
    Binding("alt+left", "buffer(-1)", "Conversation", key_display="Alt+←→", priority=True),
    Binding("alt+right", "buffer(1)", "Next conversation", show=False, priority=True),
    Binding("ctrl+n", "buffer(1)", "Next conversation", show=False, priority=True),
    Binding("ctrl+p", "buffer(-1)", "Conversation before", show=False, priority=True),
    *(
        Binding(f"alt+{n}", f"buffer_number({n})", f"Conversation {n}", show=False, priority=True)
        for n in range(1, 10)
    ),  # fmt: skip
    Binding("alt+l", "bare", "Bare view", show=False, priority=True),
]


def here(effect: Effect, conversation: Conversation) -> Effect:
    """A line for the room shown last (None) shown in ``conversation`` instead."""
    if isinstance(effect, fx.ShowLine) and effect.conversation is None:
        return fx.ShowLine(effect.line, conversation)
    return effect


class ChatScreen(Screen):
    BINDINGS = KEYS
    NARROW = 60  # below this many columns the user list is hidden unless asked for (F3)

    def __init__(
        self,
        settings: ClientSettings,
        *,
        connection: ServerConnection | None = None,
        autoconnect: bool = True,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.autoconnect = autoconnect
        self.link = Link(settings, opened=connection)
        self.session = Session(settings, self.link.send)
        self._renaming = False  # the rename dialog is open
        self._name_answer: asyncio.Future[NameAnswer] | None = None  # the dialog waits for it
        self._countdown = None  # the timer that redraws the header's idle countdown
        self._conversations: ConversationView | None = None

    # What the session knows, for whoever looks (tests, the app).
    @property
    def roster(self) -> Roster:
        return self.session.roster

    @property
    def own_requests(self) -> OwnRequests:
        return self.session.own_requests

    @property
    def link_state(self) -> LinkState:
        return self.session.link_state

    def compose(self) -> ComposeResult:
        yield StatusHeader(self.settings.address)
        settings = self.settings
        logs = None
        if settings.log_dir is not None:
            server = f"{settings.host}_{settings.port}"
            logs = ConversationLogs(settings.log_dir, server, settings.tz)
        with Horizontal(id="main"):
            yield ConversationView(settings.scrollback, logs, id="log-pane")
            yield UserList(id="users")
        yield ChatInput(
            lambda: self.roster.names(),  # the room shown's, whichever it is
            id="input",
            placeholder="Message, or /help · Enter sends · Tab completes · ↑↓ history",
        )
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(ChatInput).focus()
        self.query_one(StatusHeader).show_link(self.link_state)
        if self.autoconnect:
            self.run_link()

    # --- the link and the server's events: the session decides -------------------------

    @work(exclusive=True, group="link")
    async def run_link(self) -> None:
        """The link's loop: its changes and events come back here as messages, in order."""
        status, event = batched(self.post_message)
        await self.link.run(status, event)

    async def leave_room(self, reason: str | None = None) -> None:
        """Say goodbye to the room (``/quit``) and close the connection."""
        await self.link.leave(reason)

    @on(LinkChanged)
    def link_changed(self, message: LinkChanged) -> None:
        self.apply(self.session.handle(message.status))
        self.refresh_bindings()

    @on(ServerEventReceived)
    def server_event(self, message: ServerEventReceived) -> None:
        self.apply(self.session.handle(message.event))

    @on(ServerEventsReceived)
    def server_events(self, message: ServerEventsReceived) -> None:
        handle, apply = self.session.handle, self.apply
        for event in message.events:
            apply(handle(event))

    def key_pressed(self) -> None:
        """Any key, anywhere in the client (the app calls this for every key)."""
        self.apply(self.session.key_pressed())

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "reconnect":
            return self.session.may_reconnect
        if action == "rename":
            return True if self.link_state is LinkState.CONNECTED else None
        return True

    def action_reconnect(self) -> None:
        if self.session.may_reconnect:
            self.session.reconnecting()
            self.run_link()

    # --- carrying out the session's effects ----------------------------------------------

    def apply(self, effects: list[Effect]) -> None:
        for effect in effects:
            match effect:
                case fx.ShowLine(line, conversation):
                    if (problem := self.conversations.add(line, conversation)) is not None:
                        self.notify(problem, severity="error", markup=False)
                case fx.ShowUsers(users, own_id, operators, ignored, registered, away):
                    self.query_one(UserList).show(
                        list(users), own_id, operators, ignored, registered, away
                    )
                case fx.ShowName(name):
                    self.query_one(StatusHeader).show_name(name)
                case fx.ShowTopic(text):
                    self.query_one(StatusHeader).show_topic(text)
                case fx.ShowLink(state, detail):
                    self.query_one(StatusHeader).show_link(state, detail)
                case fx.Alert(title, text):
                    self.app.notify_desktop(title, text)
                    self.notify(text, title=title, markup=False, timeout=TOAST_SECONDS)
                case fx.Warn(text):
                    self.notify(text, severity="error", markup=False, timeout=TOAST_SECONDS)
                case fx.AskPassword(reason):
                    flows.ask_password(self, reason)
                case fx.OpenRenameDialog(reason, suggestion):
                    self.open_rename_dialog(reason, suggestion)
                case fx.AnswerRenameDialog(answer):
                    if self._name_answer is not None and not self._name_answer.done():
                        self._name_answer.set_result(answer)
                    self._name_answer = None
                case fx.StartCountdown():
                    if self._countdown is None:
                        self._countdown = self.set_interval(0.25, self._show_countdown)
                    self._show_countdown()
                case fx.StopCountdown():
                    if self._countdown is not None:
                        self._countdown.stop()
                        self._countdown = None
                    self._show_countdown()
                case fx.StartPrivateMessage(name):
                    self.query_one(ChatInput).start_private_message(name)
                case fx.GiveBack(text):
                    chat_input = self.query_one(ChatInput)
                    if not chat_input.value:
                        chat_input.set_line(text)
                case fx.ClearLog():
                    self.conversations.clear_shown()
                case fx.OpenConversation(name):
                    self.conversations.open(name)
                case fx.NameRoom(room):
                    self.conversations.name_room(room)
                case fx.CloseRoom(room):
                    self.conversations.close_room(room)
                case fx.ShowRoom(title):
                    self.query_one(StatusHeader).show_room(title)
                case fx.CloseConversation():
                    self.conversations.close_shown()
                case fx.GiveUp(reason):
                    self.app.fail(reason)

    def _show_countdown(self) -> None:
        self.query_one(StatusHeader).show_idle(self.session.idle.left())

    # --- the user's side -----------------------------------------------------------------

    @on(ChatInput.Submitted, "#input")
    def submit(self, event: ChatInput.Submitted) -> None:
        if not self.send_typed(event.value):
            chat_input = self.query_one(ChatInput)
            if not chat_input.value:  # nothing typed since: give the line back, not a loss
                chat_input.set_line(event.value)

    def send_typed(self, text: str) -> bool:
        conversation = self.conversations.conversation
        sent, effects = self.session.typed(text, conversation)
        if conversation is not None:  # the answer to what was typed: where it was typed
            effects = [here(effect, conversation) for effect in effects]
        self.apply(effects)
        return sent

    @on(ChatInput.MultiLinePaste)
    def multi_line_paste(self, event: ChatInput.MultiLinePaste) -> None:
        flows.send_paste(self, event)

    @on(OptionList.OptionSelected, "#users")
    def user_selected(self, event: OptionList.OptionSelected) -> None:
        name = self.query_one(UserList).name_of(event.option_id)
        if name is not None:
            self.query_one(ChatInput).start_private_message(name)

    def action_user_actions(self) -> None:
        """F4: what can be done to the highlighted user (operators: kick, mute, ban)."""
        flows.user_actions(self)

    def act_on_user(self, action: UserAction, name: str) -> None:
        """Do ``action`` to the user ``name``: a command to the server, or a /msg started."""
        self.apply(self.session.act_on_user(action, name))

    @on(ConversationView.Switched)
    def conversation_switched(self, message: ConversationView.Switched) -> None:
        self.apply(self.session.shown(message.conversation))

    @on(ChatLog.UnseenChanged)
    def unseen_changed(self, message: ChatLog.UnseenChanged) -> None:
        self.query_one(NewMessagesBar).show_count(message.count)

    @on(NewMessagesBar.Clicked)
    def unseen_clicked(self) -> None:
        self.conversations.jump_to_end()

    @property
    def conversations(self) -> ConversationView:
        if self._conversations is None:
            self._conversations = self.query_one(ConversationView)
        return self._conversations

    def action_scroll_log(self, how: str) -> None:
        if how == "end":
            self.conversations.jump_to_end()
        else:
            self.query_one(ChatLog).scroll_by(how)

    def action_search(self) -> None:
        """Ctrl+F: search the log shown."""
        self.conversations.open_search()

    def action_next_mention(self) -> None:
        """F6: the next line that mentions you, in the log shown."""
        if not self.conversations.next_mention():
            self.notify("No line here mentions you", timeout=TOAST_SECONDS)

    def action_buffer(self, delta: int) -> None:
        self.conversations.step(delta)

    def action_buffer_number(self, number: int) -> None:
        self.conversations.by_number(number)

    def action_bare(self) -> None:
        """Alt+L: the log alone, without borders, so a mouse selection copies only text."""
        self.toggle_class("-bare")
        self.query_one(ChatInput).focus()

    def on_resize(self, event: events.Resize) -> None:
        narrow = event.size.width < self.NARROW
        if narrow != self.has_class("-narrow"):
            self.set_class(narrow, "-narrow")
            self.remove_class("-users-toggled")

    def action_toggle_users(self) -> None:
        """F3: show or hide the user list (hidden by default in a narrow terminal)."""
        self.toggle_class("-users-toggled")
        if not self.query_one(UserList).display and self.query_one(UserList).has_focus:
            self.action_focus_input()

    def on_key(self, event: events.Key) -> None:
        # Typing while the log or the user list has focus (after a click, Shift+Tab) goes
        # to the input line: a keystroke is never swallowed by a widget that cannot use it.
        if event.is_printable and event.character and isinstance(self.focused, ChatLog | UserList):
            event.stop()
            event.prevent_default()
            chat_input = self.query_one(ChatInput)
            chat_input.focus()
            chat_input.insert_text_at_cursor(event.character)

    def action_focus_input(self) -> None:
        self.remove_class("-bare")  # Esc also leaves the bare view
        self.query_one(ChatInput).focus()

    def action_rename(self) -> None:
        if self.link_state is not LinkState.CONNECTED:
            self.notify("Not connected", severity="warning", timeout=TOAST_SECONDS)
            return
        self.open_rename_dialog()

    def open_rename_dialog(self, reason: str | None = None, suggestion: str | None = None) -> None:
        if self._renaming:
            return
        self._renaming = True

        def closed(_: str | None) -> None:
            # Nothing to do with a granted name: its rename event updated the roster and
            # the header before the dialog was dismissed.
            self._renaming = False
            self._name_answer = None
            self.session.rename_dialog_closed()
            self.query_one(ChatInput).focus()

        dialog = RenameDialog(
            self.roster.own_name or "", self._request_name, reason=reason, suggestion=suggestion
        )
        self.app.push_screen(dialog, closed)

    def _request_name(self, name: str) -> asyncio.Future[NameAnswer] | None:
        """The rename dialog's request: None if it could not be sent."""
        if not self.session.ask_for_name(name):
            return None
        self._name_answer = asyncio.get_running_loop().create_future()
        return self._name_answer
