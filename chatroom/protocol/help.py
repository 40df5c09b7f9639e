"""The text of /help: the commands a user may type, and an operator's. Re-exported by
:mod:`chatroom.protocol.commands`."""

HELP_TEXT = """\
Commands:
  who, /who, /names         list the users in your room
  /who TEXT                 list the users whose names contain TEXT
  /join ROOM                go to ROOM (#dev), making it if it is new
  /part                     go back to #main (JSON clients: /part [ROOM] leaves ROOM)
  /rooms, /list             list the rooms, their users and topics
  rename|NAME, /nick NAME   change your name
  /msg NAME TEXT            send a private message
  /me TEXT                  send an action ("* you TEXT")
  /quit [REASON]            leave the room
  /format json|text         switch this connection's output format
  /ping [TEXT]              ask the server for "pong" (counts as activity: not idle)
  /pass SECRET              give the room's password (a room that has one asks for it)
  /help                     this list
  //TEXT                    send a line that starts with "/" as chat
  /topic                    show the room's topic
  /motd                     show the message of the day
  /oper NAME PASSWORD       become an operator
  /ignore NAME              see nothing more from NAME (chat, /me, private messages)
  /unignore NAME, /ignore   stop ignoring NAME; list whom you ignore
  /away [TEXT]              mark yourself away (shown in who); no TEXT: back
  /history [N]              the last N messages, to you alone (at most 200; default 20)
  /history since SEQ [EPOCH]  the messages after SEQ (of EPOCH): what you missed
  /bot                      mark this connection as a program (no replay on join)
  /register PASSWORD        keep the name you have: only you may use it from then on
  /login NAME PASSWORD      take your registered name NAME on this connection
  /unregister               let go of your registered name
Any other line is chat, seen by everyone (you too)."""

OPERATOR_HELP_TEXT = """\
Operator commands (you are marked @NAME in who):
  /kick NAME [REASON]       send a user away (everyone sees who did it); in a room other
                            than #main: out of that room
  /mute NAME [DURATION]     refuse a user's chat (they still read); DURATION: 30s 10m 2h 1d
                            (given in #main: in every room; in another room: there)
  /unmute NAME              let them speak again
  /topic TEXT               set your room's topic
  /ban NAME|ADDRESS|CIDR [DURATION] [REASON]
                            send away everyone from that address (a NAME: the user's)
                            and refuse it at connect, for DURATION or until /unban
                            (a registered NAME: its /login is refused too)
  /unban NAME|ADDRESS|CIDR  lift a ban
  /bans                     list the bans and the time they have left
  /unregister NAME          drop anyone's registered name"""
