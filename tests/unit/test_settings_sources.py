"""Where `bastion serve`'s settings come from: flags, then BASTION_* variables, then the config file
(--config, BASTION_CONFIG or ./bastion.toml), then defaults. Every option is walked, from click's
own list, so an option added later is covered without touching this file.

No server starts: click parses the options (make_context) without running the command.
"""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from bastion.cli import serve
from bastion.config import ENV_FIELDS, settings_from_env, settings_to_env

ROOT = Path(__file__).resolve().parents[2]

# Samples for the options whose values are checked by a callback (JSON, patterns, cron entries).
SAMPLES = {
    "auth": '{"anonymous": {"enabled": true}}',
    "protected_fields": '{"Post": {"*": ["secret"]}}',
    "account_lockout": '{"duration": 5, "threshold": 3}',
    "password_policy": '{"doNotAllowUsername": true}',
    "schedule": "cleanup=*/5 * * * *",
    "idempotency_paths": "functions/.*",
    "cloud": str(ROOT / "tests" / "cloud_app"),
    "master_key_ips": "10.0.0.0/8",
    "read_only_master_key_ips": "10.0.0.0/8",
    "maintenance_key_ips": "10.0.0.0/8",
}


def _options() -> list[click.Option]:
    return [p for p in serve.params if isinstance(p, click.Option) and p.name != "config"]


def _sample(option: click.Option) -> str:
    """A text for the option's variable that gives a value other than its default."""
    assert option.name is not None
    if option.name in SAMPLES:
        return SAMPLES[option.name]
    if option.is_flag:
        return "false" if option.default else "true"
    if isinstance(option.type, click.Choice):
        return next(str(choice) for choice in option.type.choices if choice != option.default)
    if isinstance(option.type, click.IntRange):
        return str(max(option.type.min or 0, option.default if isinstance(option.default, int) else 0) + 1)
    return "sample-" + option.name


@pytest.fixture
def no_bastion_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("BASTION_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no ./bastion.toml


def test_every_setting_is_an_option() -> None:
    # A setting without an option would be read from its variable by nobody (the command hands the
    # workers its own settings), and could not be given in the config file.
    names = {option.name for option in _options()}
    assert set(ENV_FIELDS) <= names, sorted(set(ENV_FIELDS) - names)


@pytest.mark.parametrize("option", _options(), ids=lambda option: option.name)
def test_every_variable_is_honoured(monkeypatch: pytest.MonkeyPatch, no_bastion_env: None,
                                    option: click.Option) -> None:
    assert option.name is not None and isinstance(option.envvar, str)
    default = serve.make_context("serve", []).params[option.name]
    monkeypatch.setenv(option.envvar, _sample(option))
    value = serve.make_context("serve", []).params[option.name]
    assert value != default, f"{option.envvar} was not honoured"
    # And the settings handed to the workers (through the environment) keep it.
    settings = settings_from_env({}, **{option.name: value})
    assert settings_from_env(settings_to_env(settings)) == settings


def test_every_number_has_a_range() -> None:
    # A negative or zero limit that makes no sense is refused with the flag's name.
    for option in _options():
        if ENV_FIELDS.get(option.name or "") is int:
            assert isinstance(option.type, click.IntRange), option.name


def test_flags_win_over_variables(monkeypatch: pytest.MonkeyPatch, no_bastion_env: None) -> None:
    monkeypatch.setenv("BASTION_MAX_INCLUDE_DEPTH", "2")
    monkeypatch.setenv("BASTION_QUERY_TIMEOUT_MS", "1500")
    params = serve.make_context("serve", ["--max-include-depth", "3"]).params
    assert params["max_include_depth"] == 3 and params["query_timeout_ms"] == 1500


def _config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "settings.toml"
    path.write_text(text)
    return str(path)


def test_the_config_file_is_below_variables_and_flags(monkeypatch: pytest.MonkeyPatch, no_bastion_env: None,
                                                      tmp_path: Path) -> None:
    path = _config(tmp_path, 'port = 2000\nmax_body_bytes = 1000\nmax_limit = 7\nverify_user_emails = true\n'
                             'schedule = "a=* * * * *"\n[auth.anonymous]\nenabled = false\n')
    monkeypatch.setenv("BASTION_MAX_BODY_BYTES", "500")
    params = serve.make_context("serve", ["--config", path, "--max-limit", "9"]).params
    assert params["port"] == 2000  # file over default
    assert params["max_body_bytes"] == 500  # variable over file
    assert params["max_limit"] == 9  # flag over file
    assert params["verify_user_emails"] is True and params["schedule"] == "a=* * * * *"
    assert params["auth"] == {"anonymous": {"enabled": False}}
    assert serve.make_context("serve", []).params["port"] == 1337  # no file, no port


def test_the_config_file_from_its_variable_and_the_working_directory(
        monkeypatch: pytest.MonkeyPatch, no_bastion_env: None, tmp_path: Path) -> None:
    monkeypatch.setenv("BASTION_CONFIG", _config(tmp_path, "port = 2001\n"))
    assert serve.make_context("serve", []).params["port"] == 2001
    monkeypatch.delenv("BASTION_CONFIG")
    (tmp_path / "bastion.toml").write_text("port = 2002\n")
    assert serve.make_context("serve", []).params["port"] == 2002


@pytest.mark.parametrize(("text", "expected"), [
    ("prot = 1\n", "unknown key 'prot'"),
    ("max-body-bytes = 1\n", "did you mean max_body_bytes"),
    ("config = 'x.toml'\n", "unknown key 'config'"),
    ('port = "1337"\n', "port must be an integer"),
    ("port = true\n", "port must be an integer"),
    ('dev = "yes"\n', "dev must be true or false"),
    ("host = 1\n", "host must be a string"),
    ('auth = "{}"\n', "auth must be a table"),
    ("schedule = [1]\n", "schedule must be a string or a list of strings"),
    ("port = \n", "not valid TOML"),
])
def test_config_file_mistakes_name_the_key(no_bastion_env: None, tmp_path: Path, text: str, expected: str) -> None:
    path = _config(tmp_path, text)
    with pytest.raises(click.UsageError) as raised:
        serve.make_context("serve", ["--config", path])
    assert expected in raised.value.message and "\n" not in raised.value.message


def test_a_config_file_value_out_of_range_is_refused(no_bastion_env: None, tmp_path: Path) -> None:
    path = _config(tmp_path, "max_body_bytes = -1\n")
    with pytest.raises(click.BadParameter, match="-1 is not in the range"):
        serve.make_context("serve", ["--config", path])

