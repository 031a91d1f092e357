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

from bot.store import Keys

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
