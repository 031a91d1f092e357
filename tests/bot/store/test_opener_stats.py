"""Retired opener wordings: ops switch a wording off and on; each change is kept in the audit with
who, when and why, once however often it is asked for."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import redis

from bot.clock import Clock
from bot.errors import InvalidRequest
from bot.store.connection import Keys
from bot.store.opener_stats import RetiredOpeners

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)


@pytest.fixture
def keys() -> Keys:
    return Keys("test")


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def openers(redis_client: redis.Redis, keys: Keys, clock: Clock) -> RetiredOpeners:
    return RetiredOpeners(redis_client, keys, clock)


def audit(client: redis.Redis, keys: Keys) -> list[dict[str, str]]:
    return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in client.xrange(keys.audit)]


def test_a_retired_wording_is_listed_with_who_when_and_why_and_audited(
    openers: RetiredOpeners, redis_client: redis.Redis, keys: Keys
) -> None:
    assert openers.retired() == frozenset()
    assert openers.retire("es", "warm", "olga", "  reads as   pushy in Spanish ")
    assert openers.retired() == {"es:warm"}
    retirement = openers.retirements()["es:warm"]
    assert (retirement.by, retirement.at, retirement.reason) == ("olga", T0, "reads as pushy in Spanish")
    [entry] = audit(redis_client, keys)
    assert entry == {
        "kind": "ops:opener_retired", "by": "olga", "language": "es", "variant": "warm", "wording": "es:warm",
        "reason": "reads as pushy in Spanish", "at": repr(T0.timestamp()),
    }  # fmt: skip


def test_retiring_twice_changes_nothing_and_audits_once(
    openers: RetiredOpeners, redis_client: redis.Redis, keys: Keys, clock: Clock
) -> None:
    assert openers.retire("en", "plain", "olga", "too long")
    clock.advance(timedelta(hours=1))
    assert not openers.retire("en", "plain", "sue", "another reason")
    assert openers.retirements()["en:plain"].by == "olga"
    assert len(audit(redis_client, keys)) == 1


def test_a_restored_wording_is_back_in_use_and_the_restoration_audited(
    openers: RetiredOpeners, redis_client: redis.Redis, keys: Keys
) -> None:
    openers.retire("en", "plain", "olga", "too long")
    openers.retire("en", "warm", "olga", "testing")
    assert openers.restore("en", "plain", "sue", "shortened in config")
    assert not openers.restore("en", "plain", "sue")  # not retired any more: nothing to audit
    assert openers.retired() == {"en:warm"}
    kinds = [(entry["kind"], entry["wording"], entry["by"]) for entry in audit(redis_client, keys)]
    assert kinds == [
        ("ops:opener_retired", "en:plain", "olga"),
        ("ops:opener_retired", "en:warm", "olga"),
        ("ops:opener_restored", "en:plain", "sue"),
    ]


@pytest.mark.parametrize(
    ("language", "variant", "by", "reason", "message"),
    [
        ("english", "warm", "olga", "x", "language must be a two-letter code"),
        ("en", "Warm!", "olga", "x", "the wording id must be"),
        ("en", "warm", " ", "x", "say who retires"),
        ("en", "warm", "olga", "   ", "give a reason"),
        ("en", "warm", "olga", "x" * 301, "at most 300 characters"),
    ],
)
def test_a_bad_retirement_is_refused_and_changes_nothing(
    openers: RetiredOpeners, redis_client: redis.Redis, keys: Keys,
    language: str, variant: str, by: str, reason: str, message: str,
) -> None:  # fmt: skip
    with pytest.raises(InvalidRequest, match=message):
        openers.retire(language, variant, by, reason)
    assert openers.retired() == frozenset() and audit(redis_client, keys) == []


def test_retirements_live_under_the_deployments_own_prefix(redis_client: redis.Redis, clock: Clock) -> None:
    RetiredOpeners(redis_client, Keys("one"), clock).retire("en", "warm", "olga", "x")
    assert RetiredOpeners(redis_client, Keys("two"), clock).retired() == frozenset()
