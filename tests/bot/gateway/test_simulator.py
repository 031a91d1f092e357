"""The simulator builds provider-signed webhooks and sends them through the real endpoint."""

from __future__ import annotations

import re
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from bot.config import Config
from bot.conversations.inbound import address_key
from bot.gateway.app import create_app
from bot.runtime.services import Services, build_services
from bot.store.accounts import AccountStore
from channels.base import InboundMessage, OutboundMessage
from tests.conftest import ROOT, ConfigFactory
from tests.helpers import InProcessPoster

OPTIONS = {"languages": ["en", "es"], "default_language": "en", "verification_field": "date_of_birth"}


@pytest.fixture
def setup(
    make_config: ConfigFactory, redis_client: redis.Redis
) -> tuple[Config, Services, FlaskClient, InProcessPoster]:
    config = make_config(server={"public_url": "https://bot.example.com"})
    services = build_services(config, redis_client)
    AccountStore(redis_client, services.keys).import_csv(
        (ROOT / "examples" / "accounts.csv").read_text(), **OPTIONS
    )
    poster = InProcessPoster()
    app = create_app(config, services, poster=poster)
    poster.app = app
    return config, services, app.test_client(), poster


def csrf(client: FlaskClient) -> str:
    page = client.get("/simulator").get_data(as_text=True)
    match = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert match
    return match.group(1)


def send(client: FlaskClient, **body: Any) -> Any:
    return client.post("/simulator/send", json=body, headers={"X-CSRFToken": csrf(client)})


def test_page_is_clearly_labelled_as_development_only(setup: Any) -> None:
    _, _, client, _ = setup
    page = client.get("/simulator").get_data(as_text=True)
    assert "DEVELOPMENT SIMULATOR" in page and "sms (sandbox)" in page


def test_accounts_are_listed_with_their_channels(setup: Any) -> None:
    _, _, client, _ = setup
    listing = {a["account_id"]: a for a in client.get("/simulator/accounts").get_json()}
    assert listing["ACC-1001"]["channels"] == ["sms", "telegram", "email"]
    assert listing["ACC-1002"]["channels"] == ["sms", "email"]
    assert listing["ACC-1006"]["channels"] == ["sms", "telegram"]  # no email address


def test_sms_goes_through_the_signed_webhook_into_the_inbound_stream(setup: Any) -> None:
    _, services, client, poster = setup
    answer = send(client, account_id="ACC-1002", channel="sms", text="hello")
    assert answer.status_code == 202, answer.get_json()
    assert answer.get_json()["webhook_status"] == 200
    assert poster.sent[0].path == "/webhooks/sms" and "X-Twilio-Signature" in poster.sent[0].headers
    [entry] = services.inbound.unhandled(address_key("sms", "+12025550143"))
    assert InboundMessage.from_json(entry.payload).text == "hello"


def test_telegram_goes_through_the_secret_checked_webhook(setup: Any) -> None:
    _, services, client, poster = setup
    answer = send(client, account_id="ACC-1001", channel="telegram", text="hola")
    assert answer.status_code == 202
    assert poster.sent[0].path == "/webhooks/telegram"
    address = answer.get_json()["address"]
    [entry] = services.inbound.unhandled(address_key("telegram", address))
    assert InboundMessage.from_json(entry.payload).sender_handle == "maria_lopez_mia"


def test_email_goes_through_the_signed_raw_mail_webhook(setup: Any) -> None:
    _, services, client, poster = setup
    answer = send(client, account_id="ACC-1002", channel="email", text="I'm fine, thanks")
    assert answer.status_code == 202, answer.get_json()
    assert poster.sent[0].path == "/webhooks/email" and "X-Debtbot-Signature" in poster.sent[0].headers
    [entry] = services.inbound.unhandled(address_key("email", "j.whitfield@example.net"))
    message = InboundMessage.from_json(entry.payload)
    assert message.channel == "email" and message.text == "I'm fine, thanks"


def test_send_without_csrf_token_is_refused(setup: Any) -> None:
    _, _, client, _ = setup
    answer = client.post("/simulator/send", json={"account_id": "ACC-1002", "channel": "sms", "text": "x"})
    assert answer.status_code == 400 and "CSRF" in answer.get_json()["error"]


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"account_id": "ACC-1002", "channel": "sms", "text": "  "}, 400, "text:"),
        ({"account_id": "ACC-1002", "channel": "fax", "text": "x"}, 400, "channel:"),
        ({"account_id": "NOPE", "channel": "sms", "text": "x"}, 404, "not found"),
        ({"account_id": "ACC-1002", "channel": "telegram", "text": "x"}, 400, "no Telegram handle"),
    ],
)
def test_bad_simulator_requests_get_clear_errors(
    setup: Any, body: dict[str, str], status: int, fragment: str
) -> None:
    _, _, client, _ = setup
    answer = send(client, **body)
    assert answer.status_code == status and fragment in answer.get_json()["error"]


def test_outbox_is_readable_as_json_with_validated_parameters(setup: Any) -> None:
    _, services, client, _ = setup
    services.outbox.append(OutboundMessage("o1", "sms", "+12025550143", "hi there"))
    listing = client.get("/simulator/outbox?recipient=%2B12025550143").get_json()
    assert [e["text"] for e in listing] == ["hi there"]
    assert client.get("/simulator/outbox?after=bogus").status_code == 400
    assert client.get("/simulator/outbox?limit=abc").status_code == 400


def test_simulator_does_not_exist_in_production(
    make_config: ConfigFactory, redis_client: redis.Redis
) -> None:
    config = make_config(
        environment="production", simulator={"enabled": False},
        channels={"sms": {"enabled": False}, "telegram": {"enabled": False}, "email": {"enabled": False}},
    )  # fmt: skip
    client = create_app(config, build_services(config, redis_client)).test_client()
    assert client.get("/simulator").status_code == 404
    assert client.get("/simulator/outbox").status_code == 404
