"""Flagging a conversation for a person: the console hears first, and a replay adds nothing."""

from __future__ import annotations

import json

import pytest
import redis

from bot.store.agent_queue import AgentQueue, reason_in_words
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
    assert redis_client.xlen(KEYS.conversation_history("acct-1")) == 0
    assert queue.flag("acct-1", "human", once="sms:SM2")  # the message's retry
    assert calls == ["human", "human"] and redis_client.xlen(KEYS.agent_queue) == 1
    assert redis_client.xlen(KEYS.conversation_history("acct-1")) == 1  # its history line, once


def test_a_flag_is_an_escalated_line_in_the_history_with_the_reason_in_words_once(
    redis_client: redis.Redis[bytes],
) -> None:
    queue = AgentQueue(redis_client, KEYS, clock=lambda: 5.0)
    for _ in range(2):  # the second is a replay of the same message
        queue.flag(
            "acct-1", "asked_for_person", account_id="1", detail="sms: a person please", once="sms:SM1"
        )
    queue.flag("acct-1", "verification_failed", account_id="1", detail="3 wrong answers", once="sms:SM2")
    queue.flag("acct-1", "vulnerable:mental_health", account_id="1", detail="sms: ...", once="sms:SM3")
    lines = [
        json.loads(fields[b"entry"]) for _, fields in redis_client.xrange(KEYS.conversation_history("acct-1"))
    ]
    assert [(line["direction"], line["kind"], line["by"], line["text"]) for line in lines] == [
        ("event", "escalated", "system", "asked for a person"),
        ("event", "escalated", "system", "failed the verification check (3 wrong answers)"),
        ("event", "escalated", "system", "a sign of vulnerability: mental health"),
    ]
    assert lines[0]["at"] == 5.0 and lines[0]["detail"] == {
        "reason": "asked_for_person",
        "detail": "sms: a person please",
    }


@pytest.mark.parametrize(
    ("reason", "words"),
    [("crisis", "a sign of crisis"), ("dispute", "disputes the debt"), ("payment_claimed", "says they have paid"),
     ("wrote_after_opted_out", "wrote after opting out"), ("something_new", "something new")],
)  # fmt: skip
def test_each_reason_reads_in_words(reason: str, words: str) -> None:
    assert reason_in_words(reason) == words
