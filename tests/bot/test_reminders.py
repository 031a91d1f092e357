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

from bot.accounts import Account
from bot.cli import main
from bot.compliance import Decision, Outgoing
from bot.opener import send_reminder
from bot.outreach import OutreachHandler
from bot.payments import PlanPayments
from bot.pipeline import OutboundHandler
from bot.queues import Entry
from bot.services import Services, build_services
from channels.base import OutboundMessage
from tests.conftest import TEST_SECRETS, ConfigFactory, write_config

NY = ZoneInfo("America/New_York")
DUES = ["2026-12-01", "2027-01-01", "2027-02-01"]


@pytest.fixture
def services(make_config: ConfigFactory, redis_client: redis.Redis) -> Services:
    services = build_services(make_config(), redis_client)
    services.accounts.upsert(
        Account(
            account_id="A1",
            first_name="Lucía",
            balance=Decimal("150"),
            currency="USD",
            creditor="Acme",
            language="es",
            phone="+12025550111",
            timezone="America/New_York",
        )
    )
    plan = {"currency": "USD", "payment_link": "https://pay.example.com/A1/p1",
            "instalments": [{"due": d, "amount": "50.00", "down_payment": False} for d in DUES]}  # fmt: skip
    redis_client.set(services.keys.plan("p1"), json.dumps(plan))
    redis_client.rpush(services.keys.account_plans("A1"), "p1")
    return services


class Reminded:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def __call__(self, account: Account, channel: str, address: str, kind: str, decision: Decision) -> None:
        self.sent.append((kind, decision.text))


def at(services: Services, local: datetime, reminded: Reminded) -> OutreachHandler:
    handler = services.outreach_handler(send=lambda *args: None, remind=reminded)
    handler.clock = lambda: local.astimezone(timezone.utc)
    return handler


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
    handler = services.outreach_handler(send=lambda *args: None)
    handler.clock = lambda: datetime.now(timezone.utc)
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
    assert record is not None  # sent, or withheld by the hour with the rule recorded
    if record.error_code:
        assert record.error_code.startswith("compliance:")
    else:
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
    from bot.compliance import Outgoing

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
