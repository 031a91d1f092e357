"""The Telegram adapter: the secret-token header, and which updates become messages."""

from __future__ import annotations

import json
from typing import Any

import pytest

from channels.base import ChannelAuthError, DeliveryFailed, MalformedRequest, OutboundMessage, WebhookRequest
from channels.telegram import SECRET_HEADER, ButtonPress, TelegramChannel, button_data, read_button_data

SECRET = "tg-secret_123"


def update(**message: Any) -> dict[str, Any]:
    base = {
        "message_id": 5,
        "date": 1700000000,
        "chat": {"id": 42, "type": "private", "first_name": "Ana"},
        "from": {"id": 42, "is_bot": False, "first_name": "Ana", "username": "ana_ruiz"},
        "text": "hola",
    }
    return {"update_id": 1001, "message": {**base, **message}}


def request(body: Any, secret: str | None = SECRET) -> WebhookRequest:
    headers = {SECRET_HEADER: secret} if secret is not None else {}
    return WebhookRequest(
        "POST", "https://bot.example.com/webhooks/telegram", headers, json.dumps(body).encode()
    )


@pytest.fixture
def telegram() -> TelegramChannel:
    return TelegramChannel(webhook_secret=SECRET)


def test_private_text_message_is_parsed(telegram: TelegramChannel) -> None:
    incoming = request(update())
    telegram.authenticate(incoming)
    message = telegram.parse(incoming)
    assert message is not None
    assert (message.external_id, message.sender, message.text, message.sender_handle) == (
        "1001",
        "42",
        "hola",
        "ana_ruiz",
    )


@pytest.mark.parametrize("secret", [None, "wrong", SECRET + "x"])
def test_missing_or_wrong_secret_is_rejected(telegram: TelegramChannel, secret: str | None) -> None:
    with pytest.raises(ChannelAuthError):
        telegram.authenticate(request(update(), secret=secret))


def test_group_messages_are_ignored(telegram: TelegramChannel) -> None:
    body = update(chat={"id": -100, "type": "group", "title": "family"})
    assert telegram.parse(request(body)) is None


def test_updates_without_a_message_are_ignored(telegram: TelegramChannel) -> None:
    assert telegram.parse(request({"update_id": 7, "edited_message": update()["message"]})) is None


def test_callback_query_becomes_a_message_with_its_data(telegram: TelegramChannel) -> None:
    body = {
        "update_id": 1002,
        "callback_query": {
            "id": "cb1", "chat_instance": "x", "data": "/affirm",
            "from": {"id": 42, "is_bot": False, "first_name": "Ana", "username": "ana_ruiz"},
            "message": update()["message"],
        },
    }  # fmt: skip
    message = telegram.parse(request(body))
    assert message is not None and (message.text, message.sender) == ("/affirm", "42")
    assert message.kind == "choice" and message.raw["callback_query"]["message"]["message_id"] == 5


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"update_id": "x"}'])
def test_bodies_that_are_not_updates_are_malformed(telegram: TelegramChannel, body: bytes) -> None:
    with pytest.raises(MalformedRequest):
        telegram.parse(WebhookRequest("POST", "u", {SECRET_HEADER: SECRET}, body))


@pytest.mark.parametrize(
    "content",
    [
        {"sticker": {"file_id": "s", "file_unique_id": "u", "type": "regular", "width": 512, "height": 512,
                     "is_animated": False, "is_video": False}},
        {"photo": [{"file_id": "p", "file_unique_id": "u", "width": 90, "height": 90}]},
        {"voice": {"file_id": "v", "file_unique_id": "u", "duration": 3}},
    ],
)  # fmt: skip
def test_stickers_photos_and_voice_notes_are_unsupported_not_errors(
    telegram: TelegramChannel, content: dict[str, Any]
) -> None:
    body = update(**content)
    del body["message"]["text"]
    message = telegram.parse(request(body))
    assert message is not None and message.kind == "unsupported" and message.text == ""


def test_start_with_a_deep_link_token_carries_the_token(telegram: TelegramChannel) -> None:
    message = telegram.parse(request(update(text="/start AbC-123_x")))
    assert message is not None and message.kind == "start" and message.text == "AbC-123_x"


def test_plain_start_is_a_start_without_token(telegram: TelegramChannel) -> None:
    message = telegram.parse(request(update(text="/start")))
    assert message is not None and message.kind == "start" and message.text == ""


def test_edited_messages_and_channel_posts_are_ignored(telegram: TelegramChannel) -> None:
    edited = {"update_id": 7, "edited_message": update()["message"] | {"edit_date": 1700000100}}
    assert telegram.parse(request(edited)) is None
    post = {"update_id": 8, "channel_post": update()["message"] | {"chat": {"id": -100, "type": "channel"}}}
    assert telegram.parse(request(post)) is None


def test_button_data_is_a_position_and_the_offer_id_and_anything_else_is_refused() -> None:
    assert [button_data(n, "k3J9xQab") for n in range(3)] == ["c1.k3J9xQab", "c2.k3J9xQab", "c3.k3J9xQab"]
    assert [read_button_data(button_data(n, "k3J9xQab")) for n in (0, 98)] == [
        ButtonPress(0, "k3J9xQab"), ButtonPress(98, "k3J9xQab"),
    ]  # fmt: skip
    for forged in ["/affirm", "c1", "c0.k3J9xQab", "c.k3J9xQab", "c100.k3J9xQab", "x1.k3J9xQab", "c-1.k3J9xQab",
                   "c1.", "c1.abc", "c1.k3J9 xQab", "c1.k3J9xQab.x", "c\uff11.k3J9xQab", "", "c1." + "a" * 60]:  # fmt: skip
        assert read_button_data(forged) is None, forged


def test_button_data_without_an_offer_is_the_position_alone_which_is_never_read_back() -> None:
    assert button_data(1, None) == "c2" and read_button_data("c2") is None


@pytest.mark.parametrize("offer_id", ["", "k3J9", "k3J9.xQab", "k3J9xQab/", "x" * 17])
def test_an_offer_id_that_could_break_the_format_or_the_64_bytes_is_refused(offer_id: str) -> None:
    with pytest.raises(ValueError):
        button_data(0, offer_id)


def test_sending_without_a_token_is_a_permanent_failure(telegram: TelegramChannel) -> None:
    with pytest.raises(DeliveryFailed) as failed:
        telegram.send(OutboundMessage(outbox_id="o", channel="telegram", recipient="42", text="hi"))
    assert failed.value.permanent
