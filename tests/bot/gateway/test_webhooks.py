"""The gateway's webhooks: authenticate, de-duplicate, store durably, answer fast; clear 4xx."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import redis
from flask.testing import FlaskClient
from twilio.request_validator import RequestValidator

from bot.config import Config
from bot.conversations.inbound import address_key
from bot.gateway.app import create_app
from bot.runtime.services import Services, build_services
from bot.store.intake import INBOUND
from channels.base import InboundMessage
from channels.telegram import SECRET_HEADER
from tests.bot.conftest import PUBLIC
from tests.conftest import ConfigFactory


def sms_form(sid: str = "SM" + "1" * 32, body: str = "hello", sender: str = "+14155550123") -> dict[str, str]:
    return {"MessageSid": sid, "From": sender, "To": "+15005550006", "Body": body}


def post_sms(client: FlaskClient, config: Config, form: dict[str, str], *, sign_url: str | None = None):  # type: ignore[no-untyped-def]
    token = config.secrets.twilio_auth_token or ""
    signature = RequestValidator(token).compute_signature(sign_url or f"{PUBLIC}/webhooks/sms", form)
    return client.post("/webhooks/sms", data=urlencode(form), content_type="application/x-www-form-urlencoded",
                       headers={"X-Twilio-Signature": signature})  # fmt: skip


def stored(services: Services, channel: str, sender: str) -> list[InboundMessage]:
    return [
        InboundMessage.from_json(e.payload) for e in services.inbound.unhandled(address_key(channel, sender))
    ]


def test_signed_sms_is_stored_and_answered_with_empty_twiml(
    client: FlaskClient, config: Config, services: Services
) -> None:
    answer = post_sms(client, config, sms_form())
    assert answer.status_code == 200
    assert answer.content_type.startswith("text/xml") and b"<Response></Response>" in answer.data
    [message] = stored(services, "sms", "+14155550123")
    assert message.text == "hello" and message.external_id == "SM" + "1" * 32
    assert services.inbound.pending_keys() == [address_key("sms", "+14155550123")]


def test_signature_is_checked_against_the_public_url_not_the_internal_one(
    client: FlaskClient, config: Config, services: Services
) -> None:
    answer = post_sms(client, config, sms_form(), sign_url="http://localhost/webhooks/sms")
    assert answer.status_code == 403
    assert stored(services, "sms", "+14155550123") == []


def test_unsigned_sms_webhook_is_rejected_with_json_and_nothing_stored(
    client: FlaskClient, services: Services
) -> None:
    answer = client.post("/webhooks/sms", data=sms_form())
    assert answer.status_code == 403
    assert answer.get_json()["error"] == "missing X-Twilio-Signature header"
    assert stored(services, "sms", "+14155550123") == []


def test_duplicate_delivery_is_stored_once(client: FlaskClient, config: Config, services: Services) -> None:
    form = sms_form()
    assert post_sms(client, config, form).status_code == 200
    assert post_sms(client, config, form).status_code == 200  # Twilio retried: still 200
    assert len(stored(services, "sms", "+14155550123")) == 1


def test_malformed_sms_is_a_400_with_a_reason(client: FlaskClient, config: Config) -> None:
    answer = post_sms(client, config, {"From": "+14155550123", "Body": "x"})
    assert answer.status_code == 400
    assert "MessageSid" in answer.get_json()["error"]


def test_card_numbers_are_redacted_before_storage(
    client: FlaskClient, config: Config, services: Services
) -> None:
    post_sms(client, config, sms_form(body="pay with 4111 1111 1111 1111 please"))
    [message] = stored(services, "sms", "+14155550123")
    assert message.text == "pay with [card number removed] please"


def test_telegram_update_with_secret_is_stored(
    client: FlaskClient, config: Config, services: Services
) -> None:
    update = {"update_id": 9, "message": {"message_id": 1, "date": 1, "text": "hi",
              "chat": {"id": 77, "type": "private"}, "from": {"id": 77, "is_bot": False, "first_name": "A"}}}  # fmt: skip
    answer = client.post("/webhooks/telegram", data=json.dumps(update), content_type="application/json",
                         headers={SECRET_HEADER: config.secrets.telegram_webhook_secret})  # fmt: skip
    assert answer.status_code == 200
    assert [m.text for m in stored(services, "telegram", "77")] == ["hi"]


def test_telegram_with_wrong_secret_is_403(client: FlaskClient) -> None:
    answer = client.post(
        "/webhooks/telegram", data="{}", content_type="application/json", headers={SECRET_HEADER: "no"}
    )
    assert answer.status_code == 403 and "error" in answer.get_json()


def test_telegram_bad_json_is_400(client: FlaskClient, config: Config) -> None:
    answer = client.post("/webhooks/telegram", data="{not json", content_type="application/json",
                         headers={SECRET_HEADER: config.secrets.telegram_webhook_secret})  # fmt: skip
    assert answer.status_code == 400 and "JSON" in answer.get_json()["error"]


def test_unknown_or_disabled_channel_is_404_json(
    make_config: ConfigFactory, redis_client: redis.Redis
) -> None:
    config = make_config(channels={"telegram": {"enabled": False}})
    client = create_app(config, build_services(config, redis_client)).test_client()
    for path in ("/webhooks/telegram", "/webhooks/fax"):
        answer = client.post(path, data="{}")
        assert answer.status_code == 404 and "no enabled channel" in answer.get_json()["error"]


def test_oversized_body_is_413_json(client: FlaskClient) -> None:
    answer = client.post("/webhooks/sms", data="x" * (2 * 1024 * 1024), content_type="text/plain")
    assert answer.status_code == 413 and "error" in answer.get_json()


def test_redis_down_is_503_so_the_provider_retries(config: Config) -> None:
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    client = create_app(config, build_services(config, dead)).test_client()
    answer = post_sms(client, config, sms_form())
    assert answer.status_code == 503 and "error" in answer.get_json()


def test_each_accepted_message_schedules_one_drain_job(
    client: FlaskClient, config: Config, services: Services
) -> None:
    post_sms(client, config, sms_form("SM" + "1" * 32))
    post_sms(client, config, sms_form("SM" + "2" * 32))  # same sender: the queued drain covers it
    queue_key = f"{services.keys.jobs_namespace}:drain.msgs"
    assert services.redis.hlen(queue_key) == 1
    assert INBOUND in services.jobs.queues


def post_status(client: FlaskClient, config: Config, form: dict[str, str], query: str = "?o=outbox-1"):  # type: ignore[no-untyped-def]
    token = config.secrets.twilio_auth_token or ""
    signature = RequestValidator(token).compute_signature(f"{PUBLIC}/webhooks/sms/status{query}", form)
    return client.post(f"/webhooks/sms/status{query}", data=urlencode(form),
                       content_type="application/x-www-form-urlencoded", headers={"X-Twilio-Signature": signature})  # fmt: skip


def status_form(status: str, code: str = "") -> dict[str, str]:
    form = {
        "MessageSid": "SM" + "c" * 32,
        "MessageStatus": status,
        "To": "+14155550123",
        "From": "+15005550006",
    }
    return {**form, "ErrorCode": code} if code else form


def test_stop_opts_the_number_out_at_the_gateway_before_any_worker_runs(
    client: FlaskClient, config: Config, services: Services
) -> None:
    assert post_sms(client, config, sms_form(body="STOP")).status_code == 200
    assert services.addresses.status("sms", "+14155550123").silenced_because == "opted_out"
    assert len(stored(services, "sms", "+14155550123")) == 1  # still queued, for the one confirmation


def test_status_callbacks_out_of_order_never_move_a_status_backwards(
    client: FlaskClient, config: Config, services: Services
) -> None:
    for status in ("delivered", "sent", "queued"):
        assert post_status(client, config, status_form(status)).status_code == 204
    record = services.deliveries.get("outbox-1")
    assert record is not None and record.status is not None and record.status.value == "delivered"
    assert record.external_id == "SM" + "c" * 32


def test_unsigned_or_forged_status_callbacks_are_403_and_change_nothing(
    client: FlaskClient, config: Config, services: Services
) -> None:
    answer = client.post("/webhooks/sms/status?o=outbox-1", data=urlencode(status_form("failed", "21610")),
                         content_type="application/x-www-form-urlencoded", headers={"X-Twilio-Signature": "bad"})  # fmt: skip
    assert answer.status_code == 403 and answer.is_json
    # signed for another outbox id, replayed against this one
    token = config.secrets.twilio_auth_token or ""
    form = status_form("failed", "21610")
    signature = RequestValidator(token).compute_signature(f"{PUBLIC}/webhooks/sms/status?o=other", form)
    answer = client.post("/webhooks/sms/status?o=outbox-1", data=urlencode(form),
                         content_type="application/x-www-form-urlencoded", headers={"X-Twilio-Signature": signature})  # fmt: skip
    assert answer.status_code == 403
    assert services.deliveries.get("outbox-1") is None
    assert services.addresses.status("sms", "+14155550123").silenced_because is None


def test_error_21610_in_a_status_callback_opts_the_number_out(
    client: FlaskClient, config: Config, services: Services
) -> None:
    assert post_status(client, config, status_form("failed", "21610")).status_code == 204
    assert services.addresses.status("sms", "+14155550123").silenced_because == "opted_out"


def test_a_channel_without_status_callbacks_answers_404(client: FlaskClient) -> None:
    answer = client.post("/webhooks/telegram/status", json={})
    assert answer.status_code in (403, 404) and answer.is_json
