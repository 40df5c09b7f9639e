"""Moderation in the client (Pilot) against a real server with an ops file: operators'
marks, the topic in the header, the motd, the F4 action on a user, kicks in the log."""

from __future__ import annotations

import pytest
from chat_helpers import eventually, log_text, submit
from test_app import SIZE, client, header_text, joined
from textual.widgets import OptionList

from chatroom.client.screens.user_actions import UserActionsDialog
from chatroom.client.widgets.chat_input import ChatInput
from chatroom.client.widgets.user_list import UserList
from chatroom.server.core.passwords import hash_password

LONG_TOPIC = "Release day: " + "please keep the chat on the release, thanks " * 4


@pytest.fixture
def ops_room(make_room, tmp_path):
    ops = tmp_path / "ops"
    ops.write_text(f"ann {hash_password('s3cret')}\nroot {hash_password('r00t')}\n")
    motd = tmp_path / "motd"
    motd.write_text("Be kind. Read the rules.\n")

    async def make():
        return await make_room(ops_file=str(ops), motd_file=str(motd))

    return make


def prompts(users: UserList) -> list[str]:
    return [str(option.prompt) for option in users.options]


def highlight(users: UserList, name: str) -> None:
    users.focus()
    user_id = next(option.id for option in users.options if users.name_of(option.id) == name)
    users.highlighted = users.get_option_index(user_id)


async def test_an_operator_is_marked_and_can_kick_from_the_user_list(ops_room, join_nc):
    room = await ops_room()
    bob = await join_nc(room, "bob")
    app = client(room.port)
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot)
        assert "Be kind. Read the rules." in log_text(app)  # the motd
        users = app.chat.query_one(UserList)
        await eventually(lambda: "bob" in users.names(), pilot)
        assert not any(prompt.startswith("@") for prompt in prompts(users))

        await submit(pilot, "/oper ann s3cret")
        await eventually(lambda: "@ann (you)" in prompts(users), pilot)
        assert "bob" in prompts(users)
        await submit(pilot, "/who")
        await eventually(lambda: "2 online: @ann" in log_text(app), pilot)

        highlight(users, "bob")
        await pilot.press("f4")
        dialog = app.screen
        assert isinstance(dialog, UserActionsDialog)
        options = dialog.query_one(OptionList)
        labels = [str(option.prompt) for option in options.options]
        assert labels == ["Private message (/msg)", "Kick", "Mute 10m", "Ban"]
        options.highlighted = 1
        await pilot.press("enter")
        await eventually(lambda: not isinstance(app.screen, UserActionsDialog), pilot)
        await bob.read_until("you were kicked by ann")
        await eventually(lambda: "← bob was kicked by ann" in log_text(app), pilot)
        await eventually(lambda: "bob" not in users.names(), pilot)


async def test_mute_from_the_user_list_and_a_kick_with_a_reason(ops_room, join_nc):
    room = await ops_room()
    bob = await join_nc(room, "bob")
    root = await join_nc(room, "root")
    app = client(room.port)
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot)
        await submit(pilot, "/oper ann s3cret")
        await eventually(lambda: app.chat.roster.own_is_operator, pilot)
        users = app.chat.query_one(UserList)
        highlight(users, "bob")
        await pilot.press("f4")
        app.screen.query_one(OptionList).highlighted = 2  # Mute 10m
        await pilot.press("enter")
        assert (await bob.read_until("you were muted by ann")).endswith("ann for 10m")

        await root.say("/oper root r00t")
        await root.read_until("you are now an operator")
        await root.say("/kick bob flooding")
        await eventually(lambda: "← bob was kicked by root (flooding)" in log_text(app), pilot)


async def test_a_non_operator_can_only_start_a_private_message(ops_room, join_nc):
    room = await ops_room()
    await join_nc(room, "bob")
    app = client(room.port)
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot)
        users = app.chat.query_one(UserList)
        await eventually(lambda: "bob" in users.names(), pilot)
        highlight(users, "bob")
        await pilot.press("f4")
        options = app.screen.query_one(OptionList)
        assert [str(option.prompt) for option in options.options] == ["Private message (/msg)"]
        await pilot.press("enter")
        chat_input = app.chat.query_one(ChatInput)
        await eventually(lambda: chat_input.value == "/msg bob ", pilot)

        await pilot.press("escape")  # back to the input: F4 on nobody highlighted is a hint
        users.highlighted = None
        await pilot.press("f4")
        assert not isinstance(app.screen, UserActionsDialog)


async def test_the_topic_is_in_the_header_from_welcome_and_topic_events(ops_room, join_nc):
    room = await ops_room()
    root = await join_nc(room, "root")
    await root.say("/oper root r00t")
    await root.read_until("you are now an operator")
    await root.say(f"/topic {LONG_TOPIC}")
    await root.read_until("Release day")
    app = client(room.port)
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot)
        header = header_text(app)
        assert "topic: Release day: please keep the chat" in header
        assert header.split("topic: ")[1].split(" ")[-1] != "" and "…" in header
        assert LONG_TOPIC.strip() not in header

        await root.say("/topic Party at 5")
        await eventually(lambda: "topic: Party at 5" in header_text(app), pilot)
        assert "root set the topic: Party at 5" in log_text(app)
