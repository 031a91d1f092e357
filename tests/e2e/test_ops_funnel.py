"""The funnel's numbers equal those of a scripted set of conversations run through the real path:
outreach opens three conversations, each person does something different with the real Rasa
server, worker and gate, the creditor reports a payment, and the scheduler's housekeeping brings
it all into the analytics store. The ops page's CSV then says exactly what the script did.

- James: replies, passes the identity check, is offered a plan, agrees it, pays the first instalment.
- Tom: replies, then texts STOP.
- Emily: never replies.
"""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from bot.console.agents import AgentDirectory, Role
from bot.gateway.app import create_app
from bot.ops.analytics.schema import CONVERSATION_TAGS, CONVERSATIONS, PRODUCT_EVENTS, RASA_EVENTS
from bot.ops.web import ops_blueprint
from bot.outreach.payments import PlanPayments
from tests.bot.console.conftest import sign_in
from tests.conftest import wait_for
from tests.e2e.conftest import Product, open_by_outreach

pytestmark = pytest.mark.e2e

PEOPLE = {"ACC-1002": "+12025550143", "ACC-1007": "+16175550150", "ACC-1005": "+14155550132"}
PASSWORD = "a long ops passphrase"


def _say(product: Product, phone: str, text: str, sid: str) -> str:
    before = len(product.replies(phone))
    assert product.sms(phone, text, sid) == 200
    wait_for(lambda: len(product.replies(phone)) > before, timeout=90, what=f"a reply to {text!r}")
    time.sleep(0.7)  # a reply can be several messages: let them all land
    return " ".join(sent.text for sent in product.replies(phone)[before:])


def _forget_earlier_runs(product: Product) -> None:
    """Other tests of the session talked to the same accounts (the analytics store outlives each
    test's Redis): start from no row about these three conversations."""
    ids = [f"acct-{account}" for account in PEOPLE]
    with product.services.analytics.transaction() as connection:
        connection.execute(sa.delete(RASA_EVENTS).where(RASA_EVENTS.c.sender_id.in_(ids)))
        connection.execute(
            sa.delete(PRODUCT_EVENTS).where(
                sa.or_(
                    PRODUCT_EVENTS.c.conversation_id.in_(ids), PRODUCT_EVENTS.c.account_id.in_(list(PEOPLE))
                )
            )
        )
        connection.execute(sa.delete(CONVERSATION_TAGS).where(CONVERSATION_TAGS.c.conversation_id.in_(ids)))
        connection.execute(sa.delete(CONVERSATIONS).where(CONVERSATIONS.c.conversation_id.in_(ids)))


def test_the_funnel_counts_exactly_what_a_scripted_set_of_conversations_did(product: Product) -> None:
    services = product.services
    _forget_earlier_runs(product)
    for account, phone in PEOPLE.items():
        open_by_outreach(product, account, lambda phone=phone: product.replies(phone))  # type: ignore[misc]

    james, tom = PEOPLE["ACC-1002"], PEOPLE["ACC-1007"]
    assert "date of birth" in _say(product, james, "good thanks", "SMfun1")
    assert "confirmed" in _say(product, james, "2 November 1979", "SMfun2")
    assert "Shall I set that up" in _say(product, james, "I can do 50 a month", "SMfun3")
    assert "All set" in _say(product, james, "yes", "SMfun4")
    _say(product, tom, "hi, who is this?", "SMfun5")
    _say(product, tom, "STOP", "SMfun6")

    [plan_id] = [p.decode() for p in services.redis.lrange(services.keys.account_plans("ACC-1002"), 0, -1)]
    plan = json.loads(services.redis.get(services.keys.plan(plan_id)) or b"{}")
    first = plan["instalments"][0]["due"][:10]
    report = PlanPayments(services.redis, services.keys, services.clock).import_csv(
        f"plan_id,due_date,paid_on\n{plan_id},{first},{first}\n"
    )
    assert report.recorded == 1
    time.sleep(1.0)  # Rasa's event broker has written the last turn
    services.ops_housekeeping(product.clock.now())  # the scheduler's tick: ingest, then summarise

    AgentDirectory(services.redis, services.keys, product.clock).add("olga", Role.OPS, PASSWORD)
    app = create_app(services.config, services, blueprints=[ops_blueprint(services)])
    client = app.test_client()
    assert sign_in(client, "olga", PASSWORD).status_code == 302
    today = product.clock.now().astimezone(ZoneInfo(services.config.console.zone)).date()
    days = f"since={today - timedelta(days=3)}&until={today + timedelta(days=3)}"
    answer = client.get(f"/console/ops/funnel.csv?{days}&by=creditor&table=stages")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    rows = {
        row["creditor"]: row
        for row in csv.DictReader(io.StringIO(answer.get_data(as_text=True)))
        if row["started_by"] == "opener"
    }
    stages = ("contacted", "replied", "verified", "plan_offered", "plan_created", "first_payment",
              "opted_out", "escalated")  # fmt: skip
    # Each account has a creditor of its own: one row each, exactly what its person did.
    assert [rows["Capitol Mobile"][name] for name in stages] == ["1", "1", "1", "1", "1", "1", "0", "0"]
    assert [rows["Harbor Student Loans"][name] for name in stages] == ["1", "1", "0", "0", "0", "0", "1", "0"]
    assert [rows["Bay Area Credit Union"][name] for name in stages] == [
        "1",
        "0",
        "0",
        "0",
        "0",
        "0",
        "0",
        "0",
    ]
    assert rows["Capitol Mobile"]["plans_kept"] == "1"
