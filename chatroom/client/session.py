"""The chat session: what the client knows of the room and decides about it. No Textual.

:class:`Session` takes everything that happens — each server event and each change of
the link (:meth:`Session.handle`), each line the user types, each key, each dialog's
answer — and returns what the chat screen must do, as effects (chatroom/client/effects.py:
show a line, show the users, ask for the password, start the idle countdown, answer the
rename dialog, ...). The screen carries them out and decides nothing; the session never
touches a widget, so it is tested with constructed events and a stand-in for the wire.

It sends its own lines (the quiet ``/who``, the ``--name`` claim, ``/pass``, ``/ping``)
through the ``send`` function it is given (the link's), which says whether there was a
connection; every command is formatted from the shared definitions
(chatroom/protocol/commands.py). What the server tells it, it reads from codes and facts
(a notice's ``fact`` and its fields), never from the words, which are for people.

The parts it keeps: the :class:`~chatroom.client.rooms.Rooms` it is in, each with its
:class:`~chatroom.client.roster.Roster` (who is there, our own id and name, operators and
ignores) and :class:`~chatroom.client.timeline.Timeline` (history dividers, missed events,
replays, resume by its own seq), :class:`~chatroom.client.own_requests.OwnRequests`
(where the answers to its own requests go), the password (from ``--password-file``, sent
once per connection) and the :class:`~chatroom.client.idle.IdleCountdown`.

Rooms (docs/PROTOCOL.md, "Rooms"): every event that happens in a room goes to that room's
roster, timeline and log (a :class:`~chatroom.client.log_buffer.RoomRef`); the user list
and the header follow the room shown (:meth:`Session.shown`). Every line typed in a room
goes as a request naming it (``{"room": "dev", "text": LINE}``), and so do the client's
own lines for a room (the quiet ``/who`` after a greeting, ``/history since`` to resume).
After a reconnect the client joins again every room it was in (rooms.py keeps them).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from chatroom.client import effects as fx
from chatroom.client import outgoing as out
from chatroom.client.effects import Effect, ShowLine
from chatroom.client.help import help_lines
from chatroom.client.idle import IdleCountdown, warning_seconds
from chatroom.client.ignores import ignore_change
from chatroom.client.link import LinkState, LinkStatus
from chatroom.client.log_buffer import Conversation, RoomRef
from chatroom.client.moderation import (
    UserAction,
    actions_for,
    command_for,
    grants_operator,
)
from chatroom.client.own_requests import ClaimRefused, NameRefused, OwnRequests, Send
from chatroom.client.password import Password
from chatroom.client.render import LineRenderer
from chatroom.client.room_events import NOT_SENT, RoomEvents
from chatroom.client.rooms import JoinedRoom, Rooms
from chatroom.client.roster import Roster
from chatroom.client.settings import ClientSettings
from chatroom.protocol import (
    Error,
    ErrorCode,
    Event,
    Fact,
    Notice,
    NoticeCode,
    Private,
    RoomEntered,
    RoomList,
    UnknownEvent,
    Welcome,
)
from chatroom.protocol import commands as c


class Session:
    def __init__(
        self,
        settings: ClientSettings,
        send: Send,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._send = send
        self.render = LineRenderer(settings.tz, seconds=settings.seconds, now=settings.now)
        self.rooms = Rooms(settings.scrollback)
        self.own_requests = OwnRequests(settings.name, settings.account_password)
        self.room_events = RoomEvents(self.rooms, self.render, send, self.own_requests)
        self.idle = IdleCountdown(clock)
        self.link_state = LinkState.CONNECTING
        self.password = Password(settings.password)  # --password-file's, or the dialog's
        self._outage: str | None = None  # why the link is down, once it was logged
        self.max_line = out.DEFAULT_MAX_LINE  # lines longer than this are split or refused
        self.last_private: str | None = None  # who /r answers
        self._last_typed: str | None = None  # the last line typed and sent (to give back)
        self._welcomed = False  # this connection is in the room (a bad_password is a /login's)

    @property
    def roster(self) -> Roster:
        """Who is in the room shown (the user list's)."""
        return self.rooms.shown_room.roster

    def handle(self, event: Event | UnknownEvent | LinkStatus) -> list[Effect]:
        """What the screen does about a server event or a change of the link."""
        if isinstance(event, LinkStatus):
            return self._link(event)
        if isinstance(event, Welcome):
            self.rooms.welcome(event)
        key = self.rooms.key_of(event)
        if key is None:
            return self._elsewhere(event)
        if isinstance(event, RoomEntered) and self.rooms.can_enter(key):
            self.rooms.enter(key)
        room = self.rooms.get(key)
        return [] if room is None else self._in_room(room, event)  # None: not in it (now)

    def _in_room(self, room: JoinedRoom, event: Event | UnknownEvent) -> list[Effect]:
        out = self.room_events.marks(room, event)
        if out is None:
            return []  # a reconnect's replay, or an event the log holds (by seq)
        match event:
            case Welcome():
                return out + self._welcome(event, room)
            case Notice():
                return out + self._notice(event, self.rooms.conversation(room))
        return out + self.room_events.handle(room, event)

    def _elsewhere(self, event: Event | UnknownEvent) -> list[Effect]:
        """An event that is no room's: a private message, an error, a notice, a list."""
        match event:
            case Private():
                line = self.render.private(event, self.room_events.own[1])
                peer = event.sender if line.mentions_me else event.recipient
                out: list[Effect] = [ShowLine(line, conversation=peer)]
                if line.mentions_me:
                    self.last_private = event.sender
                    out.append(fx.Alert(f"private message from {event.sender}", event.text))
                return out
            case Notice():
                return self._notice(event)
            case Error():
                return self._error(event)
            case RoomList():
                return [ShowLine(line) for line in self.render.rooms(event)]
        return []  # format changes, acks and types this version does not know

    def shown(self, conversation: Conversation) -> list[Effect]:
        """The screen shows ``conversation`` now: the user list and header follow a room."""
        return self.room_events.shown(conversation)

    # --- the link ------------------------------------------------------------------------

    def _link(self, status: LinkStatus) -> list[Effect]:
        self.link_state = status.state
        match status.state:
            case LinkState.CONNECTING:
                out: list[Effect] = [fx.ShowLink(status.state)]
                if self._outage is None:  # retries during an outage stay in the header only
                    out.append(self._status(f"connecting to {self.settings.address}…"))
                return out
            case LinkState.CONNECTED:
                self._outage = None
                self.password.new_connection()
                self._welcomed = False
                return [fx.ShowLink(status.state)]
        if status.first_attempt:
            return [fx.GiveUp(f"cannot reach {self.settings.address}: {status.detail}")]
        return self._disconnected(status)

    def _disconnected(self, status: LinkStatus) -> list[Effect]:
        self.idle.stop()
        for room in self.rooms:
            room.roster.clear()
        self.rooms.wanted = None
        if status.retry_in is not None:
            next_step = f"reconnecting in {status.retry_in:.0f} s"
            header_detail = f"{status.detail} · retry in {status.retry_in:.0f}s"
        else:
            next_step = "press ctrl+r to reconnect"
            header_detail = f"{status.detail} · ctrl+r reconnect"
        out: list[Effect] = [
            fx.StopCountdown(),
            fx.ShowUsers.of(self.roster),
            fx.ShowLink(status.state, header_detail),
        ]
        if status.detail != self._outage or status.retry_in is None:
            # One log line per outage, not one per failed retry.
            text = f"disconnected: {status.detail}; {next_step}"
            out.append(self._status(text, alarm=True))
        self._outage = status.detail
        return out

    @property
    def may_reconnect(self) -> bool:
        """Whether Ctrl+R may start the link again: it is down and waits for the user."""
        return self.link_state is LinkState.DISCONNECTED

    def reconnecting(self) -> None:
        """The user pressed Ctrl+R: a new outage will be logged again."""
        self._outage = None

    # --- server events -------------------------------------------------------------------

    def _welcome(self, event: Welcome, room: JoinedRoom) -> list[Effect]:
        self._welcomed = True
        rooms = self.room_events
        rooms.own = (event.id, event.name)
        room.roster.welcome(event)
        room.topic = event.topic
        out: list[Effect] = [fx.NameRoom(RoomRef(room.key))] if self.rooms.named else []
        if room.key == self.rooms.shown:
            out += rooms.show_room(room)
        out += [fx.ShowName(event.name), self._status(f"connected as {event.name}")]
        rooms.resume(room)  # first: the who reply that follows closes the answer's divider
        self.own_requests.welcomed(event.name, lambda line: rooms.send_in(room.key, line))
        for key in self.rooms.to_rejoin():  # after a reconnect: every room it was in
            rooms.send_in(room.key, c.format_line(c.Join(key)))
        return out

    def _notice(self, event: Notice, where: Conversation = None) -> list[Effect]:
        if event.code is NoticeCode.PONG and self.own_requests.pong_is_ours():
            return []  # the answer to a key pressed during the idle countdown
        if event.code is NoticeCode.RESET:
            return []  # the timeline's mark before it says so
        if event.code is NoticeCode.HISTORY and not event.count:
            return []  # nothing was missed: nothing to say
        out: list[Effect] = [ShowLine(self.render.notice(event), where)]
        if event.code is NoticeCode.PASSWORD:
            out += self._give_password()
        if grants_operator(event) or event.fact in (Fact.REGISTERED, Fact.UNREGISTERED):
            for room in self.rooms:  # our own entry's op (registered) marks us, in each
                self.room_events.quiet_who(room)
        rosters = [room.roster for room in self.rooms]  # facts about us hold in every room
        if event.fact in (Fact.AWAY, Fact.BACK):
            for roster in rosters:
                roster.own_away(event.fact is Fact.AWAY)
            out.append(fx.ShowUsers.of(self.roster))
        if (change := ignore_change(event)) is not None:
            for roster in rosters:
                roster.ignoring(change)
            out.append(fx.ShowUsers.of(self.roster))
        if event.fact is Fact.IDENTITY and event.id is not None and event.name is not None:
            # Not a rename we asked for: a reconnect still claims the name the user chose
            # (the server may have given back the id as the name, which no /nick can take).
            self.room_events.own = (event.id, event.name)
            for roster in rosters:
                roster.identity(event.id, event.name)
            out += [fx.ShowUsers.of(self.roster), fx.ShowName(event.name)]
        if (seconds := warning_seconds(event)) is not None:
            self.idle.start(seconds)
            out.append(fx.StartCountdown())
        elif event.code in (NoticeCode.TIMEOUT, NoticeCode.SHUTDOWN):
            out.append(fx.Warn(event.text))
        return out

    def _error(self, event: Error) -> list[Effect]:
        if event.code is ErrorCode.BAD_PASSWORD and not self._welcomed:
            # Before the welcome: the room's password (after it: a /login's, shown below).
            self.password.wrong()  # ask again
            return [ShowLine(self.render.error(event)), *self._give_password(event.message)]
        if event.code is ErrorCode.LINE_TOO_LONG:
            return self._too_long(event)
        route = self.own_requests.error(event)
        if isinstance(route, NameRefused):
            return [fx.AnswerRenameDialog(route)]  # shown in the dialog, not in the log
        out: list[Effect] = [ShowLine(self.render.error(event))]
        if isinstance(route, ClaimRefused):
            out.append(fx.OpenRenameDialog(route.reason, suggestion=route.name))
        return out

    # --- the password --------------------------------------------------------------------

    def _give_password(self, reason: str | None = None) -> list[Effect]:
        """The room needs its password: send the one kept, else ask for it."""
        return [] if self.password.give(self._send) else [fx.AskPassword(reason)]

    def password_entered(self, secret: str) -> None:
        """The password dialog's answer."""
        self.password.entered(secret, self._send)

    def password_cancelled(self) -> list[Effect]:
        """The password dialog was cancelled: say how to get in after all."""
        hint = "no password given: the room stays closed; type /pass PASSWORD to get in"
        return [self._status(hint, alarm=True)]

    def _too_long(self, event: Error) -> list[Effect]:
        """The server's lines are shorter than the client thought (it does not say how
        long): split at half from now on, and give the refused line back."""
        self.max_line = max(256, self.max_line // 2)
        out: list[Effect] = [ShowLine(self.render.error(event))]
        if self._last_typed is not None:
            out.append(fx.GiveBack(self._last_typed))
            split = f"long lines are split at {self.max_line} bytes now"
            out.append(self._status(f"the line is back in the input: {split}"))
        return out

    # --- the user's side -----------------------------------------------------------------

    def typed(self, text: str, conversation: Conversation = None) -> tuple[bool, list[Effect]]:
        """A line the user entered, in the conversation shown (a room's, None: the room
        shown last; else the peer's name): whether it was dealt with (False: it stays in
        the input, refused or not sent), and what to show."""
        peer = conversation if isinstance(conversation, str) else None
        key = conversation.key if isinstance(conversation, RoomRef) else self.rooms.shown
        word = out.command_word(text)
        if self.rooms.named and word in ("join", "part"):
            return self.room_events.join_or_part(word == "join", out.argument(text), key)
        limit = self.max_line - (out.request_overhead(key, text) if self.rooms.named else 0)
        plan = out.plan_input(text, conversation=peer, limit=limit)
        if isinstance(plan, out.Reply):
            if self.last_private is None:
                return False, [self._status("no private message to answer yet", alarm=True)]
            text = c.format_line(c.Msg(self.last_private, plan.said))
            plan = out.plan_input(text, limit=self.max_line)
        match plan:
            case None:
                return True, []
            case out.Refuse(reason):
                return False, [self._status(reason, alarm=True)]
            case out.ShowHelp():
                return True, [ShowLine(line) for line in help_lines(self.render)]
            case out.Clear():
                return True, [fx.ClearLog()]
            case out.Query(name):
                return True, [fx.OpenConversation(name)]
            case out.Close():
                return True, [fx.CloseConversation()]
        assert isinstance(plan, out.Send)
        if out.command_word(text) == "who":
            self.room_events.who_query = out.argument(text)
        for index, line in enumerate(plan.lines):
            if not self.room_events.send_in(key, line):
                if index:  # some went: the rest cannot be given back as typed
                    return True, [self._status(NOT_SENT + " (the rest of a long line)", alarm=True)]
                return False, [self._status(NOT_SENT, alarm=True)]
        self._last_typed = text
        if out.command_word(text) == "pass":
            self.password.typed(out.argument(text))
        return True, [fx.OpenConversation(plan_peer)] if (plan_peer := _msg_peer(text)) else []

    def key_pressed(self) -> list[Effect]:
        """Any key, anywhere in the client: during the idle countdown, stay in the room."""
        if self.idle.counting and self.own_requests.ping(self._send):
            self.idle.stop()
            return [fx.StopCountdown()]
        return []

    def user_actions(self, user_id: str) -> list[UserAction]:
        """What F4 offers for the user ``user_id``."""
        return actions_for(operator=self.roster.own_is_operator, own=self.roster.is_own(user_id))

    def act_on_user(self, action: UserAction, name: str) -> list[Effect]:
        """Do ``action`` to the user ``name``: a command to the server, or a /msg started."""
        line = command_for(action, name)
        if line is None:
            return [fx.StartPrivateMessage(name)]
        if not self.room_events.send_in(self.rooms.shown, line):  # a kick or mute acts in its room
            return [self._status(NOT_SENT, alarm=True)]
        return []

    def ask_for_name(self, name: str) -> bool:
        """The rename dialog asks for ``name``; False if it could not be sent."""
        return self.own_requests.ask_for_name(name, self._send)

    def rename_dialog_closed(self) -> None:
        """Whatever the server answers now goes to the log (a granted name needs nothing:
        its rename event updated the roster and the header before the dialog closed)."""
        self.own_requests.forget_name_request()

    # --- helpers -------------------------------------------------------------------------

    def _status(self, text: str, *, alarm: bool = False) -> ShowLine:
        return ShowLine(self.render.status(text, alarm=alarm))


def _msg_peer(text: str) -> str | None:
    """The peer of a ``/msg NAME TEXT`` the user typed (its conversation opens)."""
    if out.command_word(text) != "msg":
        return None
    words = text.split(maxsplit=2)
    return words[1] if len(words) == 3 else None
