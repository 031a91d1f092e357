"""The compliance gate with the product's facts in Redis: the contact window as the dialogue
stores it, a person's vulnerability flag and an agent's claim on the conversation."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal

import pytest
import redis

from bot.clock import Clock
from bot.compliance.gate import HELD_BY_AGENT
from bot.compliance.rules import Decision, Outgoing, Verdict
from bot.console.handoff import HandoffStore, State
from bot.runtime.services import Services, build_services
from bot.store.accounts import Account
from tests.conftest import ConfigFactory


def test_a_contact_window_stored_by_the_dialogue_reads_back_the_same() -> None:
    from datetime import time as dtime

    from bot.compliance.gate import window_from_json
    from dialogue.parsing import ContactWindow

    window = ContactWindow(after=dtime(9, 30), before=dtime(18, 0), excluded_weekdays=frozenset({6, 2}),
                           weekdays_only=True)  # fmt: skip
    assert window_from_json(window.to_json()) == window
    assert window_from_json(ContactWindow().to_json()) == ContactWindow()


# --- the facts that hold back what the bot starts: a person's flag, an agent's claim --------------

NY_MORNING = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)  # Monday 10:00 in New York
PHONE = "+12025550143"


@pytest.fixture
def services(make_config: ConfigFactory, redis_client: redis.Redis[bytes]) -> Services:
    services = build_services(make_config(), redis_client, Clock(NY_MORNING))
    services.accounts.upsert(
        Account(account_id="A1", first_name="Maria", balance=Decimal("120"), currency="USD", creditor="Acme",
                language="en", phone=PHONE, timezone="America/New_York")
    )  # fmt: skip
    return services


def proactive(services: Services, kind: str, conversation_id: str = "") -> Decision:
    message = Outgoing(channel="sms", text="Hello", language="en", proactive=True, verified=kind != "opener",
                       kind=kind)  # fmt: skip
    return services.gate.decide(services.accounts.get("A1"), "sms", PHONE, message,
                                conversation_id=conversation_id)  # fmt: skip


def test_the_gate_reads_the_vulnerable_flag_from_the_accounts_state(services: Services) -> None:
    state = services.keys.account_state("A1")
    services.redis.hset(state, "flag:vulnerable", json.dumps({"by": "ana", "detail": "bereaved"}))
    held = proactive(services, "opener")
    assert (held.verdict, held.rule) == (Verdict.BLOCK, "vulnerable")
    assert proactive(services, "missed_payment").rule == "vulnerable"
    assert proactive(services, "reminder").verdict is Verdict.SEND
    [*_, (_, audited)] = services.redis.xrange(services.keys.audit)
    assert audited[b"rule"] == b"allowed" and audited[b"kind"] == b"reminder"
    services.redis.hdel(state, "flag:vulnerable")
    assert proactive(services, "opener").verdict is Verdict.SEND


def test_the_gate_holds_the_bots_proactive_messages_while_an_agent_holds_the_conversation(
    services: Services,
) -> None:
    handoff = HandoffStore(services.redis, services.keys, services.clock)
    handoff.escalate("acct-A1", "asked_for_person")
    # Waiting for a person is not being held: the bot still helps.
    assert proactive(services, "reminder").verdict is Verdict.SEND
    handoff.claim("acct-A1", "ana")
    for kind in ("opener", "reminder", "missed_payment"):
        decision = proactive(services, kind)
        assert (decision.verdict, decision.rule) == (Verdict.BLOCK, "with_agent"), kind
    assert proactive(services, "agent").verdict is Verdict.SEND
    # Another conversation of the account (a forwarded address) is not the one held.
    assert proactive(services, "reminder", conversation_id="acct-A1~0123456789ab").verdict is Verdict.SEND
    # A reply (the person wrote) is not what the bot starts.
    reply = Outgoing(channel="sms", text="Thanks", language="en", proactive=False, kind="reply")
    assert services.gate.decide(services.accounts.get("A1"), "sms", PHONE, reply).verdict is Verdict.SEND
    handoff.hand_back("acct-A1", "ana")
    assert proactive(services, "opener").verdict is Verdict.SEND


def test_the_held_by_agent_value_is_the_consoles_agent_state() -> None:
    assert State.AGENT.value.encode() == HELD_BY_AGENT
