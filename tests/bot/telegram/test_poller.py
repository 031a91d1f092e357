"""`debtbot telegram poll`: updates fetched by long polling take the webhook's path."""

from __future__ import annotations

import pytest
import redis

from bot.runtime.services import Services, build_services
from bot.store.addresses import address_key
from bot.telegram.poller import poll
from channels.telegram import TelegramChannel
from tests.conftest import ConfigFactory
from tests.fakes.telegram_api import FakeTelegram, sticker_update, text_update


@pytest.fixture
def polling(
    make_config: ConfigFactory, redis_client: redis.Redis[bytes], fake_telegram: FakeTelegram
) -> tuple[Services, TelegramChannel]:
    """The product's parts with Telegram pointed at the stand-in, and its channel."""
    config = make_config(
        channels={"telegram": {"api_base_url": fake_telegram.base_url}},
        env={"TELEGRAM_BOT_TOKEN": fake_telegram.token, "TELEGRAM_WEBHOOK_SECRET": "s"},
    )
    services = build_services(config, redis_client)
    channel = services.channels["telegram"]
    assert isinstance(channel, TelegramChannel)
    return services, channel


def test_polled_updates_are_stored_once_and_the_offset_moves_on(
    polling: tuple[Services, TelegramChannel], redis_client: redis.Redis[bytes], fake_telegram: FakeTelegram
) -> None:
    services, channel = polling
    fake_telegram.queue_update(text_update(501, 4242, "hola"))
    fake_telegram.queue_update(sticker_update(502, 4242))
    assert poll(services, channel, once=True, echo=lambda _: None) == 2
    stored = services.inbound.unhandled(address_key("telegram", "4242"))
    assert len(stored) == 2
    assert redis_client.get(services.keys.telegram_poll_offset) == b"503"
    assert poll(services, channel, once=True, echo=lambda _: None) == 0  # nothing new, nothing twice
    assert fake_telegram.invalid_calls == []


def test_an_update_that_cannot_be_understood_is_passed_over_and_the_next_is_stored(
    polling: tuple[Services, TelegramChannel], redis_client: redis.Redis[bytes], fake_telegram: FakeTelegram
) -> None:
    services, channel = polling
    broken = text_update(601, 4242, "hola")
    broken["message"]["date"] = 10**20  # no such moment: PTB cannot read it
    fake_telegram.queue_update(broken)
    fake_telegram.queue_update(text_update(602, 4242, "are you there?"))
    assert poll(services, channel, once=True, echo=lambda _: None) == 1
    [stored] = services.inbound.unhandled(address_key("telegram", "4242"))
    assert "are you there?" in stored.payload
    assert redis_client.get(services.keys.telegram_poll_offset) == b"603"  # never asked for 601 again
