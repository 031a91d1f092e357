"""Instalments paid (the creditor's import) and missed (outreach's kind message) reach the audit in
the same step as their mark, once each, with the plan, account, conversation and due date and never
an amount; and from there the analytics store, as ``payment`` rows."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import redis

from bot.clock import Clock
from bot.ops.analytics.ingest import Ingester
from bot.ops.analytics.store import AnalyticsStore
from bot.outreach.payments import PlanPayments
from bot.runtime.services import Services, build_services
from tests.bot.outreach.test_reminders import NY, Reminded, at, visit, with_plan
from tests.conftest import ConfigFactory

T0 = datetime(2026, 12, 5, 15, 0, tzinfo=timezone.utc)


def audit(services: Services) -> list[dict[str, str]]:
    return [
        {k.decode(): v.decode() for k, v in fields.items()}
        for _, fields in services.redis.xrange(services.keys.audit)
        if fields.get(b"kind", b"").startswith(b"instalment.")
    ]


@pytest.fixture
def services(make_config: ConfigFactory, redis_client: redis.Redis) -> Services:
    built = build_services(make_config(), redis_client, Clock(T0))
    return with_plan(built, account_id="A1", conversation_id="acct-A1", channel="sms")


def payments(services: Services) -> PlanPayments:
    return PlanPayments(services.redis, services.keys, services.clock)


def test_an_imported_payment_is_audited_once_with_the_plan_and_no_amount(services: Services) -> None:
    report = payments(services).import_csv("plan_id,due_date,paid_on\np1,2026-12-01,2026-12-02\n")
    assert report.recorded == 1 and report.errors == []
    [entry] = audit(services)
    assert entry == {
        "kind": "instalment.paid", "plan_id": "p1", "account_id": "A1", "conversation_id": "acct-A1",
        "due": "2026-12-01", "paid_on": "2026-12-02", "at": repr(T0.timestamp()),
    }  # fmt: skip
    assert "50" not in json.dumps(entry)
    # The same file again (or a corrected date): the mark is updated, the audit holds one entry.
    payments(services).import_csv("plan_id,due_date,paid_on\np1,2026-12-01,2026-12-03\n")
    assert len(audit(services)) == 1
    state = services.redis.hget(f"{services.keys.plan('p1')}:state", "paid:2026-12-01")
    assert state == b"2026-12-03"


def test_a_bad_import_line_writes_no_audit_entry(services: Services) -> None:
    report = payments(services).import_csv("plan_id,due_date,paid_on\np9,2026-12-01,2026-12-02\n")
    assert report.recorded == 0 and audit(services) == []


def test_a_missed_instalment_is_audited_once_when_its_kind_message_goes(services: Services) -> None:
    reminded = Reminded()
    handler = at(services, datetime(2026, 12, 3, 10, 0, tzinfo=NY), reminded)  # 1 Dec was not paid
    visit(handler)
    visit(handler)
    assert [kind for kind, _ in reminded.sent] == ["missed_payment"]
    [entry] = audit(services)
    assert (entry["kind"], entry["plan_id"], entry["account_id"], entry["conversation_id"], entry["due"]) == (
        "instalment.missed", "p1", "A1", "acct-A1", "2026-12-01",
    )  # fmt: skip


def test_a_reminder_is_not_a_payment_event(services: Services) -> None:
    reminded = Reminded()
    visit(at(services, datetime(2026, 11, 28, 10, 0, tzinfo=NY), reminded))
    assert [kind for kind, _ in reminded.sent] == ["reminder"]
    assert audit(services) == []


def test_a_plan_stored_without_its_account_names_the_account_it_belongs_to(
    make_config: ConfigFactory, redis_client: redis.Redis
) -> None:
    services = with_plan(build_services(make_config(), redis_client, Clock(T0)))  # no account_id in it
    [(instalment, _), *_] = payments(services).instalments("A1")
    assert (instalment.account_id, instalment.conversation_id) == ("A1", "")
    assert payments(services).mark("missed_payment", instalment)
    assert not payments(services).mark("missed_payment", instalment)
    [entry] = audit(services)
    assert entry["account_id"] == "A1" and "conversation_id" not in entry


def test_paid_and_missed_instalments_become_payment_rows_in_the_analytics(
    services: Services, tmp_path: Path
) -> None:
    store = AnalyticsStore(f"sqlite:///{tmp_path / 'analytics.db'}", clock=Clock(T0))
    store.migrate()
    try:
        payments(services).import_csv("plan_id,due_date,paid_on\np1,2026-12-01,2026-12-02\n")
        services.clock.advance(timedelta(days=40))
        [(late, _)] = [
            (i, s) for i, s in payments(services).instalments("A1") if i.due.isoformat() == "2027-01-01"
        ]
        payments(services).mark("missed_payment", late)
        Ingester(services.redis, services.keys, store).run_once()
        rows = store.events("payment")
        assert [
            (r.detail["type"], r.detail["due"], r.conversation_id, r.account_id, r.required) for r in rows
        ] == [
            ("instalment.paid", "2026-12-01", "acct-A1", "A1", True),
            ("instalment.missed", "2027-01-01", "acct-A1", "A1", True),
        ]
        assert rows[0].detail["paid_on"] == "2026-12-02" and rows[1].at == T0 + timedelta(days=40)
        assert rows[0].creditor == "Acme" and rows[0].language == "es"
    finally:
        store.close()
