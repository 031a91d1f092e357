"""SMS through Twilio: signed form-post webhooks in, the Messages REST API out."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from channels.base import (
    Channel,
    ChannelAuthError,
    ChannelError,
    DeliveryFailed,
    DeliveryReceipt,
    DeliveryStatus,
    InboundMessage,
    MalformedRequest,
    OutboundMessage,
    Pacer,
    RateLimited,
    StatusCallback,
    WebhookAck,
    WebhookRequest,
)
from channels.cleaning import clean_line, clean_text
from channels.sms_text import segments

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


#: Twilio's message statuses, as far as they matter to us ("sending" is still on its way).
_TWILIO_STATUS = {
    "accepted": DeliveryStatus.QUEUED,
    "scheduled": DeliveryStatus.QUEUED,
    "queued": DeliveryStatus.QUEUED,
    "sending": DeliveryStatus.QUEUED,
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.DELIVERED,
    "undelivered": DeliveryStatus.UNDELIVERED,
    "failed": DeliveryStatus.FAILED,
    "canceled": DeliveryStatus.FAILED,
}

#: Twilio's ids: two letters (SM, MM...) and 32 hex digits; a little slack on the rest, never
#: anything but letters and digits, so an id is safe in a Redis key and a log line.
_SID = re.compile(r"[A-Za-z]{2}[A-Za-z0-9]{1,62}")
#: Our outbox ids, as they ride back in a status callback's URL.
_OUTBOX_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_ERROR_CODE = re.compile(r"[0-9]{1,10}")
#: Phone numbers, short codes, alphanumeric senders and ``whatsapp:+1...`` all fit.
_MAX_ADDRESS = 64
_MAX_ERROR_MESSAGE = 500


def _clean_form(form: Mapping[str, str]) -> dict[str, str]:
    """Every field cleaned: one-line values, the message body keeps its line breaks."""
    return {
        clean_line(key): clean_text(value) if key == "Body" else clean_line(value).strip()
        for key, value in form.items()
    }


def _message_sid(value: str) -> str:
    if not _SID.fullmatch(value):
        raise MalformedRequest(f"MessageSid: not a Twilio message id ({value[:40]!r})")
    return value


def _address(name: str, value: str) -> str:
    if len(value) > _MAX_ADDRESS:
        raise MalformedRequest(f"{name}: longer than {_MAX_ADDRESS} characters")
    return value


#: How far Twilio's clock and ours may disagree when matching a message after a timeout.
_CLOCK_SLACK = timedelta(minutes=5)


class SmsChannel(Channel):
    """The Twilio adapter.

    ``auth_token`` verifies ``X-Twilio-Signature``. ``account_sid`` is only needed to send;
    without it (sandbox mode) the adapter still authenticates and parses webhooks.
    Sending is paced per sender number through ``pacer`` (segments per second).
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
        pacer: Pacer | None = None,
        segments_per_second: float = 1.0,
    ) -> None:
        self._validator = RequestValidator(auth_token)
        self._from_number = from_number
        self._messaging_service_sid = messaging_service_sid
        self._status_callback_url = status_callback_url
        self._pacer = pacer
        self._segments_per_second = segments_per_second
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
        form = _clean_form(request.form)
        missing = [key for key in ("MessageSid", "From") if not form.get(key)]
        if missing:
            raise MalformedRequest(f"missing form field(s): {', '.join(missing)}")
        return InboundMessage(
            channel=self.name,
            external_id=_message_sid(form["MessageSid"]),
            sender=_address("From", form["From"]),
            recipient=_address("To", form.get("To", "")),
            text=clean_text(form.get("Body", "")),
            raw=form,
        )

    def ack(self) -> WebhookAck:
        return WebhookAck(body=EMPTY_TWIML, content_type="text/xml")

    def parse_status(self, request: WebhookRequest) -> StatusCallback | None:
        """A status callback; ``None`` for one we did not ask for (no outbox id in the URL)."""
        form = _clean_form(request.form)
        raw_status = form.get("MessageStatus") or form.get("SmsStatus") or ""
        missing = [key for key in ("MessageSid", "To") if not form.get(key)] + (
            [] if raw_status else ["MessageStatus"]
        )
        if missing:
            raise MalformedRequest(f"missing form field(s): {', '.join(missing)}")
        external_id = _message_sid(form["MessageSid"])
        recipient = _address("To", form["To"])
        outbox_id = parse_qs(urlsplit(request.url).query).get("o", [""])[0]
        status = _TWILIO_STATUS.get(raw_status)
        # Only ids we made come back in the URL; anything else is not a callback of ours.
        if not _OUTBOX_ID.fullmatch(outbox_id) or status is None:
            return None
        error_code = form.get("ErrorCode") or None
        if error_code is not None and not _ERROR_CODE.fullmatch(error_code):
            raise MalformedRequest("ErrorCode: a Twilio error code is a number of up to 10 digits")
        error_message = form.get("ErrorMessage", "")[:_MAX_ERROR_MESSAGE]
        return StatusCallback(
            receipt=DeliveryReceipt(
                outbox_id=outbox_id,
                channel=self.name,
                status=status,
                external_id=external_id,
                error_code=error_code,
                error_message=error_message or (f"Twilio error {error_code}" if error_code else None),
                raw=form,
            ),
            recipient=recipient,
        )

    def _sender(self) -> dict[str, str]:
        if self._messaging_service_sid:
            return {"messaging_service_sid": self._messaging_service_sid}
        return {"from_": self._from_number or ""}

    def _pace(self, text: str) -> None:
        if self._pacer is None:
            return
        bucket = f"sms:{self._messaging_service_sid or self._from_number}"
        wait = self._pacer.reserve([(bucket, self._segments_per_second)], cost=segments(text))
        if wait > 0:
            raise RateLimited("sender number busy (segments per second)", retry_after=wait)

    def send(self, message: OutboundMessage) -> DeliveryReceipt:
        if self._client is None:
            raise DeliveryFailed("TWILIO_ACCOUNT_SID is not set", permanent=True)
        self._pace(message.text)
        options = self._sender()
        if self._status_callback_url:
            # Our outbox id rides in the callback URL (Twilio signs it with the rest), so a
            # callback finds its message without a lookup, even before ``create`` returns.
            options["status_callback"] = f"{self._status_callback_url}?{urlencode({'o': message.outbox_id})}"
        try:
            created = self._client.messages.create(to=message.recipient, body=message.text, **options)
        except TwilioRestException as exc:
            raise _translate(exc) from exc
        except requests.ConnectTimeout as exc:
            raise DeliveryFailed(f"Twilio unreachable: {exc}", permanent=False) from exc
        except (TwilioException, requests.RequestException) as exc:
            # The request may have reached Twilio: the next attempt checks before resending.
            raise DeliveryFailed(f"no answer from Twilio: {exc}", permanent=False, unsure=True) from exc
        return DeliveryReceipt(
            outbox_id=message.outbox_id,
            channel=self.name,
            status=_TWILIO_STATUS.get(str(created.status), DeliveryStatus.QUEUED),
            external_id=str(created.sid),
        )

    def find_sent(self, message: OutboundMessage, since: datetime) -> DeliveryReceipt | None:
        """Twilio's Messages API has no idempotency key, so after a timeout we look: a message
        to the same number with the same text, created since the first attempt, is ours."""
        if self._client is None:
            return None
        filters: dict[str, Any] = {"to": message.recipient, "limit": 20}
        if not self._messaging_service_sid and self._from_number:
            filters["from_"] = self._from_number
        try:
            recent = self._client.messages.list(**filters)
        except TwilioRestException as exc:
            raise _translate(exc) from exc
        except (TwilioException, requests.RequestException) as exc:
            raise DeliveryFailed(f"Twilio unreachable: {exc}", permanent=False, unsure=True) from exc
        for sent in recent:
            created_at = sent.date_created
            if sent.body == message.text and (created_at is None or created_at >= since - _CLOCK_SLACK):
                return DeliveryReceipt(
                    outbox_id=message.outbox_id,
                    channel=self.name,
                    status=_TWILIO_STATUS.get(str(sent.status), DeliveryStatus.QUEUED),
                    external_id=str(sent.sid),
                )
        return None


def _translate(exc: TwilioRestException) -> ChannelError:
    """Twilio's error as ours: 429 slows down, 5xx is retried, other 4xx are final."""
    code = str(exc.code) if exc.code is not None else None
    if exc.status == 429:
        return RateLimited(f"Twilio rate limit: {exc.msg}", retry_after=1.0)
    return DeliveryFailed(
        f"Twilio refused the message: {exc.msg}", permanent=400 <= exc.status < 500, code=code
    )
