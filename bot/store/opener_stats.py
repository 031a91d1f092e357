"""Outcomes per opener wording (A/B): sent, then replied, verified and plan, once per opener; and
the wordings ops have retired (``RetiredOpeners``).

Store-level because three parts record into it: outreach (sent), the inbound handler (replied)
and the dialogue backend (verified, plan); the retired wordings are read by outreach and changed
from the ops console.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone

import redis

from bot.clock import Clock
from bot.config import Config
from bot.errors import InvalidRequest
from bot.store.connection import Keys

#: Outcomes counted per opener wording.
OUTCOMES = ("sent", "replied", "verified", "plan")


class OpenerStats:
    """Outcomes per opener wording, counted once per account per opener (A/B)."""

    def __init__(self, client: redis.Redis[bytes], keys: Keys) -> None:
        self._redis = client
        self._keys = keys

    def sent(self, account_id: str, language: str, variant: str) -> None:
        state = self._keys.account_state(account_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(state, "opener_variant", f"{language}:{variant}")
        pipe.hdel(state, *(f"opener_{outcome}" for outcome in OUTCOMES))
        pipe.hset(state, "opener_sent", "1")
        pipe.hincrby(self._keys.opener_stats(language, variant), "sent", 1)
        pipe.execute()

    def record(self, account_id: str, outcome: str) -> None:
        """``replied``, ``verified`` or ``plan`` for the account's current opener, once."""
        state = self._keys.account_state(account_id)
        current = self._redis.hget(state, "opener_variant")
        if current is None:
            return
        if self._redis.hsetnx(state, f"opener_{outcome}", "1"):
            language, _, variant = current.decode().partition(":")
            self._redis.hincrby(self._keys.opener_stats(language, variant), outcome, 1)

    def table(self, config: Config) -> list[dict[str, object]]:
        """One row per wording (language and id; a creditor's wording with the same id as a
        general one is counted with it)."""
        wordings = [config.outreach.openers, *config.outreach.creditor_openers.values()]
        pairs = sorted({(str(lang), v.id) for table in wordings for lang, vs in table.items() for v in vs})
        rows = []
        for language, variant in pairs:
            raw = self._redis.hgetall(self._keys.opener_stats(language, variant))
            counts = {k.decode(): int(v) for k, v in raw.items()}
            row: dict[str, object] = {"language": language, "variant": variant}
            row.update({outcome: counts.get(outcome, 0) for outcome in OUTCOMES})
            sent = counts.get("sent", 0)
            row["plan_rate"] = round(counts.get("plan", 0) / sent, 3) if sent else None
            rows.append(row)
        return rows


#: Retirement and its audit entry together, only when it changes something: of two ops people
#: retiring the same wording at once, one is recorded.
_RETIRE = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', unpack(ARGV, 4))
return 1
"""
_RESTORE = """
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', unpack(ARGV, 4))
return 1
"""
#: The audit stream's length (as ``bot.compliance.gate.AUDIT_MAXLEN``, which this layer cannot import).
AUDIT_MAXLEN = 1_000_000
_LANGUAGE = re.compile(r"^[a-z]{2}$")
_VARIANT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
#: The longest reason kept for a retirement.
MAX_REASON = 300


@dataclass(frozen=True)
class Retirement:
    """Who retired a wording, when, and why."""

    wording: str
    by: str
    at: datetime
    reason: str


class RetiredOpeners:
    """Opener wordings ops have taken out of use, by ``"<language>:<id>"``.

    Config stays the source of truth for the wordings themselves (they are reviewed and versioned
    with the rest of the policy, and a new wording needs its translation checked); retiring one is
    an operational switch that needs no release: the outreach planner stops choosing it for new
    openers (and keeps it if every wording of a language is retired: a switch never stops contact).
    A retirement applies to every creditor's wording with that id in that language.

    Each change is an entry in the audit stream (``ops:opener_retired`` / ``ops:opener_restored``,
    with who, the wording and the reason), written in the same step as the change itself.
    """

    def __init__(self, client: redis.Redis[bytes], keys: Keys, clock: Clock | None = None) -> None:
        self._redis = client
        self._keys = keys
        self._clock = clock or Clock()
        self._retire = client.register_script(_RETIRE)
        self._restore = client.register_script(_RESTORE)

    @property
    def key(self) -> str:
        """The hash of retired wordings (``"<language>:<id>"`` -> who, when, why, as JSON)."""
        return f"{self._keys.prefix}:outreach:retired"

    @staticmethod
    def _wording(language: str, variant: str) -> str:
        if not _LANGUAGE.match(language):
            raise InvalidRequest("language must be a two-letter code such as en or es")
        if not _VARIANT.match(variant):
            raise InvalidRequest("the wording id must be 1-32 of a-z, 0-9, _ and - (as in config.yaml)")
        return f"{language}:{variant}"

    def _audit(self, kind: str, wording: str, by: str, reason: str) -> list[str]:
        language, _, variant = wording.partition(":")
        fields = {"kind": kind, "by": by, "language": language, "variant": variant, "wording": wording,
                  "reason": reason, "at": repr(self._clock.timestamp())}  # fmt: skip
        return [str(AUDIT_MAXLEN), *(item for pair in fields.items() for item in pair)]

    def retire(self, language: str, variant: str, by: str, reason: str) -> bool:
        """Take a wording out of use; ``False`` when it already was (nothing changes)."""
        wording = self._wording(language, variant)
        by, reason = by.strip(), " ".join(reason.split())
        if not by:
            raise InvalidRequest("say who retires the wording")
        if not reason:
            raise InvalidRequest("give a reason for retiring the wording")
        if len(reason) > MAX_REASON:
            raise InvalidRequest(f"the reason is at most {MAX_REASON} characters")
        record = json.dumps({"by": by, "at": self._clock.timestamp(), "reason": reason})
        args = [wording, record, *self._audit("ops:opener_retired", wording, by, reason)]
        return bool(self._retire(keys=[self.key, self._keys.audit], args=args))

    def restore(self, language: str, variant: str, by: str, reason: str = "") -> bool:
        """Put a retired wording back in use; ``False`` when it was not retired."""
        wording = self._wording(language, variant)
        by, reason = by.strip(), " ".join(reason.split())[:MAX_REASON]
        if not by:
            raise InvalidRequest("say who restores the wording")
        args = [wording, "", *self._audit("ops:opener_restored", wording, by, reason)]
        return bool(self._restore(keys=[self.key, self._keys.audit], args=args))

    def retired(self) -> frozenset[str]:
        """Every retired wording, ``"<language>:<id>"`` (one read: the planner calls it once a batch)."""
        return frozenset(field.decode() for field in self._redis.hkeys(self.key))

    def retirements(self) -> dict[str, Retirement]:
        """Every retired wording with who retired it, when and why."""
        found = {}
        for raw_field, raw in self._redis.hgetall(self.key).items():
            wording = raw_field.decode()
            try:
                record = json.loads(raw)
                at = datetime.fromtimestamp(float(record["at"]), timezone.utc)
                found[wording] = Retirement(wording, str(record["by"]), at, str(record.get("reason", "")))
            except (ValueError, KeyError, TypeError):
                found[wording] = Retirement(wording, "", datetime.fromtimestamp(0, timezone.utc), "")
        return found
