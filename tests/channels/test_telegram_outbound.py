"""Telegram out through python-telegram-bot, against a Bot API stand-in that checks every call
against the Bot API description: escaping, keyboards, flood control, blocked users, button
answers, webhook registration and polling."""

from __future__ import annotations

import time

import pytest
import redis

from bot.conversations.deliveries import DeliveryLog
from bot.conversations.outbound import OutboundHandler
from bot.conversations.rate_limits import RedisPacer
from bot.conversations.render import OfferedChoices, render_replies
from bot.store.addresses import AddressBook
from bot.store.connection import Keys
from bot.store.queues import Entry, RetryLater
from channels.base import Button, InboundMessage, OutboundMessage, RateLimited
from channels.telegram import TelegramChannel
from dialogue.rasa_client import BotReply
from tests.fakes.telegram_api import FakeTelegram, SentMessage, callback_update, iter_buttons

CHAT = "5550001"


def _channel(fake: FakeTelegram, client: redis.Redis[bytes] | None = None) -> TelegramChannel:
    pacer = RedisPacer(client, Keys("debtbot")) if client is not None else None
    return TelegramChannel(webhook_secret="s", bot_token=fake.token, api_base_url=fake.base_url, pacer=pacer)


def _message(
    text: str, buttons: tuple[Button, ...] = (), outbox_id: str = "o1", offer_id: str | None = None
) -> OutboundMessage:
    return OutboundMessage(
        outbox_id=outbox_id, channel="telegram", recipient=CHAT, text=text, buttons=buttons, offer_id=offer_id
    )


def test_text_goes_out_in_html_with_everything_escaped(fake_telegram: FakeTelegram) -> None:
    receipt = _channel(fake_telegram).send(_message("Pay <b>now</b> & 5 < 6? Not at all."))
    [sent] = fake_telegram.sent
    assert sent.parse_mode == "HTML"
    assert sent.text == "Pay &lt;b&gt;now&lt;/b&gt; &amp; 5 &lt; 6? Not at all."
    assert receipt.external_id == str(sent.message_id)
    assert fake_telegram.invalid_calls == []


def test_choices_are_an_inline_keyboard_of_positions_and_the_offer_id(fake_telegram: FakeTelegram) -> None:
    buttons = (Button("Yes, set it up", "/affirm"), Button("No, change it", '/deny{"x": "' + "y" * 80 + '"}'))
    _channel(fake_telegram).send(_message("Shall I set that up for you?", buttons, offer_id="k3J9xQab"))
    [sent] = fake_telegram.sent
    assert sent.reply_markup is not None
    rows = sent.reply_markup["inline_keyboard"]
    assert [(b["text"], b["callback_data"]) for row in rows for b in row] == [
        ("Yes, set it up", "c1.k3J9xQab"), ("No, change it", "c2.k3J9xQab"),
    ]  # fmt: skip
    assert fake_telegram.invalid_calls == []


def test_callback_data_fits_64_bytes_and_carries_no_payload_text(
    fake_telegram: FakeTelegram, redis_client: redis.Redis[bytes]
) -> None:
    long_payload = '/choose_plan{"amount": "' + "9" * 200 + '", "every": "week"}'
    reply = BotReply(
        text="Which plan?", buttons=tuple((f"Plan {n}", f"{long_payload}{n}") for n in range(1, 13))
    )
    offer = OfferedChoices(redis_client, Keys("debtbot")).remember("telegram", CHAT, [reply])
    [message] = render_replies([reply], channel="telegram", recipient=CHAT, conversation_id="c", source="t:1",
                               offer_id=offer)  # fmt: skip
    _channel(fake_telegram).send(message)
    data = [b["callback_data"] for b in iter_buttons(fake_telegram.sent[0].reply_markup)]
    assert len(data) == 12 and all(1 <= len(d.encode()) <= 64 for d in data)
    assert not any(payload in d or d in payload for d in data for _, payload in reply.buttons)
    assert not any(ch in d for d in data for ch in '/{}" ')
    assert fake_telegram.invalid_calls == []  # the stand-in checked the keyboard against the Bot API


def test_a_press_is_acted_on_only_from_the_keyboard_of_the_current_offer(
    fake_telegram: FakeTelegram, redis_client: redis.Redis[bytes]
) -> None:
    """The defect: "Pay in full" (button 1 of an older keyboard) became plan 1 of a newer offer."""
    channel, choices = _channel(fake_telegram), OfferedChoices(redis_client, Keys("debtbot"))
    pay = BotReply(
        text="How would you like to go on?", buttons=(("Pay in full", "/pay_in_full"), ("A plan", "/plan"))
    )
    plans = BotReply(text="Plans:\n1. $20 a week\n2. $40 a fortnight", buttons=(("1", "1"), ("2", "2")))
    for n, reply in enumerate([pay, plans]):
        offer = choices.remember("telegram", CHAT, [reply])
        [message] = render_replies([reply], channel="telegram", recipient=CHAT, conversation_id="c",
                                   source=f"t:{n}", offer_id=offer)  # fmt: skip
        channel.send(message)
    older, newer = fake_telegram.sent

    def press(sent: SentMessage, position: int, update_id: int) -> str | None:
        data = list(iter_buttons(sent.reply_markup))[position]["callback_data"]
        message = channel.parse_update(callback_update(update_id, int(CHAT), data, sent.message_id))
        assert message is not None and message.kind == "choice"
        assert message.raw["callback_query"]["message"]["message_id"] == sent.message_id
        return choices.pressed(message.channel, message.sender, message.text)

    assert press(older, 0, 21) is None  # "Pay in full" on the older keyboard: no longer open
    assert press(newer, 0, 22) == "1"
    assert press(newer, 1, 23) == "2"
    assert fake_telegram.invalid_calls == []


def test_flood_control_waits_as_long_as_telegram_says(fake_telegram: FakeTelegram) -> None:
    fake_telegram.fail_next("sendMessage", error_code=429, description="Too Many Requests: retry after 7",
                            retry_after=7)  # fmt: skip
    with pytest.raises(RateLimited) as limited:
        _channel(fake_telegram).send(_message("hi"))
    assert limited.value.retry_after == 7


def test_a_user_who_blocked_the_bot_is_unreachable_and_not_retried(
    fake_telegram: FakeTelegram, redis_client: redis.Redis[bytes]
) -> None:
    keys = Keys("debtbot")
    addresses = AddressBook(redis_client, keys)
    handler = OutboundHandler(channels={"telegram": _channel(fake_telegram)}, addresses=addresses,
                              deliveries=DeliveryLog(redis_client, keys, addresses))  # fmt: skip
    fake_telegram.fail_next(
        "sendMessage", error_code=403, description="Forbidden: bot was blocked by the user"
    )
    handler(Entry(key="k", entry_id="1-0", payload=_message("hi").to_json()))  # no RetryLater: settled
    assert addresses.status("telegram", CHAT).unreachable_at is not None
    assert fake_telegram.sent == []


def test_a_server_error_is_retried(fake_telegram: FakeTelegram, redis_client: redis.Redis[bytes]) -> None:
    keys = Keys("debtbot")
    addresses = AddressBook(redis_client, keys)
    handler = OutboundHandler(channels={"telegram": _channel(fake_telegram)}, addresses=addresses,
                              deliveries=DeliveryLog(redis_client, keys, addresses))  # fmt: skip
    fake_telegram.fail_next("sendMessage", error_code=502, description="Bad Gateway")
    with pytest.raises(RetryLater):
        handler(Entry(key="k", entry_id="1-0", payload=_message("hi").to_json()))
    handler(Entry(key="k", entry_id="1-0", payload=_message("hi").to_json()))
    assert len(fake_telegram.sent) == 1


def test_one_message_per_second_per_chat(
    fake_telegram: FakeTelegram, redis_client: redis.Redis[bytes]
) -> None:
    channel = _channel(fake_telegram, redis_client)
    channel.send(_message("first"))
    with pytest.raises(RateLimited) as limited:
        channel.send(_message("second", outbox_id="o2"))
    assert 0 < limited.value.retry_after <= 1.0
    other = OutboundMessage(outbox_id="o3", channel="telegram", recipient="777", text="another chat")
    time.sleep(1 / 30)  # the bot as a whole sends at most 30 a second
    channel.send(other)  # another chat is not held up
    assert len(fake_telegram.sent) == 2


def test_every_button_press_is_answered(fake_telegram: FakeTelegram) -> None:
    channel = _channel(fake_telegram)
    update = callback_update(11, int(CHAT), "c1", 5)
    message = channel.parse_update(update)
    assert message is not None and message.kind == "choice"
    channel.acknowledge(message, "That choice is no longer open.")
    [answered] = fake_telegram.answered_callbacks
    assert answered.callback_query_id == update["callback_query"]["id"]
    assert answered.text == "That choice is no longer open."
    assert fake_telegram.invalid_calls == []


def test_plain_text_is_not_answered_as_a_button(fake_telegram: FakeTelegram) -> None:
    message = InboundMessage(channel="telegram", external_id="1", sender=CHAT, text="hi")
    _channel(fake_telegram).acknowledge(message)
    assert fake_telegram.answered_callbacks == []


def test_the_webhook_is_registered_with_the_secret(fake_telegram: FakeTelegram) -> None:
    _channel(fake_telegram).set_webhook("https://bot.example.com/webhooks/telegram", "s3cret")
    webhook = fake_telegram.webhook
    assert webhook is not None and webhook.url == "https://bot.example.com/webhooks/telegram"
    assert webhook.secret_token == "s3cret" and webhook.allowed_updates == ("message", "callback_query")
    assert fake_telegram.invalid_calls == []
