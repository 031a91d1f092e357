"""Flagging a conversation for a person: the console hears first, and a replay adds nothing."""

from __future__ import annotations

import pytest
import redis

from bot.store.agent_queue import AgentQueue
from bot.store.connection import Keys

KEYS = Keys("test-agents")


def test_a_flag_escalates_first_and_a_replay_neither_flags_nor_escalates_again(
    redis_client: redis.Redis[bytes],
) -> None:
    escalated: list[tuple[str, str]] = []
    queue = AgentQueue(redis_client, KEYS, clock=lambda: 5.0, escalate=lambda c, r: escalated.append((c, r)))
    assert queue.flag("acct-1", "dispute", account_id="1", detail="sms: not my debt", once="sms:SM1")
    assert not queue.flag("acct-1", "dispute", account_id="1", once="sms:SM1")
    assert escalated == [("acct-1", "dispute")]
    assert redis_client.xlen(KEYS.agent_queue) == 1
    assert redis_client.hgetall(KEYS.conversation_flags("acct-1")) == {b"dispute": b"5.0"}


def test_when_escalating_fails_nothing_is_marked_and_the_retry_does_both(
    redis_client: redis.Redis[bytes],
) -> None:
    calls: list[str] = []

    def escalate(conversation_id: str, reason: str) -> None:
        calls.append(reason)
        if len(calls) == 1:
            raise redis.ConnectionError("Redis went away")

    queue = AgentQueue(redis_client, KEYS, escalate=escalate)
    with pytest.raises(redis.ConnectionError):
        queue.flag("acct-1", "human", once="sms:SM2")
    assert redis_client.xlen(KEYS.agent_queue) == 0
    assert queue.flag("acct-1", "human", once="sms:SM2")  # the message's retry
    assert calls == ["human", "human"] and redis_client.xlen(KEYS.agent_queue) == 1
