"""Deep-link tokens: unguessable, single-use, expiring, stored only as a hash."""

from __future__ import annotations

import time

import redis

from bot.store.connection import Keys
from bot.telegram.links import TelegramLinks, deep_link


def test_a_token_links_the_chat_to_the_account_once(redis_client: redis.Redis[bytes]) -> None:
    links = TelegramLinks(redis_client, Keys("debtbot"), ttl_seconds=3600)
    token = links.issue("ACC-1002")
    assert links.redeem(token, "4242") == "ACC-1002"
    assert links.account_for("4242") == "ACC-1002" and links.chat_for("ACC-1002") == "4242"
    assert links.redeem(token, "9999") is None  # used
    assert links.account_for("9999") is None


def test_tokens_are_unguessable_and_fit_telegram(redis_client: redis.Redis[bytes]) -> None:
    links = TelegramLinks(redis_client, Keys("debtbot"), ttl_seconds=3600)
    tokens = {links.issue("ACC-1") for _ in range(50)}
    assert len(tokens) == 50
    assert all(len(t) == 32 and t.replace("-", "").replace("_", "").isalnum() for t in tokens)
    stored = b" ".join(redis_client.keys("*"))
    assert not any(t.encode() in stored for t in tokens)  # only hashes are kept


def test_an_expired_or_unknown_token_links_nothing(redis_client: redis.Redis[bytes]) -> None:
    links = TelegramLinks(redis_client, Keys("debtbot"), ttl_seconds=1)
    token = links.issue("ACC-1")
    time.sleep(1.2)
    assert links.redeem(token, "1") is None
    assert links.redeem("made-up", "1") is None
    assert links.redeem("x" * 65, "1") is None


def test_the_deep_link_is_telegrams_start_link() -> None:
    assert deep_link("northwind_help_bot", "abc") == "https://t.me/northwind_help_bot?start=abc"
