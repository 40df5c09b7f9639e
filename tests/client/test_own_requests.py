"""The client's own requests (/who on connecting, the --name claim, the rename dialog's
/nick) and where the server's answers go, without Textual."""

from __future__ import annotations

import pytest

from chatroom.client.own_requests import (
    NAME_ERRORS,
    ClaimRefused,
    NameGranted,
    NameRefused,
    OwnRequests,
)
from chatroom.protocol import Error, ErrorCode

ID_NAME = "10.0.0.1:5000"  # the name a server gives a newcomer
TAKEN = Error(ErrorCode.NAME_TAKEN, "name Ann is taken")


class Wire:
    """Stands in for the connection: records what was sent; ``up`` False means no link."""

    def __init__(self, up: bool = True) -> None:
        self.up = up
        self.lines: list[str] = []

    def __call__(self, line: str) -> bool:
        if self.up:
            self.lines.append(line)
        return self.up


def welcomed(requests: OwnRequests, name: str = ID_NAME, wire: Wire | None = None) -> Wire:
    wire = wire or Wire()
    requests.welcomed(name, wire)
    return wire


# --- on connecting -----------------------------------------------------------------------


def test_connecting_asks_for_the_user_list_and_claims_the_wanted_name():
    requests = OwnRequests("Ann")
    assert welcomed(requests).lines == ["/who", "/nick Ann"]
    assert requests.awaiting_who


@pytest.mark.parametrize(("wanted", "given"), [(None, ID_NAME), ("", ID_NAME), ("ann", "ANN")])
def test_no_claim_without_a_wanted_name_or_when_the_server_gave_it_already(wanted, given):
    requests = OwnRequests(wanted)
    assert welcomed(requests, given).lines == ["/who"]
    assert requests.error(TAKEN) is None  # nothing was claimed, so an error is just logged


def test_only_the_first_who_reply_after_connecting_is_ours():
    requests = OwnRequests()
    welcomed(requests)
    assert requests.who_reply_is_ours()
    assert not requests.awaiting_who
    assert not requests.who_reply_is_ours()  # the user typed /who: it goes to the log


def test_nothing_is_awaited_when_the_link_dropped_before_sending():
    requests = OwnRequests("Ann")
    assert welcomed(requests, wire=Wire(up=False)).lines == []
    assert not requests.awaiting_who
    assert not requests.who_reply_is_ours()
    assert requests.error(TAKEN) is None  # the claim never left: its error is not expected


def test_every_connection_asks_again():
    requests = OwnRequests("Ann")
    welcomed(requests)
    assert requests.who_reply_is_ours()
    assert welcomed(requests).lines == ["/who", "/nick Ann"]
    assert requests.who_reply_is_ours()


# --- the --name claim --------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(NAME_ERRORS))
def test_a_refused_claim_asks_the_user_starting_from_the_claimed_name(code):
    requests = OwnRequests("Ann")
    welcomed(requests)
    assert requests.error(Error(code, "no")) == ClaimRefused("no", "Ann")
    assert requests.error(Error(code, "again")) is None  # answered once only


def test_other_errors_leave_the_claim_waiting():
    requests = OwnRequests("Ann")
    welcomed(requests)
    assert requests.error(Error(ErrorCode.UNKNOWN_USER, "no such user")) is None
    assert requests.error(TAKEN) == ClaimRefused(TAKEN.message, "Ann")


def test_a_granted_claim_is_no_longer_waiting_and_is_not_the_dialogs_answer():
    requests = OwnRequests("Ann")
    welcomed(requests)
    assert requests.renamed("Ann") is None
    assert requests.error(TAKEN) is None


def test_our_latest_name_is_claimed_after_a_reconnect():
    requests = OwnRequests("Ann")
    welcomed(requests)
    requests.renamed("Ann")
    requests.renamed("zoe")  # the user renamed later
    assert requests.wanted_name == "zoe"
    assert welcomed(requests, "10.0.0.1:6000").lines == ["/who", "/nick zoe"]


def test_a_rename_without_a_wanted_name_becomes_the_wanted_name():
    requests = OwnRequests()
    requests.renamed("bob")
    assert welcomed(requests).lines == ["/who", "/nick bob"]


# --- the rename dialog -------------------------------------------------------------------


def test_the_dialog_asks_and_a_rename_to_that_name_answers_it():
    requests = OwnRequests()
    wire = welcomed(requests)
    assert requests.ask_for_name("Zoë", wire)
    assert wire.lines[-1] == "/nick Zoë"
    assert requests.renamed("zoë") == NameGranted("zoë")  # names match case-insensitively
    assert requests.renamed("zoë") is None  # answered once only


def test_a_rename_to_another_name_leaves_the_dialog_waiting():
    requests = OwnRequests("Ann")
    wire = welcomed(requests)
    requests.ask_for_name("zoe", wire)
    assert requests.renamed("Ann") is None  # the claim, granted while the dialog was open
    assert requests.renamed("zoe") == NameGranted("zoe")


@pytest.mark.parametrize("code", sorted(NAME_ERRORS))
def test_a_name_error_answers_the_dialog_once(code):
    requests = OwnRequests()
    requests.ask_for_name("bob", Wire())
    assert requests.error(Error(code, "no")) == NameRefused("no")
    assert requests.error(Error(code, "no")) is None


def test_other_errors_do_not_answer_the_dialog():
    requests = OwnRequests()
    requests.ask_for_name("bob", Wire())
    assert requests.error(Error(ErrorCode.LINE_TOO_LONG, "too long")) is None
    assert requests.error(TAKEN) == NameRefused(TAKEN.message)


def test_the_dialog_is_answered_before_a_pending_claim_which_keeps_waiting():
    requests = OwnRequests("Ann")
    wire = welcomed(requests)
    requests.ask_for_name("bob", wire)
    assert requests.error(TAKEN) == NameRefused(TAKEN.message)
    assert requests.error(TAKEN) == ClaimRefused(TAKEN.message, "Ann")


def test_a_request_that_could_not_be_sent_is_not_awaited():
    requests = OwnRequests()
    assert not requests.ask_for_name("bob", Wire(up=False))
    assert requests.error(TAKEN) is None
    assert requests.renamed("bob") is None


def test_a_request_that_could_not_be_sent_keeps_the_earlier_one_waiting():
    requests = OwnRequests()
    requests.ask_for_name("bob", Wire())
    assert not requests.ask_for_name("carl", Wire(up=False))
    assert requests.renamed("bob") == NameGranted("bob")


def test_a_new_request_replaces_the_one_before():
    requests = OwnRequests()
    wire = Wire()
    requests.ask_for_name("bob", wire)
    requests.ask_for_name("carl", wire)
    assert wire.lines == ["/nick bob", "/nick carl"]
    assert requests.renamed("bob") is None
    assert requests.renamed("carl") == NameGranted("carl")


def test_once_the_dialog_closed_its_answer_goes_to_the_log():
    requests = OwnRequests()
    requests.ask_for_name("bob", Wire())
    requests.forget_name_request()
    assert requests.error(TAKEN) is None
    requests.ask_for_name("carl", Wire())
    requests.forget_name_request()
    assert requests.renamed("carl") is None
    assert requests.wanted_name == "carl"  # still our name for the next connection


def test_the_clients_own_pings_are_answered_quietly_a_typed_one_is_logged() -> None:
    sent: list[str] = []
    requests = OwnRequests()
    requests.welcomed(ID_NAME, lambda line: sent.append(line) or True)
    assert requests.ping(lambda line: sent.append(line) or True)
    assert sent[-1] == "/ping"
    assert requests.pong_is_ours()
    assert not requests.pong_is_ours()  # a second pong answers a /ping the user typed
    assert not requests.ping(lambda line: False)  # not connected: nothing to wait for
    assert not requests.pong_is_ours()
    requests.ping(lambda line: True)
    requests.welcomed(ID_NAME, lambda line: True)  # a new connection forgets the old pings
    assert not requests.pong_is_ours()
