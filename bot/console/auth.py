"""Signing in to the agents' console: sessions, idle expiry, sign-in throttling, set-password links.

- **Sessions** are Flask-Login's, on Flask's signed session cookie (HttpOnly, SameSite=Lax,
  Secure when ``server.public_url`` is https). A signed cookie alone cannot be revoked, so each
  sign-in also gets a random session id kept in Redis (``console:sessions:<agent>``: a hash of
  session id → last activity): the user loader accepts a cookie only while its id is there, the
  agent is not disabled and the last activity (on the injected clock) is within
  ``console.idle_minutes``. Signing out deletes the id; disabling an agent deletes them all. At
  sign-in the old session is cleared and a new one issued, so the cookie changes (no fixation).
- **Throttling**: Flask-Limiter cannot be installed here (its ``limits`` dependency needs
  ``packaging>=21`` and Rasa 3.6 pins ``packaging<21``), so failed sign-ins are counted with
  pyrate-limiter's ``RedisBucket`` (a sorted set per key, its Lua script): one bucket per account
  name and one per client address. Its ``Limiter`` is not used: it starts a leak thread and reads
  its own clock; the bucket is fed timestamps from the product's ``Clock`` so tests can move time.
  After ``console.sign_in_attempts`` failures within ``console.sign_in_window_minutes`` every
  attempt, even with the right password, is refused (HTTP 429 with ``Retry-After``) until the
  oldest failure leaves the window.
- **Audit**: every sign-in, failure, refusal and sign-out is an entry in the audit stream with the
  name tried and a keyed hash of the client address (never the address or the password).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Protocol

import redis
from flask_login import UserMixin  # type: ignore[import-untyped]  # ships no type hints
from pyrate_limiter import Rate, RateItem
from pyrate_limiter.buckets.redis_bucket import LuaScript, RedisBucket

from bot.clock import Clock
from bot.console.agents import Agent, AgentDirectory, Role
from bot.console.errors import ConsoleError
from bot.console.handoff import AUDIT_MAXLEN, Actor
from bot.store.connection import Keys, StoreParts

__all__ = [
    "AuthParts",
    "PermissionDenied",
    "SessionRegistry",
    "SignInThrottle",
    "User",
    "address_hash",
    "audit_sign_in",
]

#: The longest user name written to the audit for a failed attempt (what was typed, cut).
_MAX_AUDITED_NAME = 64


class PermissionDenied(ConsoleError):
    """The signed-in agent's role may not do this (a supervisor's page or action)."""


class AuthParts(StoreParts, Protocol):
    """What signing in needs (``bot.runtime.services.Services`` has it)."""

    @property
    def clock(self) -> Clock: ...
    @property
    def agent_directory(self) -> AgentDirectory: ...


class User(UserMixin):  # type: ignore[misc]  # UserMixin is untyped
    """The signed-in agent, as Flask-Login sees it."""

    def __init__(self, agent: Agent, session_id: str) -> None:
        self.agent = agent
        self.session_id = session_id

    def get_id(self) -> str:
        return self.agent.name

    @property
    def name(self) -> str:
        return self.agent.name

    @property
    def role(self) -> str:
        return self.agent.role.value

    @property
    def is_supervisor(self) -> bool:
        return self.agent.role is Role.SUPERVISOR

    @property
    def is_ops(self) -> bool:
        """May use the ops pages: the ``ops`` role, and supervisors too."""
        return self.agent.role in (Role.OPS, Role.SUPERVISOR)

    @property
    def works_conversations(self) -> bool:
        """May use the inbox and conversations (agents and supervisors, not ops alone)."""
        return self.agent.role in (Role.AGENT, Role.SUPERVISOR)

    @property
    def actor(self) -> Actor:
        return Actor.of(self.agent.name, self.agent.role.value)


def _key(keys: Keys, *parts: str) -> str:
    return keys.console(*parts)


def address_hash(secret: str, address: str) -> str:
    """A keyed hash of a client address, for the audit and the throttle's keys (an IPv4 address
    is too easy to find from a plain hash)."""
    return hmac.new(secret.encode(), address.encode(), hashlib.sha256).hexdigest()[:24]


class SessionRegistry:
    """The console sessions that are still valid, per agent, with their last activity."""

    def __init__(self, client: redis.Redis[bytes], keys: Keys, clock: Clock, idle_minutes: float) -> None:
        self._redis = client
        self._keys = keys
        self._clock = clock
        self._idle = idle_minutes * 60

    def _hash(self, name: str) -> str:
        return _key(self._keys, "sessions", name)

    def start(self, name: str) -> str:
        """A new session id for ``name``; stale ones are dropped on the way."""
        session_id = secrets.token_urlsafe(24)
        now = self._clock.timestamp()
        key = self._hash(name)
        stale = [f for f, seen in self._redis.hgetall(key).items() if now - float(seen) > self._idle]
        pipe = self._redis.pipeline(transaction=True)
        if stale:
            pipe.hdel(key, *stale)
        pipe.hset(key, session_id, repr(now))
        # Cleanup only (the clock decides validity): kept well past the idle limit.
        pipe.expire(key, int(max(self._idle * 4, 3600)))
        pipe.execute()
        return session_id

    def valid(self, name: str, session_id: str, *, touch: bool = True) -> bool:
        """``True`` when the session exists and was active within the idle limit; with ``touch``
        it then counts as active now (a page's background poll does not touch)."""
        if not session_id:
            return False
        key = self._hash(name)
        seen = self._redis.hget(key, session_id)
        now = self._clock.timestamp()
        if seen is None:
            return False
        if now - float(seen) > self._idle:
            self._redis.hdel(key, session_id)
            return False
        if touch:
            self._redis.hset(key, session_id, repr(now))
        return True

    def end(self, name: str, session_id: str) -> None:
        self._redis.hdel(self._hash(name), session_id)

    def end_all(self, name: str) -> None:
        """Every session of ``name`` stops working (the agent was disabled)."""
        self._redis.delete(self._hash(name))


def _load_script(client: redis.Redis[bytes]) -> str:
    """pyrate-limiter's bucket script, loaded into Redis; its SHA-1."""
    return str(client.script_load(LuaScript.PUT_ITEM))  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class Throttled:
    """Sign-in refused for now; ``retry_after`` seconds (at least 1)."""

    retry_after: int


class SignInThrottle:
    """Failed sign-ins per account name and per client address, in a sliding window on Redis."""

    def __init__(
        self,
        client: redis.Redis[bytes],
        keys: Keys,
        clock: Clock,
        secret: str,
        attempts: int,
        window_minutes: float,
    ) -> None:
        self._redis = client
        self._keys = keys
        self._clock = clock
        self._secret = secret
        self._rate = Rate(attempts, int(window_minutes * 60_000))
        self._script = ""

    def _buckets(self, name: str, address: str) -> list[RedisBucket]:
        if not self._script:
            self._script = _load_script(self._redis)
        name_key = address_hash(self._secret, name.strip().lower()[:_MAX_AUDITED_NAME])
        return [
            RedisBucket(
                [self._rate], self._redis, _key(self._keys, "signin", "name", name_key), self._script
            ),
            RedisBucket(
                [self._rate],
                self._redis,
                _key(self._keys, "signin", "ip", address_hash(self._secret, address)),
                self._script,
            ),
        ]

    def _now_ms(self) -> int:
        return int(self._clock.timestamp() * 1000)

    def check(self, name: str, address: str) -> Throttled | None:
        """``Throttled`` while the name or the address has used up its failures in the window."""
        now = self._now_ms()
        waits = []
        for bucket in self._buckets(name, address):
            # The ``limit``-th newest failure: inside the window means the limit is reached.
            item = bucket.peek(self._rate.limit - 1)
            if isinstance(item, RateItem) and item.timestamp > now - self._rate.interval:
                waits.append(item.timestamp + self._rate.interval - now)
        if not waits:
            return None
        return Throttled(retry_after=max(1, -(-max(waits) // 1000)))

    def failed(self, name: str, address: str) -> None:
        """Count a failure for the name and the address."""
        now = self._now_ms()
        for bucket in self._buckets(name, address):
            try:
                bucket.put(RateItem("fail", now))
            except redis.exceptions.NoScriptError:  # Redis restarted and forgot the script
                self._script = bucket.script_hash = _load_script(self._redis)
                bucket.put(RateItem("fail", now))
            bucket.leak(now)
            self._redis.pexpire(bucket.bucket_key, self._rate.interval * 2)


def audit_sign_in(
    client: redis.Redis[bytes], keys: Keys, clock: Clock, kind: str, name: str, ip_hash: str, **extra: str
) -> None:
    """An audit entry (``console:sign_in``, ``console:sign_in_failed``, ``console:sign_in_throttled``,
    ``console:sign_out``) with the name tried and the hashed address."""
    who = name.strip().lower()[:_MAX_AUDITED_NAME]
    fields: dict[str | bytes, bytes | float | int | str] = {
        "kind": kind, "agent": who, "by": who, "ip": ip_hash, "at": repr(clock.timestamp()),
    }  # fmt: skip
    fields.update(extra)
    client.xadd(keys.audit, fields, maxlen=AUDIT_MAXLEN, approximate=True)
