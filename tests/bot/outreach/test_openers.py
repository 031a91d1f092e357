"""The Telegram invitation an opener on another channel carries."""

from __future__ import annotations

import re

import pytest
import redis

from bot.errors import InvalidRequest
from bot.outreach.openers import opener_address, telegram_invitation
from bot.runtime.services import build_services
from bot.store.accounts import AccountStore
from tests.conftest import ROOT, TEST_SECRETS, ConfigFactory


@pytest.fixture
def accounts_loaded(redis_client: redis.Redis[bytes]) -> None:
    from bot.store.connection import Keys

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
    from bot.outreach.openers import send_opener

    services = build_services(
        make_config(channels={"telegram": {"bot_username": "northwind_help_bot"}}), redis_client
    )
    services._rasa = _OpenerRasa()  # type: ignore[assignment]
    [message] = send_opener(services, "ACC-1001", "sms")
    assert message.text.startswith("Hola, Maria") and "https://t.me/northwind_help_bot?start=" in message.text
    assert message.proactive and message.kind == "opener" and message.language == "es"


#: A question about how the person is, in English and in Spanish.
_ASKS_HOW = {
    "en": re.compile(r"\bhow (are|is|have|'s)\b[^?]*\?", re.IGNORECASE),
    "es": re.compile(r"¿\s*(cómo|qué tal)\b[^?]*\?", re.IGNORECASE),
}


def _default_wordings() -> list[tuple[str, str, str, str]]:
    from bot.config import _default_openers, load_config

    shipped = load_config(ROOT / "config.yaml", dict(TEST_SECRETS))
    rows = [
        ("config.yaml", str(lang), v.id, v.text) for lang, vs in shipped.outreach.openers.items() for v in vs
    ]
    rows += [("bot/config.py", lang, v.id, v.text) for lang, vs in _default_openers().items() for v in vs]
    return rows


@pytest.mark.parametrize(("source", "language", "variant", "text"), _default_wordings())
def test_every_default_opener_wording_asks_how_the_person_is(
    source: str, language: str, variant: str, text: str
) -> None:
    assert _ASKS_HOW[language].search(text), (
        f"{source}: opener {language}/{variant} never asks how the person is"
    )


def test_the_default_openers_cover_both_languages() -> None:
    assert {(source, language) for source, language, _, _ in _default_wordings()} == {
        (source, language) for source in ("config.yaml", "bot/config.py") for language in ("en", "es")
    }
