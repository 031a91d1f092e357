"""`debtbot telegram poll`: updates fetched by long polling take the webhook's path."""

from __future__ import annotations

import redis

from bot.addresses import address_key
from bot.services import build_services
from bot.telegram_poller import poll
from channels.telegram import TelegramChannel
from tests.conftest import ConfigFactory
from tests.fakes.telegram_api import FakeTelegram, sticker_update, text_update


def test_polled_updates_are_stored_once_and_the_offset_moves_on(
    make_config: ConfigFactory, redis_client: redis.Redis[bytes], fake_telegram: FakeTelegram
) -> None:
    config = make_config(
        channels={"telegram": {"api_base_url": fake_telegram.base_url}},
        env={"TELEGRAM_BOT_TOKEN": fake_telegram.token, "TELEGRAM_WEBHOOK_SECRET": "s"},
    )
    services = build_services(config, redis_client)
    channel = services.channels["telegram"]
    assert isinstance(channel, TelegramChannel)
    fake_telegram.queue_update(text_update(501, 4242, "hola"))
    fake_telegram.queue_update(sticker_update(502, 4242))
    assert poll(services, channel, once=True, echo=lambda _: None) == 2
    stored = services.inbound.unhandled(address_key("telegram", "4242"))
    assert len(stored) == 2
    assert redis_client.get(services.keys.telegram_poll_offset) == b"503"
    assert poll(services, channel, once=True, echo=lambda _: None) == 0  # nothing new, nothing twice
    assert fake_telegram.invalid_calls == []
