"""A Telegram conversation on the real stack: the deep link from an opener, the identity
check, a payment plan chosen with inline buttons; stale and forged button presses, a sticker
and a repeated update along the way."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.conftest import wait_for
from tests.e2e.conftest import Product

pytestmark = pytest.mark.e2e

CHAT = 5550001


class Chat:
    """James on Telegram: sends updates, reads what the bot sent since."""

    def __init__(self, product: Product) -> None:
        self.product = product
        self.update_id = 900
        self.seen = 0

    def _post(self, update: dict[str, Any]) -> list[Any]:
        assert self.product.telegram(update) == 200
        services = self.product.services
        wait_for(lambda: not services.inbound.pending_keys() and not services.outbound.pending_keys(),
                 timeout=60, what="the update handled")  # fmt: skip
        time.sleep(0.2)
        sent = self.product.telegram_replies(str(CHAT))
        new, self.seen = sent[self.seen :], len(sent)
        return new

    def _next(self) -> int:
        self.update_id += 1
        return self.update_id

    def say(self, text: str, *, update_id: int | None = None) -> list[Any]:
        message = {"message_id": self._next(), "date": int(time.time()), "text": text,
                   "chat": {"id": CHAT, "type": "private", "first_name": "James"},
                   "from": {"id": CHAT, "is_bot": False, "first_name": "James"}}  # fmt: skip
        return self._post({"update_id": update_id or self.update_id, "message": message})

    def press(self, data: str) -> list[Any]:
        query = {"id": f"cb{self._next()}", "chat_instance": "ci", "data": data,
                 "from": {"id": CHAT, "is_bot": False, "first_name": "James"},
                 "message": {"message_id": 1, "date": int(time.time()), "text": "earlier",
                             "chat": {"id": CHAT, "type": "private", "first_name": "James"}}}  # fmt: skip
        return self._post({"update_id": self.update_id, "callback_query": query})

    def sticker(self) -> list[Any]:
        message = {"message_id": self._next(), "date": int(time.time()),
                   "chat": {"id": CHAT, "type": "private", "first_name": "James"},
                   "sticker": {"file_id": "s", "file_unique_id": "u", "type": "regular", "width": 512,
                               "height": 512, "is_animated": False, "is_video": False}}  # fmt: skip
        return self._post({"update_id": self.update_id, "message": message})


def titles(entry: Any) -> list[str]:
    return list(entry.buttons)


def test_from_a_deep_link_to_a_plan_chosen_with_buttons(telegram_product: Product) -> None:
    product = telegram_product
    chat = Chat(product)
    token = product.services.links.issue("ACC-1002")
    [hello] = chat.say(f"/start {token}")
    assert hello.text.startswith("Hi James")  # the link told us who this probably is

    texts = [e.text for e in chat.say("good thanks")]
    assert "date of birth" in texts[-1]  # a link can be forwarded: still the right-party check
    replies = chat.say("2 November 1979")
    assert replies[2].text == "Your account with Capitol Mobile has $389.99 outstanding."
    assert titles(replies[-1]) == [
        "Pay in full",
        "A payment plan",
        "Talk to a person",
        "Help with money worries",
    ]

    menu = replies[-1]
    replies = chat.press(menu.data[1])  # "A payment plan"
    assert replies[-1].text.startswith("Here are some plans that fit.") and titles(replies[-1])[:2] == [
        "1",
        "2",
    ]
    plans = replies[-1]
    assert chat.press(menu.data[0]) == []  # the earlier menu's "Pay in full": no longer open
    replies = chat.press(plans.data[0])  # the first plan
    assert replies[0].text.startswith("Here's the plan:")
    assert titles(replies[-1]) == ["Yes, set it up", "No, change it"]
    assert product.services.redis.llen("debtbot:account:ACC-1002:plans") == 0  # nothing before a yes
    confirm = replies[-1]
    replies = chat.press(confirm.data[0])  # yes
    assert replies[0].text.startswith("All set, thank you.")
    assert product.services.redis.llen("debtbot:account:ACC-1002:plans") == 1

    assert chat.press(confirm.data[0]) == []  # the same "yes" again: that offer is closed
    assert chat.press("c1") == []  # a position without an offer id is never acted on
    assert chat.press("/affirm") == []  # nor is data we never sent
    assert product.services.redis.llen("debtbot:account:ACC-1002:plans") == 1

    [kind] = chat.sticker()
    assert kind.text == "Sorry, I can only read text here. Could you type your message?"
    first = chat.say("thanks")
    assert chat.say("thanks", update_id=chat.update_id) == []  # Telegram retried the same update
    assert len(first) >= 1
    if product.telegram_api is not None:  # live: every call was a valid Bot API call
        assert product.telegram_api.invalid_calls == []
        presses = [c for c in product.telegram_api.calls if c.method == "answerCallbackQuery"]
        assert len(presses) == 7  # every press answered, stale and forged ones included
