"""The room's rules, as plain handlers grouped by concern. No I/O, no state of their own.

Each handler takes the room's :class:`~chatroom.server.core.rules.context.Context` (the
state objects, the config's rules, the sequencer), the member or event it is about and the
time, and returns the actions that follow. They change state only through the state
objects' methods (:mod:`chatroom.server.core.state`,
:mod:`chatroom.server.core.moderation_state`, the sequencer's). The room
(:mod:`chatroom.server.core.room`) is the one dispatcher that calls them.

- :mod:`.entry`: a newcomer (admission, identity, the password) and its join
- :mod:`.leaving`: a leave, /quit, shutdown
- :mod:`.chat`: chat and /me (and mutes), /msg
- :mod:`.names`: /nick
- :mod:`.accounts`: registered names: /register, /login, /unregister
- :mod:`.basics`: who, /help, /ping, /format, usage and unknown commands
- :mod:`.selfservice`: /ignore, /unignore, /away
- :mod:`.idle`: the idle warning and kick, a quiet newcomer's announcement
- :mod:`.moderation`: /oper and the operators' commands
- :mod:`.sequencing`: appending an event and applying it once sequenced
- :mod:`.shared`: what a room shared through a ledger (Redis) adds: refusals, resync,
  other nodes' private messages and moderation
"""
