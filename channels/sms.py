"""SMS through Twilio: signed form-post webhooks in, the Messages REST API out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from channels.base import (
    Channel,
    ChannelAuthError,
    DeliveryFailed,
    DeliveryReceipt,
    DeliveryStatus,
    InboundMessage,
    MalformedRequest,
    OutboundMessage,
    RateLimited,
    WebhookAck,
    WebhookRequest,
)

#: Twilio's answer to "reply nothing now": the reply goes out later from the worker.
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'

_TWILIO_API_HOST = "api.twilio.com"


class _RebasedHttpClient(TwilioHttpClient):  # type: ignore[misc]
    """Sends Twilio's requests to another base URL (a regional edge, or a local mock)."""

    def __init__(self, base_url: str, timeout: float) -> None:
        super().__init__(timeout=timeout)
        parts = urlsplit(base_url)
        self._scheme, self._netloc = parts.scheme, parts.netloc

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        parts = urlsplit(url)
        if parts.netloc == _TWILIO_API_HOST:
            url = urlunsplit((self._scheme, self._netloc, parts.path, parts.query, ""))
        return super().request(method, url, *args, **kwargs)


class SmsChannel(Channel):
    """The Twilio adapter.

    ``auth_token`` verifies ``X-Twilio-Signature``. ``account_sid`` is only needed to send;
    without it (sandbox mode) the adapter still authenticates and parses webhooks.
    """

    name = "sms"

    def __init__(
        self,
        *,
        auth_token: str,
        account_sid: str | None = None,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        api_base_url: str = "https://api.twilio.com",
        status_callback_url: str | None = None,
        timeout_seconds: float = 10.0,
    ) -> None:
        self._validator = RequestValidator(auth_token)
        self._from_number = from_number
        self._messaging_service_sid = messaging_service_sid
        self._status_callback_url = status_callback_url
        self._client: Client | None = None
        if account_sid:
            self._client = Client(
                account_sid,
                auth_token,
                http_client=_RebasedHttpClient(api_base_url, timeout_seconds),
            )

    def authenticate(self, request: WebhookRequest) -> None:
        signature = request.header("X-Twilio-Signature")
        if not signature:
            raise ChannelAuthError("missing X-Twilio-Signature header")
        if not self._validator.validate(request.url, dict(request.form), signature):
            raise ChannelAuthError("X-Twilio-Signature does not match the request")

    def parse(self, request: WebhookRequest) -> InboundMessage | None:
        form: Mapping[str, str] = request.form
        missing = [key for key in ("MessageSid", "From") if not form.get(key)]
        if missing:
            raise MalformedRequest(f"missing form field(s): {', '.join(missing)}")
        return InboundMessage(
            channel=self.name,
            external_id=form["MessageSid"],
            sender=form["From"],
            recipient=form.get("To", ""),
            text=form.get("Body", ""),
            raw=dict(form),
        )

    def ack(self) -> WebhookAck:
        return WebhookAck(body=EMPTY_TWIML, content_type="text/xml")

    def send(self, message: OutboundMessage) -> DeliveryReceipt:
        if self._client is None:
            raise DeliveryFailed("TWILIO_ACCOUNT_SID is not set", permanent=True)
        sender: dict[str, str] = (
            {"messaging_service_sid": self._messaging_service_sid}
            if self._messaging_service_sid
            else {"from_": self._from_number or ""}
        )
        if self._status_callback_url:
            sender["status_callback"] = self._status_callback_url
        try:
            created = self._client.messages.create(to=message.recipient, body=message.text, **sender)
        except TwilioRestException as exc:
            if exc.status == 429:
                raise RateLimited(f"Twilio rate limit: {exc.msg}", retry_after=1.0) from exc
            raise DeliveryFailed(
                f"Twilio refused the message: {exc.msg}",
                permanent=400 <= exc.status < 500,
                code=str(exc.code) if exc.code is not None else None,
            ) from exc
        except (TwilioException, requests.RequestException) as exc:
            raise DeliveryFailed(f"Twilio unreachable: {exc}", permanent=False) from exc
        return DeliveryReceipt(
            outbox_id=message.outbox_id,
            channel=self.name,
            status=DeliveryStatus.QUEUED,
            external_id=str(created.sid),
        )
