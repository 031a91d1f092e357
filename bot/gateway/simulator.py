"""The development simulator: write as a debtor, see the bot's replies.

It goes through the real path: the page asks the gateway to build a provider webhook,
signed exactly as the provider would sign it (with the sandbox's development secret), and
POSTs it over HTTP to the gateway's own webhook endpoint. Replies appear in the sandbox
outbox. Only registered when ``simulator.enabled`` and never in production.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Protocol
from urllib.parse import urlencode

import httpx
import redis
from flask import Blueprint, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from twilio.request_validator import RequestValidator

from bot.config import channel_modes
from bot.errors import InvalidRequest, NotFound
from bot.store.accounts import Account, AccountStore
from bot.store.connection import StoreParts
from channels.base import Channel
from channels.cleaning import UnsafeJson, clean_line, clean_text, loads_json
from channels.email import SIGNATURE_HEADER, sign
from channels.sandbox import SandboxOutbox
from channels.telegram import SECRET_HEADER


class SimulatorParts(StoreParts, Protocol):
    """What the simulator uses (the process's ``Services`` has it all)."""

    @property
    def accounts(self) -> AccountStore: ...

    @property
    def channels(self) -> Mapping[str, Channel]: ...

    @property
    def outbox(self) -> SandboxOutbox: ...


_STREAM_ID = re.compile(r"([0-9]{1,20})-([0-9]{1,20})")
_LIMIT = re.compile(r"[0-9]{1,4}")
#: Both halves of a Redis stream id are unsigned 64-bit numbers.
_MAX_STREAM_PART = 2**64 - 1
_LAST_STREAM_ID = f"{_MAX_STREAM_PART}-{_MAX_STREAM_PART}"
#: Redis's words for a stream id it refuses ("Invalid stream ID...", "invalid start ID...").
_REDIS_ID_ERROR = re.compile(r"\bID\b", re.IGNORECASE)
_MAX_ACCOUNT_ID = 64
#: The longest text the simulator sends: Telegram's limit, the strictest of the channels.
MAX_TEXT = 4096


def _json_object() -> dict[str, Any]:
    """The request's JSON object, read with bounded depth (never ``request.get_json``, whose
    parser recurses without limit)."""
    if not request.is_json:
        raise InvalidRequest("send JSON (Content-Type: application/json): {account_id, channel, text}")
    try:
        body = loads_json(request.get_data(cache=True))
    except UnsafeJson as exc:
        raise InvalidRequest(str(exc)) from exc
    if not isinstance(body, dict):
        raise InvalidRequest("send a JSON object: {account_id, channel, text}")
    return body


def _stream_id(value: str | None) -> str | None:
    """An outbox entry id (``1700000000000-0``) as Redis accepts it, or ``None``."""
    if value is None:
        return None
    match = _STREAM_ID.fullmatch(value)
    if match is None or any(int(part) > _MAX_STREAM_PART for part in match.groups()):
        raise InvalidRequest("after: an outbox entry_id such as 1700000000000-0")
    return value


@dataclass(frozen=True)
class SimulatedWebhook:
    """A provider request ready to send."""

    path: str
    body: bytes
    headers: dict[str, str]
    address: str


class WebhookPoster(Protocol):
    """Delivers a simulated webhook to the gateway; returns the HTTP status and body."""

    def post(self, webhook: SimulatedWebhook) -> tuple[int, str]: ...


class HttpWebhookPoster:
    """Posts over HTTP to the gateway itself (its bind address, not the public URL)."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self._base = base_url.rstrip("/")
        self._timeout = timeout

    def post(self, webhook: SimulatedWebhook) -> tuple[int, str]:
        answer = httpx.post(
            f"{self._base}{webhook.path}",
            content=webhook.body,
            headers=webhook.headers,
            timeout=self._timeout,
        )
        return answer.status_code, answer.text


def simulated_sms(
    account: Account, text: str, *, public_url: str, auth_token: str, to_number: str
) -> SimulatedWebhook:
    """A Twilio inbound-SMS webhook from the account's phone, signed like Twilio signs it."""
    if not account.phone:
        raise InvalidRequest(f"account {account.account_id} has no phone number")
    path = "/webhooks/sms"
    form = {
        "MessageSid": f"SM{uuid.uuid4().hex}",
        "SmsSid": "",
        "AccountSid": "AC" + "0" * 32,
        "From": account.phone,
        "To": to_number,
        "Body": text,
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsStatus": "received",
        "ApiVersion": "2010-04-01",
    }
    form["SmsSid"] = form["MessageSid"]
    signature = RequestValidator(auth_token).compute_signature(f"{public_url}{path}", form)
    return SimulatedWebhook(
        path=path,
        body=urlencode(form).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature},
        address=account.phone,
    )


def simulated_chat_id(account: Account) -> int:
    """A stable private-chat id for an account's simulated Telegram user."""
    return 10**9 + int(hashlib.sha256(account.account_id.encode()).hexdigest()[:8], 16) % 10**9


def simulated_telegram(account: Account, text: str, *, update_id: int, secret: str) -> SimulatedWebhook:
    """A Telegram Update with a private text message, with the webhook secret header."""
    if not account.telegram:
        raise InvalidRequest(f"account {account.account_id} has no Telegram handle")
    chat_id = simulated_chat_id(account)
    user = {"id": chat_id, "is_bot": False, "first_name": account.first_name, "username": account.telegram}
    update = {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": account.first_name},
            "from": user,
            "text": text,
        },
    }
    return SimulatedWebhook(
        path="/webhooks/telegram",
        body=json.dumps(update).encode(),
        headers={"Content-Type": "application/json", SECRET_HEADER: secret},
        address=str(chat_id),
    )


def simulated_email(account: Account, text: str, *, to_address: str, secret: str) -> SimulatedWebhook:
    """A raw email from the account's address, signed for ``POST /webhooks/email``."""
    if not account.email:
        raise InvalidRequest(f"account {account.account_id} has no email address")
    mail = EmailMessage()
    mail["From"] = f"{account.first_name} {account.last_name}".strip() + f" <{account.email}>"
    mail["To"] = to_address
    mail["Subject"] = "Re: simulator"
    mail["Message-ID"] = make_msgid(domain="simulator.invalid")
    mail["Date"] = formatdate(localtime=False)
    mail.set_content(text)
    body = bytes(mail)
    return SimulatedWebhook(
        path="/webhooks/email",
        body=body,
        headers={"Content-Type": "message/rfc822", SIGNATURE_HEADER: sign(secret, body)},
        address=account.email.lower(),
    )


def simulator_blueprint(services: SimulatorParts, poster: WebhookPoster) -> Blueprint:
    """``/simulator`` (page), ``/simulator/accounts``, ``/simulator/send``, ``/simulator/outbox``."""
    bp = Blueprint("simulator", __name__, template_folder="templates")
    config = services.config

    @bp.get("/simulator")
    def page() -> ResponseReturnValue:
        return render_template("simulator.html", channels=channel_modes(config))

    @bp.get("/simulator/accounts")
    def accounts() -> ResponseReturnValue:
        listing = []
        for account_id in services.accounts.ids():
            account = services.accounts.get(account_id)
            if account is None:
                continue
            listing.append(
                {
                    "account_id": account.account_id,
                    "name": f"{account.first_name} {account.last_name}".strip(),
                    "language": account.language,
                    "channels": [
                        c
                        for c, ok in (
                            ("sms", account.phone),
                            ("telegram", account.telegram),
                            ("email", account.email),
                        )
                        if ok
                    ],
                }
            )
        return jsonify(listing)

    @bp.post("/simulator/send")
    def send() -> ResponseReturnValue:
        body = _json_object()
        account_id, channel, text = body.get("account_id"), body.get("channel"), body.get("text")
        text = clean_text(text) if isinstance(text, str) else ""
        if not text.strip():
            raise InvalidRequest("text: write something to send")
        if len(text) > MAX_TEXT:
            raise InvalidRequest(f"text: at most {MAX_TEXT} characters")
        if not isinstance(channel, str) or channel not in services.channels:
            raise InvalidRequest(f"channel: one of {', '.join(sorted(services.channels))}")
        if account_id is not None and not isinstance(account_id, str):
            raise InvalidRequest("account_id: a string such as ACC-1001")
        account_id = clean_line(account_id or "")
        account = services.accounts.get(account_id) if 0 < len(account_id) <= _MAX_ACCOUNT_ID else None
        if account is None:
            raise NotFound(f"account {account_id[:_MAX_ACCOUNT_ID]!r} not found (import accounts first)")
        secrets = config.secrets
        if channel == "sms":
            webhook = simulated_sms(
                account,
                text,
                public_url=config.server.public_url,
                auth_token=secrets.twilio_auth_token or "",
                to_number=config.channels.sms.from_number or "",
            )
        elif channel == "email":
            webhook = simulated_email(
                account,
                text,
                to_address=config.channels.email.from_address,
                secret=secrets.email_webhook_secret,
            )
        else:
            update_id = int(services.redis.incr(f"{services.keys.prefix}:sandbox:telegram:update_id"))
            webhook = simulated_telegram(
                account, text, update_id=update_id, secret=secrets.telegram_webhook_secret or ""
            )
        status, answer = poster.post(webhook)
        return jsonify(
            {"webhook_status": status, "webhook_answer": answer[:500], "address": webhook.address}
        ), (202 if status == 200 else 502)

    @bp.get("/simulator/outbox")
    def outbox() -> ResponseReturnValue:
        after = _stream_id(request.args.get("after") or None)
        limit = request.args.get("limit", "100")
        if not _LIMIT.fullmatch(limit) or not 1 <= int(limit) <= 1000:
            raise InvalidRequest("limit: a whole number from 1 to 1000")
        if after == _LAST_STREAM_ID:
            return jsonify([])  # nothing can come after it (Redis refuses the exclusive range)
        try:
            entries = services.outbox.read(
                channel=request.args.get("channel") or None,
                recipient=request.args.get("recipient") or None,
                after=after,
                limit=int(limit),
            )
        except redis.ResponseError as exc:
            # Redis judges stream ids itself; one it refuses is the caller's mistake, not an outage.
            if _REDIS_ID_ERROR.search(str(exc)):
                raise InvalidRequest(f"after: Redis refused the id ({exc})") from exc
            raise
        return jsonify([entry.as_dict() for entry in entries])

    return bp
