"""Payment plans set up from the console: the dialogue's options and policy, today in the person's
zone, refused without the person's agreement or before verification, one plan per request (a
double click makes one), stored and announced like the bot's, and the person told the plan and its
payment link in their language through the gate."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import redis

from bot.console.desk import DeskError
from bot.console.handoff import AlreadyClaimed
from bot.console.plans import plan_created_text, policy_for
from bot.conversations.dialogue_backend import settings_from_config
from bot.outreach.payments import PlanPayments
from dialogue.actions.plans import policy_for as dialogue_policy_for
from dialogue.backend import AccountView, DialogueSettings
from dialogue.plans import Frequency, build_plan, describe_plan, plan_options
from tests.bot.console.test_desk import ANA, BEN, CID, PHONE, World, make_world
from tests.conftest import ConfigFactory

KEY = "req-0123456789abcdef"


@pytest.fixture
def world(make_config: ConfigFactory, redis_client: redis.Redis[bytes]) -> Iterator[World]:
    yield make_world(make_config(server={"public_url": "https://bot.example.com"}), redis_client)


def verified(world: World, conversation_id: str = CID) -> None:
    world.rasa.verified[conversation_id] = True


def plan_events(world: World) -> list[dict[str, object]]:
    rows = world.redis.xrange(world.services.keys.events)
    return [json.loads(fields[b"body"]) for _, fields in rows if fields[b"type"] == b"plan.created"]


def stored_plans(world: World, account_id: str = "A1") -> list[bytes]:
    return world.redis.lrange(world.services.keys.account_plans(account_id), 0, -1)


def test_the_console_uses_the_dialogues_policy(world: World) -> None:
    settings = settings_from_config(world.config)
    view = AccountView("A1", "Maria", Decimal("120.00"), "USD", "Acme", "en", country="US")
    assert policy_for(settings, "US") == dialogue_policy_for(settings, view)


def test_the_options_are_the_dialogues_for_today_in_the_persons_zone(world: World) -> None:
    # 22:00 on Monday 2 March in New York, already Tuesday in UTC.
    world.clock.set(datetime(2026, 3, 3, 3, 0, tzinfo=timezone.utc))
    options = world.desk.plan_options(CID)
    expected = plan_options(
        Decimal("120.00"), "USD", policy_for(settings_from_config(world.config), None), date(2026, 3, 2)
    )
    assert [(o.instalment, o.frequency, o.first_due, o.count) for o in options] == [
        (p.regular_amount, p.frequency.value, p.first_due, p.count) for p in expected
    ]
    assert options[0].first_due == date(2026, 3, 3)
    assert options[0].line == "$17.15 every month, 7 payments, the last on Thursday, 3 September 2026"
    assert options[0].summary == describe_plan(expected[0], "en")


def test_a_preview_reads_the_plan_back_and_outside_the_policy_says_why(world: World) -> None:
    preview = world.desk.preview_plan(CID, "40", "monthly", "2026-03-16")
    assert (preview.count, preview.first_due, preview.end_date) == (3, date(2026, 3, 16), date(2026, 5, 18))
    assert preview.summary.startswith("3 payments of $40.00 every month, from Monday, 16 March 2026")
    assert preview.schedule.splitlines()[0] == "- Monday, 16 March 2026: $40.00"
    with pytest.raises(DeskError, match="below the minimum of 10"):
        world.desk.preview_plan(CID, "5", "weekly", "2026-03-16")
    with pytest.raises(DeskError, match="first payment must be due between"):
        world.desk.preview_plan(CID, "40", "monthly", "2026-06-01")
    with pytest.raises(DeskError, match="how often"):
        world.desk.preview_plan(CID, "40", "daily", "2026-03-16")
    with pytest.raises(DeskError, match="instalment"):
        world.desk.preview_plan(CID, "forty", "monthly", "2026-03-16")
    with pytest.raises(DeskError, match="date"):
        world.desk.preview_plan(CID, "40", "monthly", "16/03/2026")


def test_no_plan_without_the_persons_agreement(world: World) -> None:
    verified(world)
    with pytest.raises(DeskError, match="agreed"):
        world.desk.create_plan(CID, ANA, "40", "monthly", "2026-03-16", confirmed=False, request_key=KEY)
    assert stored_plans(world) == [] and world.queued() == [] and plan_events(world) == []


def test_no_plan_before_the_person_is_verified(world: World) -> None:
    with pytest.raises(DeskError, match="verification question first"):
        world.desk.create_plan(CID, ANA, "40", "monthly", "2026-03-16", confirmed=True, request_key=KEY)
    assert stored_plans(world) == [] and world.queued() == [] and plan_events(world) == []


def test_a_plan_set_up_by_an_agent_is_stored_announced_and_sent_like_the_bots(world: World) -> None:
    verified(world)
    world.person_writes("ok, 40 a month from the 16th works")
    result = world.desk.create_plan(CID, ANA, "40", "monthly", "2026-03-16", confirmed=True, request_key=KEY)
    assert not result.repeated and result.verdict["outcome"] == "sent"
    # Stored as the bot stores it, with the creditor's plan.created event.
    assert stored_plans(world) == [result.plan_id.encode()]
    record = json.loads(world.redis.get(world.services.keys.plan(result.plan_id)) or b"{}")
    assert (record["frequency"], record["total"], record["conversation_id"]) == ("monthly", "120.00", CID)
    assert [i["amount"] for i in record["instalments"]] == ["40.00", "40.00", "40.00"]
    assert result.payment_link == f"https://pay.example.com/A1/{result.plan_id}"
    [event] = plan_events(world)
    assert event["data"]["plan_id"] == result.plan_id  # type: ignore[index]
    # The person is told the plan and the link, as an agent's reply (claimed by the agent).
    [message] = world.queued()
    plan = build_plan(
        Decimal("120.00"), "USD", Decimal(40), Frequency.MONTHLY, date(2026, 3, 16),
        policy_for(settings_from_config(world.config), None), date(2026, 3, 2),
    )  # fmt: skip
    assert message.text == plan_created_text(plan, result.payment_link, "en", "sms")
    assert message.text.startswith("All set, thank you. Your plan is in place: 3 payments of $40.00")
    assert result.payment_link in message.text and message.recipient == PHONE
    assert world.handoff.get(CID).agent == "ana"
    kinds = [(e.direction, e.kind) for e in world.history.read(CID)]
    assert ("out", "agent") in kinds and kinds[-1] == ("event", "plan_created")
    assert world.history.read(CID)[-1].detail["plan_id"] == result.plan_id
    [audit] = [row for row in world.console_audit() if row["kind"] == "console:plan"]
    assert (audit["by"], audit["plan_id"], audit["outcome"]) == ("ana", result.plan_id, "sent")
    assert world.rasa.kinds(CID)[-1] == "bot"


def test_a_double_click_or_a_retried_post_makes_one_plan_and_one_message(world: World) -> None:
    verified(world)
    world.person_writes("yes")
    first = world.desk.create_plan(CID, ANA, "40", "monthly", "2026-03-16", confirmed=True, request_key=KEY)
    again = world.desk.create_plan(CID, ANA, "40", "monthly", "2026-03-16", confirmed=True, request_key=KEY)
    assert again.repeated and again.plan_id == first.plan_id and again.verdict == first.verdict
    assert len(stored_plans(world)) == 1 and len(plan_events(world)) == 1 and len(world.queued()) == 1
    # A new request (a new form) is a new plan.
    other = world.desk.create_plan(
        CID, ANA, "60", "monthly", "2026-03-16", confirmed=True, request_key="req-second-plan-000"
    )
    assert other.plan_id != first.plan_id and len(stored_plans(world)) == 2
    with pytest.raises(DeskError, match="out of date"):
        world.desk.create_plan(CID, ANA, "40", "monthly", "2026-03-16", confirmed=True, request_key="x")


def test_an_attempt_that_died_half_way_is_finished_by_the_retry_not_doubled(world: World) -> None:
    verified(world)
    world.person_writes("yes")
    assert world.desk.plans is not None
    # The first attempt stored the plan and queued the message, then died before finishing.
    world.desk.plans.create_plan("A1", CID, build_plan(
        Decimal("120.00"), "USD", Decimal(40), Frequency.MONTHLY, date(2026, 3, 16),
        policy_for(settings_from_config(world.config), None), date(2026, 3, 2),
    ), kind="plan", channel="sms", message_id=f"console:{KEY}")  # fmt: skip
    result = world.desk.create_plan(CID, ANA, "40", "monthly", "2026-03-16", confirmed=True, request_key=KEY)
    assert stored_plans(world) == [result.plan_id.encode()] and len(plan_events(world)) == 1


def test_a_plan_outside_the_policy_is_refused_before_anything_is_stored(world: World) -> None:
    verified(world)
    with pytest.raises(DeskError, match="Outside the plan policy"):
        world.desk.create_plan(CID, ANA, "5", "weekly", "2026-03-16", confirmed=True, request_key=KEY)
    assert stored_plans(world) == [] and world.queued() == []


def test_the_message_is_in_the_persons_language_and_goes_through_the_gate(world: World) -> None:
    world.add_account("A2", language="es", phone="+12025550188", email="luis@example.com")
    cid = "acct-A2"
    verified(world, cid)
    world.person_writes("sí, de acuerdo", conversation_id=cid)
    result = world.desk.create_plan(cid, ANA, "40", "monthly", "2026-03-16", confirmed=True, request_key=KEY)
    [message] = world.queued(address="+12025550188")
    assert message.text.startswith("Todo listo, gracias. Su plan está en marcha: 3 pagos de")
    assert result.payment_link in message.text
    # The address opted out: the plan stands, the message is blocked and the agent sees why.
    world.services.addresses.opt_out("sms", "+12025550188", "A2")
    blocked = world.desk.create_plan(
        cid, ANA, "60", "monthly", "2026-03-16", confirmed=True, request_key="req-blocked-000000"
    )
    assert blocked.verdict["outcome"] == "blocked" and "opted out" in str(blocked.verdict["reason"])
    assert len(stored_plans(world, "A2")) == 2


def test_another_agents_claim_stops_a_plan(world: World) -> None:
    verified(world)
    world.handoff.escalate(CID, "asked_for_person")
    world.desk.claim(CID, BEN)
    with pytest.raises(AlreadyClaimed):
        world.desk.create_plan(CID, ANA, "40", "monthly", "2026-03-16", confirmed=True, request_key=KEY)


SETTINGS = DialogueSettings(
    company_name="c", company_display_name="c", company_phone="", company_website="",
    company_verify_url="", company_licence="", verification_field="date_of_birth",
    verification_attempts=3, mini_miranda={}, resources={}, min_instalment=Decimal(10),
    max_term_months=24, frequencies=("weekly", "fortnightly", "monthly"), first_payment_within_days=14,
)  # fmt: skip


def test_email_gets_every_payment_and_short_channels_the_plan_in_words() -> None:
    plan = build_plan(
        Decimal("120.00"), "USD", Decimal(40), Frequency.MONTHLY, date(2026, 3, 16),
        policy_for(SETTINGS, None), date(2026, 3, 2),
    )  # fmt: skip
    mail = plan_created_text(plan, "https://pay/x", "en", "email")
    assert "Your payments:\n- Monday, 16 March 2026: $40.00\n" in mail and "https://pay/x" in mail
    text = plan_created_text(plan, "https://pay/x", "es", "telegram")
    assert "3 pagos de" in text and "Puede hacer cada pago aquí: https://pay/x" in text


# --- the payments beside each plan -------------------------------------------------------------


def payments_of(world: World, plan_id: str) -> list[tuple[str, str, str, str]]:
    """Each payment of the plan as the view tells it: (due, amount, status, paid on)."""
    [plan] = [p for p in world.desk.view(CID).stored_plans if p.plan_id == plan_id]
    return [
        (p.due.isoformat(), p.money(), p.status, p.paid_on.isoformat() if p.paid_on else "")
        for p in plan.payments
    ]


def test_each_plan_shows_its_payments_paid_when_missed_or_due_as_outreach_marks_them(world: World) -> None:
    verified(world)
    world.person_writes("ok, 40 a month from the 16th works")
    plan_id = world.desk.create_plan(
        CID, ANA, "40", "monthly", "2026-03-16", confirmed=True, request_key=KEY
    ).plan_id
    assert payments_of(world, plan_id) == [
        ("2026-03-16", "$40.00", "due", ""),
        ("2026-04-16", "$40.00", "due", ""),
        ("2026-05-18", "$40.00", "due", ""),
    ]
    # The creditor reports the first paid (a day early); outreach reminds of the second, then,
    # its day gone by unpaid, tells the person it was missed; the third is reminded of.
    payments = PlanPayments(world.redis, world.services.keys, world.clock)
    report = payments.import_csv(f"plan_id,due_date,paid_on\n{plan_id},2026-03-16,2026-03-15\n")
    assert report.errors == [] and report.recorded == 1
    instalments = {i.due.isoformat(): i for i, _ in payments.instalments("A1")}
    payments.mark("reminder", instalments["2026-04-16"])
    world.clock.set(datetime(2026, 4, 20, 15, 0, tzinfo=timezone.utc))
    payments.mark("missed_payment", instalments["2026-04-16"])
    payments.mark("reminder", instalments["2026-05-18"])
    assert payments_of(world, plan_id) == [
        ("2026-03-16", "$40.00", "paid", "2026-03-15"),
        ("2026-04-16", "$40.00", "missed", ""),
        ("2026-05-18", "$40.00", "due", ""),
    ]
    [plan] = world.desk.view(CID).stored_plans
    assert [(p.reminded, p.told_missed) for p in plan.payments] == [
        (False, False),
        (True, True),
        (True, False),
    ]


def test_a_payment_is_missed_only_once_its_day_is_over_where_the_person_lives(world: World) -> None:
    verified(world)
    world.person_writes("ok, 40 a month from the 16th works")
    plan_id = world.desk.create_plan(
        CID, ANA, "40", "monthly", "2026-03-16", confirmed=True, request_key=KEY
    ).plan_id
    # 16 March, 23:30 in New York (03:30 on the 17th in UTC): still their payment day.
    world.clock.set(datetime(2026, 3, 17, 3, 30, tzinfo=timezone.utc))
    assert payments_of(world, plan_id)[0][2] == "due"
    world.clock.advance(timedelta(hours=1))  # 00:30 on the 17th in New York
    assert payments_of(world, plan_id)[0][2] == "missed"


def test_a_replaced_plans_payments_after_the_change_are_no_longer_due(world: World) -> None:
    verified(world)
    world.person_writes("ok, 40 a month from the 16th works")
    old = world.desk.create_plan(CID, ANA, "40", "monthly", "2026-03-16", confirmed=True, request_key=KEY)
    world.clock.set(datetime(2026, 3, 20, 15, 0, tzinfo=timezone.utc))
    new = world.desk.create_plan(
        CID, ANA, "60", "monthly", "2026-04-01", confirmed=True, request_key="req-change-0001",
        replaces=old.plan_id,
    )  # fmt: skip
    assert [status for _, _, status, _ in payments_of(world, old.plan_id)] == ["missed", "ended", "ended"]
    assert payments_of(world, new.plan_id) == [
        ("2026-04-01", "$60.00", "due", ""),
        ("2026-05-01", "$60.00", "due", ""),
    ]


def test_a_settlement_or_an_unreadable_plan_has_no_payments_to_show(world: World) -> None:
    keys = world.services.keys
    world.redis.rpush(keys.account_plans("A1"), "s1", "p2")
    world.redis.set(keys.plan("s1"), json.dumps({"plan_id": "s1", "kind": "settlement", "total": "90.00",
                                                 "currency": "USD"}))  # fmt: skip
    world.redis.set(keys.plan("p2"), json.dumps({"plan_id": "p2", "currency": "USD",
                                                 "instalments": [{"due": "someday", "amount": "x"}]}))  # fmt: skip
    assert [(p.plan_id, p.payments) for p in world.desk.view(CID).stored_plans] == [("s1", ()), ("p2", ())]
