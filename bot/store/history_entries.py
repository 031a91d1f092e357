"""The shape of a conversation's history entries (``conversation:<id>:history``, one Redis stream
per conversation; ``bot.conversations.history.ConversationHistory`` reads and writes it).

It lives here, below the conversations, so that what records a fact in ``bot.store`` or
``bot.care`` (the agents' queue, the crisis desk) can add the history's event line in the same
script as the fact itself: a kill between the two then loses neither, and a replay writes neither
twice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import redis

__all__ = ["MAX_ENTRIES", "ONCE_TTL_SECONDS", "FieldWithLine", "encode_entry", "encode_event"]

#: Entries kept per conversation (the oldest go first).
MAX_ENTRIES = 5_000
#: How long "written once" markers live: longer than any retry or replay.
ONCE_TTL_SECONDS = 7 * 24 * 3600


def encode_entry(at: float, **fields: Any) -> str:
    """One entry's ``entry`` field: the moment and the non-empty fields (``direction``, ``kind``,
    ``channel``, ``text``, ``by``, ``ref``, ``detail``), as JSON."""
    return json.dumps({"at": at, **{k: v for k, v in fields.items() if v}}, ensure_ascii=False)


def encode_event(
    at: float, kind: str, *, by: str = "system", text: str = "", detail: Mapping[str, Any] | None = None
) -> str:
    """An event line (``direction`` ``event``): something happened (``escalated``, ``verified``...)."""
    return encode_entry(at, direction="event", kind=kind, by=by, text=text, detail=dict(detail or {}))


# A hash field and the history line that announces it: the line only when the field is new (a
# replay, or the same fact again, adds none). ARGV[5] '1': the field takes the new value even when
# it was there; '0': the first value stays (HSETNX).
_FIELD_WITH_LINE = """
local existed = redis.call('HEXISTS', KEYS[1], ARGV[1])
if existed == 0 or ARGV[5] == '1' then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
if existed == 1 then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'entry', ARGV[4])
return 1
"""


class FieldWithLine:
    """Sets a hash field (e.g. a ``pause:<reason>`` on an account's state) and, when the field is
    new, appends its history line, in one script: a kill between the two loses neither."""

    def __init__(self, client: redis.Redis[bytes]) -> None:
        self._script = client.register_script(_FIELD_WITH_LINE)

    def __call__(
        self, hash_key: str, field: str, value: str, history_key: str, line: str, *, overwrite: bool
    ) -> bool:
        """``True`` when the field was new (and the line written); ``overwrite``: a field that was
        there takes ``value`` too (else it keeps its first value)."""
        args = [field, value, MAX_ENTRIES, line, "1" if overwrite else "0"]
        return bool(self._script(keys=[hash_key, history_key], args=args))
