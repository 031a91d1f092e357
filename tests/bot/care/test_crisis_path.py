"""The worker's safety screen on the real path (Redis, queues, the gate): a sign of crisis gets
help and a person in every state of the address, before the dialogue; the dialogue is told."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import pytest
import redis

from bot.conversations.inbound import InboundHandler
from bot.conversations.outbound import OutboundHandler
from bot.conversations.render import OfferedChoices, RenderOptions
from bot.runtime.services import Services, build_services
from bot.store.accounts import Account
from bot.store.addresses import address_key
from bot.store.agent_queue import AgentQueue
from bot.store.queues import Entry, RetryLater
from channels.base import InboundMessage, OutboundMessage
from dialogue.rasa_client import BotReply, RasaClient, RasaUnavailable
from tests.conftest import ConfigFactory

PHONE = "+12025550143"
DEBT_WORDS = ("debt", "owe", "balance", "389", "capitol", "payment", "deuda", "saldo")


class RecordingRasa(RasaClient):
    """The dialogue as the worker sees it: records what it was sent, answers as scripted."""

    def __init__(self, answer: Callable[[str, Mapping[str, Any]], list[BotReply]] | None = None) -> None:
        super().__init__("http://127.0.0.1:9", "t")
        self.sent: list[tuple[str, str, dict[str, Any]]] = []
        self._answer = answer or (lambda text, metadata: [BotReply(text="Hi, how are you?")])
        self.down = False

    def send_message(
        self,
        conversation_id: str,
        text: str,
        *,
        channel: str,
        metadata: Mapping[str, Any],
        message_id: str | None = None,
    ) -> list[BotReply]:
        if self.down:
            raise RasaUnavailable("Rasa server unreachable")
        self.sent.append((conversation_id, text, dict(metadata)))
        return self._answer(text, metadata)


@pytest.fixture
def services(make_config: ConfigFactory, redis_client: redis.Redis[bytes]) -> Services:
    services = build_services(make_config(), redis_client)
    services.accounts.upsert(Account(account_id="ACC-1002", first_name="James", balance=Decimal("389.99"),
                                     currency="USD", creditor="Capitol Mobile", language="en", phone=PHONE,
                                     timezone="America/New_York", country="US"))  # fmt: skip
    return services


def _handler(services: Services, rasa: RasaClient) -> InboundHandler:
    return InboundHandler(
        accounts=services.accounts, addresses=services.addresses, agents=AgentQueue(services.redis, services.keys),
        rasa=rasa, outbound=services.outbound, jobs=services.jobs, keys=services.keys, keywords=services.keywords,
        choices=OfferedChoices(services.redis, services.keys), render=RenderOptions(), links=services.links,
        channels=services.channels, default_language="en", dedupe_ttl_seconds=600, gate=services.gate,
        crisis=services.crisis,
    )  # fmt: skip


def _write(handler: InboundHandler, text: str, sid: str, sender: str = PHONE) -> None:
    message = InboundMessage(channel="sms", external_id=sid, sender=sender, text=text)
    handler(Entry(key="k", entry_id="1-0", payload=message.to_json()))


def _queued(services: Services, sender: str = PHONE) -> list[OutboundMessage]:
    return [
        OutboundMessage.from_json(e.payload) for e in services.outbound.unhandled(address_key("sms", sender))
    ]


def _send_all(services: Services, sender: str = PHONE) -> list[str]:
    """Run the real outbound step (with the compliance gate) on what was queued."""
    outbound = OutboundHandler(channels=services.channels, addresses=services.addresses,
                               deliveries=services.deliveries, gate=services.gate, accounts=services.accounts)  # fmt: skip
    for entry in services.outbound.unhandled(address_key("sms", sender)):
        outbound(entry)
    return [m.text for m in services.outbox.read(channel="sms", recipient=sender)]


def _flags(services: Services) -> list[tuple[str, str]]:
    return [(e[b"reason"].decode(), e[b"conversation_id"].decode())
            for _, e in services.redis.xrange(services.keys.agent_queue)]  # fmt: skip


def test_a_crisis_message_gets_the_crisis_line_a_person_and_a_pause_before_the_dialogue(
    services: Services,
) -> None:
    rasa = RecordingRasa(lambda text, metadata: [])
    _write(_handler(services, rasa), "i dont want to be alive anymore", "SM1")
    [reply] = _queued(services)
    assert reply.kind == "crisis" and "988" in reply.text
    assert not any(word in reply.text.lower() for word in DEBT_WORDS)
    assert _flags(services) == [("crisis", "acct-ACC-1002")]
    assert services.redis.hexists(services.keys.account_state("ACC-1002"), "pause:crisis")
    # The dialogue only hears that a crisis was answered, so it marks the conversation.
    [(conversation, text, metadata)] = rasa.sent
    assert (conversation, text, metadata["screened"]) == ("acct-ACC-1002", "/crisis", "crisis")
    assert _send_all(services) == [reply.text]


def test_a_crisis_message_in_spanish_is_answered_in_spanish(services: Services) -> None:
    _write(_handler(services, RecordingRasa(lambda t, m: [])), "me quiero morir", "SM2")
    # Long in UCS-2: it may leave as several texts, all of them the crisis answer.
    replies = _queued(services)
    text = " ".join(m.text for m in replies)
    assert {m.kind for m in replies} == {"crisis"} and "988" in text and "Usted importa" in text


@pytest.mark.parametrize("state", ["opted_out", "wrong_party"])
def test_a_crisis_message_from_a_silenced_address_is_answered_but_the_dialogue_stays_out(
    services: Services, state: str
) -> None:
    if state == "opted_out":
        services.addresses.opt_out("sms", PHONE, "ACC-1002")
    else:
        services.addresses.mark_wrong_party("sms", PHONE, "ACC-1002")
    rasa = RecordingRasa()
    _write(_handler(services, rasa), "I'm going to end it all", "SM3")
    assert rasa.sent == []
    [sent] = _send_all(services)
    assert "988" in sent
    assert ("crisis", "acct-ACC-1002") in _flags(services)


def test_a_crisis_answer_is_not_lost_nor_repeated_when_the_dialogue_is_down(services: Services) -> None:
    rasa = RecordingRasa(lambda text, metadata: [])
    rasa.down = True
    handler = _handler(services, rasa)
    with pytest.raises(RetryLater):
        _write(handler, "i want to kill myself", "SM4")
    assert len(_queued(services)) == 1  # the person has their answer already
    rasa.down = False
    _write(handler, "i want to kill myself", "SM4")  # the queue's retry of the same entry
    assert len(_queued(services)) == 1 and _flags(services) == [("crisis", "acct-ACC-1002")]
    assert [text for _, text, _ in rasa.sent] == ["/crisis"]


def test_a_later_message_after_a_crisis_is_answered(services: Services) -> None:
    rasa = RecordingRasa(lambda text, metadata: [] if text == "/crisis" else [BotReply(text="I'm here.")])
    handler = _handler(services, rasa)
    _write(handler, "no reason to live", "SM5")
    _write(handler, "ok", "SM6")
    assert [m.text for m in _queued(services)][1:] == ["I'm here."]


def test_a_sign_of_vulnerability_alerts_a_person_with_the_reason_and_goes_to_the_dialogue(
    services: Services,
) -> None:
    rasa = RecordingRasa()
    _write(_handler(services, rasa), "my husband passed away last month", "SM7")
    assert ("vulnerable:bereavement", "acct-ACC-1002") in _flags(services)
    [(_, text, metadata)] = rasa.sent
    assert text == "my husband passed away last month" and "bereavement" in metadata["screen"]["concerns"]
    assert not services.redis.hexists(services.keys.account_state("ACC-1002"), "pause:crisis")


def test_a_typed_card_number_gets_the_safety_answer_and_the_request_goes_on_without_it(
    services: Services,
) -> None:
    rasa = RecordingRasa(lambda text, metadata: [BotReply(text="Before we go on...")])
    # The gateway already replaced the number (bot.store.intake.InboundIntake.accept).
    _write(_handler(services, rasa), "here is my card [card number removed], take 50", "SM8")
    [(_, text, _)] = rasa.sent
    assert text == "here is my card , take 50"
    notice, answer = [m.text for m in _queued(services)]
    assert "never send card numbers" in notice and answer == "Before we go on..."


def test_the_one_closing_message_reaches_a_wrong_party(services: Services) -> None:
    def dialogue(text: str, metadata: Mapping[str, Any]) -> list[BotReply]:
        # What action_wrong_person does in the action server.
        services.addresses.mark_wrong_party("sms", PHONE, "ACC-1002", by_message=str(metadata["external_id"]))
        return [BotReply(text="I'm so sorry to have bothered you.")]

    handler = _handler(services, RecordingRasa(dialogue))
    _write(handler, "wrong number", "SM9")
    assert _send_all(services) == ["I'm so sorry to have bothered you."]


def test_after_a_crisis_an_opted_out_address_hears_a_person_has_its_words_then_silence_again(
    services: Services,
) -> None:
    services.addresses.opt_out("sms", PHONE, "ACC-1002")
    now = [1_900_000_000.0]
    handler = _handler(services, RecordingRasa())
    handler.clock = lambda: now[0]
    _write(handler, "i want to die", "SM10")
    _write(handler, "thank you", "SM11")
    crisis, follow_up = _send_all(services)
    assert "988" in crisis and "A person from our team has your messages" in follow_up
    now[0] += 25 * 3600  # past care.follow_up_hours: the opt-out holds again
    _write(handler, "hello?", "SM12")
    assert len(_send_all(services)) == 2
    assert [reason for reason, _ in _flags(services)].count("wrote_after_opted_out") == 2
