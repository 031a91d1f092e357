"""The conversation page shows each plan's payments beside it: every instalment's due date and
amount, and whether it was paid (and when), missed, still due, or no longer due (the plan was
replaced), as outreach and the creditor's payments import mark them."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from flask.testing import FlaskClient

from bot.console.handoff import Actor
from bot.outreach.payments import PlanPayments
from tests.bot.console.conftest import AGENT, ConsoleTestParts, add_account, sign_in
from tests.bot.console.test_web import CID, escalated

ANA = Actor.of(AGENT, "agent")


def payment_rows(page: str) -> list[tuple[str, str, str, str]]:
    """(plan, due, amount, paid) for every payment row on the page."""
    found = []
    for table in re.finditer(
        r'<table class="payments" id="payments-\d+" data-plan="([^"]+)">(.*?)</table>', page, re.S
    ):
        for row in re.finditer(r'<tr class="payment [^"]*"[^>]*>(.*?)</tr>', table.group(2), re.S):
            cells = [
                " ".join(re.sub(r"<[^>]+>", " ", c).split())
                for c in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)
            ]
            found.append((table.group(1), *cells))
    return found  # type: ignore[return-value]


def test_each_plan_lists_its_payments_paid_when_missed_and_due(
    agent_client: FlaskClient, web_parts: ConsoleTestParts, web_rasa: Any, web_clock: Any
) -> None:
    add_account(web_parts)
    escalated(web_parts)
    web_rasa.verified[CID] = True
    page = agent_client.get(f"/console/c/{CID}").get_data(as_text=True)
    assert payment_rows(page) == [] and "No plan." in page
    plan = web_parts.desk.create_plan(CID, ANA, "40", "monthly", "2026-03-16", confirmed=True,
                                      request_key="req-web-payments-1").plan_id  # fmt: skip
    payments = PlanPayments(web_parts.redis, web_parts.keys, web_clock)
    payments.import_csv(f"plan_id,due_date,paid_on\n{plan},2026-03-16,2026-03-13\n")
    web_clock.set(datetime(2026, 4, 20, 15, 0, tzinfo=timezone.utc))
    [missed] = [i for i, _ in payments.instalments("A1") if i.due.isoformat() == "2026-04-16"]
    payments.mark("missed_payment", missed)
    assert sign_in(agent_client, AGENT).status_code == 302  # weeks later: signed in again
    page = agent_client.get(f"/console/c/{CID}").get_data(as_text=True)
    assert payment_rows(page) == [
        (plan, "Mon 16 Mar 2026", "$40.00", "paid on Fri 13 Mar 2026"),
        (plan, "Thu 16 Apr 2026", "$40.00", "missed (they were told)"),
        (plan, "Mon 18 May 2026", "$40.00", "due"),
        (plan, "Tue 16 Jun 2026", "$0.50", "due"),  # the balance is $120.50
    ]
    assert f"<caption>Payments of plan {plan}</caption>" in page
    assert '<time datetime="2026-04-16">' in page and 'data-status="missed"' in page


def test_a_replaced_plans_later_payments_are_shown_as_no_longer_due(
    agent_client: FlaskClient, web_parts: ConsoleTestParts, web_rasa: Any, web_clock: Any
) -> None:
    add_account(web_parts)
    escalated(web_parts)
    web_rasa.verified[CID] = True
    old = web_parts.desk.create_plan(CID, ANA, "40", "monthly", "2026-03-16", confirmed=True,
                                     request_key="req-web-payments-2").plan_id  # fmt: skip
    new = web_parts.desk.create_plan(CID, ANA, "60", "monthly", "2026-03-10", confirmed=True,
                                     request_key="req-web-payments-3", replaces=old).plan_id  # fmt: skip
    shown = payment_rows(agent_client.get(f"/console/c/{CID}").get_data(as_text=True))
    ended = "not due: the plan was replaced"
    assert [(p, amount, paid) for p, _, amount, paid in shown] == [
        (old, "$40.00", ended), (old, "$40.00", ended), (old, "$40.00", ended), (old, "$0.50", ended),
        (new, "$60.00", "due"), (new, "$60.00", "due"), (new, "$0.50", "due"),
    ]  # fmt: skip
