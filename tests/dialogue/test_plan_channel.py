"""A plan remembers the channel it was agreed on (its reminders go there): the action passes the
conversation's channel, and the backend stores it with the plan."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
import redis
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.conversations.dialogue_backend import RedisDialogueBackend
from bot.runtime.services import build_services
from bot.store.accounts import AccountStore
from dialogue import backend as backend_module
from dialogue.actions.plans import (
    ActionAcceptSettlement,
    ActionCreatePlan,
    ActionPayInFull,
    ValidatePaymentPlanForm,
)
from dialogue.backend import CreatedPlan
from dialogue.plans import Settlement
from tests.conftest import ROOT, ConfigFactory
from tests.dialogue.test_actions import ACCOUNT, SETTINGS


@dataclass
class Recording:
    """The actions' backend: remembers what ``create_plan`` was given, keywords included."""

    plans: list[dict[str, Any]] = field(default_factory=list)

    def settings(self) -> Any:
        return SETTINGS

    def account(self, account_id: str) -> Any:
        return ACCOUNT if account_id == "ACC-1" else None

    def create_plan(self, account_id: str, conversation_id: str, plan: Any, **options: Any) -> CreatedPlan:
        self.plans.append({"account_id": account_id, **options})
        return CreatedPlan(plan_id="p1", payment_link="https://pay.example/ACC-1/p1")


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch) -> Recording:
    store = Recording()
    monkeypatch.setattr(backend_module, "_backend", store)
    return store


def on_telegram(**slots: Any) -> Tracker:
    values = {"account_id": "ACC-1", "channel": "telegram", "language": "en", **slots}
    latest = {"text": "yes", "intent": {"name": "affirm"}, "entities": [],
              "metadata": {"address": "5550001", "account_id": "ACC-1", "channel": "telegram",
                           "message_id": "telegram:42"}}  # fmt: skip
    return Tracker("acct-ACC-1", values, latest, [], False, None, {}, "action_listen")


def test_a_plan_agreed_on_telegram_is_created_with_its_channel(recording: Recording) -> None:
    dispatcher = CollectingDispatcher()
    readback = asyncio.run(
        ValidatePaymentPlanForm().validate_plan_offer("100 a month", dispatcher, on_telegram(), {})
    )
    asyncio.run(
        ActionCreatePlan().run(
            CollectingDispatcher(), on_telegram(plan_offer=readback["plan_offer"], plan_confirmed=True), {}
        )
    )
    # With the message that agreed it: the backend makes one plan per message.
    assert recording.plans == [{"account_id": "ACC-1", "channel": "telegram", "message_id": "telegram:42"}]


def test_pay_in_full_and_a_settlement_also_record_the_channel(recording: Recording) -> None:
    asyncio.run(ActionPayInFull().run(CollectingDispatcher(), on_telegram(), {}))
    asyncio.run(ActionAcceptSettlement().run(CollectingDispatcher(), on_telegram(), {}))
    assert [(p["kind"], p["channel"]) for p in recording.plans] == [
        ("full", "telegram"),
        ("settlement", "telegram"),
    ]


def test_the_backend_stores_the_channel_with_the_plan(
    make_config: ConfigFactory, redis_client: redis.Redis
) -> None:
    config = make_config()
    services = build_services(config, redis_client)
    AccountStore(redis_client, services.keys).import_csv(
        (ROOT / "examples" / "accounts.csv").read_text(),
        languages=["en", "es"], default_language="en", verification_field="date_of_birth",
    )  # fmt: skip
    backend = RedisDialogueBackend(config, redis_client, services.events)
    created = backend.create_plan(
        "ACC-1001", "acct-ACC-1001", Settlement(Decimal("1062.93"), "USD", Decimal(85)), kind="settlement",
        channel="telegram",
    )  # fmt: skip
    stored = json.loads(redis_client.get(services.keys.plan(created.plan_id)) or b"{}")
    assert stored["channel"] == "telegram"
