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

__all__ = ["MAX_ENTRIES", "ONCE_TTL_SECONDS", "encode_entry", "encode_event"]

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
