"""Helpers several test modules share."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Flask
from twilio.request_validator import RequestValidator

from bot.gateway.simulator import SimulatedWebhook


class InProcessPoster:
    """Delivers simulated webhooks to an app over its WSGI interface (no server needed)."""

    def __init__(self) -> None:
        self.app: Flask | None = None
        self.sent: list[SimulatedWebhook] = []

    def post(self, webhook: SimulatedWebhook) -> tuple[int, str]:
        assert self.app is not None, "set poster.app first"
        self.sent.append(webhook)
        answer = self.app.test_client().post(webhook.path, data=webhook.body, headers=webhook.headers)
        return answer.status_code, answer.get_data(as_text=True)


def signed_sms(form: dict[str, str], *, url: str, token: str) -> tuple[bytes, dict[str, str]]:
    """A Twilio form post body and headers, signed with Twilio's own algorithm."""
    signature = RequestValidator(token).compute_signature(url, form)
    return urlencode(form).encode(), {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": signature,
    }
