"""Agent accounts: who may sign in to the console, with what role, and their passwords.

Passwords are argon2 hashes (argon2-cffi's defaults; rehashed on sign-in when those change).
A set-password link carries a random token that Redis keeps only as its SHA-256, for a limited
time, and that works once. Adding, disabling and setting a password each append an entry to the
audit stream. Key names hold nothing but the user name the agent chose.
"""

from __future__ import annotations

import builtins
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from functools import cache, lru_cache

import redis
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from bot.clock import Clock
from bot.compliance.gate import AUDIT_MAXLEN
from bot.console.errors import ConsoleError
from bot.errors import NotFound
from bot.store.connection import Keys

__all__ = [
    "MIN_PASSWORD_LENGTH",
    "PASSWORD_TOKEN_TTL",
    "Agent",
    "AgentDirectory",
    "AgentError",
    "Role",
    "password_token_hash",
]

#: The shortest password accepted.
MIN_PASSWORD_LENGTH = 12

#: How long a set-password link works by default.
PASSWORD_TOKEN_TTL = timedelta(hours=24)

_NAME = re.compile(r"^[a-z0-9._-]{2,32}$")


class AgentError(ConsoleError):
    """An agent account cannot be made or changed as asked; the message says why."""


class Role(Enum):
    """What an agent may do in the console."""

    AGENT = "agent"
    SUPERVISOR = "supervisor"
    #: Tunes the dialogue (the ops pages under ``/console/ops``); works no conversation.
    OPS = "ops"


@dataclass(frozen=True)
class Agent:
    """One agent account, as the console and ``debtbot agents list`` see it (never its hash)."""

    name: str
    role: Role
    disabled: bool
    created_at: datetime
    password_set: bool


def password_token_hash(token: str) -> str:
    """What Redis keeps of a set-password token."""
    return hashlib.sha256(token.encode()).hexdigest()


@cache
def _dummy_hash(hasher: PasswordHasher) -> str:
    # Verified against when the name is unknown, so that costs what a known name costs.
    return hasher.hash(secrets.token_urlsafe(16))


class AgentDirectory:
    """The agent accounts in Redis."""

    def __init__(
        self, redis: redis.Redis[bytes], keys: Keys, clock: Clock, hasher: PasswordHasher | None = None
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._clock = clock
        self._hasher = hasher or _default_hasher()

    # accounts

    def add(self, name: str, role: Role, password: str | None = None) -> Agent:
        """A new agent; without ``password`` it has none until a set-password link is redeemed.
        Raises ``AgentError`` for a bad name or password, or a name already taken."""
        name = check_name(name)
        if password is not None:
            check_password(name, password)
        key = self._keys.console_agent(name)
        now = self._clock.now()
        password_hash = self._hasher.hash(password) if password is not None else ""
        # One transaction: the record, the index and the audit land together or not at all,
        # so a crash never leaves a half-made agent that blocks its own name.
        with self._redis.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(key)
                if pipe.exists(key):
                    raise AgentError(f"agent {name!r} already exists")
                pipe.multi()
                pipe.hset(
                    key,
                    mapping={
                        "name": name,
                        "role": role.value,
                        "disabled": "0",
                        "created_at": now.isoformat(),
                        "password_hash": password_hash,
                    },
                )
                pipe.sadd(self._keys.console_agents, name)
                self._audit(pipe, "agent.added", name, role=role.value)
                pipe.execute()
            except redis.WatchError as exc:
                raise AgentError(f"agent {name!r} already exists") from exc
        return Agent(name=name, role=role, disabled=False, created_at=now, password_set=password is not None)

    def get(self, name: str) -> Agent | None:
        """The agent called ``name``, or ``None``."""
        name = name.strip().lower()
        fields = self._redis.hgetall(self._keys.console_agent(name)) if _NAME.match(name) else {}
        return _agent(fields) if fields.get(b"role") else None

    def list(self) -> builtins.list[Agent]:
        """Every agent, by name."""
        names = sorted(n.decode() for n in self._redis.smembers(self._keys.console_agents))
        return [agent for agent in (self.get(name) for name in names) if agent is not None]

    def set_password(self, name: str, password: str, *, actor: str = "cli") -> None:
        """Replace ``name``'s password. Raises ``NotFound`` or ``AgentError``."""
        name = self._require(name)
        check_password(name, password)
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(self._keys.console_agent(name), "password_hash", self._hasher.hash(password))
        self._audit(pipe, "agent.password_set", name, actor=actor)
        pipe.execute()

    def disable(self, name: str, *, actor: str = "cli") -> None:
        """``name`` can no longer sign in (its record stays). Raises ``NotFound``."""
        name = self._require(name)
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(self._keys.console_agent(name), "disabled", "1")
        self._audit(pipe, "agent.disabled", name, actor=actor)
        pipe.execute()

    def verify(self, name: str, password: str) -> Agent | None:
        """The agent when ``password`` is theirs and they are not disabled, else ``None``.
        The same argon2 work is done whether or not the name exists."""
        name = name.strip().lower()
        fields = self._redis.hgetall(self._keys.console_agent(name)) if _NAME.match(name) else {}
        stored = fields.get(b"password_hash", b"").decode()
        try:
            self._hasher.verify(stored or _dummy_hash(self._hasher), password)
        except (VerificationError, InvalidHashError):
            return None
        if not stored or not fields.get(b"role"):
            return None
        agent = _agent(fields)
        if agent.disabled:
            return None
        if self._hasher.check_needs_rehash(stored):
            self._redis.hset(self._keys.console_agent(name), "password_hash", self._hasher.hash(password))
        return agent

    # one-time set-password links

    def issue_password_token(self, name: str, ttl: timedelta = PASSWORD_TOKEN_TTL) -> str:
        """A token that sets ``name``'s password once within ``ttl``; Redis keeps only its hash.
        Raises ``NotFound``."""
        name = self._require(name)
        token = secrets.token_urlsafe(32)
        expires = self._clock.now() + ttl
        self._redis.set(
            self._keys.console_password_token(password_token_hash(token)),
            f"{name}\n{expires.timestamp()}",
            ex=max(1, int(ttl.total_seconds())),
        )
        return token

    def redeem_password_token(self, token: str, password: str) -> Agent:
        """Set the password of the token's agent; the token then no longer works.
        Raises ``AgentError`` for an unknown, used or expired token, or a bad password (the
        token then still works)."""
        key = self._keys.console_password_token(password_token_hash(token))
        raw = self._redis.get(key)
        if raw is None:
            raise AgentError("this link is unknown, used or expired")
        name, _, expires = raw.decode().partition("\n")
        if self._clock.timestamp() >= float(expires):
            self._redis.delete(key)
            raise AgentError("this link is unknown, used or expired")
        check_password(name, password)
        if not self._redis.delete(key):  # another request used it first
            raise AgentError("this link is unknown, used or expired")
        self.set_password(name, password, actor="link")
        agent = self.get(name)
        if agent is None:
            raise NotFound(f"agent {name!r} does not exist")
        return agent

    # helpers

    def _require(self, name: str) -> str:
        name = name.strip().lower()
        if not _NAME.match(name) or not self._redis.hexists(self._keys.console_agent(name), "role"):
            raise NotFound(f"agent {name!r} does not exist")
        return name

    def _audit(self, pipe: redis.client.Pipeline[bytes], kind: str, name: str, actor: str = "cli",
               **extra: str) -> None:  # fmt: skip
        pipe.xadd(
            self._keys.audit,
            {"at": str(self._clock.timestamp()), "kind": kind, "actor": actor, "agent": name, **extra},
            maxlen=AUDIT_MAXLEN,
            approximate=True,
        )


def check_name(name: str) -> str:
    """``name`` in lower case, or ``AgentError`` saying what a user name may be."""
    lowered = name.strip().lower()
    if not _NAME.match(lowered):
        raise AgentError(f"user name {name!r}: 2 to 32 characters of a-z, 0-9, '.', '_' and '-' (lower case)")
    return lowered


def check_password(name: str, password: str) -> None:
    """``AgentError`` when ``password`` is too short or is the user name."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AgentError(f"the password must be at least {MIN_PASSWORD_LENGTH} characters")
    if password.strip().lower() == name.lower():
        raise AgentError("the password must not be the user name")


@lru_cache(maxsize=1)
def _default_hasher() -> PasswordHasher:
    return PasswordHasher()


def _agent(fields: dict[bytes, bytes]) -> Agent:
    return Agent(
        name=fields[b"name"].decode(),
        role=Role(fields[b"role"].decode()),
        disabled=fields.get(b"disabled") == b"1",
        created_at=datetime.fromisoformat(fields[b"created_at"].decode()),
        password_set=bool(fields.get(b"password_hash")),
    )
