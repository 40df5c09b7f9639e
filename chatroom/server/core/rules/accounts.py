"""Registered names: ``/register``, ``/login``, ``/unregister``. No I/O.

``/register PASSWORD`` keeps the name the user has for them: from then on only a connection
that proves it owns it — the one that registered it, or one that gave ``/login NAME
PASSWORD`` — may take that name or one that looks like it (the skeleton rule; /nick to it
is refused with ``registered``, :func:`refusal`). Nobody else has to do anything: a user
who registers nothing joins and renames as before.

The password is hashed (``/register``) and checked (``/login``) with the ops file's scrypt,
not here: the rules hand the work to the adapter's pool
(:class:`~chatroom.server.core.actions.HashPassword`,
:class:`~chatroom.server.core.actions.CheckPassword`), which answers with
:class:`~chatroom.server.core.inputs.PasswordHashed` (:func:`hashed`) and
:class:`~chatroom.server.core.inputs.PasswordChecked` (:func:`login_checked`). Guessing is
bounded per address (every /login takes a token; a right one gives it back), per name
(every wrong one takes one of the name's tokens, whatever address it came from) and for
the room (the pool's size, shared with /oper); registering is bounded per address and by
``max_accounts``. A wrong /login is reported for the log as one of a flood, with the name,
never the password.

A registered name is kept like a ban (:class:`~chatroom.server.core.actions.Persist`
``"account"``): in the state file (``--state``), and in a shared room by the ledger, which
tells every node (:func:`chatroom.server.core.rules.shared_moderation.remote_change`).
A ``/ban NAME`` made against a registered name refuses its /login while it lasts; a mute
holds the name wherever it logs in from (mutes hold names already).
"""

from __future__ import annotations

import math

from chatroom import protocol as p
from chatroom.protocol import commands as c
from chatroom.server.core.accounts_state import Account, Pending, account_key
from chatroom.server.core.actions import (
    Check,
    CheckPassword,
    ConnId,
    HashPassword,
    Moderated,
    RoomAction,
)
from chatroom.server.core.moderation_state import span
from chatroom.server.core.rules.context import Context
from chatroom.server.core.rules.operators import pool_full
from chatroom.server.core.rules.output import error, info, persist
from chatroom.server.core.rules.sequencing import renamed_everywhere
from chatroom.server.core.state import Member

BUSY = "the server is busy checking other passwords; try again in a moment"
STILL_CHECKED = "your last /login, /register or /oper is still being worked on; wait for it"


def refusal(ctx: Context, member: Member, name: str) -> list[RoomAction] | None:
    """Why ``member`` may not take ``name`` (/nick), if it is registered to someone else
    (the error, with ``registered``), or None."""
    account = ctx.accounts.get(name)
    if account is None or member.account == account:
        return None
    if p.name_key(account.name) == p.name_key(name):
        text = f"the name {name} is registered: if it is yours, /login {account.name} PASSWORD"
    else:
        text = (
            f"the name {name} looks like the registered name {account.name}: if that is"
            f" yours, /login {account.name} PASSWORD"
        )
    return error(member, p.ErrorCode.REGISTERED, text)


def _shown(name: str) -> str:
    return p.strip_controls(name)[:40]


# --- /register --------------------------------------------------------------------------------


def register(ctx: Context, member: Member, command: c.Register, now: float) -> list[RoomAction]:
    """``/register PASSWORD``: hash it off the event loop (:class:`HashPassword`); the name
    is registered when :func:`hashed` has the hash, if the member still has the name."""
    accounts, rules = ctx.accounts, ctx.rules
    name = member.name
    if p.name_problem(name) is not None:  # its address (ip:port): not a name of its own
        text = "choose a name first (/nick NAME), then /register PASSWORD to keep it"
        return error(member, p.ErrorCode.BAD_USAGE, text)
    account = accounts.get(name)
    if account is not None:
        if member.account == account:
            return info(member, f"{name} is registered to you already (/unregister lets it go)")
        return error(member, p.ErrorCode.REGISTERED, f"the name {name} is registered already")
    shortest, longest = rules.account_password_chars
    if not shortest <= len(command.password) <= longest:
        text = f"a password has {shortest} to {longest} characters"
        return error(member, p.ErrorCode.BAD_USAGE, text)
    if member.conn in accounts.checking or member.conn in ctx.moderation.checking:
        return error(member, p.ErrorCode.BAD_USAGE, STILL_CHECKED)
    if len(accounts) + accounts.registering() >= rules.max_accounts:
        text = f"this server keeps {rules.max_accounts} registered names, all taken"
        return error(member, p.ErrorCode.UNAVAILABLE, text)
    if pool_full(ctx):
        return error(member, p.ErrorCode.UNAVAILABLE, BUSY)
    wait = accounts.register_wait(member.address, now)  # takes a token if it may
    if wait:
        text = f"too many names registered from your address; try again in {span(wait)}"
        return error(member, p.ErrorCode.BAD_USAGE, text)
    accounts.start(member.conn, Pending(name, member.address))
    return [HashPassword(member.conn, name, command.password)]


def hashed(
    ctx: Context, conn: ConnId, name: str, stored: str | None, now: float
) -> list[RoomAction]:
    """The adapter hashed ``conn``'s /register password (``stored`` None: it was busy)."""
    accounts = ctx.accounts
    pending = accounts.done(conn)
    member = ctx.state.member(conn)
    if pending is None or member is None:  # it left meanwhile
        if pending is not None:
            accounts.register_given_back(pending.address, now)
        return []
    if stored is None:
        accounts.register_given_back(pending.address, now)
        return error(member, p.ErrorCode.UNAVAILABLE, BUSY)
    problem = None
    if account_key(member.name) != account_key(pending.name):
        problem = f"you are no longer {pending.name}: /register again to keep {member.name}"
    elif accounts.is_registered(member.name):  # another node's user, meanwhile
        problem = f"the name {member.name} was registered meanwhile"
    if problem is not None:
        accounts.register_given_back(pending.address, now)
        return error(member, p.ErrorCode.REGISTERED, problem)
    account = Account(member.name, stored, now)
    accounts.keep(account)
    member.owns(account)
    text = f"{account.name} is registered to you: /login {account.name} PASSWORD takes it back"
    return [
        Moderated(conn, f"registered {account.name}"),
        *persist(ctx, "account", account.key, account.record()),
        *info(member, text, fact=p.Fact.REGISTERED, name=account.name),
    ]


# --- /login -----------------------------------------------------------------------------------


def login(ctx: Context, member: Member, command: c.Login, now: float) -> list[RoomAction]:
    """``/login NAME PASSWORD``: check it off the event loop (:class:`CheckPassword`);
    :func:`login_checked` gives the name if it was right."""
    accounts = ctx.accounts
    account = accounts.get(command.name)
    if account is None:
        text = f"no registered name {_shown(command.name)} (/register PASSWORD keeps yours)"
        return error(member, p.ErrorCode.BAD_USAGE, text)
    if member.account == account and account_key(member.name) == account.key:
        return info(member, f"you are {member.name} already")
    refused = _cannot_take(ctx, member, account, now)
    if refused is not None:
        return refused
    if member.conn in accounts.checking or member.conn in ctx.moderation.checking:
        return error(member, p.ErrorCode.BAD_PASSWORD, STILL_CHECKED)
    if pool_full(ctx):
        return error(member, p.ErrorCode.UNAVAILABLE, BUSY)
    wait = accounts.wrong_wait(account.key, now)
    if wait:
        text = f"too many wrong passwords for {account.name}; try again in {span(wait)}"
        return error(member, p.ErrorCode.BAD_PASSWORD, text)
    wait = accounts.login_wait(member.address, now)  # takes a token if it may
    if wait:
        text = f"too many /login attempts from your address; try again in {span(wait)}"
        return error(member, p.ErrorCode.BAD_PASSWORD, text)
    accounts.start(member.conn, Pending(account.name, member.address, account))
    return [CheckPassword(member.conn, Check.LOGIN, account.name, command.password, account.stored)]


def _cannot_take(
    ctx: Context, member: Member, account: Account, now: float
) -> list[RoomAction] | None:
    """Why ``member`` cannot take ``account``'s name now, whatever its password: a ban made
    against the name, or another connection holding it (an old one of the owner's, say)."""
    banned = ctx.moderation.ban_of_name(account.name, now)
    if banned is not None:
        left = "" if banned.until == math.inf else f" for {span(banned.until - now)} more"
        return error(member, p.ErrorCode.BAD_USAGE, f"the name {account.name} is banned{left}")
    holder = ctx.state.holder_of(account.name)
    if holder is not None and holder != member.id:
        text = (
            f"the name {account.name} is in use by another connection (an old one of yours?):"
            " /login again once it has left"
        )
        return error(member, p.ErrorCode.NAME_TAKEN, text)
    return None


def login_checked(
    ctx: Context, conn: ConnId, name: str, ok: bool, busy: bool, now: float
) -> list[RoomAction]:
    """The adapter checked ``conn``'s /login password for ``name`` (``busy``: it could not
    take the check; nothing was checked). Right: the connection owns the name, and takes it
    (a rename, sequenced as every rename is)."""
    accounts = ctx.accounts
    pending = accounts.done(conn)
    member = ctx.state.member(conn)
    if pending is None or pending.account is None or member is None:  # it left meanwhile
        return []
    account = pending.account
    if busy:
        accounts.login_was_right(pending.address, now)  # not its fault: the token back
        return error(member, p.ErrorCode.UNAVAILABLE, BUSY)
    if not ok:
        accounts.wrong_password(account.key, now)
        return [
            Moderated(conn, f"wrong /login for {_shown(name)!r}", flood="wrong /login"),
            *error(member, p.ErrorCode.BAD_PASSWORD, f"wrong password for {account.name}"),
        ]
    accounts.login_was_right(pending.address, now)
    if accounts.get(account.name) != account:  # dropped (or dropped and registered again)
        text = f"the name {account.name} is no longer registered to the password you gave"
        return error(member, p.ErrorCode.BAD_PASSWORD, text)
    refused = _cannot_take(ctx, member, account, now)  # it may have changed meanwhile
    if refused is not None:
        return refused
    member.owns(account)  # (its rename is logged; a right /login is no moderation)
    told = info(member, f"you are logged in as {account.name}", fact=p.Fact.REGISTERED,
                name=account.name)  # fmt: skip
    if member.name == account.name:
        return told
    if ctx.sequencer.rename_pending(conn):
        return error(member, p.ErrorCode.BAD_USAGE, "your previous rename is still under way")
    return [*told, *renamed_everywhere(ctx, member, account.name, now)]


# --- /unregister ------------------------------------------------------------------------------


def unregister(ctx: Context, member: Member, command: c.Unregister, now: float) -> list[RoomAction]:
    """``/unregister``: let go of one's registered name (the connection must own it);
    ``/unregister NAME``: an operator drops anyone's."""
    name = member.name if command.name is None else command.name
    account = ctx.accounts.get(name)
    own = account is not None and member.account == account
    if command.name is not None and not own and not member.operator:
        text = "/unregister NAME is for operators (/unregister alone lets go of yours)"
        return error(member, p.ErrorCode.NOT_OPERATOR, text)
    if account is None:
        return error(member, p.ErrorCode.BAD_USAGE, f"the name {_shown(name)} is not registered")
    if not own and not member.operator:
        text = f"{account.name} is not registered to this connection: /login first"
        return error(member, p.ErrorCode.REGISTERED, text)
    ctx.accounts.drop(account.key)
    actions: list[RoomAction] = [
        Moderated(member.conn, f"{member.name} unregistered {account.name}"),
        *persist(ctx, "account", account.key, None),
    ]
    if not own:
        actions += info(member, f"dropped the registered name {account.name}")
    return actions + dropped(ctx, account, None if own else member.name)


def dropped(ctx: Context, account: Account, by: str | None) -> list[RoomAction]:
    """``account`` was dropped (``by`` an operator, or by its owner): this node's members
    that owned it are told (they keep the name they have, unregistered)."""
    actions: list[RoomAction] = []
    text = f"{account.name} is no longer registered" + (f" (dropped by {by})" if by else "")
    for other in ctx.state.members():
        if other.account == account:
            other.owns(None)
            actions += info(other, text, fact=p.Fact.UNREGISTERED, name=account.name)
    return actions


# The commands this module's rules answer (the room's dispatcher merges every module's).
COMMANDS = {
    c.Register: register,
    c.Login: login,
    c.Unregister: unregister,
}
