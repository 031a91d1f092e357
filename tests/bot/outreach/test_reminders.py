"""Plan reminders before each instalment, one kind message after a missed one, and the
creditor's payments import; all through the compliance gate, in the plan's language."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis
from click.testing import CliRunner

from bot.cli import main
from bot.clock import Clock
from bot.compliance.rules import Decision, Outgoing
from bot.conversations.outbound import OutboundHandler
from bot.outreach.openers import send_reminder
from bot.outreach.payments import PlanPayments
from bot.outreach.planner import OutreachHandler
from bot.runtime.services import Services, build_services
from bot.store.accounts import Account
from bot.store.queues import Entry
from channels.base import OutboundMessage
from tests.conftest import TEST_SECRETS, ConfigFactory, write_config

NY = ZoneInfo("America/New_York")
DUES = ["2026-12-01", "2027-01-01", "2027-02-01"]


@pytest.fixture
def services(make_config: ConfigFactory, redis_client: redis.Redis) -> Services:
    return with_plan(
        build_services(make_config(), redis_client, Clock(datetime(2026, 11, 28, 10, 0, tzinfo=NY)))
    )


def with_plan(services: Services, **plan_fields: object) -> Services:
    """Lucía (Spanish, New York, a phone and an email) with plan p1 (agreed long ago unless
    ``plan_fields`` say otherwise)."""
    services.accounts.upsert(
        Account(
            account_id="A1",
            first_name="Lucía",
            balance=Decimal("150"),
            currency="USD",
            creditor="Acme",
            language="es",
            phone="+12025550111",
            email="lucia@example.com",
            timezone="America/New_York",
        )
    )
    plan = {"currency": "USD", "payment_link": "https://pay.example.com/A1/p1",
            "instalments": [{"due": d, "amount": "50.00", "down_payment": False} for d in DUES],
            **plan_fields}  # fmt: skip
    services.redis.set(services.keys.plan("p1"), json.dumps(plan))
    services.redis.rpush(services.keys.account_plans("A1"), "p1")
    return services


class Reminded:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        self.channels: list[str] = []

    def __call__(self, account: Account, channel: str, address: str, kind: str, decision: Decision) -> None:
        self.sent.append((kind, decision.text))
        self.channels.append(channel)


def at(services: Services, local: datetime, reminded: Reminded) -> OutreachHandler:
    """The product's outreach handler, with the product's clock set to ``local``."""
    services.clock.set(local)
    return services.outreach_handler(send=lambda *args: None, remind=reminded)


def visit(handler: OutreachHandler) -> None:
    handler(Entry(key="s", entry_id="1-0", payload=json.dumps({"kind": "opener", "account_ids": ["A1"]})))


def test_a_reminder_goes_days_before_the_instalment_once_in_the_plans_language(services: Services) -> None:
    reminded = Reminded()
    visit(at(services, datetime(2026, 11, 27, 10, 0, tzinfo=NY), reminded))  # 4 days before: too early
    assert reminded.sent == []
    handler = at(services, datetime(2026, 11, 28, 10, 0, tzinfo=NY), reminded)  # 3 days before
    visit(handler)
    visit(handler)
    [(kind, text)] = reminded.sent
    assert kind == "reminder"
    assert (
        "Lucía" in text
        and "$50.00" in text
        and "diciembre" in text
        and "https://pay.example.com/A1/p1" in text
    )
    # Sent outside any conversation to a verified person: it carries the collector statement.
    assert text.startswith("Esta es una comunicación de un cobrador de deudas")
    assert text.endswith("Responda ALTO para no recibir más mensajes.")


def test_a_missed_instalment_gets_one_kind_message_offering_a_new_plan(services: Services) -> None:
    reminded = Reminded()
    handler = at(services, datetime(2026, 12, 3, 10, 0, tzinfo=NY), reminded)
    visit(handler)
    visit(handler)
    [(kind, text)] = reminded.sent
    assert kind == "missed_payment"
    assert "no ha llegado" in text and "preparamos uno nuevo" in text
    assert "deuda" not in text.split("\n\n", 1)[1]  # no threat, no pressure beyond the statement


def test_a_paid_instalment_is_not_missed(services: Services) -> None:
    report = PlanPayments(services.redis, services.keys).import_csv(
        "plan_id,due_date,paid_on\np1,2026-12-01,2026-11-30\n"
    )
    assert report.recorded == 1 and report.errors == []
    reminded = Reminded()
    visit(at(services, datetime(2026, 12, 3, 10, 0, tzinfo=NY), reminded))
    assert reminded.sent == []


def test_at_night_a_reminder_waits_for_the_morning(services: Services) -> None:
    reminded = Reminded()
    visit(at(services, datetime(2026, 11, 28, 22, 0, tzinfo=NY), reminded))
    assert reminded.sent == []
    assert services.redis.zcard(services.keys.outreach_deferred) == 1


def test_the_queued_reminder_passes_the_gate_again_and_is_sent(services: Services) -> None:
    services.clock.set(datetime(2026, 11, 28, 10, 0, tzinfo=NY))  # inside contact hours
    decision = services.gate.decide(
        services.accounts.get("A1"), "sms", "+12025550111",
        Outgoing(channel="sms", text="Recordatorio.", language="es", proactive=True, verified=True,
                 kind="reminder"),
    )  # fmt: skip
    account = services.accounts.get("A1")
    assert account is not None
    send_reminder(services, account, "sms", "+12025550111", "reminder", decision)
    [key] = services.outbound.pending_keys()
    [entry] = services.outbound.unhandled(key)
    message = OutboundMessage.from_json(entry.payload)
    assert message.proactive and message.kind == "reminder" and message.language == "es"
    OutboundHandler(channels=services.channels, addresses=services.addresses, deliveries=services.deliveries,
                    gate=services.gate, accounts=services.accounts)(entry)  # fmt: skip
    record = services.deliveries.get(message.outbox_id)
    assert record is not None and not record.error_code
    [sent] = services.outbox.read()
    assert sent.text.count("Esta es una comunicación de un cobrador de deudas") == 1


def test_the_payments_import_names_each_bad_line(tmp_path: Path, redis_url: str, services: Services) -> None:
    path = write_config(tmp_path, {})
    csv_file = tmp_path / "payments.csv"
    csv_file.write_text(
        "plan_id,due_date,paid_on\np1,2026-12-01,2026-12-01\nnope,2026-12-01,2026-12-01\n"
        "p1,2026-12-02,2026-12-02\np1,tomorrow,2026-12-02\n"
    )
    # The CLI uses its own connection to the same Redis (the fixture's database).
    result = CliRunner().invoke(main, ["payments", "import", str(csv_file), "--config", str(path)],
                                env={"REDIS_URL": redis_url, **TEST_SECRETS})  # fmt: skip
    assert result.exit_code == 1
    assert "1 payment(s) recorded, 3 row(s) skipped" in result.output
    assert "line 3: no plan 'nope'" in result.output
    assert "line 4: plan p1 has no instalment due 2026-12-02" in result.output
    assert "line 5: due_date and paid_on must be dates" in result.output


def test_a_csv_without_the_columns_is_refused_naming_them(services: Services) -> None:
    from bot.errors import InvalidRequest

    with pytest.raises(InvalidRequest, match="line 1: missing column"):
        PlanPayments(services.redis, services.keys).import_csv("plan,paid\n")


def test_the_language_chosen_in_the_conversation_wins(services: Services) -> None:
    services.redis.hset(services.keys.account_state("A1"), "pref:language", "en")
    reminded = Reminded()
    visit(at(services, datetime(2026, 11, 28, 10, 0, tzinfo=NY), reminded))
    [(_, text)] = reminded.sent
    assert "a friendly reminder" in text and text.startswith("This is a communication from a debt collector")


def test_a_long_spanish_reminder_leaves_as_one_text_with_the_statement_once(services: Services) -> None:
    from bot.compliance.rules import Outgoing

    account = services.accounts.get("A1")
    assert account is not None
    text = "Hola, Lucía: le recordamos que su pago de $50.00 vence el martes. " * 3  # UCS-2: > 4 segments
    decision = services.gate.decide(
        account, "sms", "+12025550111",
        Outgoing(channel="sms", text=text, language="es", proactive=True, verified=True, kind="reminder"),
    )  # fmt: skip
    assert decision.text  # sent at once or deferred: either way the text as it must leave
    send_reminder(services, account, "sms", "+12025550111", "reminder", decision)
    [key] = services.outbound.pending_keys()
    [entry] = services.outbound.unhandled(key)  # one text, not split
    message = OutboundMessage.from_json(entry.payload)
    assert message.text.count("Esta es una comunicación de un cobrador de deudas") == 1
    assert message.text.count("Responda ALTO") == 1


# --- when and where reminders go (issue 13) ----------------------------------------------------


def agreed(services: Services, local: datetime, channel: str = "sms") -> Services:
    """Plan p1 as agreed at ``local`` on ``channel`` (replacing the fixture's)."""
    services.redis.delete(services.keys.account_plans("A1"))
    return with_plan(services, created_at=local.astimezone(timezone.utc).isoformat(), channel=channel)


def link_telegram(services: Services, chat: str = "5550111") -> None:
    token = services.links.issue("A1")
    assert services.links.redeem(token, chat) == "A1"


def test_no_reminder_within_a_day_of_the_plan_being_agreed_then_one_in_contact_hours(
    services: Services,
) -> None:
    agreed(services, datetime(2026, 11, 28, 9, 57, tzinfo=NY))
    reminded = Reminded()
    visit(at(services, datetime(2026, 11, 28, 10, 0, tzinfo=NY), reminded))  # three minutes later
    assert reminded.sent == []
    # Kept for the end of the quiet period, not dropped.
    [(_, score)] = services.redis.zrange(services.keys.outreach_deferred, 0, -1, withscores=True)
    assert datetime.fromtimestamp(score, timezone.utc) == datetime(2026, 11, 29, 9, 57, tzinfo=NY)
    visit(at(services, datetime(2026, 11, 29, 9, 56, tzinfo=NY), reminded))
    assert reminded.sent == []
    visit(at(services, datetime(2026, 11, 29, 9, 57, tzinfo=NY), reminded))
    assert [kind for kind, _ in reminded.sent] == ["reminder"]


def test_after_the_quiet_period_a_reminder_at_night_still_waits_for_contact_hours(services: Services) -> None:
    agreed(services, datetime(2026, 11, 27, 4, 23, tzinfo=NY))
    reminded = Reminded()
    visit(at(services, datetime(2026, 11, 28, 4, 26, tzinfo=NY), reminded))
    assert reminded.sent == []
    [(_, score)] = services.redis.zrange(services.keys.outreach_deferred, 0, -1, withscores=True)
    assert datetime.fromtimestamp(score, timezone.utc) == datetime(2026, 11, 28, 8, 0, tzinfo=NY)


def test_the_quiet_period_after_a_plan_is_configurable(
    make_config: ConfigFactory, redis_client: redis.Redis
) -> None:
    config = make_config(outreach={"first_reminder_after_hours": 2})
    assert make_config().outreach.first_reminder_after_hours == 24  # the default
    services = build_services(config, redis_client, Clock(datetime(2026, 11, 28, 10, 0, tzinfo=NY)))
    agreed(services, datetime(2026, 11, 28, 9, 0, tzinfo=NY))
    reminded = Reminded()
    visit(at(services, datetime(2026, 11, 28, 10, 59, tzinfo=NY), reminded))
    assert reminded.sent == []
    visit(at(services, datetime(2026, 11, 28, 11, 0, tzinfo=NY), reminded))
    assert [kind for kind, _ in reminded.sent] == ["reminder"]


@pytest.mark.parametrize("value", [-1, 24 * 15, "a day"])
def test_a_bad_quiet_period_stops_start_up_naming_the_key(make_config: ConfigFactory, value: object) -> None:
    from bot.errors import ConfigError

    with pytest.raises(ConfigError, match=r"outreach\.first_reminder_after_hours"):
        make_config(outreach={"first_reminder_after_hours": value})


def test_a_reminder_right_after_the_person_wrote_still_keeps_contact_hours(services: Services) -> None:
    # The plan was agreed long ago; the person wrote three minutes ago, at 04:23 their time.
    services.gate.record_inbound("A1", at=datetime(2026, 11, 28, 4, 23, tzinfo=NY).timestamp())
    reminded = Reminded()
    visit(at(services, datetime(2026, 11, 28, 4, 26, tzinfo=NY), reminded))
    assert reminded.sent == []
    [(_, fields)] = services.redis.xrange(services.keys.audit)
    assert fields[b"verdict"] == b"defer" and fields[b"rule"] == b"quiet_hours"


def test_a_reminder_goes_on_the_channel_the_plan_was_agreed_on(services: Services) -> None:
    agreed(services, datetime(2026, 11, 20, 15, 0, tzinfo=NY), channel="telegram")
    link_telegram(services)
    reminded = Reminded()
    visit(at(services, datetime(2026, 11, 28, 10, 0, tzinfo=NY), reminded))
    assert reminded.channels == ["telegram"]
    [(kind, text)] = reminded.sent
    assert kind == "reminder" and not text.endswith("Responda ALTO para no recibir más mensajes.")


@pytest.mark.parametrize(
    ("plan_channel", "preferred", "telegram_linked", "sms_opted_out", "expected"),
    [
        ("telegram", b"email", False, False, "email"),  # no chat to reach: the preferred channel
        ("", b"email", True, False, "email"),  # a plan from before channels were recorded
        ("email", None, True, False, "email"),
        ("sms", b"telegram", True, True, "telegram"),  # opted out of texts: the preferred one
        ("sms", None, True, True, "email"),  # then outreach.channel_order (sms, email, telegram)
        ("", None, True, False, "sms"),
    ],
)
def test_without_the_plans_channel_a_reminder_falls_back_to_the_preferred_channel_then_the_order(
    services: Services,
    plan_channel: str,
    preferred: bytes | None,
    telegram_linked: bool,
    sms_opted_out: bool,
    expected: str,
) -> None:
    agreed(services, datetime(2026, 11, 20, 15, 0, tzinfo=NY), channel=plan_channel)
    if preferred is not None:
        services.redis.hset(services.keys.account_state("A1"), "pref:channel", preferred)
    if telegram_linked:
        link_telegram(services)
    if sms_opted_out:
        services.addresses.opt_out("sms", "+12025550111")
    reminded = Reminded()
    visit(at(services, datetime(2026, 11, 28, 10, 0, tzinfo=NY), reminded))
    assert reminded.channels == [expected]


# --- a plan changed from the console (issue 16) --------------------------------------------------


def replaced_by_p2(services: Services, **p1_state: str) -> None:
    """Plan p2 (three payments of $50.00 from 15 December) beside the fixture's p1, and p1's
    ``plan:p1:state`` as given (what ``Desk.create_plan(replaces=)`` writes)."""
    plan = {"currency": "USD", "payment_link": "https://pay.example.com/A1/p2",
            "instalments": [{"due": d, "amount": "50.00", "down_payment": False}
                            for d in ("2026-12-15", "2027-01-15", "2027-02-15")]}  # fmt: skip
    services.redis.set(services.keys.plan("p2"), json.dumps(plan))
    services.redis.rpush(services.keys.account_plans("A1"), "p2")
    if p1_state:
        services.redis.hset(f"{services.keys.plan('p1')}:state", mapping=p1_state)


def test_a_replaced_plan_gets_no_reminder_nor_missed_payment_message(services: Services) -> None:
    replaced_by_p2(services, replaced_by="p2", replaced_at="2026-11-20T15:00:00+00:00")
    payments = PlanPayments(services.redis, services.keys)
    assert {i.plan_id for i, _ in payments.instalments("A1")} == {"p2"}
    reminded = Reminded()
    # 28 Nov: p1's 1 December would be reminded; 3 Dec: it would be missed. Neither for a replaced plan.
    visit(at(services, datetime(2026, 11, 28, 10, 0, tzinfo=NY), reminded))
    visit(at(services, datetime(2026, 12, 3, 10, 0, tzinfo=NY), reminded))
    assert reminded.sent == []
    visit(at(services, datetime(2026, 12, 12, 10, 0, tzinfo=NY), reminded))  # p2's first payment
    [(kind, text)] = reminded.sent
    assert kind == "reminder" and "https://pay.example.com/A1/p2" in text and "15 de diciembre" in text


def test_a_change_cut_short_reminds_the_old_plan_until_the_new_one_is_stored_then_only_the_new(
    services: Services,
) -> None:
    payments = PlanPayments(services.redis, services.keys)
    day = datetime(2026, 11, 28, 10, 0, tzinfo=NY).date()
    # The change started (p1's state says so) when the account had one plan; none stored yet.
    services.redis.hset(
        f"{services.keys.plan('p1')}:state", mapping={"replacing": "req-x", "replacing_after": "1"}
    )
    due = payments.due_message("A1", day, 3)
    assert due is not None and due[1].plan_id == "p1"
    # The new plan stored, p1 not marked yet: only the new plan's instalments count.
    replaced_by_p2(services)
    assert {i.plan_id for i, _ in payments.instalments("A1")} == {"p2"}
    assert payments.due_message("A1", day, 3) is None
    due = payments.due_message("A1", datetime(2026, 12, 12, tzinfo=NY).date(), 3)
    assert due is not None and due[1].plan_id == "p2"
