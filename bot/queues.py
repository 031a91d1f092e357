"""Durable per-key FIFO queues on Redis streams.

Each key (one sender, one recipient) has its own stream, so the messages of one
conversation are handled strictly in order while different conversations go on in
parallel on any number of workers. An entry leaves the queue only after its handler
returns: if the worker, Rasa or a provider is down, it waits and is handled when they are
back. A handler that keeps crashing on one entry sends it to the dead letters after
``max_attempts`` so the entries behind it are not blocked.

Redis layout under ``<prefix>:q:<name>``:
``:<key>`` stream of entries (field ``payload``), ``:<key>:cursor`` last handled entry id,
``:<key>:attempts`` crash count of the head entry, ``:<key>:backoff`` consecutive
"try later" answers, ``:<key>:lock`` the drain lock, ``:<key>:scheduled`` marker that a
drain job is queued, ``:pending`` set of keys with unhandled entries, ``:dead`` stream.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from redis.exceptions import LockError

from bot.errors import BotError

logger = logging.getLogger(__name__)

#: Handled entries are kept this long after a key's queue empties (then the stream expires).
IDLE_TTL_SECONDS = 30 * 24 * 3600

# Append only once per dedupe key, atomically: a retried webhook never lands twice, and a
# message is never marked seen without being stored.
_APPEND = """
if redis.call('SET', KEYS[3], '1', 'NX', 'EX', ARGV[3]) == false then
  return false
end
local id = redis.call('XADD', KEYS[1], '*', 'payload', ARGV[1])
redis.call('PERSIST', KEYS[1])
redis.call('PERSIST', KEYS[4])
redis.call('SADD', KEYS[2], ARGV[2])
return id
"""


class RetryLater(BotError):
    """Raised by a handler when a dependency is down: keep the entry, try again later.

    These retries never give up (an outage must not lose messages); ``delay`` overrides
    the queue's own backoff.
    """

    def __init__(self, reason: str, delay: float | None = None) -> None:
        super().__init__(reason)
        self.delay = delay


class GiveUp(BotError):
    """Raised by a handler for an entry that can never succeed: set it aside, go on."""


@dataclass(frozen=True)
class Entry:
    """One queued item."""

    key: str
    entry_id: str
    payload: str


@dataclass(frozen=True)
class DrainResult:
    """What a drain did: entries handled, entries set aside, and whether to come back."""

    handled: int = 0
    set_aside: int = 0
    busy: bool = False
    retry_in: float | None = None


Handler = Callable[[Entry], None]


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class KeyedQueue:
    """One named family of per-key queues (e.g. ``inbound``)."""

    def __init__(
        self,
        client: redis.Redis[bytes],
        prefix: str,
        name: str,
        *,
        max_attempts: int = 5,
        retry_min_seconds: float = 1.0,
        retry_max_seconds: float = 30.0,
        lock_seconds: float = 300.0,
    ) -> None:
        self.name = name
        self._redis = client
        self._base = f"{prefix}:{name}"
        self._max_attempts = max_attempts
        self._retry_min = retry_min_seconds
        self._retry_max = retry_max_seconds
        self._lock_seconds = lock_seconds
        self._append = client.register_script(_APPEND)

    # key names -----------------------------------------------------------------------
    def stream_key(self, key: str) -> str:
        return f"{self._base}:{key}"

    def _cursor(self, key: str) -> str:
        return f"{self._base}:{key}:cursor"

    def _attempts(self, key: str) -> str:
        return f"{self._base}:{key}:attempts"

    def _backoff(self, key: str) -> str:
        return f"{self._base}:{key}:backoff"

    def _lock(self, key: str) -> str:
        return f"{self._base}:{key}:lock"

    def _scheduled(self, key: str) -> str:
        return f"{self._base}:{key}:scheduled"

    @property
    def pending_set(self) -> str:
        return f"{self._base}:pending"

    @property
    def dead_stream(self) -> str:
        return f"{self._base}:dead"

    # producing -----------------------------------------------------------------------
    def append(self, key: str, payload: str, *, dedupe_key: str, dedupe_ttl_seconds: int) -> str | None:
        """Store an entry unless ``dedupe_key`` was seen; return its id, or ``None`` if a duplicate."""
        result = self._append(
            keys=[self.stream_key(key), self.pending_set, dedupe_key, self._cursor(key)],
            args=[payload, key, dedupe_ttl_seconds],
        )
        return _s(result) if result else None

    # scheduling markers ------------------------------------------------------------------
    def claim_schedule(self, key: str, ttl_seconds: float) -> bool:
        """Mark that a drain job for ``key`` is queued; ``False`` if one already is."""
        return bool(self._redis.set(self._scheduled(key), "1", nx=True, px=int(ttl_seconds * 1000)))

    def refresh_schedule(self, key: str, ttl_seconds: float) -> None:
        self._redis.set(self._scheduled(key), "1", px=int(ttl_seconds * 1000))

    def release_schedule(self, key: str) -> None:
        self._redis.delete(self._scheduled(key))

    def pending_keys(self) -> list[str]:
        """Keys that still have entries to handle."""
        return sorted(_s(k) for k in self._redis.smembers(self.pending_set))

    def unhandled(self, key: str, limit: int = 100) -> list[Entry]:
        """Entries of ``key`` not yet handled, oldest first."""
        cursor = self._redis.get(self._cursor(key))
        start = f"({_s(cursor)}" if cursor else "-"
        rows = self._redis.xrange(self.stream_key(key), min=start, max="+", count=limit)
        return [Entry(key=key, entry_id=_s(i), payload=_s(f[b"payload"])) for i, f in rows]

    def waiting_failures(self, key: str) -> int:
        """How many times in a row the head entry of ``key`` was told to wait (dependency down)."""
        return int(self._redis.get(self._backoff(key)) or 0)

    def dead_letters(self, limit: int = 100) -> list[dict[str, str]]:
        """The newest entries that were set aside, newest first."""
        rows = self._redis.xrevrange(self.dead_stream, count=limit)
        return [{_s(k): _s(v) for k, v in fields.items()} | {"id": _s(i)} for i, fields in rows]

    # consuming -----------------------------------------------------------------------
    def backoff_seconds(self, failures: int) -> float:
        """Doubling delay after the n-th consecutive failure, capped at the maximum."""
        return float(min(self._retry_max, self._retry_min * 2 ** max(failures - 1, 0)))

    def drain(self, key: str, handler: Handler) -> DrainResult:
        """Handle the entries of ``key`` in order until none is left or one must wait."""
        lock = self._redis.lock(self._lock(key), timeout=self._lock_seconds, blocking=False)
        if not lock.acquire(blocking=False):
            return DrainResult(busy=True)
        handled = set_aside = 0
        try:
            while True:
                head = self.unhandled(key, limit=1)
                if not head:
                    if self._finish(key):
                        return DrainResult(handled=handled, set_aside=set_aside)
                    continue
                outcome = self._handle(head[0], handler)
                if isinstance(outcome, float):
                    return DrainResult(handled=handled, set_aside=set_aside, retry_in=outcome)
                if outcome == "handled":
                    handled += 1
                else:
                    set_aside += 1
                lock.reacquire()  # a long queue must not outlive the lock
        finally:
            try:
                lock.release()
            except LockError:
                logger.warning("queue %s: drain lock expired while handling %s", self.name, key)

    def _handle(self, entry: Entry, handler: Handler) -> float | str:
        """Run the handler: ``"handled"``, ``"set_aside"``, or the seconds to wait before retrying."""
        started = time.monotonic()
        outcome = "handled"
        try:
            handler(entry)
        except RetryLater as exc:
            failures = int(self._redis.incr(self._backoff(entry.key)))
            delay = exc.delay if exc.delay is not None else self.backoff_seconds(failures)
            logger.warning("queue %s: entry %s waits %.1fs (%s)", self.name, entry.entry_id, delay, exc)
            return float(delay)
        except GiveUp as exc:
            logger.error("queue %s: entry %s set aside: %s", self.name, entry.entry_id, exc)
            self._dead_letter(entry, f"gave up: {exc}")
            outcome = "set_aside"
        except Exception as exc:
            attempts = int(self._redis.hincrby(self._attempts(entry.key), entry.entry_id, 1))
            if attempts < self._max_attempts:
                logger.exception(
                    "queue %s: entry %s failed (attempt %d of %d)",
                    self.name, entry.entry_id, attempts, self._max_attempts,
                )  # fmt: skip
                return self.backoff_seconds(attempts)
            logger.exception(
                "queue %s: entry %s failed %d times; set aside", self.name, entry.entry_id, attempts
            )
            self._dead_letter(entry, f"failed {attempts} times: {type(exc).__name__}: {exc}")
            outcome = "set_aside"
        self._advance(entry)
        logger.debug(
            "queue %s: entry %s %s in %.3fs", self.name, entry.entry_id, outcome, time.monotonic() - started
        )
        return outcome

    def _advance(self, entry: Entry) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.set(self._cursor(entry.key), entry.entry_id)
        pipe.delete(self._attempts(entry.key), self._backoff(entry.key))
        # Handled entries are not needed to keep order; keep the stream short.
        pipe.xtrim(self.stream_key(entry.key), minid=entry.entry_id, approximate=False)
        pipe.execute()

    def _dead_letter(self, entry: Entry, reason: str) -> None:
        self._redis.xadd(
            self.dead_stream,
            {"key": entry.key, "entry_id": entry.entry_id, "payload": entry.payload, "reason": reason[:2000]},
            maxlen=100_000,
            approximate=True,
        )

    def _finish(self, key: str) -> bool:
        """Take ``key`` off the pending set unless an entry arrived meanwhile."""
        self._redis.srem(self.pending_set, key)
        if self.unhandled(key, limit=1):
            # An append slipped in between our read and the removal; put it back.
            self._redis.sadd(self.pending_set, key)
            return False
        pipe = self._redis.pipeline(transaction=True)
        pipe.expire(self.stream_key(key), IDLE_TTL_SECONDS)
        pipe.expire(self._cursor(key), IDLE_TTL_SECONDS)
        pipe.execute()
        return True
