"""Pytest fixtures for the provider stand-ins (register with ``pytest_plugins = ["tests.fakes.plugin"]``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.twilio_api import FakeTwilio, TwilioSpec, spec_missing_reason


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    """A started FakeTwilio (skips when Twilio's OpenAPI file is absent)."""
    reason = spec_missing_reason()
    if reason is not None:
        pytest.skip(reason)
    with FakeTwilio(TwilioSpec.load()) as fake:
        yield fake
