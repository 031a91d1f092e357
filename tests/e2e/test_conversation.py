"""A whole conversation on the real stack (Rasa server, action server, worker, Redis), by SMS:
the outreach opener, how are you, the identity check, the disclosure, an offer, the read-back,
yes, and a created plan with its payment link and plan.created event.

On the set clock (``DEBTBOT_TEST_CLOCK``; ``make test`` runs it at 15:00 and at 03:00 New York
time): in the afternoon the opener goes at once; at night the gate defers it to 08:00 and the
scheduler releases it then, and James answers the next night (replies go at any hour)."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest

from bot.outreach.planner import choose_variant
from tests.conftest import wait_for
from tests.e2e.conftest import Product, Sent, in_contact_hours, open_by_outreach

pytestmark = [pytest.mark.e2e, pytest.mark.clock]

JAMES = "+12025550143"  # ACC-1002: born 1979-11-02, owes $389.99 to Capitol Mobile
DEBT_WORDS = ("debt", "owe", "balance", "389", "Capitol", "collect")


def say(product: Product, text: str, sid: str, already: int) -> list[Sent]:
    """James writes; return the bot's new replies once they stop coming."""
    assert product.sms(JAMES, text, sid) == 200
    wait_for(lambda: len(product.replies(JAMES)) > already, timeout=60, what=f"a reply to {text!r}")
    count = -1
    while count != len(product.replies(JAMES)):  # a reply can be several messages: let them all land
        count = len(product.replies(JAMES))
        time.sleep(0.7)
    return product.replies(JAMES)[already:]


def test_from_the_opener_to_a_created_plan_by_sms(product: Product) -> None:
    night = not in_contact_hours(product, "America/New_York")
    opener = open_by_outreach(product, "ACC-1002", lambda: product.replies(JAMES))
    assert isinstance(opener, Sent) and len(product.replies(JAMES)) == 1
    variant = choose_variant("ACC-1002", list(product.config.outreach.openers["en"]))
    assert opener.text.startswith(variant.text.format(first_name="James", company="Northwind"))
    assert "how are" in opener.text.lower() and opener.text.endswith("Reply STOP to stop texts.")
    assert not any(word.lower() in opener.text.lower() for word in DEBT_WORDS)
    if night:
        # James answers the next night: a reply goes at any hour.
        product.clock.advance(timedelta(hours=19))
        assert not in_contact_hours(product, "America/New_York")

    replies = say(product, "good thanks", "SM" + "1" * 32, 1)
    texts = [r.text for r in replies]
    assert texts[0] == "Glad to hear it."
    assert "date of birth" in texts[-1]
    assert not any(word.lower() in " ".join(texts).lower() for word in DEBT_WORDS)

    replies = say(product, "2 November 1979", "SM" + "2" * 32, 1 + len(replies))
    texts = [r.text for r in replies]
    assert texts[0] == "Thank you, that's confirmed."
    assert texts[1].startswith("This is a communication from a debt collector.")
    assert texts[2] == "Your account with Capitol Mobile has $389.99 outstanding."
    assert "1 Pay in full" in texts[3] and "2 A payment plan" in texts[3]

    before = len(product.replies(JAMES))
    replies = say(product, "I can do 50 a month", "SM" + "3" * 32, before)
    texts = [r.text for r in replies]
    assert texts[0].startswith("Here's the plan: 7 payments of $50.00 every month")
    assert "$389.99 in total" in texts[0]
    assert texts[-1].startswith("Shall I set that up for you?")
    assert product.services.redis.llen("debtbot:account:ACC-1002:plans") == 0  # nothing before a yes

    before = len(product.replies(JAMES))
    replies = say(product, "yes", "SM" + "4" * 32, before)
    assert replies[0].text.startswith("All set, thank you.")
    [plan_id] = [p.decode() for p in product.services.redis.lrange("debtbot:account:ACC-1002:plans", 0, -1)]
    assert f"https://pay.example.com/ACC-1002/{plan_id}" in replies[0].text
    plan = json.loads(product.services.redis.get(f"debtbot:plan:{plan_id}"))  # type: ignore[arg-type]
    assert plan["total"] == "389.99" and plan["frequency"] == "monthly" and len(plan["instalments"]) == 8
    [(_, event)] = product.services.redis.xrange("debtbot:events")
    assert event[b"type"] == b"plan.created"

    # Rasa's event broker put the conversation on its stream; the scheduler's housekeeping copies
    # it into the analytics store's `events` table.
    from sqlalchemy import func, select

    from bot.ops.analytics.schema import RASA_EVENTS

    assert product.services.redis.xlen("debtbot:rasa_events") > 10
    product.services.ops_housekeeping(product.clock.now())

    with product.services.analytics.transaction() as connection:
        count = connection.execute(
            select(func.count()).select_from(RASA_EVENTS).where(RASA_EVENTS.c.sender_id == "acct-ACC-1002")
        ).scalar_one()
    assert count > 10  # every user message, action and slot of it
