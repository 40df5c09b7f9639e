"""What every command is: a frozen msgspec Struct whose secrets never show. No I/O."""

from __future__ import annotations

import msgspec

_SECRETS = frozenset({"secret", "password"})


class _Command(msgspec.Struct, frozen=True, gc=False):
    """A frozen value (a msgspec Struct: one is made per line, at a ninth of a frozen
    dataclass's cost). A secret or password is never shown in a log or a traceback."""

    def __repr__(self) -> str:
        shown = (f"{n}={'***' if n in _SECRETS else repr(getattr(self, n))}"
                 for n in self.__struct_fields__)  # fmt: skip
        return f"{type(self).__name__}({', '.join(shown)})"


class Usage(_Command):
    """A known command used wrongly: ``message`` says how to use it."""

    message: str
