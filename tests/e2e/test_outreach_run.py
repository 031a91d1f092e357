"""An outreach run through the whole product: planned as jobs, decided by the worker, the
opener started in Rasa and sent through the gate; the person's answer is counted for the
wording they got."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bot.config import load_config
from bot.outreach.planner import choose_variant
from tests.conftest import TEST_SECRETS, wait_for
from tests.e2e.conftest import Product, RasaStack, _running

pytestmark = [pytest.mark.e2e, pytest.mark.clock]

JAMES = "+12025550143"  # ACC-1002, English, New York


@pytest.fixture
def outreach_product(
    stack_config_path: Path, redis_url: str, rasa_stack: RasaStack, redis_client: redis.Redis
) -> Iterator[Product]:
    # Contact hours around the clock here: the hour rules have their own tests (and
    # test_conversation.py's night run), and this one proves the same at both clock settings.
    env = {"REDIS_URL": redis_url, **TEST_SECRETS,
           "DEBTBOT__COMPLIANCE__CONTACT_HOURS__EARLIEST": "00:00",
           "DEBTBOT__COMPLIANCE__CONTACT_HOURS__LATEST": "23:59"}  # fmt: skip
    yield from _running(load_config(stack_config_path, env), rasa_stack, redis_client, None)


def test_an_outreach_run_opens_conversations_and_counts_the_answer(outreach_product: Product) -> None:
    product = outreach_product
    services = product.services
    report = services.outreach.plan_run()
    assert report.queued == 12  # every example account
    opener = wait_for(lambda: product.replies(JAMES), timeout=90, what="James's opener")[0]
    variant = choose_variant("ACC-1002", list(services.config.outreach.openers["en"]))
    assert opener.text.startswith(variant.text.format(first_name="James", company="Northwind"))
    assert opener.text.endswith("Reply STOP to stop texts.")
    assert "389" not in opener.text  # nothing about the debt before verification

    # Each account got one opener; a second run the same day contacts nobody again.
    wait_for(lambda: not services.outreach_queue.pending_keys() and not services.outbound.pending_keys(),
             timeout=90, what="the run finished")  # fmt: skip
    openers = services.outbox.read(limit=1000)
    sent = len(openers)
    # Every shipped wording, in both languages, asks how the person is before anything else.
    asks = ("how are you", "how are things", "how're you", "cómo está", "qué tal")
    for opener_sent in openers:
        assert any(question in opener_sent.text.lower() for question in asks), opener_sent.text
    services.outreach.plan_run()
    wait_for(lambda: not services.outreach_queue.pending_keys(), timeout=60, what="the second run decided")
    assert len(services.outbox.read(limit=1000)) == sent

    assert product.sms(JAMES, "good thanks", "SM" + "8" * 32) == 200
    wait_for(lambda: len(product.replies(JAMES)) > 1, timeout=60, what="the answer")
    row = next(r for r in services.opener_stats.table(services.config)
               if r["language"] == "en" and r["variant"] == variant.id)  # fmt: skip
    assert row["replied"] == 1 and int(str(row["sent"])) >= 1
    audit = services.redis.xrange(services.keys.audit)
    assert any(
        fields.get(b"account_id") == b"ACC-1002" and fields.get(b"kind") == b"opener" for _, fields in audit
    )
