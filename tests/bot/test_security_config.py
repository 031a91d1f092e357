"""In production, nothing the product runs is reachable from another machine without
authentication: start-up (and ``debtbot check-config``) refuses it, naming the setting."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.config import Config, is_loopback, load_config
from bot.errors import ConfigError
from tests.conftest import write_config

#: What a production machine sets, the action server's token left out on purpose.
PRODUCTION_ENV = {"RASA_AUTH_TOKEN": "prod-rasa-token", "DEBTBOT_SECRET_KEY": "prod-secret-key"}
PRODUCTION = {
    "environment": "production",
    "simulator": {"enabled": False},
    "channels": {"sms": {"enabled": False}, "telegram": {"enabled": False}, "email": {"enabled": False}},
}


def production(tmp_path: Path, env: dict[str, str] | None = None, **settings: Any) -> Config:
    path = write_config(tmp_path, {**PRODUCTION, **settings})
    return load_config(path, {**PRODUCTION_ENV, **(env or {})})


def refusal(tmp_path: Path, env: dict[str, str] | None = None, **settings: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        production(tmp_path, env, **settings)
    return str(caught.value)


@pytest.mark.parametrize(
    "url",
    ["redis://redis.internal:6379/0", "redis://10.0.0.5:6379/0", "redis://user@0.0.0.0:6379/0"],
)
def test_production_refuses_an_external_redis_without_password_or_tls(tmp_path: Path, url: str) -> None:
    message = refusal(tmp_path, {"REDIS_URL": url})
    assert "REDIS_URL:" in message and "neither a password nor TLS" in message


@pytest.mark.parametrize(
    "url",
    [
        "redis://:s3cret@redis.internal:6379/0",
        "rediss://redis.internal:6380/0",
        "redis://127.0.0.1:6379/0",
        "redis://localhost:6379/0",
        "redis://[::1]:6379/0",
        "unix:///run/redis.sock",
    ],
)
def test_production_accepts_redis_with_a_password_tls_or_on_this_machine(tmp_path: Path, url: str) -> None:
    assert production(tmp_path, {"REDIS_URL": url}).secrets.redis_url == url


def test_production_refuses_a_remote_action_server_without_a_shared_token(tmp_path: Path) -> None:
    message = refusal(tmp_path, rasa={"actions_url": "http://10.0.0.7:5055"})
    assert "rasa.actions_url:" in message and "DEBTBOT_ACTIONS_TOKEN" in message
    config = production(
        tmp_path, {"DEBTBOT_ACTIONS_TOKEN": "shared-token"}, rasa={"actions_url": "http://10.0.0.7:5055"}
    )
    assert config.secrets.actions_token == "shared-token"


def test_production_on_one_machine_makes_an_action_token_for_the_run_only(tmp_path: Path) -> None:
    first, second = production(tmp_path), production(tmp_path)
    assert len(first.secrets.actions_token) >= 32
    # Not written down: each supervisor makes its own and hands it to its two children.
    assert first.secrets.actions_token != second.secrets.actions_token
    stored = tmp_path / "var" / "dev-secrets.json"
    assert not stored.exists() or "DEBTBOT_ACTIONS_TOKEN" not in json.loads(stored.read_text())


def test_development_shares_one_generated_action_token(tmp_path: Path) -> None:
    path = write_config(tmp_path, {})
    first, second = load_config(path, {}), load_config(path, {})
    assert first.secrets.actions_token == second.secrets.actions_token
    stored = json.loads((tmp_path / "var" / "dev-secrets.json").read_text())
    assert stored["DEBTBOT_ACTIONS_TOKEN"] == first.secrets.actions_token


def test_development_allows_what_production_refuses(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"rasa": {"actions_url": "http://10.0.0.7:5055"}})
    load_config(path, {"REDIS_URL": "redis://redis.internal:6379/0"})


def test_check_config_refuses_an_open_binding_naming_the_key(tmp_path: Path) -> None:
    path = write_config(tmp_path, {**PRODUCTION, "rasa": {"actions_url": "http://0.0.0.0:5055"}})
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "check-config", "--config", str(path)],
        capture_output=True, text=True, check=False,
        env={"PATH": "/usr/bin:/bin", **PRODUCTION_ENV, "REDIS_URL": "redis://redis.internal:6379/0"},
    )  # fmt: skip
    assert result.returncode == 2
    assert "rasa.actions_url:" in result.stderr and "REDIS_URL:" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),  # noqa: S104
        ("::", False),
        ("10.0.0.1", False),
        ("redis.internal", False),
        ("", False),
        (None, False),
    ],
)
def test_loopback_is_only_what_this_machine_alone_reaches(host: str | None, expected: bool) -> None:
    assert is_loopback(host) is expected


def test_check_config_says_what_guards_each_service_without_showing_a_secret(tmp_path: Path) -> None:
    path = write_config(tmp_path, {})
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "check-config", "--config", str(path)],
        capture_output=True, text=True, check=True,
        env={"PATH": "/usr/bin:/bin", **PRODUCTION_ENV, "REDIS_URL": "rediss://:pw-0123456789@r.example:6380/0"},
    )  # fmt: skip
    assert "actions: http://127.0.0.1:5055 (loopback; token: generated)" in result.stdout
    assert "redis: external rediss://:***@r.example:6380/0 (password, TLS)" in result.stdout
    assert "pw-0123456789" not in result.stdout and PRODUCTION_ENV["RASA_AUTH_TOKEN"] not in result.stdout
