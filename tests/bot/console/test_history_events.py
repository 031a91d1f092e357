"""The whole history reaches the agents: what the dialogue, the worker's keyword step, the safety
screen and the agents' queue record (escalated, verified or not, plan created, collection paused,
a call back asked for, opted out, wrong party) is read back by the console (``DeskReading.history``,
the conversation page and its live history), each once however often a job is retried; and the
inbox shows a person the bot verified as verified at once, without an agent opening the page."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

import redis
from flask.testing import FlaskClient

from bot.clock import Clock
from bot.config import Config
from bot.conversations.dialogue_backend import RedisDialogueBackend
from bot.conversations.inbound_steps import Context, answer_keyword
from bot.store.accounts import Account
from bot.store.addresses import address_key
from channels.base import InboundMessage
from dialogue.plans import Frequency, Instalment, Plan
from tests.bot.console.conftest import ConsoleTestParts, FakeRasa, add_account

CID = "acct-A1"
PHONE = "+14155550123"


class Say:
    """The inbound path's replier: what would be queued."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, context: Context, replies: Any, what: str, **options: Any) -> None:
        self.sent.append(what)


def dialogue_backend(
    config: Config, client: redis.Redis[bytes], parts: ConsoleTestParts, clock: Clock
) -> RedisDialogueBackend:
    """The action server's backend, wired as the runtime wires it (the console's hand-off, the clock)."""
    return RedisDialogueBackend(config, client, parts.events, escalate=parts.escalate, clock=clock)


def stop_by_sms(parts: ConsoleTestParts, sid: str) -> None:
    """The worker's keyword step for a STOP from the account's phone."""
    account = parts.accounts.get("A1")
    message = InboundMessage(channel="sms", external_id=sid, sender=PHONE, text="STOP")
    context = replace(Context.of(message), account=account, conversation_id=CID, language="en")
    answer_keyword(context, keywords=parts.keywords, say=Say(), history=parts.history)  # type: ignore[arg-type]


def everything_the_bot_records(backend: RedisDialogueBackend, parts: ConsoleTestParts) -> None:
    backend.flag_for_agent("A1", CID, "asked_for_person", "sms: can I talk to a person", message_id="sms:SM1")
    backend.record_verification("A1", CID, verified=False, failures=1, message_id="sms:SM2")
    backend.record_verification("A1", CID, verified=True, message_id="sms:SM3")
    plan = Plan(
        Decimal("120.50"), "USD", Frequency.MONTHLY,
        (Instalment(date(2026, 3, 16), Decimal("60.25")), Instalment(date(2026, 4, 16), Decimal("60.25"))),
    )  # fmt: skip
    backend.create_plan("A1", CID, plan, channel="sms", message_id="sms:SM4")
    backend.pause_collection("A1", "dispute", "this is not my debt")
    backend.record_callback("A1", CID, "tomorrow after 5pm", "phone", message_id="sms:SM5")
    backend.flag_for_agent("A1", CID, "callback", "phone: tomorrow after 5pm", message_id="sms:SM5")
    parts.crisis.raise_crisis(conversation_id=CID, account_id="A1", detail="sms: ...", once="sms:SM6",
                              source="screen:self_harm")  # fmt: skip
    backend.mark_wrong_party("A1", "email", "someone@example.org", "email:<m7@x>")
    backend.opt_out("A1", "sms", PHONE, "sms:SM8")
    stop_by_sms(parts, "SM9")


EXPECTED = [
    ("escalated", "system", "asked for a person"),
    ("verification_failed", "bot", "wrong answer to the verification check (1 of 3)"),
    ("verified", "bot", "answered the verification check correctly"),
    ("plan_created", "bot", "2 payments of $60.25"),
    ("collection_paused", "bot", "disputes the debt: no collection messages until a person clears it"),
    ("callback_requested", "bot", "phone: tomorrow after 5pm"),
    ("escalated", "system", "asked for a call back (phone: tomorrow after 5pm)"),
    ("collection_paused", "system", "a sign of crisis (screen:self_harm)"),
    ("escalated", "system", "a sign of crisis"),
    ("opted_out", "bot", "asked for no more messages by sms"),
    ("opted_out", "system", "STOP by sms: no more messages on this channel"),
]


def test_what_the_bot_records_is_in_the_consoles_history_once_however_often_jobs_retry(
    web_config: Config, redis_client: redis.Redis[bytes], web_parts: ConsoleTestParts, web_clock: Clock
) -> None:
    add_account(web_parts, email="maria@example.com", date_of_birth=date(1984, 3, 12))
    backend = dialogue_backend(web_config, redis_client, web_parts, web_clock)
    everything_the_bot_records(backend, web_parts)
    everything_the_bot_records(backend, web_parts)  # every job retried: nothing twice
    lines = [line for line in web_parts.desk.history(CID) if line.direction == "event"]
    assert len(lines) == len(EXPECTED)
    for line, (kind, by, text) in zip(lines, EXPECTED, strict=True):
        assert (line.kind, line.by) == (kind, by) and line.text.startswith(text), line
        assert line.at == web_clock.timestamp()  # the one clock, not the wall clock
    # The wrong party wrote from another address of the account's: its own conversation.
    others = [key.decode() for key in redis_client.keys("*conversation:acct-A1~*:history")]
    assert len(others) == 1 and redis_client.xlen(others[0]) == 1
    # No full addresses in the lines the console shows.
    assert PHONE not in str([line.to_json() for line in lines])


def test_the_page_and_its_live_history_show_each_event_in_words(
    web_config: Config, redis_client: redis.Redis[bytes], web_parts: ConsoleTestParts, web_clock: Clock,
    web_rasa: FakeRasa, agent_client: FlaskClient,
) -> None:  # fmt: skip
    add_account(web_parts, email="maria@example.com", date_of_birth=date(1984, 3, 12))
    everything_the_bot_records(dialogue_backend(web_config, redis_client, web_parts, web_clock), web_parts)
    web_rasa.verified[CID] = True
    page = agent_client.get(f"/console/c/{CID}").get_data(as_text=True)
    for kind, _, text in EXPECTED:
        assert f"kind-{kind}" in page and text.replace("'", "&#39;") in page
    assert '<span class="event-kind">plan created</span>' in page
    assert '<span class="event-kind">collection paused</span>' in page
    live = agent_client.get(f"/console/api/c/{CID}/history").get_json()["lines"]
    events = [(line["kind"], line["who"], line["text"][:20]) for line in live if line["direction"] == "event"]
    assert [(kind, by) for kind, by, _ in events] == [(kind, by) for kind, by, _ in EXPECTED]


def test_the_inbox_shows_a_person_the_bot_verified_as_verified_at_once(
    web_config: Config, redis_client: redis.Redis[bytes], web_parts: ConsoleTestParts, web_clock: Clock
) -> None:
    add_account(web_parts, date_of_birth=date(1984, 3, 12))
    web_parts.accounts.upsert(
        Account(account_id="A2", first_name="James", balance=Decimal("80"), currency="USD", creditor="Acme",
                language="en", phone="+14155550199", timezone="America/New_York")
    )  # fmt: skip
    backend = dialogue_backend(web_config, redis_client, web_parts, web_clock)
    # Verified by the bot, then escalated: verified from the first moment in the inbox.
    backend.record_verification("A1", CID, verified=True, message_id="sms:SM1")
    backend.flag_for_agent("A1", CID, "hardship", "sms: I lost my job", message_id="sms:SM2")
    # Escalated while not verified (an agent's page read "0"), verified by the bot later.
    backend.flag_for_agent("A2", "acct-A2", "asked_for_person", "sms: a person", message_id="sms:SM3")
    redis_client.hset(web_parts.keys.console("verified"), "acct-A2", "0")
    assert {i.conversation_id: i.verified for i in web_parts.inbox.items("ana")}["acct-A2"] is False
    backend.record_verification("A2", "acct-A2", verified=True, message_id="sms:SM4")
    verified = {i.conversation_id: i.verified for i in web_parts.inbox.items("ana")}
    assert verified == {CID: True, "acct-A2": True}


def test_a_stop_by_sms_is_one_history_line_and_a_start_another(
    web_parts: ConsoleTestParts, redis_client: redis.Redis[bytes]
) -> None:
    add_account(web_parts)
    stop_by_sms(web_parts, "SM1")
    stop_by_sms(web_parts, "SM1")  # the worker replays the message
    account = web_parts.accounts.get("A1")
    start = InboundMessage(channel="sms", external_id="SM2", sender=PHONE, text="START")
    answer_keyword(replace(Context.of(start), account=account, conversation_id=CID, language="en"),
                   keywords=web_parts.keywords, say=Say(), history=web_parts.history)  # type: ignore[arg-type]  # fmt: skip
    lines = [(line.kind, line.text) for line in web_parts.desk.history(CID)]
    assert lines == [
        ("opted_out", "STOP by sms: no more messages on this channel"),
        ("opted_in", "START by sms: messages on this channel again"),
    ]
    assert not web_parts.addresses.status("sms", PHONE).opted_out_at
    assert address_key("sms", PHONE) not in str(lines)
