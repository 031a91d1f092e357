"""The Twilio adapter: signatures checked with Twilio's own algorithm, form posts parsed."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from channels.base import ChannelAuthError, MalformedRequest, WebhookRequest
from channels.sms import EMPTY_TWIML, SmsChannel

TOKEN = "twilio-test-token"
URL = "https://bot.example.com/webhooks/sms"
FORM = {"MessageSid": "SM" + "a" * 32, "From": "+14155550123", "To": "+15005550006", "Body": "hi"}


def signed(form: dict[str, str], url: str = URL, token: str = TOKEN) -> WebhookRequest:
    signature = RequestValidator(token).compute_signature(url, form)
    return WebhookRequest("POST", url, {"X-Twilio-Signature": signature}, urlencode(form).encode(), form)


@pytest.fixture
def sms() -> SmsChannel:
    return SmsChannel(auth_token=TOKEN)


def test_correctly_signed_request_is_accepted_and_parsed(sms: SmsChannel) -> None:
    request = signed(FORM)
    sms.authenticate(request)
    message = sms.parse(request)
    assert message is not None
    assert (message.external_id, message.sender, message.recipient, message.text) == (
        FORM["MessageSid"], "+14155550123", "+15005550006", "hi",
    )  # fmt: skip
    assert message.raw == FORM


def test_unsigned_request_is_rejected(sms: SmsChannel) -> None:
    with pytest.raises(ChannelAuthError, match="missing X-Twilio-Signature"):
        sms.authenticate(WebhookRequest("POST", URL, {}, b"", FORM))


def test_request_signed_with_another_token_is_rejected(sms: SmsChannel) -> None:
    with pytest.raises(ChannelAuthError, match="does not match"):
        sms.authenticate(signed(FORM, token="forged"))


def test_signature_for_another_url_is_rejected(sms: SmsChannel) -> None:
    request = signed(FORM, url="https://evil.example.com/webhooks/sms")
    with pytest.raises(ChannelAuthError):
        sms.authenticate(WebhookRequest("POST", URL, request.headers, request.body, FORM))


def test_replayed_signature_with_other_parameters_is_rejected(sms: SmsChannel) -> None:
    original = signed(FORM)
    tampered = {**FORM, "Body": "STOP"}
    with pytest.raises(ChannelAuthError):
        sms.authenticate(
            WebhookRequest("POST", URL, original.headers, urlencode(tampered).encode(), tampered)
        )


def test_form_without_message_sid_is_malformed(sms: SmsChannel) -> None:
    with pytest.raises(MalformedRequest, match="MessageSid"):
        sms.parse(signed({"From": "+14155550123"}))


def test_ack_is_empty_twiml(sms: SmsChannel) -> None:
    ack = sms.ack()
    assert (ack.body, ack.content_type) == (EMPTY_TWIML, "text/xml")


STATUS_URL = "https://bot.example.com/webhooks/sms/status?o=outbox-1"


def _status_form(status: str, code: str | None = None) -> dict[str, str]:
    form = {"MessageSid": "SM" + "b" * 32, "MessageStatus": status, "To": "+14155550123", "From": "+15005550006",
            "AccountSid": "AC" + "0" * 32}  # fmt: skip
    if code:
        form["ErrorCode"] = code
    return form


@pytest.mark.parametrize(
    ("twilio_status", "ours"),
    [("accepted", "queued"), ("queued", "queued"), ("sending", "queued"), ("sent", "sent"),
     ("delivered", "delivered"), ("read", "delivered"), ("undelivered", "undelivered"), ("failed", "failed"),
     ("canceled", "failed")],
)  # fmt: skip
def test_status_callbacks_map_to_our_statuses_with_the_outbox_id_from_the_signed_url(
    sms: SmsChannel, twilio_status: str, ours: str
) -> None:
    request = signed(_status_form(twilio_status), url=STATUS_URL)
    sms.authenticate(request)
    callback = sms.parse_status(request)
    assert callback is not None
    assert callback.receipt.outbox_id == "outbox-1"
    assert callback.receipt.status.value == ours
    assert callback.recipient == "+14155550123"


def test_a_status_callback_carries_the_error_code(sms: SmsChannel) -> None:
    callback = sms.parse_status(signed(_status_form("failed", "21610"), url=STATUS_URL))
    assert callback is not None and callback.receipt.error_code == "21610"


def test_a_status_callback_for_a_message_we_did_not_send_is_ignored(sms: SmsChannel) -> None:
    url = "https://bot.example.com/webhooks/sms/status"
    assert sms.parse_status(signed(_status_form("delivered"), url=url)) is None


def test_a_status_callback_without_a_status_is_malformed(sms: SmsChannel) -> None:
    form = _status_form("delivered")
    del form["MessageStatus"]
    with pytest.raises(MalformedRequest, match="MessageStatus"):
        sms.parse_status(signed(form, url=STATUS_URL))
