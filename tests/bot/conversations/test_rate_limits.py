"""Send pacing through Redis: cost-aware, shared, never refusing a message forever."""

from __future__ import annotations

import time

import redis

from bot.conversations.rate_limits import RedisPacer
from bot.store.connection import Keys


def test_a_free_bucket_lets_a_message_go_and_then_makes_the_next_wait(
    redis_client: redis.Redis[bytes],
) -> None:
    pacer = RedisPacer(redis_client, Keys("debtbot"))
    assert pacer.reserve([("sms:+15005550006", 1.0)], cost=3) == 0
    wait = pacer.reserve([("sms:+15005550006", 1.0)], cost=1)
    assert 2.5 < wait <= 3.0  # three segments at one per second


def test_a_message_costing_more_than_one_second_of_budget_still_goes(
    redis_client: redis.Redis[bytes],
) -> None:
    pacer = RedisPacer(redis_client, Keys("debtbot"))
    assert pacer.reserve([("sms:a", 1.0)], cost=10) == 0


def test_buckets_are_independent(redis_client: redis.Redis[bytes]) -> None:
    pacer = RedisPacer(redis_client, Keys("debtbot"))
    assert pacer.reserve([("sms:a", 1.0)], cost=1) == 0
    assert pacer.reserve([("sms:b", 1.0)], cost=1) == 0


def test_two_pacers_share_the_same_budget(redis_client: redis.Redis[bytes], redis_url: str) -> None:
    first = RedisPacer(redis_client, Keys("debtbot"))
    second = RedisPacer(redis.Redis.from_url(redis_url), Keys("debtbot"))
    assert first.reserve([("sms:a", 2.0)], cost=1) == 0
    assert second.reserve([("sms:a", 2.0)], cost=1) > 0


def test_all_buckets_must_be_free_and_all_are_charged(redis_client: redis.Redis[bytes]) -> None:
    pacer = RedisPacer(redis_client, Keys("debtbot"))
    assert pacer.reserve([("chat:1", 1.0), ("bot", 30.0)], cost=1) == 0
    assert pacer.reserve([("chat:1", 1.0), ("bot", 30.0)], cost=1) > 0  # the chat is busy
    time.sleep(1 / 30 + 0.01)
    assert pacer.reserve([("chat:2", 1.0), ("bot", 30.0)], cost=1) == 0  # the bot is free again


def test_the_rate_holds_over_many_sends(redis_client: redis.Redis[bytes]) -> None:
    pacer = RedisPacer(redis_client, Keys("debtbot"))
    sent, started = 0, time.monotonic()
    while time.monotonic() - started < 1.0:
        wait = pacer.reserve([("sms:fast", 20.0)], cost=1)
        if wait == 0:
            sent += 1
        else:
            time.sleep(wait)
    assert 18 <= sent <= 22
