"""Each kind of configuration mistake stops start-up with one clear message naming the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import load_config
from bot.errors import ConfigError
from tests.conftest import ROOT, TEST_SECRETS, ConfigFactory, write_config


def problems(path: Path, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path, {**TEST_SECRETS, **(env or {})})
    return str(caught.value)


def test_shipped_config_is_valid() -> None:
    config = load_config(ROOT / "config.yaml", TEST_SECRETS)
    assert config.environment == "development"
    assert config.server.public_url == "http://127.0.0.1:8000"
    assert config.rasa.url.startswith("http://127.0.0.1")


def test_every_section_and_setting_in_the_shipped_file_has_a_comment() -> None:
    """Each setting directly under a section is explained by a comment above it (a comment may
    cover a group of adjacent settings); deeper values are explained by their parent's comment."""
    lines = (ROOT / "config.yaml").read_text().splitlines()

    def indent(line: str) -> int:
        return len(line) - len(line.lstrip())

    for number, line in enumerate(lines):
        if indent(line) != 2 or line.strip().startswith(("#", "-")) or "#" in line or line.endswith(":"):
            continue
        above = number - 1
        while above >= 0 and (indent(lines[above]) > 2 or not lines[above].strip().startswith("#")):
            if indent(lines[above]) < 2 and lines[above].strip():
                raise AssertionError(f"undocumented setting: {line.strip()}")
            above -= 1


def test_every_setting_of_the_model_appears_in_the_shipped_file() -> None:
    from typing import get_args, get_origin

    import yaml
    from pydantic import BaseModel
    from pydantic.fields import SHAPE_DICT, SHAPE_MAPPING

    from bot.config import Config

    shipped = yaml.safe_load((ROOT / "config.yaml").read_text())

    def walk(model: type[BaseModel], data: dict[str, object], prefix: str) -> list[str]:
        missing = []
        for name, field in model.__fields__.items():
            if name not in data:
                missing.append(prefix + name)
            else:
                section, listed = field.type_, False
                if get_origin(section) is list:  # a list of sections per key (openers per language)
                    section, listed = get_args(section)[0], True
                if get_origin(section) is not None or not (
                    isinstance(section, type) and issubclass(section, BaseModel)
                ):
                    continue  # plain values, or a deeper table (its entries are examples)
                value_of = data[name]
                if isinstance(value_of, list):
                    values = value_of  # a list of sections: each item must be complete
                elif field.shape in (SHAPE_DICT, SHAPE_MAPPING) and isinstance(value_of, dict):
                    values = list(value_of.values())  # a section per key (a language, say)
                else:
                    values = [value_of]
                if listed:
                    values = [item for value in values for item in value]
                for value in values:
                    missing += walk(section, value, f"{prefix}{name}.")
        return missing

    assert walk(Config, shipped, "") == []


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    message = problems(tmp_path / "nope.yaml")
    assert "nope.yaml not found" in message


def test_invalid_yaml_gives_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("server:\n  port: 8000\n   host: [\n")
    assert "not valid YAML at line 3" in problems(path)


def test_unknown_key_lists_the_allowed_ones(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"server": {"prot": 8000}})
    message = problems(path)
    assert "server.prot: unknown setting" in message
    assert "public_url" in message


def test_wrong_type_names_key_and_value(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"server": {"port": "eighty"}})
    assert "server.port: value is not a valid integer (got 'eighty')" in problems(path)


def test_out_of_range_value_says_the_limit(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"server": {"port": 70000}})
    assert "server.port: ensure this value is less than or equal to 65535" in problems(path)


def test_bad_choice_lists_the_permitted_values(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"environment": "staging"})
    message = problems(path)
    assert "environment:" in message and "'development', 'production'" in message


def test_section_given_as_a_scalar_lists_its_settings(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"worker": 3})
    assert "worker: must be a section with the settings: processes, threads" in problems(path)


def test_bad_url_is_explained(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"server": {"public_url": "bot.example.com"}})
    assert "server.public_url: must be an http:// or https:// URL with a host" in problems(path)


def test_secret_in_the_file_points_to_the_environment_variable(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"channels": {"sms": {"auth_token": "abc"}}})
    assert (
        "channels.sms.auth_token: secrets are not read from config.yaml; set the environment variable TWILIO_AUTH_TOKEN"
        in problems(path)
    )


def test_environment_override_is_applied_and_validated(tmp_path: Path) -> None:
    path = write_config(tmp_path, {})
    config = load_config(path, {**TEST_SECRETS, "DEBTBOT__SERVER__PORT": "8123"})
    assert config.server.port == 8123
    assert "server.port: value is not a valid integer (got 'x')" in problems(
        path, {"DEBTBOT__SERVER__PORT": "x"}
    )


def test_cross_field_rule_names_both_keys(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"accounts": {"languages": ["en"], "default_language": "es"}})
    assert "accounts.default_language: must be one of accounts.languages (en)" in problems(path)


def test_half_set_twilio_credentials_are_refused(tmp_path: Path) -> None:
    path = write_config(tmp_path, {})
    message = problems(path, {"TWILIO_ACCOUNT_SID": "AC123"})
    assert "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN: set both" in message


def test_production_requires_real_secrets_and_no_sandbox_or_simulator(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"environment": "production"})
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    message = str(caught.value)
    assert "RASA_AUTH_TOKEN: environment variable is required in production" in message
    assert "DEBTBOT_SECRET_KEY: environment variable is required in production" in message
    assert "simulator.enabled: must be false when environment is production" in message
    assert "channels.sms.enabled: SMS cannot be sandboxed in production" in message


def test_development_generates_shared_secrets_once(tmp_path: Path) -> None:
    path = write_config(tmp_path, {})
    first = load_config(path, {})
    second = load_config(path, {})
    assert first.secrets.rasa_token == second.secrets.rasa_token
    assert len(first.secrets.rasa_token) >= 32
    assert "RASA_AUTH_TOKEN" in first.secrets.generated
    assert (tmp_path / "var" / "dev-secrets.json").stat().st_mode & 0o077 == 0


def test_channels_are_live_only_with_credentials(tmp_path: Path) -> None:
    path = write_config(tmp_path, {})
    sandbox = load_config(path, TEST_SECRETS)
    live = load_config(path, {**TEST_SECRETS, "TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t"})
    assert (sandbox.sms_live, live.sms_live) == (False, True)


def test_cli_prints_the_problem_without_a_traceback(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"server": {"port": "eighty"}, "redis": {"key_prefix": "a:b"}})
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "check-config", "--config", str(path)],
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", **TEST_SECRETS}, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "server.port: value is not a valid integer (got 'eighty')" in result.stderr
    assert "redis.key_prefix:" in result.stderr
    assert "Traceback" not in result.stderr


def test_plan_policy_mistakes_name_the_key(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        {"plans": {"frequencies": ["daily"], "settlement": {"floor_percent": 80, "offer_percent": 60},
                   "payment_link_template": "https://pay.example.com/{account}"}},
    )  # fmt: skip
    message = problems(path)
    assert "plans.frequencies.0: unexpected value; permitted: 'weekly', 'fortnightly', 'monthly'" in message
    assert "plans.settlement.offer_percent: must be at least plans.settlement.floor_percent (80)" in message
    assert "plans.payment_link_template: must contain {plan_id}" in message


def test_texts_must_exist_in_every_language(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"compliance": {"mini_miranda": {"en": "From a debt collector."}}})
    assert "compliance.mini_miranda: needs a text for every language (missing: es)" in problems(path)


def test_unquoted_contact_hours_are_read_as_times(make_config: ConfigFactory) -> None:
    config = make_config(env={"DEBTBOT__COMPLIANCE__CONTACT_HOURS__LATEST": "20:30"})
    assert config.compliance.contact_hours.latest == "20:30"
    with pytest.raises(ConfigError, match=r"compliance\.contact_hours\.latest: must be later than earliest"):
        make_config(env={"DEBTBOT__COMPLIANCE__CONTACT_HOURS__LATEST": "07:00"})


def test_a_time_zone_that_does_not_exist_is_refused_naming_the_key(make_config: ConfigFactory) -> None:
    with pytest.raises(ConfigError, match=r"compliance\.default_timezone: must be an IANA time zone"):
        make_config(compliance={"default_timezone": "Mars/Olympus"})
    with pytest.raises(ConfigError, match=r"compliance\.creditors\.Acme\.default_timezone: must be an IANA"):
        make_config(compliance={"creditors": {"Acme": {"default_timezone": "Mars/Olympus"}}})
    assert (
        make_config(compliance={"default_timezone": "Europe/Madrid"}).compliance.default_timezone
        == "Europe/Madrid"
    )


def test_trusted_proxies_defaults_to_none_and_a_bad_count_names_the_key(
    tmp_path: Path, make_config: ConfigFactory
) -> None:
    assert make_config().server.trusted_proxies == 0
    assert make_config(server={"trusted_proxies": 2}).server.trusted_proxies == 2
    path = write_config(tmp_path, {"server": {"trusted_proxies": -1}})
    assert "server.trusted_proxies: ensure this value is greater than or equal to 0" in problems(path)
    path = write_config(tmp_path, {"server": {"trusted_proxies": "one"}})
    assert "server.trusted_proxies: value is not a valid integer (got 'one')" in problems(path)
    path = write_config(tmp_path, {"server": {"trusted_proxies": 11}})
    assert "server.trusted_proxies: ensure this value is less than or equal to 10" in problems(path)
