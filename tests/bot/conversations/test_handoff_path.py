"""The inbound path with the agents' console, wired as the worker wires it: an escalation puts
the conversation in the console's queue and tells the person roughly when; a claimed
conversation reaches the agent, not the dialogue; handed back, the bot answers again."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import httpx
import redis

from bot.clock import Clock
from bot.console.handoff import State
from bot.runtime.services import Services, build_services
from bot.store.addresses import address_key
from bot.store.queues import Entry
from channels.base import InboundMessage, OutboundMessage
from dialogue.rasa_client import RasaClient
from tests.conftest import ConfigFactory

PHONE = "+12025550143"
#: A Monday, 15:00 in New York: the team is working.
MONDAY_AFTERNOON = datetime(2026, 12, 7, 20, 0, tzinfo=timezone.utc)


class Dialogue:
    """A Rasa stand-in: records what it heard; "person" asks for one (the action flags it)."""

    def __init__(self, services: Services) -> None:
        self.heard: list[str] = []
        self.services = services

    def client(self) -> RasaClient:
        def answer(request: httpx.Request) -> httpx.Response:
            body = json.loads(request.content)
            self.heard.append(body["message"])
            if body["message"] == "person":
                self.services.agents.flag(body["sender"], "human", once=body["message_id"])
                return httpx.Response(200, json=[{"text": "I've asked a colleague to look at this."}])
            return httpx.Response(200, json=[{"text": "Happy to help."}])

        return RasaClient("http://rasa.test", "t", transport=httpx.MockTransport(answer))


def _message(text: str, sid: str) -> Entry:
    message = InboundMessage(channel="sms", external_id=sid, sender=PHONE, text=text)
    return Entry(key="k", entry_id="1-0", payload=message.to_json())


def _queued(services: Services) -> list[str]:
    stream = services.outbound.stream_key(address_key("sms", PHONE))
    return [OutboundMessage.from_json(f[b"payload"].decode()).text for _, f in services.redis.xrange(stream)]


def test_escalated_then_claimed_then_handed_back(
    make_config: ConfigFactory, redis_client: redis.Redis[bytes]
) -> None:
    services = build_services(make_config(), redis_client, clock=Clock(MONDAY_AFTERNOON))
    dialogue = Dialogue(services)
    handler = services.inbound_handler(rasa=dialogue.client())
    conversation = "anon-" + address_key("sms", PHONE)

    handler(_message("person", "SM1"))
    handoff = services.handoff.get(conversation)
    assert handoff.state is State.WAITING and handoff.reasons == ("human",)
    assert _queued(services) == [
        "I've asked a colleague to look at this.\n\n"
        "A colleague from our team will answer you here, usually within the hour."
    ]

    services.handoff.claim(conversation, "ana")
    handler(_message("are you there?", "SM2"))
    assert dialogue.heard == ["person"]  # the dialogue did not hear it
    assert len(_queued(services)) == 1  # and nothing was said

    services.handoff.hand_back(conversation, "ana")
    handler(_message("thanks", "SM3"))
    assert dialogue.heard == ["person", "thanks"]
    history = [(e.direction, e.text) for e in services.history.read(conversation)]
    assert ("in", "are you there?") in history and ("out", "Happy to help.") in history
