"""The Rasa input channel the worker talks to (loaded by the Rasa server from credentials.yml).

It differs from Rasa's stock REST channel in three ways, all so that no message is lost:
- it requires the same token as Rasa's HTTP API (the stock channel is open to anyone);
- it answers 503 when the action server is down, instead of letting Rasa skip the custom
  actions and answer as if nothing happened, so the worker keeps the message and retries;
- it answers 503 when handling fails, instead of 200 with whatever was collected.
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

logger = logging.getLogger(__name__)

#: Where the action server answers health checks (from the environment set by the launcher).
ACTIONS_URL_ENV = "DEBTBOT_ACTIONS_URL"


class _ChannelCollector(CollectingOutputChannel):
    """Collects the replies under the person's channel name, so responses in the domain can
    have channel variants (``channel: email`` gets the longer wording)."""

    def __init__(self, channel: str) -> None:
        super().__init__()
        self._channel = channel

    def name(self) -> str:
        return self._channel


class DebtbotInput(InputChannel):
    """``POST /webhooks/debtbot/webhook`` with ``{sender, message, input_channel, metadata}``."""

    @classmethod
    def name(cls) -> str:
        return "debtbot"

    def __init__(self, token: str, actions_url: str | None = None) -> None:
        if not token:
            raise ValueError("the debtbot channel needs a token (RASA_AUTH_TOKEN)")
        self._token = token
        self._actions_url = (actions_url or os.environ.get(ACTIONS_URL_ENV, "")).rstrip("/")

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> DebtbotInput:
        credentials = credentials or {}
        return cls(token=str(credentials.get("token", "")), actions_url=credentials.get("actions_url"))

    def _authorised(self, request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        given = header[len("Bearer ") :] if header.startswith("Bearer ") else ""
        return hmac.compare_digest(given.encode(), self._token.encode())

    async def _actions_up(self) -> bool:
        if not self._actions_url:
            return True
        try:
            timeout = aiohttp.ClientTimeout(total=3)
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(f"{self._actions_url}/health") as answer,
            ):
                return answer.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = Blueprint("debtbot_webhook", __name__)

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            if not self._authorised(request):
                return response.json({"error": "missing or wrong bearer token"}, status=401)
            body = request.json if isinstance(request.json, dict) else {}
            sender = body.get("sender")
            text = body.get("message")
            if not isinstance(sender, str) or not sender or not isinstance(text, str):
                return response.json({"error": "sender and message are required strings"}, status=400)
            if not await self._actions_up():
                return response.json({"error": "action server unavailable"}, status=503)
            input_channel = str(body.get("input_channel") or self.name())
            collector = _ChannelCollector(input_channel)
            try:
                await on_new_message(
                    UserMessage(
                        text,
                        collector,
                        sender,
                        input_channel=input_channel,
                        metadata=body.get("metadata") or {},
                    )
                )
            except Exception as exc:
                logger.exception("debtbot channel: handling a message failed")
                return response.json({"error": f"handling failed: {type(exc).__name__}"}, status=503)
            return response.json(collector.messages)

        return webhook
