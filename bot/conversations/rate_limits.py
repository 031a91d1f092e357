"""Send pacing shared by every worker on every machine, through Redis.

Providers limit senders by rate (Twilio: segments per second per number; Telegram: one
message per second per chat and thirty per second per bot). A message costs several units
(an SMS of three segments costs three), which can be more than a one-second budget holds,
so a plain "N per window" counter would refuse it forever. Instead each bucket keeps the
moment it is next free (a generic cell rate algorithm by reservation): a message may go when
every bucket it uses is free, and then pushes each one on by cost / rate. Otherwise the
caller is told how long to wait. The clock is Redis's own, so workers' clocks may differ.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis

from bot.store.connection import Keys

# KEYS: the buckets; ARGV[1]: cost; ARGV[1 + i]: rate of bucket i (units per second).
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local cost = tonumber(ARGV[1])
local wait = 0
for i, key in ipairs(KEYS) do
  local free_at = tonumber(redis.call('GET', key) or '0')
  if free_at - now > wait then wait = free_at - now end
end
if wait > 0 then return tostring(wait) end
for i, key in ipairs(KEYS) do
  local span = cost / tonumber(ARGV[i + 1])
  redis.call('SET', key, tostring(now + span), 'PX', math.ceil(span * 1000) + 1000)
end
return '0'
"""


class RedisPacer:
    """:class:`channels.base.Pacer` on Redis."""

    def __init__(self, client: redis.Redis[bytes], keys: Keys) -> None:
        self._keys = keys
        self._script = client.register_script(_RESERVE)

    def reserve(self, buckets: Sequence[tuple[str, float]], cost: float) -> float:
        """Reserve ``cost`` units in every bucket and return 0, or return the seconds to wait."""
        if not buckets:
            return 0.0
        result = self._script(
            keys=[self._keys.rate(name) for name, _ in buckets],
            args=[cost, *(rate for _, rate in buckets)],
        )
        return float(result.decode() if isinstance(result, bytes) else result)


# KEYS[1]: the address's reply log (sorted set of reply times); ARGV: limit, window, member.
# Counts and records in one step so two workers cannot both take the last place.
_TAKE_REPLY = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
local existing = redis.call('ZSCORE', KEYS[1], ARGV[3])
if existing then return 1 end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])))
return 1
"""


class ReplyCap:
    """At most ``limit`` bot replies to one address in a rolling ``window_seconds``.

    The last guard against two machines answering each other forever (an auto-responder that
    does not mark its mail as automatic). ``take`` is idempotent per message, so a replayed
    inbound message does not use a second place.
    """

    def __init__(
        self, client: redis.Redis[bytes], keys: Keys, limit: int, window_seconds: float = 3600
    ) -> None:
        self._keys = keys
        self._limit = limit
        self._window = window_seconds
        self._script = client.register_script(_TAKE_REPLY)

    def take(self, address_key: str, message_id: str) -> bool:
        """``True`` when the reply to ``message_id`` may go (and it now counts)."""
        return bool(
            self._script(
                keys=[self._keys.reply_log(address_key)], args=[self._limit, self._window, message_id]
            )
        )
