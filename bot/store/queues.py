"""Durable per-key FIFO queues on Redis streams.

Each key (one sender, one recipient) has its own stream, so the messages of one
conversation are handled strictly in order while different conversations go on in
parallel on any number of workers. An entry leaves the queue only after its handler
returns: if the worker, Rasa or a provider is down, it waits and is handled when they are
back. A handler that keeps crashing on one entry sends it to the dead letters after
``max_attempts`` so the entries behind it are not blocked.

Only one drain works on a key at a time: it holds a short *lease* (``:<key>:lock``, a few
seconds) that a background thread renews while the drain works, so a lease held by a
process that died frees the key within seconds. A drain that lost its lease stops before
the next entry, and the cursor only moves while the lease is still its own (a Lua
compare-and-set on the lease token: the fencing check).

Redis layout under ``<prefix>:q:<name>``:
``:<key>`` stream of entries (field ``payload``), ``:<key>:cursor`` last handled entry id,
``:<key>:attempts`` crash count of the head entry, ``:<key>:backoff`` consecutive
"try later" answers, ``:<key>:lock`` the drain lease (random token), ``:<key>:scheduled``
the planned drain (``token|due ms|resends``), ``:pending`` set of keys with unhandled
entries, ``:due`` sorted set key -> planned drain time (ms), ``:waiting`` sorted set key ->
arrival time (ms) of its oldest unhandled entry, ``:dead`` stream.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

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
-- The oldest unhandled entry's arrival (stream ids start with Redis's clock in ms).
redis.call('ZADD', KEYS[5], 'NX', tonumber(string.match(id, '^(%d+)')), ARGV[2])
return id
"""

# Extend the lease only if it is still ours.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# Delete a key only if it still holds our token (lease) or starts with it (schedule marker).
_RELEASE = """
local value = redis.call('GET', KEYS[1])
if value and (value == ARGV[1] or string.sub(value, 1, #ARGV[1] + 1) == ARGV[1] .. '|') then
  redis.call('DEL', KEYS[1])
  if KEYS[2] then redis.call('ZREM', KEYS[2], ARGV[2]) end
  return 1
end
return 0
"""

# Mark an entry handled, fenced by the lease: a drain that lost its lease (a longer pause
# than the lease, a Redis restart that outlived it) must not move the cursor of an entry
# that another drain now owns. Also keeps the key's place in the "waiting since" index.
_ADVANCE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('DEL', KEYS[3], KEYS[4])
redis.call('XTRIM', KEYS[5], 'MINID', ARGV[2])
local after = redis.call('XRANGE', KEYS[5], '(' .. ARGV[2], '+', 'COUNT', 1)
if #after > 0 then
  redis.call('ZADD', KEYS[6], tonumber(string.match(after[1][1], '^(%d+)')), ARGV[3])
else
  redis.call('ZREM', KEYS[6], ARGV[3])
end
return 1
"""

# Plan a drain of a key: the marker (token|due|resends) and its place in the due index.
# Without ARGV[4] == '1' (replace) an existing plan wins.
_PLAN = """
if ARGV[4] ~= '1' and redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2] .. '|0', 'PX', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[5])
return 1
"""

# Move a plan to a later time, keeping its token (the same job, sent again).
_REPLAN = """
local value = redis.call('GET', KEYS[1])
if not value then return 0 end
local token, due, resends = string.match(value, '^(.-)|(%d+)|(%d+)$')
if token ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], token .. '|' .. ARGV[2] .. '|' .. resends, 'KEEPTTL')
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
return 1
"""

# The sweeper's look at one key whose plan is overdue (its job did not start in time):
# returns the plan's token when the job must be sent again, else nothing. A running drain
# (lease held) is left alone and looked at again later; a missing plan leaves the index.
# Repeated resends of one plan back off (2 x grace, 4 x grace, ... up to ARGV[4]) so a long
# backlog in the job queue is not flooded with copies.
_OVERDUE = """
local value = redis.call('GET', KEYS[1])
if not value then
  redis.call('ZREM', KEYS[3], ARGV[1])
  return false
end
local token, due, resends = string.match(value, '^(.-)|(%d+)|(%d+)$')
local now, grace = tonumber(ARGV[2]), tonumber(ARGV[3])
if tonumber(due) + grace > now then
  redis.call('ZADD', KEYS[3], due, ARGV[1])
  return false
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('SET', KEYS[1], token .. '|' .. now .. '|' .. resends, 'KEEPTTL')
  redis.call('ZADD', KEYS[3], now, ARGV[1])
  return false
end
resends = tonumber(resends) + 1
local wait = math.min(grace * 2 ^ resends, tonumber(ARGV[4]))
local next_due = math.floor(now + wait - grace)
redis.call('SET', KEYS[1], token .. '|' .. next_due .. '|' .. resends, 'KEEPTTL')
redis.call('ZADD', KEYS[3], next_due, ARGV[1])
return token
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
    """What a drain did: entries handled, entries set aside, and whether to come back.

    ``busy``: another drain holds the key's lease. ``lost``: this drain's lease ran out
    under it (another drain may own the key now); it stopped and must not re-plan the key.
    """

    handled: int = 0
    set_aside: int = 0
    busy: bool = False
    retry_in: float | None = None
    lost: bool = False


@dataclass(frozen=True)
class Plan:
    """The planned drain of a key: the job's token, when it should start (unix seconds), and
    how many times the sweeper sent it again."""

    token: str
    due: float
    resends: int


class Lease:
    """A drain's hold on one key: its random token, and whether it is known to be lost."""

    def __init__(self, name: str, token: str) -> None:
        self.name = name
        self.token = token
        self.lost = threading.Event()
        self.renewed_at = time.monotonic()


class LeaseKeeper:
    """Takes short leases and renews every held one from a background thread.

    Renewal runs every third of the lease, so a live drain keeps its key however long a
    handler waits (on Rasa, a provider) while a dead one frees it within ``lease_seconds``.
    A lease that could not be renewed for a whole lease period (Redis unreachable) is taken
    as lost: the drain stops before its next entry, and the fenced cursor update settles it.
    """

    def __init__(self, client: redis.Redis[bytes], lease_seconds: float) -> None:
        self.lease_seconds = lease_seconds
        self._redis = client
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._held: dict[int, Lease] = {}
        self._mutex = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def _lease_ms(self) -> int:
        return max(1, int(self.lease_seconds * 1000))

    def acquire(self, name: str) -> Lease | None:
        """Take the lease ``name`` unless someone holds it; renewed until :meth:`release`."""
        token = secrets.token_hex(16)
        if not self._redis.set(name, token, nx=True, px=self._lease_ms):
            return None
        lease = Lease(name, token)
        with self._mutex:
            self._held[id(lease)] = lease
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="lease-renewer", daemon=True)
                self._thread.start()
        return lease

    def holds(self, lease: Lease) -> bool:
        """Ask Redis (and extend the lease): is it still ours? Marks it lost if not."""
        if lease.lost.is_set():
            return False
        if self._renew(keys=[lease.name], args=[lease.token, self._lease_ms]):
            lease.renewed_at = time.monotonic()
            return True
        lease.lost.set()
        return False

    def release(self, lease: Lease) -> None:
        """Stop renewing and free the key, if it is still ours."""
        with self._mutex:
            self._held.pop(id(lease), None)
        with contextlib.suppress(redis.RedisError):
            self._release(keys=[lease.name], args=[lease.token, ""])

    def _run(self) -> None:
        # Never exits: a daemon thread that sleeps when nothing is held.
        while True:
            time.sleep(self.lease_seconds / 3)
            with self._mutex:
                held = list(self._held.values())
            for lease in held:
                try:
                    if not self.holds(lease) and id(lease) in self._held:  # (not just released)
                        logger.warning("lease %s was lost (taken over or expired)", lease.name)
                except redis.RedisError as exc:
                    if time.monotonic() - lease.renewed_at >= self.lease_seconds:
                        lease.lost.set()
                    logger.warning("could not renew lease %s: %s", lease.name, exc)
                except Exception:
                    logger.exception("lease renewal failed for %s", lease.name)


Handler = Callable[[Entry], None]


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


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
        lease_seconds: float = 10.0,
        on_set_aside: Callable[[Entry, str], None] | None = None,
    ) -> None:
        self.name = name
        self._redis = client
        self._base = f"{prefix}:{name}"
        #: Told of every entry set aside, with the reason (e.g. "a person must answer it").
        self._on_set_aside = on_set_aside
        self._max_attempts = max_attempts
        self._retry_min = retry_min_seconds
        self._retry_max = retry_max_seconds
        self.leases = LeaseKeeper(client, lease_seconds)
        self._append = client.register_script(_APPEND)
        self._advance_script = client.register_script(_ADVANCE)
        self._plan = client.register_script(_PLAN)
        self._replan = client.register_script(_REPLAN)
        self._release_plan = client.register_script(_RELEASE)
        self._overdue = client.register_script(_OVERDUE)

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

    @property
    def due_index(self) -> str:
        return f"{self._base}:due"

    @property
    def waiting_index(self) -> str:
        return f"{self._base}:waiting"

    # producing -----------------------------------------------------------------------
    def append(self, key: str, payload: str, *, dedupe_key: str, dedupe_ttl_seconds: int) -> str | None:
        """Store an entry unless ``dedupe_key`` was seen; return its id, or ``None`` if a duplicate."""
        result = self._append(
            keys=[self.stream_key(key), self.pending_set, dedupe_key, self._cursor(key), self.waiting_index],
            args=[payload, key, dedupe_ttl_seconds],
        )
        return _s(result) if result else None

    # planned drains ------------------------------------------------------------------
    def plan(self, key: str, token: str, due: float, ttl_seconds: float, *, replace: bool = False) -> bool:
        """Record that the drain job ``token`` for ``key`` should start at ``due`` (unix
        seconds); ``False`` if a drain is already planned (unless ``replace``)."""
        return bool(
            self._plan(
                keys=[self._scheduled(key), self.due_index],
                args=[token, _ms(due), max(1, int(ttl_seconds * 1000)), "1" if replace else "0", key],
            )
        )

    def planned(self, key: str) -> Plan | None:
        """The planned drain of ``key``, if any."""
        value = self._redis.get(self._scheduled(key))
        if value is None:
            return None
        token, _, rest = _s(value).rpartition("|")
        token, _, due = token.rpartition("|")
        if not token:  # a marker from before plans had tokens
            return Plan(token=_s(value), due=0.0, resends=0)
        return Plan(token=token, due=int(due) / 1000, resends=int(rest))

    def replan(self, key: str, token: str, due: float) -> bool:
        """Move plan ``token`` of ``key`` to ``due``; ``False`` if it is no longer the plan."""
        return bool(self._replan(keys=[self._scheduled(key), self.due_index], args=[token, _ms(due), key]))

    def release_schedule(self, key: str, token: str | None = None) -> bool:
        """Forget the planned drain of ``key`` (only plan ``token``, when given)."""
        if token is None:
            pipe = self._redis.pipeline(transaction=True)
            pipe.delete(self._scheduled(key))
            pipe.zrem(self.due_index, key)
            return bool(pipe.execute()[0])
        return bool(self._release_plan(keys=[self._scheduled(key), self.due_index], args=[token, key]))

    def take_overdue(
        self, now: float, grace_seconds: float, max_wait_seconds: float = 60.0, limit: int = 200
    ) -> list[tuple[str, str]]:
        """Planned drains whose job has not started ``grace_seconds`` after its time and whose
        key no drain holds: ``(key, token)`` pairs to send again (their plans are moved on)."""
        found: list[tuple[str, str]] = []
        late = self._redis.zrangebyscore(self.due_index, "-inf", _ms(now - grace_seconds), start=0, num=limit)
        for member in late:
            key = _s(member)
            token = self._overdue(
                keys=[self._scheduled(key), self._lock(key), self.due_index],
                args=[key, _ms(now), _ms(grace_seconds), _ms(max_wait_seconds)],
            )
            if token:
                found.append((key, _s(token)))
        return found

    def lease_remaining(self, key: str) -> float:
        """Seconds until the lease on ``key`` runs out if nobody renews it (0 when free)."""
        return max(0, int(self._redis.pttl(self._lock(key)))) / 1000

    def oldest_waiting(self) -> tuple[int, float | None]:
        """How many keys have unhandled entries, and the arrival time (unix seconds, Redis's
        clock) of the oldest unhandled entry; two cheap reads whatever the backlog."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.zcard(self.waiting_index)
        pipe.zrange(self.waiting_index, 0, 0, withscores=True)
        count, oldest = pipe.execute()
        return int(count), (float(oldest[0][1]) / 1000 if oldest else None)

    def note_waiting(self, key: str) -> None:
        """Index ``key``'s oldest unhandled entry if it is not yet (entries from before the index)."""
        head = self.unhandled(key, limit=1)
        if head:
            self._redis.zadd(self.waiting_index, {key: int(head[0].entry_id.split("-")[0])}, nx=True)

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
        lease = self.leases.acquire(self._lock(key))
        if lease is None:
            return DrainResult(busy=True)
        handled = set_aside = 0
        try:
            while True:
                if lease.lost.is_set():
                    return DrainResult(handled=handled, set_aside=set_aside, lost=True)
                head = self.unhandled(key, limit=1)
                if not head:
                    if self._finish(key):
                        return DrainResult(handled=handled, set_aside=set_aside)
                    continue
                outcome = self._handle(head[0], handler, lease)
                if outcome == "lost":
                    logger.warning(
                        "queue %s: drain of %s lost its lease at entry %s; stopping here",
                        self.name, key, head[0].entry_id,
                    )  # fmt: skip
                    return DrainResult(handled=handled, set_aside=set_aside, lost=True)
                if isinstance(outcome, float):
                    return DrainResult(handled=handled, set_aside=set_aside, retry_in=outcome)
                if outcome == "handled":
                    handled += 1
                else:
                    set_aside += 1
        finally:
            self.leases.release(lease)

    def _handle(self, entry: Entry, handler: Handler, lease: Lease) -> float | str:
        """Run the handler: ``"handled"``, ``"set_aside"``, ``"lost"`` (the lease went while it
        ran: nothing recorded), or the seconds to wait before retrying."""
        started = time.monotonic()
        outcome = "handled"
        try:
            handler(entry)
        except RetryLater as exc:
            if not self.leases.holds(lease):
                return "lost"
            failures = int(self._redis.incr(self._backoff(entry.key)))
            delay = exc.delay if exc.delay is not None else self.backoff_seconds(failures)
            logger.warning("queue %s: entry %s waits %.1fs (%s)", self.name, entry.entry_id, delay, exc)
            return float(delay)
        except GiveUp as exc:
            if not self.leases.holds(lease):
                return "lost"
            logger.error("queue %s: entry %s set aside: %s", self.name, entry.entry_id, exc)
            self._dead_letter(entry, f"gave up: {exc}")
            outcome = "set_aside"
        except Exception as exc:
            if not self.leases.holds(lease):
                return "lost"
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
        if not self._advance(entry, lease):
            lease.lost.set()
            return "lost"
        logger.debug(
            "queue %s: entry %s %s in %.3fs", self.name, entry.entry_id, outcome, time.monotonic() - started
        )
        return outcome

    def _advance(self, entry: Entry, lease: Lease) -> bool:
        """Move the cursor past ``entry`` if ``lease`` is still held; ``False`` if it is not."""
        keys = [
            lease.name,
            self._cursor(entry.key),
            self._attempts(entry.key),
            self._backoff(entry.key),
            # Handled entries are not needed to keep order; the stream is trimmed to the cursor.
            self.stream_key(entry.key),
            self.waiting_index,
        ]
        return bool(self._advance_script(keys=keys, args=[lease.token, entry.entry_id, entry.key]))

    def _dead_letter(self, entry: Entry, reason: str) -> None:
        if self._on_set_aside is not None:
            # First, and idempotent on its side: if we die before the entry moves on, the
            # replay sets it aside again without telling twice; an error here keeps the entry.
            self._on_set_aside(entry, reason)
        self._redis.xadd(
            self.dead_stream,
            {"key": entry.key, "entry_id": entry.entry_id, "payload": entry.payload, "reason": reason[:2000]},
            maxlen=100_000,
            approximate=True,
        )

    def _finish(self, key: str) -> bool:
        """Take ``key`` off the pending set unless an entry arrived meanwhile."""
        # Both before the check: an append after it puts the key back in both.
        pipe = self._redis.pipeline(transaction=True)
        pipe.srem(self.pending_set, key)
        pipe.zrem(self.waiting_index, key)
        pipe.execute()
        if self.unhandled(key, limit=1):
            # An append slipped in between our read and the removal; put it back.
            self._redis.sadd(self.pending_set, key)
            self.note_waiting(key)
            return False
        pipe = self._redis.pipeline(transaction=True)
        pipe.expire(self.stream_key(key), IDLE_TTL_SECONDS)
        pipe.expire(self._cursor(key), IDLE_TTL_SECONDS)
        pipe.execute()
        return True
