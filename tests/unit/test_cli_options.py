"""``bastion serve``'s options: each one is a setting, read from BASTION_<NAME> as bastion.config reads it.

No server starts: the options are read from the click command and its --help only.
"""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from bastion.cli import main, serve
from bastion.config import ENV_FIELDS

# Options of `serve` that are not settings: --config names the file the settings are read from.
NOT_SETTINGS = {"config"}


def _options() -> list[click.Option]:
    return [param for param in serve.params if isinstance(param, click.Option)]


def _settings() -> list[click.Option]:
    return [option for option in _options() if option.name not in NOT_SETTINGS]


def test_allow_list_names_real_options() -> None:
    # An allow-list entry for an option that no longer exists would silently hide nothing.
    assert NOT_SETTINGS.issubset({option.name for option in _options()})
    for option in _options():
        if option.name in NOT_SETTINGS:
            assert option.envvar == "BASTION_" + option.name.upper() and not option.expose_value


def test_every_setting_reads_its_bastion_variable() -> None:
    for option in _settings():
        assert option.name is not None
        assert option.envvar == "BASTION_" + option.name.upper(), option.name


def test_every_variable_is_a_config_field() -> None:
    # settings_from_env reads BASTION_<field> for each field of ENV_FIELDS; a variable the CLI reads
    # that config does not know would be dropped when serve hands its settings on (settings_to_env).
    for option in _settings():
        assert option.name in ENV_FIELDS, f"{option.envvar} has no field in bastion.config.ENV_FIELDS"


def test_boolean_settings_are_on_off_flags() -> None:
    for option in _settings():
        if ENV_FIELDS[option.name] is bool:
            assert option.is_flag and option.secondary_opts, option.name
            assert isinstance(option.default, bool), option.name
        else:
            assert not option.is_flag, option.name


def test_flag_spelling_follows_the_name() -> None:
    for option in _settings():
        assert option.name is not None
        flag = "--" + option.name.replace("_", "-")
        assert option.opts == [flag], option.name
        if option.is_flag and option.name != "apns_production":  # --apns-production/--apns-sandbox
            assert option.secondary_opts == ["--no-" + flag[2:]], option.name


def test_help_lists_every_option() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    for option in _options():
        for flag in option.opts + option.secondary_opts:
            assert flag in result.output, flag


@pytest.mark.parametrize(
    ("env", "name", "value"),
    [
        ({"BASTION_PORT": "8080"}, "port", 8080),
        ({"BASTION_VERIFY_USER_EMAILS": "true"}, "verify_user_emails", True),
        ({"BASTION_PUSH_WORKER": "false"}, "push_worker", False),
        ({"BASTION_APNS_PRODUCTION": "1"}, "apns_production", True),
        ({"BASTION_LOG_LEVEL": "debug"}, "log_level", "debug"),
        ({"BASTION_IDEMPOTENCY_PATHS": "functions/.*,users"}, "idempotency_paths", "functions/.*,users"),
        ({"BASTION_IDEMPOTENCY_TTL": "60"}, "idempotency_ttl", 60),
    ],
)
def test_variables_reach_the_command(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], name: str, value: object
) -> None:
    for key, text in env.items():
        monkeypatch.setenv(key, text)
    # make_context parses the options (variables included) without running the command.
    ctx = serve.make_context("serve", [])
    assert ctx.params[name] == value


def test_idempotency_paths_must_be_regular_expressions() -> None:
    ctx = serve.make_context("serve", ["--idempotency-paths", '["functions/.*", "jobs/.*"]'])
    assert ctx.params["idempotency_paths"] == '["functions/.*", "jobs/.*"]'
    defaults = serve.make_context("serve", []).params
    assert defaults["idempotency_paths"] is None and defaults["idempotency_ttl"] == 300  # off; Parse's ttl
    result = CliRunner().invoke(main, ["serve", "--idempotency-paths", "functions/(.*"])
    assert result.exit_code == 2 and "is not a regular expression" in result.output, result.output
    result = CliRunner().invoke(main, ["serve", "--idempotency-paths", '["functions/.*", 3]'])
    assert result.exit_code == 2 and "JSON list of path patterns" in result.output, result.output


def test_pubsub_is_redis_memory_or_the_database_and_the_banner_says_which(
        monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    result = CliRunner().invoke(main, ["serve", "--pubsub", "amqp://somewhere", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and "--pubsub must be redis://host:port/db or memory" in result.output
    import os
    import socket

    import bastion.logs
    from bastion import startup

    # The banner, not the server: no database or Redis reached, no socket served, no logging set up,
    # and the variables serve hands its workers stay in a copy of the environment.
    monkeypatch.setattr(startup, "check_database", lambda settings: None)
    monkeypatch.setattr(startup, "check_pubsub", lambda settings: None)
    monkeypatch.setattr(startup, "listen", lambda host, port: socket.socket())
    monkeypatch.setattr(startup, "run", lambda settings, sock: 0)
    monkeypatch.setattr(bastion.logs, "configure", lambda *args, **kwargs: None)
    monkeypatch.setattr(os, "environ", dict(os.environ))
    for args, said in ((["--workers", "2"], "SQLite table, polled every 20 ms"),
                       (["--database", "postgresql://127.0.0.1/app"], "PostgreSQL LISTEN/NOTIFY"),
                       (["--pubsub", "redis://:pw@127.0.0.1:6379/2"], "Redis redis://127.0.0.1:6379/2"),
                       (["--pubsub", "memory", "--workers", "2"], "Warning:      --pubsub memory with 2 workers")):
        result = CliRunner().invoke(main, ["serve", "--data-dir", str(tmp_path), *args])
        assert result.exit_code == 0, result.output
        assert said in result.output, result.output
        assert ":pw@" not in result.output
