"""What happens in the rooms: each room's events to its roster, timeline and log. No Textual.

:class:`RoomEvents` is the part of the :class:`~chatroom.client.session.Session` that
reads the events of a room (chat, joins, leaves, renames, ``who``, the topic, a room's
greeting) into that room's :class:`~chatroom.client.rooms.JoinedRoom` and returns the
effects: each line goes to its room's log, and the user list and the header change only
for the room shown. It also sends the client's own lines for a room, each as a request
naming it (a server with rooms): the quiet ``/who`` after a greeting and
``/history since SEQ EPOCH`` to resume after a reconnect, one per room, from its own seq.
"""

from __future__ import annotations

from chatroom.client import effects as fx
from chatroom.client import outgoing as out
from chatroom.client.effects import Effect, ShowLine
from chatroom.client.log_buffer import Conversation, RoomRef
from chatroom.client.own_requests import OwnRequests, Send
from chatroom.client.render import LineRenderer, LogLine
from chatroom.client.rooms import JoinedRoom, Rooms, parse_room
from chatroom.client.timeline import Divider, Mark, Reset
from chatroom.protocol import (
    Action,
    Event,
    Join,
    Leave,
    LeaveReason,
    Message,
    Rename,
    RoomEntered,
    Topic,
    UnknownEvent,
    Who,
)
from chatroom.protocol import commands as c
from chatroom.protocol.room_names import ROOM_RULE

NOT_SENT = "not connected: nothing was sent"


class RoomEvents:
    def __init__(
        self, rooms: Rooms, render: LineRenderer, send: Send, own_requests: OwnRequests
    ) -> None:
        self.rooms = rooms
        self.render = render
        self._send = send
        self.own_requests = own_requests
        self.own: tuple[str | None, str | None] = (None, None)  # our id and name
        self.who_query = ""  # the TEXT of the last /who TEXT the user typed
        self._requests = 0  # chat typed with a leading "{", sent as requests (their ids)

    def marks(self, room: JoinedRoom, event: Event | UnknownEvent) -> list[Effect] | None:
        """The lines the log shows before ``event`` in ``room`` (dividers, missed events),
        or None: leave it out (a reconnect's replay, an event the log holds by seq)."""
        timeline = room.timeline
        if timeline.skip(event):
            return None
        timeline.ignoring = room.roster.ignores_anyone
        where = self.rooms.conversation(room)
        if isinstance(event, RoomEntered):
            marks = timeline.entered(self.rooms.epoch)
        else:
            marks = timeline.marks_before(event)
        return [ShowLine(self._mark(mark), where) for mark in marks]

    def handle(self, room: JoinedRoom, event: Event | UnknownEvent) -> list[Effect]:
        """A room's event (not its welcome or notices: the session's)."""
        render, roster = self.render, room.roster
        where, shown = self.rooms.conversation(room), room.key == self.rooms.shown
        out: list[Effect] = []
        match event:
            case RoomEntered():
                out += self._entered(event, room, where)
            case Message() | Action():
                line = render.chat(event, roster.own_id, roster.own_name)
                out.append(ShowLine(line, where))
                if line.mentions_me and not event.history:
                    title = f"{event.name} mentioned you"
                    title += f" in {room.title}" if len(self.rooms) > 1 else ""  # which one
                    out.append(fx.Alert(title, event.text))
                self.resume(room)  # after an answer's last message: ask again if it said more
            case Join() | Leave() | Rename():
                roster.apply(event)
                out += [fx.ShowUsers.of(roster)] if shown else []
                if isinstance(event, Rename) and roster.is_own(event.id):
                    out += self.renamed(event.new)
                out.append(ShowLine(getattr(render, event.type)(event), where))
                if isinstance(event, Leave) and self._out_of(room, event):
                    out += self._left(room, event)
            case Who():
                roster.apply(event)
                out += [fx.ShowUsers.of(roster)] if shown else []
                if room.quiet_who:
                    room.quiet_who -= 1
                elif not self.own_requests.who_reply_is_ours():
                    out.append(ShowLine(render.who(event, self.who_query), where))
                    self.who_query = ""
            case Topic():
                room.topic = event.text or None
                out += [fx.ShowTopic(event.text)] if shown else []
                out.append(ShowLine(render.topic(event), where))
        return out

    def renamed(self, name: str) -> list[Effect]:
        """The server renamed us (in a room: in each room we are in, once per room)."""
        self.own = (self.own[0], name)
        out: list[Effect] = [fx.ShowName(name)]
        if (granted := self.own_requests.renamed(name)) is not None:
            out.append(fx.AnswerRenameDialog(granted))
        return out

    def _entered(self, event: RoomEntered, room: JoinedRoom, where: Conversation) -> list[Effect]:
        """The greeting of a room joined (or joined again after a reconnect)."""
        room.roster.entered(*self.own, ignored=self.rooms.shown_room.roster.ignored())
        room.topic = event.topic
        out: list[Effect] = [ShowLine(self.render.room_entered(event), where)]
        if event.topic:
            out.append(ShowLine(self.render.topic(Topic(event.topic)), where))
        self.quiet_who(room)
        self.resume(room)
        if self.rooms.wanted == room.key:  # the user asked for it: show it
            self.rooms.wanted = None
            out.append(fx.OpenConversation(RoomRef(room.key)))
        elif room.key == self.rooms.shown:
            out += self.show_room(room)
        return out

    def _out_of(self, room: JoinedRoom, event: Leave) -> bool:
        """Whether ``event`` takes us out of ``room`` while connected: we parted it, or an
        operator sent us out of it (a kick in the default room disconnects: the link says)."""
        if not self.rooms.named or not room.roster.is_own(event.id):
            return False
        kicked_out = event.reason == LeaveReason.KICKED and room.key != self.rooms.home
        return event.reason == LeaveReason.PART or kicked_out

    def _left(self, room: JoinedRoom, event: Leave) -> list[Effect]:
        """Our own leave: we parted the room, or were sent out of it; its log closes."""
        self.rooms.leave(room.key)
        how = "you were kicked out of" if event.reason == LeaveReason.KICKED else "you left"
        return [fx.CloseRoom(RoomRef(room.key)), self.status(f"{how} {room.title}")]

    def shown(self, conversation: Conversation) -> list[Effect]:
        """The screen shows ``conversation`` now: a room's makes the user list and the
        header follow it (a private one keeps the room shown before)."""
        if isinstance(conversation, str):
            return []
        room = self.rooms.get(conversation.key if conversation else "")
        if room is None:
            return []
        self.rooms.shown = room.key
        return self.show_room(room)

    def show_room(self, room: JoinedRoom) -> list[Effect]:
        title = room.title if self.rooms.named else ""
        return [fx.ShowUsers.of(room.roster), fx.ShowTopic(room.topic), fx.ShowRoom(title)]

    def quiet_who(self, room: JoinedRoom) -> None:
        """Ask for the room's ``who`` (its users, our own marks), answered out of the log."""
        if self.send_in(room.key, c.format_line(c.Who())):
            room.quiet_who += 1

    def resume(self, room: JoinedRoom) -> None:
        """After a reconnect, ask for what was missed by seq (the room's timeline says)."""
        line = room.timeline.resume_request()
        if line is not None:
            self.send_in(room.key, line)

    def send_in(self, key: str, line: str) -> bool:
        """Send ``line`` for the room ``key``: a request naming it (a server with rooms);
        ``/quit`` is no room's, and goes bare: the connection reads it to not reconnect."""
        if self.rooms.named and out.command_word(line) != "quit":
            return self._send(out.in_room(key, line))
        self._requests += line[:1] == "{"  # chat starting with "{" goes as a request
        return self._send(out.as_request(line, self._requests))

    def join_or_part(self, join: bool, argument: str, key: str) -> tuple[bool, list[Effect]]:
        """``/join ROOM`` (shown once greeted; a room joined already is shown at once) or
        ``/part [ROOM]`` (default: the room shown); a bad name stays in the input."""
        room = parse_room(argument) if argument or join else key
        if room is None:
            usage = "usage: /join ROOM" if join else "usage: /part [ROOM]"
            return False, [self.status(f"{usage} ({ROOM_RULE})", alarm=True)]
        if join and room in self.rooms:
            return True, [fx.OpenConversation(RoomRef(room))]
        command = c.Join(room) if join else c.Part(room)
        if not self.send_in(room if not join else key, c.format_line(command)):
            return False, [self.status(NOT_SENT, alarm=True)]
        if join:
            self.rooms.wanted = room
        return True, []

    def _mark(self, mark: Mark) -> LogLine:
        if isinstance(mark, Divider):
            return self.render.divider(mark.text)
        if isinstance(mark, Reset):
            return self.render.status(mark.text, alarm=True)
        return self.render.status(f"{mark.count} event(s) missed", alarm=True)

    def status(self, text: str, *, alarm: bool = False) -> ShowLine:
        return ShowLine(self.render.status(text, alarm=alarm))
