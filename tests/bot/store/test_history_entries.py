"""A hash field and its history line: written together, the line only when the field is new."""

from __future__ import annotations

import json

import redis

from bot.store.history_entries import FieldWithLine, encode_event


def _lines(client: redis.Redis[bytes]) -> list[str]:
    return [json.loads(fields[b"entry"])["text"] for _, fields in client.xrange("h")]


def test_the_line_comes_with_a_new_field_only(redis_client: redis.Redis[bytes]) -> None:
    write = FieldWithLine(redis_client)
    assert write("s", "pause:dispute", "first", "h", encode_event(1.0, "collection_paused", text="one"),
                 overwrite=True) is True  # fmt: skip
    assert write("s", "pause:dispute", "second", "h", encode_event(2.0, "collection_paused", text="two"),
                 overwrite=True) is False  # fmt: skip
    assert _lines(redis_client) == ["one"]
    assert redis_client.hget("s", "pause:dispute") == b"second"  # overwritten: the latest stands


def test_without_overwrite_the_first_value_stays(redis_client: redis.Redis[bytes]) -> None:
    write = FieldWithLine(redis_client)
    write(
        "s", "pause:crisis", "began", "h", encode_event(1.0, "collection_paused", text="one"), overwrite=False
    )
    write(
        "s", "pause:crisis", "later", "h", encode_event(2.0, "collection_paused", text="two"), overwrite=False
    )
    assert redis_client.hget("s", "pause:crisis") == b"began"
    assert _lines(redis_client) == ["one"]
