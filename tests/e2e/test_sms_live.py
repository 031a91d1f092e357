"""SMS with Twilio switched on: every request the product makes reaches a stand-in of
Twilio's REST API that checks it against Twilio's own OpenAPI description.

One conversation from the opener to a created plan, answered partly with numbers for the
numbered choices, then STOP: one confirmation, then silence. On the set clock
(``DEBTBOT_TEST_CLOCK``, 15:00 and 03:00 New York time in ``make test``): at night Twilio gets
nothing until the deferred opener is released at 08:00."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import wait_for
from tests.e2e.conftest import Product, Sent, open_by_outreach

pytestmark = [pytest.mark.e2e, pytest.mark.clock]

JAMES = "+12025550143"  # ACC-1002: born 1979-11-02, owes $389.99 to Capitol Mobile


def say(product: Product, text: str, sid: str) -> list[Sent]:
    """James writes; return the bot's new texts once they stop coming."""
    already = len(product.replies(JAMES))
    assert product.sms(JAMES, text, sid) == 200
    wait_for(lambda: len(product.replies(JAMES)) > already, timeout=60, what=f"a reply to {text!r}")
    services = product.services
    wait_for(lambda: not services.inbound.pending_keys() and not services.outbound.pending_keys(),
             timeout=60, what="every reply sent")  # fmt: skip
    return product.replies(JAMES)[already:]


def test_a_live_sms_conversation_from_the_opener_to_a_plan_then_stop(live_sms_product: Product) -> None:
    product = live_sms_product
    twilio = product.twilio
    assert twilio is not None
    opener = open_by_outreach(product, "ACC-1002", lambda: product.replies(JAMES))
    assert isinstance(opener, Sent) and opener.text.endswith("Reply STOP to stop texts.")
    assert len(twilio.messages) == 1  # nothing reached Twilio before the opener was allowed
    say(product, "good thanks", "SM" + "1" * 32)
    texts = [r.text for r in say(product, "2 November 1979", "SM" + "2" * 32)]
    assert "1 Pay in full" in texts[-1] and "2 A payment plan" in texts[-1]

    texts = [r.text for r in say(product, "2", "SM" + "3" * 32)]  # "A payment plan", by its number
    assert any(t.startswith("Here are some plans that fit.") and "\n1. " in t for t in texts), texts
    texts = [r.text for r in say(product, "I can do 50 a month", "SM" + "4" * 32)]
    assert texts[0].startswith("Here's the plan: 7 payments of $50.00 every month")
    assert "1 Yes, set it up" in texts[-1]
    texts = [r.text for r in say(product, "1", "SM" + "5" * 32)]  # "Yes, set it up"
    assert texts[0].startswith("All set, thank you.")
    assert product.services.redis.llen("debtbot:account:ACC-1002:plans") == 1

    texts = [r.text for r in say(product, "STOP", "SM" + "6" * 32)]
    assert texts == ["Northwind: you won't get any more texts from us. Reply START to hear from us again."]
    sent_before = len(twilio.messages)
    assert product.sms(JAMES, "hello?", "SM" + "7" * 32) == 200
    wait_for(lambda: not product.services.inbound.pending_keys(), timeout=30, what="the message handled")
    time.sleep(1)
    assert len(twilio.messages) == sent_before  # silence after the one confirmation

    assert twilio.invalid_requests == []
    creates = [r for r in twilio.requests if r.method == "POST" and r.path.endswith("/Messages.json")]
    assert len(creates) == len(twilio.messages)
    for request in creates:
        assert request.form["From"] == ["+15005550006"]
        callback = urlsplit(request.form["StatusCallback"][0])
        assert callback.path == "/webhooks/sms/status" and parse_qs(callback.query)["o"]
