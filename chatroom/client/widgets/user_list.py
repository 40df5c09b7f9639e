"""Who is online: the roster as a list, own name, operators (``@name``), registered names
(``name ✓``) and ignored users (dimmed, ``(ignored)``) marked; selecting a user starts a
/msg, F4 offers what else can be done to it."""

from __future__ import annotations

from contextlib import suppress

from textual.content import Content
from textual.widgets import OptionList
from textual.widgets.option_list import Option, OptionDoesNotExist

REGISTERED_MARK = " \u2713"  # a check mark after a registered name


class UserList(OptionList):
    DEFAULT_CSS = """
    UserList {
        width: 22;
        height: 1fr;
        border: round $primary 50%;
        border-title-color: $text;
        &:focus { border: round $primary; }
    }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(markup=False, **kwargs)
        self.border_title = "Users"
        self._names: dict[str, str] = {}  # option id (user id) -> name

    def show(
        self,
        users: list[tuple[str, str]],
        own_id: str | None,
        operators: set[str] | frozenset[str] = frozenset(),
        ignored: set[str] | frozenset[str] = frozenset(),
        registered: set[str] | frozenset[str] = frozenset(),
        away: set[str] | frozenset[str] = frozenset(),
    ) -> None:
        """Replace the list with ``users`` ((id, name) pairs), keeping the highlight;
        the ids in ``operators`` are marked ``@name``, those in ``registered`` ``name ✓``,
        those in ``ignored`` are dimmed and marked ``name (ignored)``; those in ``away``
        are marked ``name (away)``."""
        highlighted = self.highlighted_option.id if self.highlighted_option else None
        self._names = dict(users)
        self.clear_options()
        self.add_options(
            Option(
                Content.assemble(
                    ("@", "bold") if user_id in operators else "",
                    (name, "bold") if user_id == own_id else (name, _style(user_id, ignored)),
                    (REGISTERED_MARK, "green") if user_id in registered else "",
                    (" (you)", "dim") if user_id == own_id else "",
                    (" (ignored)", "dim italic") if user_id in ignored else "",
                    (" (away)", "dim italic") if user_id in away else "",
                ),
                id=user_id,
            )
            for user_id, name in users
        )
        self.border_title = f"Users ({len(users)})"
        if highlighted is not None:
            with suppress(OptionDoesNotExist):  # unless that user left
                self.highlighted = self.get_option_index(highlighted)

    def name_of(self, option_id: str | None) -> str | None:
        return self._names.get(option_id) if option_id else None

    @property
    def highlighted_user(self) -> str | None:
        """The id of the highlighted user, if any."""
        option = self.highlighted_option
        return option.id if option is not None else None

    def names(self) -> list[str]:
        return list(self._names.values())


def _style(user_id: str, ignored: set[str] | frozenset[str]) -> str:
    return "dim" if user_id in ignored else ""
