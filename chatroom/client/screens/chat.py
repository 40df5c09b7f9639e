"""The chat room: header, log, user list, input and footer, and the one place where
server events are handled."""

from __future__ import annotations

import asyncio
import math
import ssl
import time

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, OptionList

from chatroom.client.connection import (
    ReconnectPolicy,
    ServerConnection,
    describe_failure,
    failure_cause,
    shown_address,
)
from chatroom.client.idle import warning_seconds
from chatroom.client.ignores import ignore_change
from chatroom.client.messages import LinkChanged, LinkState, ServerEventReceived
from chatroom.client.moderation import UserAction, actions_for, command_for, grants_operator
from chatroom.client.outgoing import Refuse, ShowHelp, plan_input
from chatroom.client.own_requests import ClaimRefused, NameAnswer, NameRefused, OwnRequests
from chatroom.client.render import LineRenderer, LogLine
from chatroom.client.roster import Roster
from chatroom.client.screens.password_dialog import PasswordDialog
from chatroom.client.screens.paste_dialog import PasteDialog
from chatroom.client.screens.rename_dialog import RenameDialog
from chatroom.client.screens.user_actions import UserActionsDialog
from chatroom.client.timeline import Divider, Mark, Reset, Timeline
from chatroom.client.widgets.chat_input import ChatInput
from chatroom.client.widgets.chat_log import DEFAULT_SCROLLBACK, ChatLog, NewMessagesBar
from chatroom.client.widgets.status_header import StatusHeader
from chatroom.client.widgets.user_list import UserList
from chatroom.protocol import (
    Action,
    Error,
    ErrorCode,
    Join,
    Leave,
    Message,
    Notice,
    NoticeCode,
    Private,
    Rename,
    Topic,
    Welcome,
    Who,
)
from chatroom.protocol import commands as c

TOAST_SECONDS = 3  # toasts cover the log's corner: short, the log keeps the line anyway


class ChatScreen(Screen):
    BINDINGS = [
        Binding("f2", "rename", "Rename"),
        Binding("ctrl+r", "reconnect", "Reconnect"),
        Binding("escape", "focus_input", "Input", show=False),
        Binding("f3", "toggle_users", "Users"),
        Binding("f4", "user_actions", "User…"),
    ]
    NARROW = 60  # below this many columns the user list is hidden unless asked for (F3)

    def __init__(
        self,
        host: str,
        port: int,
        wanted_name: str | None = None,
        *,
        autoconnect: bool = True,
        renderer: LineRenderer | None = None,
        policy: ReconnectPolicy | None = None,
        max_lines: int = DEFAULT_SCROLLBACK,
        connection: ServerConnection | None = None,
        tls: ssl.SSLContext | None = None,
        password: str | None = None,
    ) -> None:
        super().__init__()
        self.host, self.port, self.tls = host, port, tls
        # --password-file: sent when the server asks, once per connection (then: the dialog)
        self._password = password
        self._password_sent = False
        self._opened = connection  # opened before the UI started, used first
        self.address = shown_address(host, port, tls is not None)
        self.autoconnect = autoconnect
        self.renderer = renderer or LineRenderer()
        self.policy = policy or ReconnectPolicy()
        self.max_lines = max_lines
        self.roster = Roster()
        self.link_state = LinkState.CONNECTING
        self.connection: ServerConnection | None = None
        self.ever_connected = False
        self.own_requests = OwnRequests(wanted_name)
        self.timeline = Timeline(remember=max_lines)
        self._renaming = False  # the rename dialog is open
        self._name_answer: asyncio.Future[NameAnswer] | None = None  # the dialog waits for it
        self._outage: str | None = None  # why the link is down, once it was logged
        self._kick_at: float | None = None  # monotonic time of the idle kick counted down to
        self._countdown = None  # the timer that updates the header's idle countdown

    def compose(self) -> ComposeResult:
        yield StatusHeader(self.address)
        with Horizontal(id="main"):
            with Vertical(id="log-pane"):
                yield ChatLog(self.max_lines, id="log")
                yield NewMessagesBar(id="unseen")
            yield UserList(id="users")
        yield ChatInput(
            self.roster.names,
            id="input",
            placeholder="Message, or /help · Enter sends · Tab completes · ↑↓ history",
        )
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(ChatInput).focus()
        self.query_one(StatusHeader).show_link(self.link_state)
        if self.autoconnect:
            self.run_link()

    # --- the connection ----------------------------------------------------------------

    @work(exclusive=True, group="link")
    async def run_link(self) -> None:
        """Connect, pass every event on as a message, and reconnect as the policy says."""
        first_attempt = not self.ever_connected
        while True:
            self.post_message(LinkChanged(LinkState.CONNECTING, self.address))
            try:
                connection, self._opened = self._opened, None
                if connection is None:
                    connection = await ServerConnection.open(self.host, self.port, tls=self.tls)
            except (OSError, TimeoutError) as exc:
                cause, detail = failure_cause(exc), describe_failure(exc)
            else:
                self.connection = connection
                self._password_sent = False
                self.policy.connected()
                first_attempt = False
                self.post_message(LinkChanged(LinkState.CONNECTED))
                try:
                    async for event in connection.events():
                        self.post_message(ServerEventReceived(event))
                finally:
                    self.connection = None
                    await connection.close()
                cause, detail = connection.cause, str(connection.cause)
            delay = None if first_attempt else self.policy.next_delay(cause)
            self.post_message(
                LinkChanged(
                    LinkState.DISCONNECTED, detail, retry_in=delay, first_attempt=first_attempt
                )
            )
            if delay is None:
                return
            await asyncio.sleep(delay)

    def send(self, line: str) -> bool:
        if self.connection is None or not self.connection.is_open:
            return False
        self.connection.send(line)
        return True

    async def leave_room(self, reason: str | None = None) -> None:
        """Say goodbye to the room (``/quit``) and close the connection."""
        connection = self.connection
        if connection is not None and connection.is_open:
            connection.send(c.format_line(c.Quit(reason)))
            await connection.close(timeout=0.5)

    @on(LinkChanged)
    def link_changed(self, message: LinkChanged) -> None:
        self.link_state = message.state
        header = self.query_one(StatusHeader)
        if message.state is LinkState.CONNECTING:
            header.show_link(message.state)
            if self._outage is None:  # retries during an outage stay in the header only
                self.log_line(self.renderer.status(f"connecting to {self.address}…"))
        elif message.state is LinkState.CONNECTED:
            self.ever_connected = True
            self._outage = None
            header.show_link(message.state)
        elif message.first_attempt:
            self.app.fail(f"cannot reach {self.address}: {message.detail}")
        else:
            self._disconnected(message)
        self.refresh_bindings()

    def _disconnected(self, message: LinkChanged) -> None:
        self._stop_countdown()
        self.roster.clear()
        self._refresh_users()
        if message.retry_in is not None:
            next_step = f"reconnecting in {message.retry_in:.0f} s"
            header_detail = f"{message.detail} · retry in {message.retry_in:.0f}s"
        else:
            next_step = "press ctrl+r to reconnect"
            header_detail = f"{message.detail} · ctrl+r reconnect"
        self.query_one(StatusHeader).show_link(message.state, header_detail)
        if message.detail != self._outage or message.retry_in is None:
            # One log line per outage, not one per failed retry.
            self.log_line(
                self.renderer.status(f"disconnected: {message.detail}; {next_step}", alarm=True)
            )
        self._outage = message.detail

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "reconnect":
            return self.link_state is LinkState.DISCONNECTED
        if action == "rename":
            return True if self.link_state is LinkState.CONNECTED else None
        return True

    def action_reconnect(self) -> None:
        if self.link_state is LinkState.DISCONNECTED:
            self.policy.connected()
            self._outage = None
            self.run_link()

    # --- server events: all of them are handled here -------------------------------------

    @on(ServerEventReceived)
    def server_event(self, message: ServerEventReceived) -> None:
        event = message.event
        render = self.renderer
        if self.timeline.already_shown(event):
            return  # a reconnect's replay of a message the log holds
        self.timeline.ignoring = self.roster.ignores_anyone
        for mark in self.timeline.marks_before(event):
            self.log_line(self._mark(mark))
        match event:
            case Welcome():
                self._welcome(event)
            case Message() | Action():
                self._chat(event)
            case Private():
                line = render.private(event, self.roster.own_name)
                self.log_line(line)
                if line.mentions_me:
                    self._alert(f"private message from {event.sender}", event.text)
            case Join() | Leave() | Rename():
                self.roster.apply(event)
                self._refresh_users()
                if isinstance(event, Rename) and self.roster.is_own(event.id):
                    self._renamed(event)
                self.log_line(getattr(render, event.type)(event))
            case Who():
                self.roster.apply(event)
                self._refresh_users()
                if not self.own_requests.who_reply_is_ours():
                    self.log_line(render.who(event))
            case Topic():
                self.query_one(StatusHeader).show_topic(event.text)
                self.log_line(render.topic(event))
            case Notice():
                self._notice(event)
            case Error():
                self._error(event)
            case _:
                pass  # format changes and types this version does not know

    def _welcome(self, event: Welcome) -> None:
        self.roster.welcome(event)
        self._refresh_users()
        header = self.query_one(StatusHeader)
        header.show_name(event.name)
        header.show_topic(event.topic)
        self.log_line(self.renderer.status(f"connected as {event.name}"))
        self.own_requests.welcomed(event.name, self.send)

    def _mark(self, mark: Mark) -> LogLine:
        if isinstance(mark, Divider):
            return self.renderer.divider(mark.text)
        if isinstance(mark, Reset):
            return self.renderer.status(mark.text, alarm=True)
        return self.renderer.status(f"{mark.count} event(s) missed", alarm=True)

    def _chat(self, event: Message | Action) -> None:
        line = self.renderer.chat(event, self.roster.own_id, self.roster.own_name)
        self.log_line(line)
        if line.mentions_me and not event.history:
            self._alert(f"{event.name} mentioned you", event.text)

    def _renamed(self, event: Rename) -> None:
        self.query_one(StatusHeader).show_name(event.new)
        if (granted := self.own_requests.renamed(event.new)) is not None:
            self._answer_rename_dialog(granted)

    def _notice(self, event: Notice) -> None:
        if event.code is NoticeCode.PONG and self.own_requests.pong_is_ours():
            return  # the answer to a key pressed during the idle countdown
        if event.code is NoticeCode.RESET:
            return  # the timeline's mark before it says so
        self.log_line(self.renderer.notice(event))
        if event.code is NoticeCode.PASSWORD:
            self._give_password()
        if grants_operator(event):
            self.own_requests.ask_who(self.send)  # our own entry's op marks us
        if (change := ignore_change(event)) is not None:
            self.roster.ignoring(change)
            self._refresh_users()
        if (seconds := warning_seconds(event)) is not None:
            self._start_countdown(seconds)
        elif event.code in (NoticeCode.TIMEOUT, NoticeCode.SHUTDOWN):
            self.notify(event.text, severity="error", markup=False, timeout=TOAST_SECONDS)

    # --- the idle countdown: any key keeps the user in the room --------------------------

    def _start_countdown(self, seconds: float) -> None:
        self._kick_at = time.monotonic() + seconds
        if self._countdown is None:
            self._countdown = self.set_interval(0.25, self._tick)
        self._tick()

    def _tick(self) -> None:
        if self._kick_at is None:
            return
        left = max(0, math.ceil(self._kick_at - time.monotonic()))
        self.query_one(StatusHeader).show_idle(left)

    def _stop_countdown(self) -> None:
        self._kick_at = None
        if self._countdown is not None:
            self._countdown.stop()
            self._countdown = None
        self.query_one(StatusHeader).show_idle(None)

    def key_pressed(self) -> None:
        """Any key, anywhere in the client: during the idle countdown, stay in the room."""
        if self._kick_at is not None and self.own_requests.ping(self.send):
            self._stop_countdown()

    def _give_password(self, reason: str | None = None) -> None:
        """The room needs its password: send the one from --password-file (once per
        connection), else ask for it. Never logged: only ``/pass`` goes to the server."""
        if self._password is not None and not self._password_sent:
            self._password_sent = self.send(c.format_line(c.Pass(self._password)))
            return
        if isinstance(self.app.screen, PasswordDialog):
            return

        def entered(secret: str | None) -> None:
            if secret is not None:
                self._password_sent = self.send(c.format_line(c.Pass(secret)))

        self.app.push_screen(PasswordDialog(self.address, reason), entered)

    def _error(self, event: Error) -> None:
        if event.code is ErrorCode.BAD_PASSWORD:
            self.log_line(self.renderer.error(event))
            self._give_password(reason=event.message)
            return
        route = self.own_requests.error(event)
        if isinstance(route, NameRefused):
            self._answer_rename_dialog(route)
            return
        self.log_line(self.renderer.error(event))
        if isinstance(route, ClaimRefused):
            self.open_rename_dialog(reason=route.reason, suggestion=route.name)

    def _alert(self, title: str, text: str) -> None:
        self.app.bell()
        self.notify(text, title=title, markup=False, timeout=TOAST_SECONDS)

    def _refresh_users(self) -> None:
        roster = self.roster
        self.query_one(UserList).show(
            roster.users(), roster.own_id, roster.operators(), roster.ignored()
        )

    def log_line(self, line: LogLine) -> None:
        self.query_one(ChatLog).add(line)

    # --- the user's side -----------------------------------------------------------------

    @on(ChatInput.Submitted, "#input")
    def submit(self, event: ChatInput.Submitted) -> None:
        if not self._send_typed(event.value):
            chat_input = self.query_one(ChatInput)
            if not chat_input.value:  # nothing typed since: give the line back, not a loss
                chat_input.set_line(event.value)

    def _send_typed(self, text: str) -> bool:
        plan = plan_input(text)
        if plan is None:
            return True
        if isinstance(plan, Refuse):
            self.log_line(self.renderer.status(plan.reason, alarm=True))
        elif isinstance(plan, ShowHelp):
            for line in plan.text.splitlines():
                self.log_line(self.renderer.status(line))
        elif not self.send(plan.line):
            self.log_line(self.renderer.status("not connected: nothing was sent", alarm=True))
            return False
        return True

    @on(ChatInput.MultiLinePaste)
    def multi_line_paste(self, event: ChatInput.MultiLinePaste) -> None:
        chat_input = self.query_one(ChatInput)
        lines = event.paste.lines

        def send_all(confirmed: bool | None = True) -> None:
            if not confirmed:
                chat_input.set_line(event.draft)
                chat_input.focus()
                return
            for index, line in enumerate(lines):
                chat_input.history.add(line)
                if not self._send_typed(line):
                    # Nothing more can go out: give the rest back to the user, not a drop.
                    chat_input.set_line(" ".join(lines[index:]))
                    break
            chat_input.focus()

        if event.paste.needs_confirmation:
            self.app.push_screen(PasteDialog(lines), send_all)
        else:
            send_all()

    @on(OptionList.OptionSelected, "#users")
    def user_selected(self, event: OptionList.OptionSelected) -> None:
        name = self.query_one(UserList).name_of(event.option_id)
        if name is not None:
            self.query_one(ChatInput).start_private_message(name)

    def action_user_actions(self) -> None:
        """F4: what can be done to the highlighted user (operators: kick, mute, ban)."""
        users = self.query_one(UserList)
        user_id = users.highlighted_user
        name = users.name_of(user_id)
        if user_id is None or name is None:
            self.notify("Highlight a user in the list first (F3, ↑↓)", timeout=TOAST_SECONDS)
            return
        actions = actions_for(operator=self.roster.own_is_operator, own=self.roster.is_own(user_id))
        if not actions:
            return

        def chosen(action: UserAction | None) -> None:
            if action is not None:
                self.act_on_user(action, name)

        self.app.push_screen(UserActionsDialog(name, actions), chosen)

    def act_on_user(self, action: UserAction, name: str) -> None:
        """Do ``action`` to the user ``name``: a command to the server, or a /msg started."""
        line = command_for(action, name)
        if line is None:
            self.query_one(ChatInput).start_private_message(name)
        elif not self.send(line):
            self.log_line(self.renderer.status("not connected: nothing was sent", alarm=True))

    @on(ChatLog.UnseenChanged)
    def unseen_changed(self, message: ChatLog.UnseenChanged) -> None:
        self.query_one(NewMessagesBar).show_count(message.count)

    @on(NewMessagesBar.Clicked)
    def unseen_clicked(self) -> None:
        self.action_jump_to_end()

    def action_scroll_log(self, how: str) -> None:
        log = self.query_one(ChatLog)
        if how == "end":
            log.jump_to_end()
        elif how == "home":
            log.scroll_home(animate=False)
        elif how == "page_up":
            log.scroll_page_up(animate=False)
        else:
            log.scroll_page_down(animate=False)

    def action_jump_to_end(self) -> None:
        self.query_one(ChatLog).jump_to_end()

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
            self.own_requests.forget_name_request()
            self.query_one(ChatInput).focus()

        dialog = RenameDialog(
            self.roster.own_name or "", self._request_name, reason=reason, suggestion=suggestion
        )
        self.app.push_screen(dialog, closed)

    def _request_name(self, name: str) -> asyncio.Future[NameAnswer] | None:
        """The rename dialog's request: None if it could not be sent."""
        if not self.own_requests.ask_for_name(name, self.send):
            return None
        self._name_answer = asyncio.get_running_loop().create_future()
        return self._name_answer

    def _answer_rename_dialog(self, answer: NameAnswer) -> None:
        if self._name_answer is not None and not self._name_answer.done():
            self._name_answer.set_result(answer)
        self._name_answer = None
