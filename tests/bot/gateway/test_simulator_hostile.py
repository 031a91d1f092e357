"""Hostile input to the simulator's endpoints: never a 5xx, a 4xx is a JSON error, and a good
message sent afterwards still goes through the real webhook into the inbound stream."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

import pytest
import redis
from flask.testing import FlaskClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.conversations.inbound import address_key
from bot.gateway.app import create_app
from bot.runtime.services import Services, build_services
from bot.store.accounts import AccountStore
from channels.base import InboundMessage, OutboundMessage
from tests.bot.gateway.test_webhooks_hostile import JSON_VALUES, NASTY_TEXT, UNSTORABLE, check_answer
from tests.conftest import ROOT, ConfigFactory
from tests.helpers import InProcessPoster

FUZZ = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
JAMES_PHONE = "+12025550143"  # ACC-1002 in examples/accounts.csv


class Simulator:
    def __init__(self, services: Services, client: FlaskClient) -> None:
        self.services = services
        self.client = client
        page = client.get("/simulator").get_data(as_text=True)
        match = re.search(r'name="csrf-token" content="([^"]+)"', page)
        assert match
        self.token = match.group(1)

    def send(self, body: bytes | str, content_type: str = "application/json") -> Any:
        return self.client.post(
            "/simulator/send", data=body, content_type=content_type, headers={"X-CSRFToken": self.token}
        )

    def queued_sms(self) -> list[InboundMessage]:
        key = address_key("sms", JAMES_PHONE)
        return [InboundMessage.from_json(e.payload) for e in self.services.inbound.unhandled(key)]


@pytest.fixture
def simulator(make_config: ConfigFactory, redis_client: redis.Redis) -> Simulator:
    config = make_config(server={"public_url": "https://bot.example.com"})
    services = build_services(config, redis_client)
    AccountStore(redis_client, services.keys).import_csv(
        (ROOT / "examples" / "accounts.csv").read_text(),
        languages=["en", "es"],
        default_language="en",
        verification_field="date_of_birth",
    )
    poster = InProcessPoster()
    app = create_app(config, services, poster=poster)
    poster.app = app
    return Simulator(services, app.test_client())


def good_message_still_goes_through(simulator: Simulator) -> None:
    before = len(simulator.queued_sms())
    answer = simulator.send(json.dumps({"account_id": "ACC-1002", "channel": "sms", "text": "hello again"}))
    assert answer.status_code == 202, answer.get_json()
    messages = simulator.queued_sms()
    assert len(messages) == before + 1 and messages[-1].text == "hello again"


SEND_BODIES = st.one_of(
    st.fixed_dictionaries(
        {
            "account_id": st.one_of(st.sampled_from(["ACC-1002", "ACC-1001", "ACC-1006"]), JSON_VALUES),
            "channel": st.one_of(st.sampled_from(["sms", "telegram", "email"]), JSON_VALUES),
            "text": st.one_of(NASTY_TEXT, JSON_VALUES),
        }
    ).map(json.dumps),
    JSON_VALUES.map(json.dumps),
    st.integers(33, 100_000).map(lambda depth: "[" * depth + "]" * depth),
    st.binary(max_size=100),
)


@FUZZ
@given(body=SEND_BODIES)
@example(body=json.dumps({"account_id": "ACC-1002", "channel": ["sms"], "text": "hi"}))
@example(body=json.dumps({"account_id": "ACC-1002", "channel": {"sms": 1}, "text": "hi"}))
@example(body=json.dumps({"account_id": ["ACC-1002"], "channel": "sms", "text": "hi"}))
@example(body='{"account_id": "ACC-1002", "channel": "sms", "text": ' + "[" * 100_000 + "]" * 100_000 + "}")
@example(body="[" * 100_000 + "]" * 100_000)
@example(body=json.dumps({"account_id": "ACC-1002", "channel": "sms", "text": "hola \ud800 \x00\x1b[2J"}))
@example(body=json.dumps({"account_id": "ACC-1002", "channel": "email", "text": "\udcc3" * 10}))
@example(body=json.dumps({"account_id": "ACC-1001", "channel": "telegram", "text": "x" * 100_000}))
@example(body=json.dumps({"account_id": "\ud800", "channel": "sms", "text": "hi"}))
@example(body='{"account_id": "ACC-1002", "channel": "sms", "text": NaN}')
def test_hostile_simulator_sends_never_get_a_5xx_and_a_good_one_still_goes_through(
    simulator: Simulator, body: str | bytes
) -> None:
    answer = simulator.send(body)
    check_answer(answer)
    for message in simulator.queued_sms():
        assert not UNSTORABLE.search(message.text)
    good_message_still_goes_through(simulator)


def test_a_list_as_channel_is_a_400(simulator: Simulator) -> None:
    answer = simulator.send(json.dumps({"account_id": "ACC-1002", "channel": ["sms"], "text": "hi"}))
    assert answer.status_code == 400 and "channel:" in answer.get_json()["error"]


def test_deeply_nested_json_is_a_400_before_anything_parses_it(simulator: Simulator) -> None:
    answer = simulator.send("[" * 100_000 + "]" * 100_000)
    assert answer.status_code == 400 and "nested" in answer.get_json()["error"]


def test_a_lone_surrogate_in_the_text_is_sent_as_a_replacement_character(simulator: Simulator) -> None:
    answer = simulator.send(json.dumps({"account_id": "ACC-1002", "channel": "sms", "text": "hola \ud800"}))
    assert answer.status_code == 202
    assert [m.text for m in simulator.queued_sms()] == ["hola \ufffd"]


OUTBOX_VALUES = st.one_of(
    NASTY_TEXT,
    st.sampled_from(["18446744073709551616-0", "0-18446744073709551616", "99999999999999999999-0", "²", "٣"]),
    st.integers().map(str),
    st.tuples(st.integers(), st.integers()).map(lambda pair: f"{pair[0]}-{pair[1]}"),
)


@FUZZ
@given(
    params=st.dictionaries(
        st.sampled_from(["after", "limit", "channel", "recipient"]), OUTBOX_VALUES, max_size=4
    )
)
@example(params={"after": "18446744073709551616-0"})
@example(params={"after": "99999999999999999999-99999999999999999999"})
@example(params={"after": "18446744073709551615-18446744073709551615"})
@example(params={"limit": "²"})
@example(params={"limit": "9" * 5000})
@example(params={"recipient": "\ud800\x00", "channel": "\r\n"})
def test_hostile_outbox_queries_never_get_a_5xx(simulator: Simulator, params: dict[str, str]) -> None:
    query = "&".join(
        f"{key}={quote(value.encode('utf-8', 'surrogatepass'))}" for key, value in params.items()
    )
    answer = simulator.client.get(f"/simulator/outbox?{query}")
    check_answer(answer)
    if answer.status_code == 200:
        assert isinstance(answer.get_json(), list)


def test_an_outbox_id_beyond_64_bits_is_a_400_not_a_503(simulator: Simulator) -> None:
    simulator.services.outbox.append(OutboundMessage("o1", "sms", JAMES_PHONE, "hi there"))
    answer = simulator.client.get("/simulator/outbox?after=18446744073709551616-0")
    assert answer.status_code == 400 and "after:" in answer.get_json()["error"]
    [entry] = simulator.client.get("/simulator/outbox").get_json()
    largest = "18446744073709551615-18446744073709551615"
    assert simulator.client.get(f"/simulator/outbox?after={largest}").get_json() == []
    assert simulator.client.get(f"/simulator/outbox?after={entry['entry_id']}").status_code == 200
