"""`debtbot telegram set-webhook` registers the public URL with the secret from the environment."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from bot.cli import main
from tests.conftest import TEST_SECRETS, write_config
from tests.fakes.telegram_api import FakeTelegram


def test_set_webhook_registers_the_public_url_and_the_secret(
    tmp_path: Path, redis_url: str, fake_telegram: FakeTelegram
) -> None:
    path = write_config(tmp_path, {"server": {"public_url": "https://bot.example.com"},
                                   "channels": {"telegram": {"api_base_url": fake_telegram.base_url}}})  # fmt: skip
    env = {"REDIS_URL": redis_url, **TEST_SECRETS, "TELEGRAM_BOT_TOKEN": fake_telegram.token,
           "TELEGRAM_WEBHOOK_SECRET": "from-the-environment"}  # fmt: skip
    result = CliRunner().invoke(main, ["telegram", "set-webhook", "--config", str(path)], env=env)
    assert result.exit_code == 0, result.output
    assert "webhook set: https://bot.example.com/webhooks/telegram" in result.output
    webhook = fake_telegram.webhook
    assert webhook is not None and webhook.secret_token == "from-the-environment"


def test_without_credentials_it_says_what_to_set(tmp_path: Path, redis_url: str) -> None:
    path = write_config(tmp_path, {})
    result = CliRunner().invoke(main, ["telegram", "set-webhook", "--config", str(path)],
                                env={"REDIS_URL": redis_url, **TEST_SECRETS, "TELEGRAM_BOT_TOKEN": ""})  # fmt: skip
    assert result.exit_code == 2
    assert "TELEGRAM_BOT_TOKEN" in result.output
