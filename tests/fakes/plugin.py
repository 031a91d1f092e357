"""Pytest fixtures for the provider stand-ins (register with ``pytest_plugins = ["tests.fakes.plugin"]``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes import telegram_api
from tests.fakes.smtp_server import smtp_implicit_tls_server, smtp_server, smtp_tls_server  # noqa: F401 (fixtures)
from tests.fakes.twilio_api import FakeTwilio, TwilioSpec, spec_missing_reason


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    """A started FakeTwilio (skips when Twilio's OpenAPI file is absent)."""
    reason = spec_missing_reason()
    if reason is not None:
        pytest.skip(reason)
    with FakeTwilio(TwilioSpec.load()) as fake:
        yield fake


@pytest.fixture
def fake_telegram() -> Iterator[telegram_api.FakeTelegram]:
    """A started FakeTelegram (skips when the Telegram Bot API description is absent)."""
    reason = telegram_api.spec_missing_reason()
    if reason is not None:
        pytest.skip(reason)
    with telegram_api.FakeTelegram(telegram_api.TelegramSpec.load()) as fake:
        yield fake
