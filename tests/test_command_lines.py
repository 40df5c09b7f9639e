"""Commands are defined once (chatroom/protocol/commands.py): the server parses lines into
them, a client formats lines from them, and the two agree on every command a client sends."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatroom.protocol import OutputFormat, strip_controls
from chatroom.protocol import commands as c

# A word as a user types it: no spaces, no control characters, in the normal form the
# parser's cleaning gives (it normalizes text: U+F900 becomes U+8C48).
word = (
    st.text(
        st.characters(categories=("L", "N"), include_characters="-_.[]:|"),
        min_size=1,
        max_size=12,
    )
    .map(strip_controls)
    .filter(lambda text: text and " " not in text)
)
# Free text after the command's words: cleaned as the parser cleans it.
free = (
    st.text(st.characters(categories=("L", "N", "P", "Zs")), min_size=1, max_size=30)
    .map(lambda text: " ".join(strip_controls(text).split()))
    .filter(bool)
)
seconds = st.integers(1, 10**6).map(float)

commands = st.one_of(
    free.filter(lambda t: t.strip() not in ("who",) and not t.startswith("rename|")).map(c.Chat),
    free.map(c.Me),
    st.just(c.Who()),
    word.map(c.Who),
    word.map(c.Nick),
    st.builds(c.Msg, word, free),
    st.builds(c.Quit, st.none() | free),
    st.just(c.Help()),
    st.just(c.Ping()),
    word.map(c.Pass),
    st.sampled_from(list(OutputFormat)).map(c.SetFormat),
    st.builds(c.Oper, word, word),
    st.builds(c.Kick, word, st.none() | free),
    st.builds(c.Mute, word, st.none() | seconds),
    word.map(c.Unmute),
    st.builds(c.Topic, st.none() | free),
    st.just(c.Motd()),
    # A reason that starts with a digit reads as a duration: the parser says so (usage).
    st.builds(
        c.Ban, word, st.none() | seconds, st.none() | free.filter(lambda t: not t[0].isdigit())
    ),
    word.map(c.Unban),
    st.just(c.Bans()),
    st.builds(c.Ignore, st.none() | word),
    word.map(c.Unignore),
    st.builds(c.Away, st.none() | free),
    free.map(c.Register),  # the password is the rest of the line, spaces and all
    st.builds(c.Login, word, free),
    st.builds(c.Unregister, st.none() | word),
    st.builds(c.History, st.none() | st.integers(0, 10**6)),
    st.builds(c.HistorySince, st.integers(0, 10**15), st.none() | word),
    st.just(c.Bot()),
)


@given(commands)
def test_a_formatted_command_parses_back_to_itself(command: c.Command) -> None:
    assert c.parse(c.format_line(command)) == command


def test_chat_that_starts_with_a_slash_is_escaped() -> None:
    assert c.format_line(c.Chat("/shrug")) == "//shrug"
    assert c.parse("//shrug") == c.Chat("/shrug")


@pytest.mark.parametrize(
    "command", [c.TooLong(10), c.Usage("usage: /nick NEW_NAME"), c.Unknown("frobnicate")]
)
def test_what_only_the_server_makes_is_not_formatted(command: c.Command) -> None:
    with pytest.raises(ValueError):
        c.format_line(command)
