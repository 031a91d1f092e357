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
