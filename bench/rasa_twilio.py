"""Rasa's own Twilio connector for ``bench.e2e``, changed only where a benchmark must.

Loaded by the Rasa server from the benchmark's credentials file
(``bench.rasa_twilio.StandInTwilioInput``). Everything Rasa 3.6's ``twilio`` channel does is
kept (no signature check; the replies sent from inside the webhook, each with a blocking
``messages.create`` on a new Twilio client), except two things:

- the Twilio REST API is the local stand-in at ``api_base_url`` instead of api.twilio.com;
- the message carries the metadata our worker sends (the account, the channel), which the
  stock connector cannot know, so the dialogue takes the same path as with the others.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from rasa.core.channels.channel import InputChannel, OutputChannel
from rasa.core.channels.twilio import TwilioInput, TwilioOutput
from sanic.request import Request
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response

_TWILIO_API_HOST = "api.twilio.com"


class _Rebased(TwilioHttpClient):  # type: ignore[misc]
    """Twilio's own HTTP client, its requests sent to another host."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        parts = urlsplit(base_url)
        self._scheme, self._netloc = parts.scheme, parts.netloc

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        parts = urlsplit(url)
        if parts.netloc == _TWILIO_API_HOST:
            url = urlunsplit((self._scheme, self._netloc, parts.path, parts.query, ""))
        return super().request(method, url, *args, **kwargs)


class StandInTwilioInput(TwilioInput):
    """Rasa's ``twilio`` channel (same name, same route) against the local stand-in."""

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        if not credentials:
            cls.raise_missing_credentials_exception()
        assert credentials is not None
        channel = cls(
            credentials.get("account_sid"), credentials.get("auth_token"), credentials.get("twilio_number")
        )
        channel.api_base_url = str(credentials["api_base_url"])
        # phone -> account id, written by the benchmark before Rasa starts.
        channel.accounts = json.loads(Path(credentials["accounts_file"]).read_text(encoding="utf-8"))
        return channel

    api_base_url: str = "https://api.twilio.com"
    accounts: dict[str, str] = {}  # noqa: RUF012 - replaced per instance in from_credentials

    def get_metadata(self, request: Request) -> dict[str, Any] | None:
        """What the worker sends with each message (bot/conversations/inbound_steps.py)."""
        phone = str(request.form.get("From") or "")
        return {
            "channel": "sms",
            "account_id": self.accounts.get(phone),
            "language": "en",
            "external_id": request.form.get("MessageSid"),
            "address": phone,
            "screen": {"concerns": [], "distress": False},
        }

    def get_output_channel(self) -> OutputChannel:
        output = TwilioOutput(self.account_sid, self.auth_token, self.twilio_number)
        output.http_client = _Rebased(self.api_base_url)  # a new one per message, as Rasa's
        return output
