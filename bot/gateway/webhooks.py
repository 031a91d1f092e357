"""Provider webhooks: authenticate, parse, de-duplicate, store, answer fast. No Rasa here."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Protocol

from flask import Blueprint, Request, Response, request

from bot.compliance.keywords import SmsKeywords
from bot.config import Config
from bot.conversations.deliveries import DeliveryLog
from bot.email.intake import EmailIntake
from bot.errors import NotFound
from bot.store.intake import InboundIntake
from channels.base import Channel, MalformedRequest, UnsupportedCapability, WebhookRequest


class WebhookParts(Protocol):
    """What the webhooks use (the process's ``Services`` has it all)."""

    @property
    def config(self) -> Config: ...

    @property
    def channels(self) -> Mapping[str, Channel]: ...

    @property
    def keywords(self) -> SmsKeywords: ...

    @property
    def intake(self) -> InboundIntake: ...

    @property
    def email_intake(self) -> EmailIntake | None: ...

    @property
    def deliveries(self) -> DeliveryLog: ...


logger = logging.getLogger(__name__)


def webhook_request(req: Request, public_url: str) -> WebhookRequest:
    """The neutral request, with the URL as the provider called it.

    Providers sign the public URL (``server.public_url`` + path + query string exactly as
    sent), not what Flask sees behind a proxy, so that is what we rebuild.
    """
    raw_uri = req.environ.get("RAW_URI") or req.environ.get("REQUEST_URI")
    if not raw_uri:
        query = req.query_string.decode("latin-1")
        raw_uri = req.path + (f"?{query}" if query else "")
    return WebhookRequest(
        method=req.method,
        url=f"{public_url}{raw_uri}",
        headers=dict(req.headers.items()),
        body=req.get_data(cache=True),
        form={key: req.form.get(key, "") for key in req.form},
    )


def webhooks_blueprint(services: WebhookParts) -> Blueprint:
    """``POST /webhooks/<channel>`` for every enabled channel."""
    bp = Blueprint("webhooks", __name__)
    public_url = services.config.server.public_url

    def enabled(channel_name: str) -> Channel:
        channel = services.channels.get(channel_name)
        if channel is None:
            raise NotFound(f"no enabled channel called {channel_name!r}")
        return channel

    @bp.post("/webhooks/email")
    def receive_email() -> Response:
        # Raw mail: authenticate, then parse and queue, or set aside what cannot be read.
        channel = enabled("email")
        intake = services.email_intake
        if intake is None:
            raise NotFound("email is not enabled")
        # Mail is bigger than other webhooks; the configured cap applies to this route only.
        request.max_content_length = intake.channel.max_message_bytes
        incoming = webhook_request(request, public_url)
        channel.authenticate(incoming)
        content_type = (incoming.header("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "message/rfc822":
            raise MalformedRequest(f"Content-Type must be message/rfc822 (got {content_type or 'none'!r})")
        if not incoming.body.strip():
            raise MalformedRequest("the body is empty: send the raw message (RFC 5322)")
        outcome = intake.receive(incoming.body)
        body: dict[str, object] = {"ok": outcome.status != "set_aside", "status": outcome.status}
        if outcome.status == "set_aside":
            # Kept for an agent: the provider must not retry it, so this is not an error status.
            body.update(dead_letter=outcome.reference, reason=outcome.reason)
        else:
            body["message_id"] = outcome.reference
        return Response(json.dumps(body), status=200, content_type="application/json")

    @bp.post("/webhooks/<channel_name>")
    def receive(channel_name: str) -> Response:
        channel = enabled(channel_name)
        incoming = webhook_request(request, public_url)
        channel.authenticate(incoming)
        message = channel.parse(incoming)
        if message is not None:
            # STOP takes effect before anything is queued, so nothing more can go out.
            services.keywords.on_receive(message)
            services.intake.accept(message)
        ack = channel.ack()
        return Response(ack.body, status=ack.status, content_type=ack.content_type)

    @bp.post("/webhooks/<channel_name>/status")
    def status(channel_name: str) -> Response:
        channel = enabled(channel_name)
        incoming = webhook_request(request, public_url)
        channel.authenticate(incoming)
        try:
            callback = channel.parse_status(incoming)
        except UnsupportedCapability as exc:
            raise NotFound(str(exc)) from exc
        if callback is None:
            logger.info("%s status callback for a message we did not send; ignored", channel_name)
        else:
            services.deliveries.apply(callback.receipt, callback.recipient)
        return Response(status=204)

    return bp
