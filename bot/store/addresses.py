"""What we know about each contact address: opted out, wrong party, unreachable.

One record per channel address, keyed by a hash so the key space carries no phone numbers
or emails. The dialogue writes it ("stop texting me", "wrong number"), the channels write it
(STOP keywords, provider errors, bounces), and the send paths read it: an address that is
opted out or belongs to someone else gets nothing more from the bot.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from bot.store.connection import Keys


def address_hash(channel: str, address: str) -> str:
    """Addresses in key names are hashed: the key space carries no phone numbers or emails."""
    return hashlib.sha256(f"{channel}:{address.strip().lower()}".encode()).hexdigest()[:32]


def address_key(channel: str, address: str) -> str:
    """The queue key for one channel address; hashed so keys and logs carry no phone number."""
    return f"{channel}.{address_hash(channel, address)[:24]}"


@dataclass(frozen=True)
class AddressStatus:
    """The recorded state of one address; times are Unix seconds, ``None`` when never set."""

    opted_out_at: float | None = None
    wrong_party_at: float | None = None
    unreachable_at: float | None = None
    account_id: str = ""
    #: The inbound message (provider id) that opted the address out, when one did.
    opted_out_by: str = ""
    #: The inbound message that said "wrong person" (its reply is the one closing message).
    wrong_party_by: str = ""
    #: After a sign of crisis from this address, until when even a silenced address hears
    #: that a person has its messages (Unix seconds), or ``None``.
    care_until: float | None = None
    #: Consecutive "cannot reach this number" delivery failures.
    failures: int = 0

    @property
    def silenced_since(self) -> float | None:
        """Since when nothing may be sent (the earliest mark that silences), or ``None``."""
        marks = [t for t in (self.wrong_party_at, self.opted_out_at) if t is not None]
        return min(marks) if marks else None

    @property
    def silenced_because(self) -> str | None:
        """Why nothing may be sent to this address any more, or ``None`` when it may be."""
        if self.wrong_party_at is not None:
            return "wrong_party"
        if self.opted_out_at is not None:
            return "opted_out"
        return None


# Atomic so that of two workers handling the same STOP, exactly one sees "newly opted out".
# The opt-out and its audit record together (the record names the channel, the account and the
# message that asked; never the address): a record the law requires, kept for years.
_OPT_OUT = """
if redis.call('HSETNX', KEYS[1], 'opted_out', ARGV[1]) == 0 then return 0 end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'account_id', ARGV[2]) end
redis.call('HSET', KEYS[1], 'opted_out_by', ARGV[3])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', '1000000', '*', 'kind', 'opt_out', 'channel', ARGV[4],
           'account_id', ARGV[2], 'by_message', ARGV[3], 'at', ARGV[1])
return 1
"""

_FAILURE = """
local n = redis.call('HINCRBY', KEYS[1], 'failures', 1)
if n >= tonumber(ARGV[1]) and redis.call('HEXISTS', KEYS[1], 'unreachable') == 0 then
  redis.call('HSET', KEYS[1], 'unreachable', ARGV[2])
  return 1
end
return 0
"""


class AddressBook:
    """Reads and writes address records in Redis."""

    def __init__(
        self, client: redis.Redis[bytes], keys: Keys, clock: Callable[[], float] = time.time
    ) -> None:
        self._redis = client
        self._keys = keys
        #: When a record is stamped (Unix seconds). The product keeps the wall clock: an opt-out's
        #: moment is compared with outbound messages' ``created_at`` (``time.time()``) to withhold
        #: what was queued before it (bot/conversations/outbound.py ``withhold_if_silenced``).
        self._now = clock
        self._opt_out_script = client.register_script(_OPT_OUT)
        self._failure_script = client.register_script(_FAILURE)

    def _key(self, channel: str, address: str) -> str:
        return self._keys.address_status(address_hash(channel, address))

    def key_for(self, channel: str, address: str) -> str:
        """The Redis key of an address's record (for callers that pipeline their reads)."""
        return self._key(channel, address)

    def status(self, channel: str, address: str) -> AddressStatus:
        return self.status_from(self._redis.hgetall(self._key(channel, address)))

    @staticmethod
    def status_from(fields: dict[bytes, bytes]) -> AddressStatus:
        """The status in a record's raw fields (``HGETALL``)."""
        raw = {k.decode(): v.decode() for k, v in fields.items()}

        def at(name: str) -> float | None:
            return float(raw[name]) if raw.get(name) else None

        return AddressStatus(
            opted_out_at=at("opted_out"),
            wrong_party_at=at("wrong_party"),
            unreachable_at=at("unreachable"),
            account_id=raw.get("account_id", ""),
            opted_out_by=raw.get("opted_out_by", ""),
            wrong_party_by=raw.get("wrong_party_by", ""),
            care_until=at("care_until"),
            failures=int(raw.get("failures", 0)),
        )

    def _mark(self, field: str, channel: str, address: str, account_id: str | None) -> None:
        if not address:
            return
        mapping: dict[str | bytes, bytes | float | int | str] = {field: str(self._now())}
        if account_id:
            mapping["account_id"] = account_id
        self._redis.hset(self._key(channel, address), mapping=mapping)

    def opt_out(
        self, channel: str, address: str, account_id: str | None = None, *, by_message: str = ""
    ) -> bool:
        """Opt the address out; ``True`` when this call did it (it was not opted out before).

        ``by_message`` names the inbound message that asked, so the one confirmation goes
        to that message and no other, however many times the step runs.
        """
        if not address:
            return False
        key = self._key(channel, address)
        args = [str(self._now()), account_id or "", by_message, channel]
        return bool(self._opt_out_script(keys=[key, self._keys.audit], args=args))

    def opt_in(self, channel: str, address: str) -> None:
        """The person asked to hear from us again on this address."""
        self._redis.hdel(self._key(channel, address), "opted_out", "opted_out_by")

    def mark_wrong_party(
        self, channel: str, address: str, account_id: str | None = None, *, by_message: str = ""
    ) -> None:
        """Not the person we want: nothing more is sent here but the one closing reply to
        ``by_message`` (the message that said so)."""
        if not address:
            return
        mapping: dict[str | bytes, bytes | float | int | str] = {
            "wrong_party": str(self._now()), "wrong_party_by": by_message,
        }  # fmt: skip
        if account_id:
            mapping["account_id"] = account_id
        # HSETNX semantics for the time: the first mark stands (a replay does not move it).
        pipe = self._redis.pipeline(transaction=True)
        key = self._key(channel, address)
        pipe.hsetnx(key, "wrong_party", mapping.pop("wrong_party"))
        pipe.hset(key, mapping=mapping)
        pipe.execute()

    def open_care_window(self, channel: str, address: str, until: float) -> None:
        """A sign of crisis came from this address: until ``until`` (Unix seconds) what it
        writes gets a short answer that a person has it, even if it asked for silence."""
        if address:
            self._redis.hset(self._key(channel, address), "care_until", str(until))

    def mark_unreachable(self, channel: str, address: str, account_id: str | None = None) -> None:
        self._mark("unreachable", channel, address, account_id)

    def record_unreachable_failure(self, channel: str, address: str, threshold: int) -> bool:
        """Count one "cannot reach" failure; ``True`` when it made the address unreachable."""
        key = self._key(channel, address)
        return bool(self._failure_script(keys=[key], args=[threshold, str(self._now())]))

    def clear_unreachable(self, channel: str, address: str) -> None:
        """The person wrote to us from this address: it works again."""
        self._redis.hdel(self._key(channel, address), "unreachable", "failures")

    def record_delivered(self, channel: str, address: str) -> None:
        """A message got through: the failures in a row start again from zero."""
        self._redis.hdel(self._key(channel, address), "failures")
