"""What a person in the team holds back: a person flagged vulnerable gets no opener and no
missed-payment chaser (their own plan's reminders still go), and while an agent holds the
conversation the bot starts nothing, on every path: outreach's decision and, for what was
queued before the claim, the outbound step right before sending."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
import redis

from bot.clock import Clock
from bot.compliance.rules import Outgoing
from bot.console.handoff import HandoffStore
from bot.conversations.outbound import OutboundHandler
from bot.outreach.openers import send_reminder
from bot.runtime.services import Services, build_services
from bot.store.queues import Entry
from channels.base import OutboundMessage
from tests.bot.outreach.test_planner import NY, Sent, account, decide, handler_at
from tests.bot.outreach.test_reminders import Reminded, at, visit, with_plan
from tests.conftest import ConfigFactory

#: Plan p1's instalments are due on 1 December and 1 January: on 29 December the December one is
#: missed and the January one is three days away.
DECEMBER_29 = datetime(2026, 12, 29, 10, 0, tzinfo=NY)
PHONE = "+12025550111"  # Lucía's, in test_reminders


@pytest.fixture
def services(make_config: ConfigFactory, redis_client: redis.Redis[bytes]) -> Services:
    return build_services(make_config(), redis_client, Clock(datetime(2026, 11, 24, 10, 0, tzinfo=NY)))


def flag_vulnerable(services: Services, account_id: str) -> None:
    """What the console's ``set_flag(..., "vulnerable", True)`` writes."""
    value = json.dumps({"at": "2026-11-20T10:00:00-05:00", "detail": "bereaved", "by": "ana"})
    services.redis.hset(services.keys.account_state(account_id), "flag:vulnerable", value)


def clear_vulnerable(services: Services, account_id: str) -> None:
    services.redis.hdel(services.keys.account_state(account_id), "flag:vulnerable")


def audited(services: Services) -> list[tuple[str, str, str]]:
    return [
        (fields[b"kind"].decode(), fields[b"verdict"].decode(), fields[b"rule"].decode())
        for _, fields in services.redis.xrange(services.keys.audit)
        if b"verdict" in fields
    ]


def handoff(services: Services) -> HandoffStore:
    return HandoffStore(services.redis, services.keys, services.clock)


# --- a person flagged vulnerable --------------------------------------------------------------------


def test_a_person_flagged_vulnerable_gets_no_opener_until_the_flag_is_cleared(services: Services) -> None:
    services.accounts.upsert(account(1))
    flag_vulnerable(services, "A1")
    sent = Sent()
    handler = handler_at(services, sent, datetime(2026, 11, 24, 10, 0, tzinfo=NY))
    decide(handler, "A1")
    assert sent.openers == []
    # Not on another channel either: the flag is the person's, not the address's.
    assert audited(services) == [("opener", "block", "vulnerable")]
    assert services.redis.zcard(services.keys.outreach_deferred) == 0
    clear_vulnerable(services, "A1")
    decide(handler, "A1")  # the next run
    assert [opener[0] for opener in sent.openers] == ["A1"]


@pytest.fixture
def with_a_plan(services: Services) -> Services:
    return with_plan(services)


def test_a_missed_payment_is_not_chased_but_the_next_instalments_reminder_still_goes(
    with_a_plan: Services,
) -> None:
    services = with_a_plan
    flag_vulnerable(services, "A1")
    reminded = Reminded()
    handler = at(services, DECEMBER_29, reminded)
    visit(handler)
    visit(handler)  # the next run: the reminder went once, the chaser is still held
    [(kind, text)] = reminded.sent
    assert kind == "reminder" and "enero" in text  # the January instalment
    assert ("missed_payment", "block", "vulnerable") in audited(services)
    # The missed instalment is not marked: once a person clears the flag it is offered a new plan.
    clear_vulnerable(services, "A1")
    visit(handler)
    assert [kind for kind, _ in reminded.sent] == ["reminder", "missed_payment"]


def test_before_any_miss_a_vulnerable_persons_plan_reminder_goes(with_a_plan: Services) -> None:
    services = with_a_plan
    flag_vulnerable(services, "A1")
    reminded = Reminded()
    visit(at(services, datetime(2026, 11, 28, 10, 0, tzinfo=NY), reminded))
    assert [kind for kind, _ in reminded.sent] == ["reminder"]


# --- an agent holds the conversation ------------------------------------------------------------


def test_while_an_agent_holds_the_conversation_no_opener_goes_and_after_hand_back_it_does(
    services: Services,
) -> None:
    services.accounts.upsert(account(1))
    claims = handoff(services)
    claims.claim("acct-A1", "ana")
    sent = Sent()
    handler = handler_at(services, sent, datetime(2026, 11, 24, 10, 0, tzinfo=NY))
    decide(handler, "A1")
    assert sent.openers == []
    assert audited(services) == [("opener", "block", "with_agent")]
    claims.hand_back("acct-A1", "ana")
    decide(handler, "A1")
    assert [opener[0] for opener in sent.openers] == ["A1"]


def test_while_an_agent_holds_the_conversation_no_reminder_or_chaser_goes(with_a_plan: Services) -> None:
    services = with_a_plan
    claims = handoff(services)
    claims.claim("acct-A1", "ana")
    reminded = Reminded()
    visit(at(services, datetime(2026, 11, 28, 10, 0, tzinfo=NY), reminded))  # a reminder is due
    visit(at(services, datetime(2026, 12, 3, 10, 0, tzinfo=NY), reminded))  # a payment was missed
    assert reminded.sent == []
    assert [rule for _, _, rule in audited(services)] == ["with_agent", "with_agent"]
    claims.close("acct-A1", "ana", "other")
    visit(at(services, datetime(2026, 12, 3, 10, 0, tzinfo=NY), reminded))
    assert [kind for kind, _ in reminded.sent] == ["missed_payment"]


def queue_reminder(services: Services) -> tuple[Entry, OutboundMessage]:
    """A reminder the gate allowed and outreach queued (before anyone claimed the conversation)."""
    lucia = services.accounts.get("A1")
    assert lucia is not None
    services.clock.set(datetime(2026, 11, 28, 10, 0, tzinfo=NY))
    reminder = Outgoing(channel="sms", text="Recordatorio.", language="es", proactive=True, verified=True,
                        kind="reminder")  # fmt: skip
    decision = services.gate.decide(lucia, "sms", PHONE, reminder)
    send_reminder(services, lucia, "sms", PHONE, "reminder", decision)
    [key] = services.outbound.pending_keys()
    [entry] = services.outbound.unhandled(key)
    return entry, OutboundMessage.from_json(entry.payload)


def sender(services: Services) -> OutboundHandler:
    return OutboundHandler(channels=services.channels, addresses=services.addresses,
                           deliveries=services.deliveries, gate=services.gate, accounts=services.accounts)  # fmt: skip


def test_a_reminder_queued_before_an_agent_claimed_the_conversation_is_withheld_at_sending(
    with_a_plan: Services,
) -> None:
    services = with_a_plan
    entry, message = queue_reminder(services)
    handoff(services).claim("acct-A1", "ana")
    sender(services)(entry)
    assert services.outbox.read() == []
    record = services.deliveries.get(message.outbox_id)
    assert record is not None and record.error_code == "compliance:with_agent"
    # Withheld is not sent: it does not count towards the caps.
    assert services.redis.zcard(services.keys.contact_log("A1")) == 0


def test_an_agents_own_message_goes_while_they_hold_the_conversation(with_a_plan: Services) -> None:
    services = with_a_plan
    handoff(services).claim("acct-A1", "ana")
    services.clock.set(datetime(2026, 11, 28, 10, 0, tzinfo=NY))
    message = OutboundMessage(
        outbox_id="agent:1", channel="sms", recipient=PHONE, text="Hola Lucía, soy Ana.",
        conversation_id="acct-A1", proactive=True, created_at=services.clock.timestamp(), language="es",
        kind="agent",
    )  # fmt: skip
    sender(services)(Entry(key="k", entry_id="1-0", payload=message.to_json()))
    [sent] = services.outbox.read()
    assert sent.text.startswith("Hola Lucía, soy Ana.")
