"""ServerConfig on its own: the checks across flags, the flag fields' metadata, the parse
functions behind them."""

from __future__ import annotations

from dataclasses import fields

import pytest

from chatroom.server import flag_values as v
from chatroom.server.config import ServerConfig, flag_fields
from chatroom.server.config_flags import FlagSettings


def test_the_defaults_have_no_problem():
    assert ServerConfig().problems() == []


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"workers": 2}, "--workers needs --redis: the workers share the room through it"),
        (
            {"state": "s.db", "redis": "redis://h/0"},
            "--state is for a room on one server; it cannot be used with --redis",
        ),
        ({"tls_port": 6697}, "--tls-port needs --tls-cert FILE (and --tls-key FILE)"),
        ({"tls_cert": "c.pem"}, "--tls-cert needs --tls-port PORT to serve TLS on"),
        ({"port": None}, "--port off leaves no port: give --tls-port (TLS only)"),
        (
            {"workers": 2, "redis": "redis://h/0", "tls_port": 0, "tls_cert": "c.pem"},
            "--workers needs a fixed --tls-port (not 0)",
        ),
    ],
)
def test_each_problem_is_one_line(settings, problem):
    assert ServerConfig(**settings).problems() == [problem]


@pytest.mark.parametrize(
    "settings",
    [
        {"redis": "redis://h/0", "workers": 4, "room": "a.b-c_9"},
        {"port": None, "tls_port": 6697, "tls_cert": "c.pem"},
        {"tls_port": 0, "tls_cert": "c.pem", "tls_key": "k.pem"},
        {"state": "s.db"},
    ],
)
def test_consistent_settings_have_none(settings):
    assert ServerConfig(**settings).problems() == []


@pytest.mark.parametrize("text", ["a room", "x" * 33, "", "#", "a*b"])
def test_a_room_flag_that_is_no_room_name_is_one_line(text):
    """--room and --rooms take room names (docs/PROTOCOL.md, "Rooms"): a bad one is the
    flag's one-line error; a good one is its key (lowercase, no "#")."""
    with pytest.raises(ValueError, match="a room name is 1-32 letters"):
        v.room(text)
    assert v.room("#Dev") == "dev"


def test_problems_come_in_the_order_the_command_line_reports_them():
    config = ServerConfig(workers=2, port=None, tls_cert="c.pem")
    assert config.problems() == [
        "--workers needs --redis: the workers share the room through it",
        "--tls-cert needs --tls-port PORT to serve TLS on",
        "--port off leaves no port: give --tls-port (TLS only)",
    ]


def test_every_flag_is_named_after_its_field_and_every_field_of_the_flags_is_one():
    assert [f.name for f in flag_fields()] == [f.name for f in fields(FlagSettings)]
    for spec in flag_fields():
        assert spec.metadata["flag"] == "--" + spec.name.replace("_", "-")
    # The flags come first, in --help's order; the tuning values after them have no flag.
    names = [f.name for f in fields(ServerConfig)]
    assert names[: len(flag_fields())] == [f.name for f in flag_fields()]
    assert all("flag" not in f.metadata for f in fields(ServerConfig)[len(flag_fields()) :])


def test_each_flag_default_reads_back_through_its_parse_function():
    for spec in flag_fields():
        parse = spec.metadata.get("parse")
        if parse is None or spec.default is None:
            continue
        values = spec.default if spec.metadata.get("nargs") else (spec.default,)
        for value in values:
            text = repr(value) if isinstance(value, float) else str(value)
            assert parse(text) == value, spec.name


@pytest.mark.parametrize(
    ("parse", "text", "reason"),
    [
        (v.non_negative_int, "x", "not a number: 'x'"),
        (v.non_negative_int, "1.5", "not a number: '1.5'"),
        (v.non_negative_float, "-0.5", "must not be negative: '-0.5'"),
        (v.positive_int, "0", "must be at least 1"),
        (v.positive_float, "0", "must be more than 0"),
        (v.port, "65536", "not a TCP port: '65536'"),
        (v.port_or_off, "on", "not a number: 'on'"),
        (v.cidr, "10.0.0.300", "not an address or network: '10.0.0.300'"),
    ],
)
def test_a_bad_value_says_why_in_one_line(parse, text, reason):
    with pytest.raises(ValueError) as error:
        parse(text)
    assert str(error.value) == reason


@pytest.mark.parametrize(
    ("parse", "text", "value"),
    [
        (v.non_negative_int, "0", 0),
        (v.non_negative_float, "2.5", 2.5),
        (v.positive_int, "7", 7),
        (v.port, "65535", 65535),
        (v.port_or_off, "off", None),
        (v.cidr, "10.1.2.3", "10.1.2.3/32"),
        (v.cidr, "2001:db8::1/48", "2001:db8::/48"),
    ],
)
def test_a_good_value_is_parsed(parse, text, value):
    assert parse(text) == value


def test_the_config_stays_frozen_and_hashable_with_lists_given():
    config = ServerConfig(exempt_ip=["10.0.0.0/8"], proxy_protocol_from=[])  # type: ignore[arg-type]
    assert config.exempt_ip == ("10.0.0.0/8",) and config.proxy_protocol_from == ()
    hash(config)
    with pytest.raises(AttributeError):
        config.port = 1  # type: ignore[misc]
