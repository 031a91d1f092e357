"""A conversation's history: each thing once, in order, readable from a point on."""

from __future__ import annotations

import redis

from bot.conversations.history import ConversationHistory
from bot.store.connection import Keys
from bot.store.history_entries import encode_event


def _history(client: redis.Redis[bytes], now: list[float]) -> ConversationHistory:
    return ConversationHistory(client, Keys("test-history"), clock=lambda: now[0])


def test_messages_and_events_are_kept_in_order_each_once(redis_client: redis.Redis[bytes]) -> None:
    now = [1000.0]
    history = _history(redis_client, now)
    assert history.inbound("acct-1", source="sms:SM1", channel="sms", text="hi", address="+12025550143")
    assert not history.inbound("acct-1", source="sms:SM1", channel="sms", text="hi")  # a replay
    now[0] = 1001.0
    assert history.outbound("acct-1", outbox_id="o1", channel="sms", text="Hello!", by="bot")
    assert not history.outbound("acct-1", outbox_id="o1", channel="sms", text="Hello!")
    assert history.event("acct-1", "escalated", detail={"reason": "human"}, once="sms:SM1")
    assert not history.event("acct-1", "escalated", once="sms:SM1")
    assert history.event("acct-1", "note", by="agent:ana", text="called back")
    entries = history.read("acct-1")
    assert [(e.direction, e.kind, e.text, e.by) for e in entries] == [
        ("in", "text", "hi", ""),
        ("out", "reply", "Hello!", "bot"),
        ("event", "escalated", "", "system"),
        ("event", "note", "called back", "agent:ana"),
    ]
    assert entries[0].ref == "sms:SM1" and entries[0].at == 1000.0 and entries[1].ref == "o1"
    assert entries[2].detail == {"reason": "human"}
    assert "+12025550143" not in str([e.to_json() for e in entries])  # the address is kept apart
    assert [e.kind for e in history.read("acct-1", after=entries[1].id)] == ["escalated", "note"]


def test_where_the_person_last_wrote_from_is_kept_per_channel(redis_client: redis.Redis[bytes]) -> None:
    history = _history(redis_client, [1.0])
    assert history.contacts("anon-x") == ("", {})
    history.inbound("anon-x", source="sms:SM1", channel="sms", text="a", address="+12025550143")
    history.inbound("anon-x", source="telegram:9", channel="telegram", text="b", address="555")
    assert history.contacts("anon-x") == ("telegram", {"sms": "+12025550143", "telegram": "555"})


def test_a_message_without_a_conversation_is_not_kept(redis_client: redis.Redis[bytes]) -> None:
    history = _history(redis_client, [1.0])
    assert not history.inbound("", source="sms:SM1", channel="sms", text="hi")


def test_the_last_thing_the_person_wrote_is_found_on_any_channel_or_on_one(
    redis_client: redis.Redis[bytes],
) -> None:
    history = _history(redis_client, [1.0])
    assert history.last_inbound("acct-1") is None
    history.inbound("acct-1", source="email:<m1@x>", channel="email", text="by mail")
    history.inbound("acct-1", source="sms:SM1", channel="sms", text="by text")
    history.outbound("acct-1", outbox_id="o1", channel="sms", text="a reply")
    redis_client.xadd(Keys("test-history").conversation_history("acct-1"), {"entry": "not json"})
    last = history.last_inbound("acct-1")
    assert last is not None and (last.channel, last.text) == ("sms", "by text")
    by_mail = history.last_inbound("acct-1", channel="email")
    assert by_mail is not None and by_mail.ref == "email:<m1@x>"
    assert history.last_inbound("acct-1", scan=1) is None  # only the unreadable entry looked at


def test_an_event_in_a_transaction_is_written_with_it_and_only_once(redis_client: redis.Redis[bytes]) -> None:
    history = _history(redis_client, [7.0])
    keys = Keys("test-history")
    for attempt in range(2):  # the second run is a retried job: the fact again, the line not
        pipe = redis_client.pipeline(transaction=True)
        pipe.hset(keys.console("verified"), "acct-1", "1")
        assert history.event("acct-1", "verified", by="bot", once="sms:SM1", pipe=pipe)
        assert len(history.read("acct-1")) == attempt  # nothing before the transaction runs
        pipe.execute()
    [entry] = history.read("acct-1")
    assert (entry.kind, entry.by, entry.at) == ("verified", "bot", 7.0)
    assert redis_client.hget(keys.console("verified"), "acct-1") == b"1"


def test_a_line_written_below_the_conversations_reads_like_any_other(
    redis_client: redis.Redis[bytes],
) -> None:
    keys = Keys("test-history")
    line = encode_event(3.0, "escalated", text="asked for a person", detail={"reason": "asked_for_person"})
    redis_client.xadd(keys.conversation_history("acct-1"), {"entry": line})
    [entry] = _history(redis_client, [1.0]).read("acct-1")
    assert (entry.direction, entry.kind, entry.by, entry.text, entry.at) == (
        "event", "escalated", "system", "asked for a person", 3.0,
    )  # fmt: skip
    assert entry.detail == {"reason": "asked_for_person"}
