"""The top line: where we are connected, as whom, the room's topic, and how the connection
is doing."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import Label

from chatroom.client.messages import LinkState
from chatroom.client.moderation import truncate

NARROW = 60  # columns: below this the link shows only its reason and next key


class StatusHeader(Horizontal):
    DEFAULT_CSS = """
    StatusHeader {
        height: 1;
        dock: top;
        background: $panel;
        #title { text-style: bold; padding: 0 1; background: $primary; color: $text; }
        #address { padding: 0 1; color: $text-muted; }
        Label { text-wrap: nowrap; text-overflow: ellipsis; }
        #identity { padding: 0 1; width: auto; max-width: 24; min-width: 0; }
        #link { dock: right; padding: 0 1; }  /* docked: laid out first, never squeezed */
        #idle {
            dock: right; padding: 0 1; background: $warning; color: $text; text-style: bold;
        }
        #idle.-off { display: none; }
        #topic { padding: 0 1; width: 1fr; min-width: 0; color: $text; text-style: italic; }
        #topic.-off { display: none; }
        #link.connected { color: $text-success; }
        #link.connecting { color: $text-warning; }
        #link.disconnected { color: $text-error; text-style: bold; }
    }
    """

    def __init__(self, address: str) -> None:
        super().__init__()
        self._address = address
        self._link: tuple[LinkState, str] = (LinkState.CONNECTING, "")

    def compose(self) -> ComposeResult:
        yield Label("chatroom", id="title")
        yield Label(Content(self._address), id="address")
        yield Label("", id="identity")
        yield Label("", id="topic", classes="-off")
        yield Label("", id="idle", classes="-off")
        yield Label("", id="link")

    def show_name(self, name: str | None) -> None:
        self.query_one("#identity", Label).update(
            Content.assemble(("you are ", "dim"), (name or "", "bold")) if name else Content("")
        )

    def show_room(self, title: str) -> None:
        """The room shown (``#dev``); "" for a server without rooms: "chatroom"."""
        self.query_one("#title", Label).update(Content(title or "chatroom"))

    def show_topic(self, text: str | None) -> None:
        """The room's topic (cut to TOPIC_WIDTH with "…"), or nothing when none is set."""
        topic = self.query_one("#topic", Label)
        shown = truncate(text or "")
        topic.set_class(not shown, "-off")
        topic.update(Content.assemble(("topic: ", "dim"), shown) if shown else Content(""))

    def show_idle(self, seconds: int | None) -> None:
        """The idle countdown: seconds until the server kicks us, or None to hide it."""
        idle = self.query_one("#idle", Label)
        idle.set_class(seconds is None, "-off")
        text = "" if seconds is None else f"idle: kicked in {seconds}s · any key stays"
        idle.update(Content(text))

    def show_link(self, state: LinkState, detail: str = "") -> None:
        self._link = (state, detail)
        self._show_link()

    def on_resize(self) -> None:
        self._show_link()

    def _show_link(self) -> None:
        state, detail = self._link
        link = self.query_one("#link", Label)
        if detail and self.size.width < NARROW:
            text = f"● {detail}"  # the colour says the state; the reason and next key fit
        else:
            text = f"● {state}" + (f": {detail}" if detail else "")
        link.update(Content(text))
        link.set_classes(str(state))
