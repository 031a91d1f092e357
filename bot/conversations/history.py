"""Each conversation's history, across channels and sessions: what the person wrote, what the
bot and agents queued for them, and what happened (escalated, claimed, verified, plan created,
flags). The agents' console shows it, with each sent message's delivery status beside it
(``DeliveryLog``, by outbox id).

One Redis stream per conversation (``conversation:<id>:history``). Every entry is written once
per its own id (the inbound message's ``<channel>:<provider id>``, the outbox id, or the event's
``once``): a replayed step adds nothing, so a kill between recording and acting never shows a
message twice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.client import Pipeline

from bot.store.connection import Keys
from bot.store.history_entries import MAX_ENTRIES, ONCE_TTL_SECONDS, encode_entry

__all__ = ["MAX_ENTRIES", "ONCE_TTL_SECONDS", "ConversationHistory", "HistoryEntry"]

# The marker and the entry together or not at all.
_APPEND_ONCE = """
if ARGV[1] ~= '' then
  if redis.call('SET', ARGV[1], '1', 'NX', 'EX', ARGV[2]) == false then return false end
end
return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'entry', ARGV[4])
"""


@dataclass(frozen=True)
class HistoryEntry:
    """One line of a conversation's history.

    ``direction``: ``in`` (the person wrote), ``out`` (queued for the person: ``by`` is ``bot``
    or ``agent:<name>``), ``event`` (something happened: ``kind`` says what).
    """

    id: str
    at: float
    direction: str
    kind: str
    channel: str = ""
    text: str = ""
    by: str = ""
    #: ``in``: the message's ``<channel>:<provider id>``; ``out``: the outbox id.
    ref: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "at": self.at, "direction": self.direction, "kind": self.kind,
            "channel": self.channel, "text": self.text, "by": self.by, "ref": self.ref,
            "detail": dict(self.detail),
        }  # fmt: skip


class ConversationHistory:
    """Appends to and reads each conversation's history."""

    def __init__(
        self, client: redis.Redis[bytes], keys: Keys, clock: Callable[[], float] = time.time
    ) -> None:
        self._redis = client
        self._keys = keys
        self._clock = clock
        self._append = client.register_script(_APPEND_ONCE)

    def inbound(
        self,
        conversation_id: str,
        *,
        source: str,
        channel: str,
        text: str,
        kind: str = "text",
        address: str = "",
        detail: Mapping[str, Any] | None = None,
    ) -> bool:
        """The person wrote ``text`` (``source``: ``<channel>:<provider id>``) from ``address``
        (kept apart, in :meth:`contacts`, never in the entry: the console masks it)."""
        if address and conversation_id:
            self._redis.hset(
                self._keys.conversation_contacts(conversation_id),
                mapping={channel: address, "_last": channel},
            )
        return self._add(conversation_id, f"in:{source}", direction="in", kind=kind, channel=channel,
                         text=text, ref=source, detail=detail)  # fmt: skip

    def outbound(
        self, conversation_id: str, *, outbox_id: str, channel: str, text: str, kind: str = "reply",
        by: str = "bot", detail: Mapping[str, Any] | None = None,
    ) -> bool:  # fmt: skip
        """A message queued for the person (``by``: ``bot`` or ``agent:<name>``)."""
        return self._add(conversation_id, f"out:{outbox_id}", direction="out", kind=kind, channel=channel,
                         text=text, by=by, ref=outbox_id, detail=detail)  # fmt: skip

    def event(
        self, conversation_id: str, kind: str, *, by: str = "system", text: str = "",
        detail: Mapping[str, Any] | None = None, once: str = "", pipe: Pipeline[bytes] | None = None,
    ) -> bool:  # fmt: skip
        """Something happened (``escalated``, ``claimed``, ``plan_created``, ``flag_set``, ``note``...);
        with ``once``, a second call with the same ``once`` adds nothing.

        With ``pipe`` (a ``MULTI`` pipeline) the line is written with the rest of that pipeline,
        when it executes (the fact and its line together or not at all); the call then returns
        ``True`` without knowing whether ``once`` let it through."""
        return self._add(conversation_id, f"event:{kind}:{once}" if once else "", direction="event",
                         kind=kind, by=by, text=text, detail=detail, pipe=pipe)  # fmt: skip

    def contacts(self, conversation_id: str) -> tuple[str, dict[str, str]]:
        """Where the person last wrote from (the channel) and their address on each channel:
        where an agent's reply goes when the conversation has no account to look it up in."""
        raw = {k.decode(): v.decode() for k, v in self._redis.hgetall(
            self._keys.conversation_contacts(conversation_id)).items()}  # fmt: skip
        last = raw.pop("_last", "")
        return last, raw

    def last_inbound(
        self, conversation_id: str, *, channel: str = "", scan: int = 200
    ) -> HistoryEntry | None:
        """What the person last wrote (on ``channel``, when given), if among the last ``scan``
        entries; an unreadable entry is passed over."""
        rows = self._redis.xrevrange(self._keys.conversation_history(conversation_id), count=scan)
        for raw_id, fields in rows:
            try:
                entry = _entry(raw_id.decode(), fields)
            except (KeyError, ValueError):
                continue
            if entry.direction == "in" and (not channel or entry.channel == channel):
                return entry
        return None

    def read(self, conversation_id: str, *, after: str = "", count: int = 1000) -> list[HistoryEntry]:
        """The history, oldest first; ``after`` an entry id: only what came after it."""
        start = f"({after}" if after else "-"
        rows = self._redis.xrange(self._keys.conversation_history(conversation_id), start, "+", count=count)
        return [_entry(raw_id.decode(), fields) for raw_id, fields in rows]

    def _add(
        self, conversation_id: str, once: str, pipe: Pipeline[bytes] | None = None, **fields: Any
    ) -> bool:
        if not conversation_id:
            return False
        marker = self._keys.dedupe("history", f"{conversation_id}:{once}") if once else ""
        added = self._append(
            keys=[self._keys.conversation_history(conversation_id)],
            args=[marker, ONCE_TTL_SECONDS, MAX_ENTRIES, encode_entry(self._clock(), **fields)],
            client=pipe,
        )
        return True if pipe is not None else bool(added)


def _entry(entry_id: str, fields: Mapping[bytes, bytes]) -> HistoryEntry:
    data = json.loads(fields[b"entry"])
    return HistoryEntry(
        id=entry_id, at=float(data.get("at", 0)), direction=data.get("direction", "event"),
        kind=data.get("kind", ""), channel=data.get("channel", ""), text=data.get("text", ""),
        by=data.get("by", ""), ref=data.get("ref", ""), detail=data.get("detail") or {},
    )  # fmt: skip
