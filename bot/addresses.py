"""What we know about each contact address: opted out, wrong party, unreachable.

One record per channel address, keyed by a hash so the key space carries no phone numbers
or emails. The dialogue writes it ("stop texting me", "wrong number"), the channels write it
(STOP keywords, provider errors, bounces), and the send paths read it: an address that is
opted out or belongs to someone else gets nothing more from the bot.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import redis

from bot.store import Keys


def address_hash(channel: str, address: str) -> str:
    """Addresses in key names are hashed: the key space carries no phone numbers or emails."""
    return hashlib.sha256(f"{channel}:{address.strip().lower()}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class AddressStatus:
    """The recorded state of one address; times are Unix seconds, ``None`` when never set."""

    opted_out_at: float | None = None
    wrong_party_at: float | None = None
    unreachable_at: float | None = None
    account_id: str = ""

    @property
    def silenced_because(self) -> str | None:
        """Why nothing may be sent to this address any more, or ``None`` when it may be."""
        if self.wrong_party_at is not None:
            return "wrong_party"
        if self.opted_out_at is not None:
            return "opted_out"
        return None


class AddressBook:
    """Reads and writes address records in Redis."""

    def __init__(self, client: redis.Redis[bytes], keys: Keys) -> None:
        self._redis = client
        self._keys = keys

    def _key(self, channel: str, address: str) -> str:
        return self._keys.address_status(address_hash(channel, address))

    def status(self, channel: str, address: str) -> AddressStatus:
        raw = {k.decode(): v.decode() for k, v in self._redis.hgetall(self._key(channel, address)).items()}

        def at(name: str) -> float | None:
            return float(raw[name]) if raw.get(name) else None

        return AddressStatus(
            opted_out_at=at("opted_out"),
            wrong_party_at=at("wrong_party"),
            unreachable_at=at("unreachable"),
            account_id=raw.get("account_id", ""),
        )

    def _mark(self, field: str, channel: str, address: str, account_id: str | None) -> None:
        if not address:
            return
        mapping: dict[str | bytes, bytes | float | int | str] = {field: str(time.time())}
        if account_id:
            mapping["account_id"] = account_id
        self._redis.hset(self._key(channel, address), mapping=mapping)

    def opt_out(self, channel: str, address: str, account_id: str | None = None) -> None:
        self._mark("opted_out", channel, address, account_id)

    def opt_in(self, channel: str, address: str) -> None:
        """The person asked to hear from us again on this address."""
        self._redis.hdel(self._key(channel, address), "opted_out")

    def mark_wrong_party(self, channel: str, address: str, account_id: str | None = None) -> None:
        self._mark("wrong_party", channel, address, account_id)

    def mark_unreachable(self, channel: str, address: str, account_id: str | None = None) -> None:
        self._mark("unreachable", channel, address, account_id)
