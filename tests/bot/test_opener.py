"""The Telegram invitation an opener on another channel carries."""

from __future__ import annotations

import re

import pytest
import redis

from bot.accounts import AccountStore
from bot.errors import InvalidRequest
from bot.opener import opener_address, telegram_invitation
from bot.services import build_services
from tests.conftest import ROOT, ConfigFactory


@pytest.fixture
def accounts_loaded(redis_client: redis.Redis[bytes]) -> None:
    from bot.store import Keys

    AccountStore(redis_client, Keys("debtbot")).import_csv(
        (ROOT / "examples" / "accounts.csv").read_text(),
        languages=["en", "es"], default_language="en", verification_field="date_of_birth",
    )  # fmt: skip


def test_an_sms_opener_invites_to_telegram_with_a_working_one_time_link(
    make_config: ConfigFactory, redis_client: redis.Redis[bytes], accounts_loaded: None
) -> None:
    services = build_services(
        make_config(channels={"telegram": {"bot_username": "northwind_help_bot"}}), redis_client
    )
    text = telegram_invitation(services, "ACC-1001", "sms")  # Maria, Spanish
    assert text is not None and text.startswith("Si prefiere hablar por Telegram")
    match = re.search(r"https://t\.me/northwind_help_bot\?start=([A-Za-z0-9_-]{32})$", text)
    assert match is not None
    assert services.links.redeem(match.group(1), "777") == "ACC-1001"
    assert opener_address(services, "ACC-1001", "telegram") == "777"


def test_no_invitation_without_a_bot_username_or_on_telegram_itself(
    make_config: ConfigFactory, redis_client: redis.Redis[bytes], accounts_loaded: None
) -> None:
    assert telegram_invitation(build_services(make_config(), redis_client), "ACC-1002", "sms") is None
    services = build_services(
        make_config(channels={"telegram": {"bot_username": "northwind_help_bot"}}), redis_client
    )
    assert telegram_invitation(services, "ACC-1002", "telegram") is None


def test_a_telegram_opener_needs_a_linked_chat(
    make_config: ConfigFactory, redis_client: redis.Redis[bytes], accounts_loaded: None
) -> None:
    services = build_services(make_config(), redis_client)
    with pytest.raises(InvalidRequest, match="no Telegram chat yet"):
        opener_address(services, "ACC-1002", "telegram")


class _OpenerRasa:
    def trigger_intent(self, conversation_id: str, intent: str, *, entities: object = None) -> list[object]:
        from dialogue.rasa_client import BotReply

        return [BotReply(text="Hola, Maria, le escribimos de Northwind. ¿Cómo está hoy?")]


def test_an_sms_opener_with_its_invitation_is_one_text_and_proactive(
    make_config: ConfigFactory, redis_client: redis.Redis[bytes], accounts_loaded: None
) -> None:
    from bot.opener import send_opener

    services = build_services(
        make_config(channels={"telegram": {"bot_username": "northwind_help_bot"}}), redis_client
    )
    services._rasa = _OpenerRasa()  # type: ignore[assignment]
    [message] = send_opener(services, "ACC-1001", "sms")
    assert message.text.startswith("Hola, Maria") and "https://t.me/northwind_help_bot?start=" in message.text
    assert message.proactive and message.kind == "opener" and message.language == "es"
