"""Reading a conversation in the console (``DeskReading``, part of ``bot.console.desk.Desk``): the
page's view of it (``ConversationView``), its history with each message's delivery status
(``HistoryLine``), and its audit entries.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from dataclasses import fields as dataclass_fields
from datetime import datetime, timedelta, timezone
from typing import Any

from bot.console.desk_base import DeskBase, DeskError, _mask
from bot.console.desk_replies import CANCELLED
from bot.console.handoff import Handoff, indexed_from_key
from bot.console.plans import StoredPlan
from bot.conversations.history import HistoryEntry
from bot.store.accounts import Account
from bot.store.addresses import AddressStatus

#: How many audit entries are searched for a conversation's hand-off changes written before
#: ``HandoffStore`` also wrote them to the conversation's own stream (``indexed_from_key``).
AUDIT_SCAN = 50_000
_AUDIT_CHUNK = 2_000
#: The most entries the audit page shows.
AUDIT_LIMIT = 5_000
#: How long the hand-off entries found only in the audit stream are kept per conversation.
AUDIT_BEFORE_INDEX_TTL = 7 * 24 * 3600


def _same(row: Mapping[str, str]) -> tuple[str, ...]:
    """What makes an audit entry the same one in both streams (not its id: each stream has its own)."""
    return tuple(row.get(name, "") for name in ("kind", "event", "by", "at"))


@dataclass(frozen=True)
class HistoryLine(HistoryEntry):
    """One line of a conversation's history (``HistoryEntry``) with, for what was sent to the
    person, its delivery status: ``queued``, ``sent``, ``delivered``, ``undelivered``,
    ``failed``, ``withheld`` (``rule`` says by what) or ``deferred`` (until ``until``)."""

    status: str = ""
    rule: str = ""
    #: Why it failed or was withheld, in words (the provider's or the gate's).
    error: str = ""
    until: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "status": self.status, "rule": self.rule, "error": self.error,
                "until": self.until.isoformat() if self.until else None}  # fmt: skip


@dataclass(frozen=True)
class ConversationView:
    """Everything the conversation page shows beside the history."""

    conversation_id: str
    handoff: Handoff
    account: Account | None
    #: The dialogue's ``verified`` slot; ``False`` when Rasa could not be asked (``verified_known``).
    verified: bool
    verified_known: bool
    #: Flags set on the account (``dispute``, ``vulnerable``...) -> ``{"at", "detail", "by"}``.
    flags: Mapping[str, Mapping[str, str]]
    #: Why it waits for a person: the hand-off's reasons, then the conversation's flags.
    reasons: tuple[str, ...]
    #: ``channel`` / ``language`` / ``contact_window`` (JSON as the dialogue stores it).
    preferences: Mapping[str, str]
    plans: tuple[Mapping[str, Any], ...]
    #: The channels a reply can go on -> the address, masked.
    channels: Mapping[str, str]
    #: Where a reply goes when the agent picks none (where the person last wrote, else their
    #: preferred channel, else the first one known); ``""`` when there is none.
    current_channel: str
    language: str
    #: Per channel: ``{"opted_out": bool, "wrong_party": bool, "unreachable": bool}``.
    address_status: Mapping[str, Mapping[str, bool]]
    #: When the person last wrote, and whether a reply now is inside the reply window (goes at
    #: any hour) or is contact the agent starts (contact hours apply).
    last_inbound_at: datetime | None = None
    in_reply_window: bool = False
    #: ``plans`` described, each with what became of it (active, or replaced by which and when).
    stored_plans: tuple[StoredPlan, ...] = ()


class DeskReading(DeskBase):
    """What the conversation page reads."""

    def view(self, conversation_id: str) -> ConversationView:
        self._check(conversation_id)
        handoff = self.handoff.get(conversation_id)
        facts = self._facts(conversation_id)
        account, state = facts.account, facts.state
        verified, known = self._verified(conversation_id)
        flags: dict[str, dict[str, str]] = {}
        preferences: dict[str, str] = {}
        for name, raw in state.items():
            if name.startswith(("pause:", "flag:")):
                try:
                    data = json.loads(raw)
                except ValueError:
                    data = {}
                data = data if isinstance(data, dict) else {}
                flags[name.split(":", 1)[1]] = {k: str(data.get(k) or "") for k in ("at", "detail", "by")}
            elif name.startswith("pref:"):
                preferences[name.removeprefix("pref:")] = raw
        conversation_flags = self.redis.hgetall(self.keys.conversation_flags(conversation_id))
        reasons = dict.fromkeys(handoff.reasons)
        for reason in sorted(conversation_flags, key=lambda r: float(conversation_flags[r] or 0)):
            reasons.setdefault(reason.decode(), None)
        addresses = self._addresses(conversation_id, account)
        statuses = {
            channel: self._status_flags(self.addresses.status(channel, address))
            for channel, address in addresses.items()
        }
        window = self.gate.rules_for(account).reply_window
        last = facts.last_inbound_at
        return ConversationView(
            conversation_id=conversation_id,
            handoff=handoff,
            account=account,
            verified=verified,
            verified_known=known,
            flags=flags,
            reasons=tuple(reasons),
            preferences=preferences,
            plans=tuple(self._plans(account)),
            stored_plans=tuple(self._stored_plans(account)),
            channels={channel: _mask(channel, address) for channel, address in addresses.items()},
            current_channel=self._current_channel(conversation_id, state, addresses),
            language=facts.language,
            address_status=statuses,
            last_inbound_at=last,
            in_reply_window=last is not None and timedelta(0) <= self.clock.now() - last <= window,
        )

    def history(self, conversation_id: str, after: str = "") -> list[HistoryLine]:
        """The conversation's history (after the entry ``after``), each message sent to the
        person with its delivery status."""
        self._check(conversation_id)
        if after and not re.match(r"^\d{1,20}-\d{1,20}$", after):
            raise DeskError("after must be a history entry id")
        entries = self.conversation_history.read(conversation_id, after=after)
        outs = [e for e in entries if e.direction == "out" and e.ref]
        pipe = self.redis.pipeline(transaction=False)
        for entry in outs:
            pipe.hgetall(self.keys.delivery(entry.ref))
            pipe.zscore(self.deferred_key, entry.ref)
        fetched = pipe.execute() if outs else []
        known: dict[str, tuple[dict[bytes, bytes], float | None]] = {}
        for i, entry in enumerate(outs):
            known[entry.ref] = (fetched[2 * i], fetched[2 * i + 1])
        return [self._line(entry, known.get(entry.ref)) for entry in entries]

    def audit(self, conversation_id: str, limit: int = 500) -> list[dict[str, str]]:
        """The audit entries about this conversation (the newest ``limit``), oldest first: its own
        audit stream, which holds the desk's entries and the hand-off's changes (claims,
        escalations, hand-backs...; ``HandoffStore`` writes them there too), and the hand-off's
        changes written before it did, which are only in the audit stream
        (``_handoffs_before_index``)."""
        self._check(conversation_id)
        limit = max(1, min(int(limit), AUDIT_LIMIT))
        found: list[tuple[float, str, dict[str, str]]] = []
        for entry_id, fields in self.redis.xrevrange(
            self.conversation_audit_key(conversation_id), count=limit
        ):
            row = {k.decode(): v.decode() for k, v in fields.items()}
            found.append((float(row.get("at") or 0), entry_id.decode(), row))
        older = self._handoffs_before_index(conversation_id)
        # Entries written while the index began can be in both: each is shown once.
        seen = {_same(row) for _, _, row in found}
        found.extend(item for item in older if _same(item[2]) not in seen)
        found.sort(key=lambda item: (item[0], item[1]))
        return [dict(row, id=entry_id) for _, entry_id, row in found[-limit:]]

    def _handoffs_before_index(self, conversation_id: str) -> list[tuple[float, str, dict[str, str]]]:
        """The conversation's hand-off entries that are only in the audit stream: those before
        ``indexed_from_key`` (all of them while it is not set), among the ``AUDIT_SCAN`` entries
        before it. They never change, so once it is set they are looked for once per conversation
        and kept (``AUDIT_BEFORE_INDEX_TTL``)."""
        marker = self.redis.get(indexed_from_key(self.keys))
        if marker is None:
            return self._scan_handoffs(conversation_id, "+")
        kept_key = self.keys.console("audit", "before_index", conversation_id)
        kept = self.redis.get(kept_key)
        if kept is not None:
            return [(float(row.get("at") or 0), row.get("id", ""), row) for row in json.loads(kept)]
        found = self._scan_handoffs(conversation_id, marker.decode())
        rows = [dict(row, id=entry_id) for _, entry_id, row in found]
        self.redis.set(kept_key, json.dumps(rows), ex=AUDIT_BEFORE_INDEX_TTL)
        return found

    def _scan_handoffs(self, conversation_id: str, before: str) -> list[tuple[float, str, dict[str, str]]]:
        """The conversation's hand-off entries among the ``AUDIT_SCAN`` audit entries before the
        id ``before`` (``+``: the newest), newest first, at most ``AUDIT_LIMIT``."""
        found: list[tuple[float, str, dict[str, str]]] = []
        last, scanned, wanted = before, 0, conversation_id.encode()
        while scanned < AUDIT_SCAN and len(found) < AUDIT_LIMIT:
            rows = self.redis.xrevrange(self.keys.audit, last, "-", count=_AUDIT_CHUNK)
            if last != "+" and rows and rows[0][0].decode() == last:
                rows = rows[1:]  # the id the range starts at: the marker, or the last chunk's end
            if not rows:
                break
            for entry_id, fields in rows:
                if fields.get(b"kind") == b"handoff" and fields.get(b"conversation_id") == wanted:
                    row = {k.decode(): v.decode() for k, v in fields.items()}
                    found.append((float(row.get("at") or 0), entry_id.decode(), row))
            scanned += len(rows)
            last = rows[-1][0].decode()
        return found

    def _plans(self, account: Account | None) -> Iterable[Mapping[str, Any]]:
        if account is None:
            return []
        ids = self.redis.lrange(self.keys.account_plans(account.account_id), 0, -1)
        if not ids:
            return []
        raw = self.redis.mget([self.keys.plan(plan_id.decode()) for plan_id in ids])
        plans = []
        for item in raw:
            if item is None:
                continue
            try:
                plans.append(json.loads(item))
            except ValueError:
                continue
        return plans

    @staticmethod
    def _status_flags(status: AddressStatus) -> dict[str, bool]:
        return {
            "opted_out": status.opted_out_at is not None,
            "wrong_party": status.wrong_party_at is not None,
            "unreachable": status.unreachable_at is not None,
        }

    def _line(
        self, entry: HistoryEntry, known: tuple[dict[bytes, bytes], float | None] | None
    ) -> HistoryLine:
        line = HistoryLine(**{f.name: getattr(entry, f.name) for f in dataclass_fields(HistoryEntry)})
        if entry.direction != "out" or known is None:
            return line
        record, deferred = known
        fields = {k.decode(): v.decode() for k, v in record.items()}
        status, code = fields.get("status", ""), fields.get("error_code", "")
        if code.startswith("compliance:"):
            return replace(line, status="withheld", rule=code.removeprefix("compliance:"),
                           error=fields.get("error_message", ""))  # fmt: skip
        if code == CANCELLED:
            return replace(line, status="cancelled", error=fields.get("error_message", ""))
        if code == "withheld":
            reason = fields.get("error_message", "")
            return replace(
                line, status="withheld", rule=reason.removeprefix("address ").strip(), error=reason
            )
        if status:
            return replace(line, status=status, error=fields.get("error_message", "") if code else "")
        if deferred is not None:
            return replace(line, status="deferred", until=datetime.fromtimestamp(deferred, timezone.utc))
        return replace(line, status="queued")
