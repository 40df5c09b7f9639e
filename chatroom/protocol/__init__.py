"""The contract both sides speak, defined once: the events the server writes
(:mod:`~chatroom.protocol.events`), the commands a client sends
(:mod:`~chatroom.protocol.commands`) and the text rules both apply to names and chat
(:mod:`~chatroom.protocol.text_rules`). docs/PROTOCOL.md is its prose version.

``from chatroom import protocol as p`` gives the events and the text rules; the commands
are imported as a module of their own (``from chatroom.protocol import commands as c``).
"""

from chatroom.protocol.commands import SLASH_COMMANDS  # noqa: F401 (re-exported)
from chatroom.protocol.events import *  # noqa: F403 (the package's face)
from chatroom.protocol.events import (  # noqa: F401 (named for type checkers and readers)
    BroadcastEvent,
    Event,
    ProtocolError,
    UnknownEvent,
    decode_json,
    encode_json,
    encode_json_line,
    from_wire_dict,
    replace,
    to_wire_dict,
)
from chatroom.protocol.room_names import (  # noqa: F401 (re-exported)
    DEFAULT_ROOM,
    ROOM_RULE,
    room_key,
    shown_room,
)
from chatroom.protocol.text_rules import (  # noqa: F401 (re-exported)
    MAX_COMBINING_RUN,
    NAME_MAX_CHARS,
    chat_line,
    load_name_data,
    name_key,
    name_problem,
    name_skeleton,
    normal_name,
    strip_controls,
)
