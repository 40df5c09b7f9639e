"""The parser generated from the config's flag fields, and the workers' flags derived from
the same fields (the process tests are in test_server_process.py and test_tls.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chatroom.server import cli
from chatroom.server.cli import build_parser, config_from_args, worker_argv
from chatroom.server.config import ServerConfig, flag_fields


def test_no_flags_give_the_default_config():
    assert config_from_args(build_parser().parse_args([])) == ServerConfig()


def test_help_lists_every_flag_but_the_hidden_one_in_the_fields_order():
    text = build_parser().format_help()
    options = text[text.index("options:") :]
    shown = [f.metadata["flag"] for f in flag_fields() if f.metadata["help"] is not None]
    positions = [options.index(f"  {flag}") for flag in shown]
    assert positions == sorted(positions)
    assert "--worker " not in options and "--worker\n" not in options


def test_a_list_default_is_shown_as_typed():
    assert "(default: 127.0.0.0/8 ::1/128)" in " ".join(build_parser().format_help().split())


@pytest.mark.parametrize(
    "argv",
    [
        ["--redis", "redis://127.0.0.1:1/0", "--workers", "3", "--room", "r1", "--rate", "0.5"],
        ["--port", "off", "--tls-port", "6697", "--tls-cert", "c.pem", "--hide-addresses"],
        ["--exempt-ip", "--proxy-protocol-from", "10.0.0.1", "::1", "--loop", "asyncio"],
        ["--idle-timeout", "0.1", "--max-line", "100", "--log-level", "debug"],
    ],
)
def test_a_worker_gets_the_same_config_back_from_its_flags(argv):
    config = config_from_args(build_parser().parse_args(argv))
    derived = config_from_args(build_parser().parse_args(worker_argv(config, 4000)))
    assert derived == replace(config, port=4000, workers=1, worker=True)


def test_a_worker_is_given_only_what_differs_from_the_defaults_and_its_port():
    assert worker_argv(ServerConfig(), 4000) == ["--port", "4000", "--worker"]


@pytest.mark.parametrize(
    "config",
    [
        ServerConfig(workers=2),
        ServerConfig(state="s.db", redis="redis://h/0"),
        ServerConfig(tls_port=6697),
        ServerConfig(port=None),
    ],
)
def test_the_command_line_reports_the_configs_first_problem(config, capsys):
    argv = worker_argv(config, config.port)  # the flags that make this config
    argv = [a for a in argv if a != "--worker"]
    if config.workers > 1:
        argv += ["--workers", str(config.workers)]
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err == f"chatroom-server: error: {config.problems()[0]} (see --help)\n"
