"""Payment reminders on the real stack: a plan agreed on Telegram at night gets no reminder right
after (neither at once nor by SMS); later, past the quiet period and inside contact hours, its
reminder goes by Telegram, where the plan was agreed."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.clock import moment_from_setting
from bot.outreach.payments import PlanPayments
from bot.outreach.scheduler import tick
from tests.conftest import wait_for
from tests.e2e.conftest import Product
from tests.e2e.test_telegram_conversation import CHAT, Chat

pytestmark = [pytest.mark.e2e, pytest.mark.clock]

NEW_YORK = ZoneInfo("America/New_York")
JAMES = "+12025550143"  # ACC-1002, New York; no preferred channel, so SMS comes first in channel_order


def test_a_plan_agreed_on_telegram_at_night_is_reminded_later_by_telegram_in_contact_hours(
    telegram_product: Product,
) -> None:
    product = telegram_product
    services = product.services
    # 03:00 in New York on the session's date, whatever the clock setting of the run.
    product.clock.set(moment_from_setting("03:00 America/New_York", product.clock.now()))
    chat = Chat(product)
    chat.say(f"/start {services.links.issue('ACC-1002')}")
    chat.say("good thanks")
    menu = chat.say("2 November 1979")[-1]
    plans = chat.press(menu.data[1])[-1]  # "A payment plan"
    confirm = chat.press(plans.data[0])[-1]  # the first plan that fits
    assert any(r.text.startswith("All set") for r in chat.press(confirm.data[0]))  # yes
    told = len(product.telegram_replies(str(CHAT)))
    [plan_id] = [p.decode() for p in services.redis.lrange(services.keys.account_plans("ACC-1002"), 0, -1)]
    plan = json.loads(services.redis.get(services.keys.plan(plan_id)) or b"{}")
    assert plan["channel"] == "telegram"

    # An outreach run right after, at night: nothing goes, on any channel.
    services.outreach_handler().contact_many(["ACC-1002"])
    wait_for(lambda: not services.outbound.pending_keys(), timeout=30, what="the outbound queues empty")
    assert len(product.telegram_replies(str(CHAT))) == told
    assert product.replies(JAMES) == []
    audit = [fields for _, fields in services.redis.xrange(services.keys.audit)]
    assert not [
        f for f in audit if f.get(b"kind") in (b"reminder", b"missed_payment") and f[b"verdict"] == b"send"
    ]

    # The creditor reports the first payment; two days before the second one, at 10:00 in New
    # York (long past the quiet period after the plan), a run sends its reminder.
    first, second = (datetime.fromisoformat(i["due"]).date() for i in plan["instalments"][:2])
    assert (
        PlanPayments(services.redis, services.keys)
        .import_csv(f"plan_id,due_date,paid_on\n{plan_id},{first},{first}\n")
        .recorded
        == 1
    )
    moment = datetime.combine(second - timedelta(days=2), time(10, 0), tzinfo=NEW_YORK)
    assert moment >= datetime.fromisoformat(plan["created_at"]) + timedelta(
        hours=services.config.outreach.first_reminder_after_hours
    )
    product.clock.set(moment)
    tick(services)  # whatever the night run kept for later
    services.outreach_handler().contact_many(["ACC-1002"])
    wait_for(
        lambda: [r for r in product.telegram_replies(str(CHAT)) if "a friendly reminder" in r.text],
        timeout=60, what="the reminder by Telegram",
    )  # fmt: skip
    wait_for(lambda: not services.outbound.pending_keys() and not services.outreach_queue.pending_keys(),
             timeout=60, what="every queue drained")  # fmt: skip
    [reminder] = [r for r in product.telegram_replies(str(CHAT)) if "a friendly reminder" in r.text]
    assert reminder.text.startswith("This is a communication from a debt collector.")
    assert "Hi James" in reminder.text and plan["payment_link"] in reminder.text
    assert product.replies(JAMES) == []  # never by SMS
    if product.telegram_api is not None:
        assert product.telegram_api.invalid_calls == []
