"""Agent accounts: argon2 passwords, sign-in checks, one-time set-password links, the audit."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import redis
from argon2 import PasswordHasher

from bot.clock import Clock
from bot.console.agents import Agent, AgentDirectory, AgentError, Role
from bot.errors import BotError, NotFound
from bot.store.connection import Keys

PASSWORD = "correct horse battery"
START = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)


class CountingHasher(PasswordHasher):
    """argon2 with cheap parameters (fast tests) that counts the verifications."""

    def __init__(self, time_cost: int = 1, memory_cost: int = 8, parallelism: int = 1) -> None:
        super().__init__(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism)
        self.verified = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.verified += 1
        return super().verify(hash, password)


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def hasher() -> CountingHasher:
    return CountingHasher()


@pytest.fixture
def directory(redis_client: redis.Redis[bytes], clock: Clock, hasher: CountingHasher) -> AgentDirectory:
    return AgentDirectory(redis_client, Keys("debtbot"), clock, hasher)


def test_an_added_agent_signs_in_with_its_password(directory: AgentDirectory) -> None:
    added = directory.add("Maria.G", Role.SUPERVISOR, PASSWORD)
    assert added == Agent("maria.g", Role.SUPERVISOR, disabled=False, created_at=START, password_set=True)
    assert directory.verify("maria.g", PASSWORD) == added
    assert directory.verify("Maria.G", PASSWORD) == added
    assert directory.get("maria.g") == added


def test_a_wrong_password_or_an_unknown_name_does_not_sign_in_and_costs_the_same(
    directory: AgentDirectory, hasher: CountingHasher
) -> None:
    directory.add("maria", Role.AGENT, PASSWORD)
    hasher.verified = 0
    assert directory.verify("maria", "not the password at all") is None
    assert directory.verify("nobody", PASSWORD) is None
    assert directory.verify("NOT A NAME!", PASSWORD) is None
    assert hasher.verified == 3  # an argon2 verification each time, known name or not


def test_an_agent_without_a_password_never_signs_in(directory: AgentDirectory) -> None:
    directory.add("maria", Role.AGENT)
    assert directory.get("maria") is not None
    assert directory.get("maria").password_set is False  # type: ignore[union-attr]
    assert directory.verify("maria", "") is None
    assert directory.verify("maria", PASSWORD) is None


def test_a_disabled_agent_never_signs_in(directory: AgentDirectory, redis_client: redis.Redis[bytes]) -> None:
    directory.add("maria", Role.AGENT, PASSWORD)
    directory.disable("maria")
    assert directory.verify("maria", PASSWORD) is None
    assert directory.get("maria").disabled is True  # type: ignore[union-attr]
    with pytest.raises(NotFound):
        directory.disable("nobody")


def test_a_name_is_taken_once(directory: AgentDirectory) -> None:
    directory.add("maria", Role.AGENT, PASSWORD)
    with pytest.raises(AgentError, match="already exists") as raised:
        directory.add("MARIA", Role.SUPERVISOR, "another good password")
    assert isinstance(raised.value, BotError)
    assert directory.verify("maria", PASSWORD) is not None
    assert directory.get("maria").role is Role.AGENT  # type: ignore[union-attr]


@pytest.mark.parametrize("name", ["a", "x" * 33, "maria g", "maría", "maria/g", "maria:g", "", "ma\nria"])
def test_names_outside_the_alphabet_or_length_are_refused(directory: AgentDirectory, name: str) -> None:
    with pytest.raises(AgentError, match="2 to 32 characters"):
        directory.add(name, Role.AGENT, PASSWORD)
    assert directory.list() == []


def test_names_at_the_limits_are_accepted(directory: AgentDirectory) -> None:
    directory.add("ab", Role.AGENT)
    directory.add("a.b_c-9" + "x" * 25, Role.AGENT)
    assert [a.name for a in directory.list()] == ["a.b_c-9" + "x" * 25, "ab"]


def test_short_passwords_and_the_name_as_password_are_refused(directory: AgentDirectory) -> None:
    with pytest.raises(AgentError, match="at least 12"):
        directory.add("maria", Role.AGENT, "short-pass1")
    with pytest.raises(AgentError, match="user name"):
        directory.add("maria.gonzalez", Role.AGENT, "Maria.Gonzalez")
    assert directory.list() == []
    directory.add("maria", Role.AGENT, PASSWORD)
    with pytest.raises(AgentError, match="at least 12"):
        directory.set_password("maria", "short")
    assert directory.verify("maria", PASSWORD) is not None


def test_set_password_replaces_the_old_one(directory: AgentDirectory) -> None:
    directory.add("maria", Role.AGENT, PASSWORD)
    directory.set_password("maria", "a brand new passphrase")
    assert directory.verify("maria", PASSWORD) is None
    assert directory.verify("maria", "a brand new passphrase") is not None
    with pytest.raises(NotFound):
        directory.set_password("nobody", "a brand new passphrase")


def test_a_hash_made_with_old_parameters_is_rehashed_at_sign_in(
    redis_client: redis.Redis[bytes], clock: Clock
) -> None:
    keys = Keys("debtbot")
    AgentDirectory(redis_client, keys, clock, CountingHasher(time_cost=1)).add("maria", Role.AGENT, PASSWORD)
    old = redis_client.hget(keys.console_agent("maria"), "password_hash")
    stronger = CountingHasher(time_cost=2)
    assert AgentDirectory(redis_client, keys, clock, stronger).verify("maria", PASSWORD) is not None
    new = redis_client.hget(keys.console_agent("maria"), "password_hash")
    assert new != old
    assert new is not None and not stronger.check_needs_rehash(new.decode())
    assert AgentDirectory(redis_client, keys, clock, stronger).verify("maria", PASSWORD) is not None


def test_a_password_token_works_once(directory: AgentDirectory, redis_client: redis.Redis[bytes]) -> None:
    directory.add("maria", Role.AGENT)
    token = directory.issue_password_token("maria", timedelta(hours=24))
    assert len(token) >= 43
    [key] = redis_client.keys("debtbot:console:pwtoken:*")
    assert 0 < redis_client.ttl(key) <= 24 * 3600
    assert token.encode() not in key and token.encode() not in redis_client.get(key)  # type: ignore[operator]

    with pytest.raises(AgentError, match="at least 12"):
        directory.redeem_password_token(token, "short")  # a bad password does not use the link up
    agent = directory.redeem_password_token(token, PASSWORD)
    assert agent.name == "maria" and agent.password_set
    assert directory.verify("maria", PASSWORD) is not None
    with pytest.raises(AgentError, match="unknown, used or expired"):
        directory.redeem_password_token(token, "another good password")
    assert directory.verify("maria", PASSWORD) is not None
    with pytest.raises(AgentError, match="unknown, used or expired"):
        directory.redeem_password_token("made-up-token", PASSWORD)
    with pytest.raises(NotFound):
        directory.issue_password_token("nobody")


def test_a_password_token_expires(directory: AgentDirectory, clock: Clock) -> None:
    directory.add("maria", Role.AGENT)
    token = directory.issue_password_token("maria", timedelta(hours=24))
    clock.advance(timedelta(hours=24, seconds=1))
    with pytest.raises(AgentError, match="unknown, used or expired"):
        directory.redeem_password_token(token, PASSWORD)
    assert directory.get("maria").password_set is False  # type: ignore[union-attr]


def test_no_password_or_token_is_stored_in_plain(
    directory: AgentDirectory, redis_client: redis.Redis[bytes]
) -> None:
    directory.add("maria", Role.AGENT, PASSWORD)
    directory.add("john", Role.SUPERVISOR)
    token = directory.issue_password_token("john")
    directory.redeem_password_token(token, "johns own passphrase")
    second = directory.issue_password_token("maria")
    directory.verify("maria", PASSWORD)
    secrets = [PASSWORD.encode(), b"johns own passphrase", token.encode(), second.encode()]
    everything = b""
    for key in redis_client.scan_iter("*"):
        everything += key
        kind = redis_client.type(key)
        if kind == b"hash":
            everything += b"".join(k + v for k, v in redis_client.hgetall(key).items())
        elif kind == b"set":
            everything += b"".join(redis_client.smembers(key))
        elif kind == b"string":
            everything += redis_client.get(key) or b""
        elif kind == b"stream":
            everything += b"".join(k + v for _, f in redis_client.xrange(key) for k, v in f.items())
        else:
            raise AssertionError(f"unexpected key type {kind!r} for {key!r}")
    assert everything
    for secret in secrets:
        assert secret not in everything


def test_list_gives_every_agent_by_name(directory: AgentDirectory) -> None:
    directory.add("zoe", Role.AGENT, PASSWORD)
    directory.add("adam", Role.SUPERVISOR)
    directory.disable("zoe")
    assert [(a.name, a.role, a.disabled, a.password_set) for a in directory.list()] == [
        ("adam", Role.SUPERVISOR, False, False),
        ("zoe", Role.AGENT, True, True),
    ]


def test_changes_are_audited(directory: AgentDirectory, redis_client: redis.Redis[bytes]) -> None:
    directory.add("maria", Role.AGENT)
    directory.redeem_password_token(directory.issue_password_token("maria"), PASSWORD)
    directory.set_password("maria", "a brand new passphrase")
    directory.disable("maria")
    directory.verify("maria", PASSWORD)
    entries = [fields for _, fields in redis_client.xrange(Keys("debtbot").audit)]
    assert [(e[b"kind"], e[b"actor"], e[b"agent"]) for e in entries] == [
        (b"agent.added", b"cli", b"maria"),
        (b"agent.password_set", b"link", b"maria"),
        (b"agent.password_set", b"cli", b"maria"),
        (b"agent.disabled", b"cli", b"maria"),
    ]
    assert all(float(e[b"at"]) == START.timestamp() for e in entries)


def test_two_adds_of_one_name_at_once_make_one_agent_and_one_audit_entry(
    directory: AgentDirectory, redis_client: redis.Redis[bytes]
) -> None:
    import threading

    outcomes: list[str] = []
    start = threading.Barrier(2)

    def add(role: Role) -> None:
        start.wait()
        try:
            directory.add("rosa", role, "a long enough pass")
            outcomes.append("made")
        except AgentError:
            outcomes.append("taken")

    threads = [threading.Thread(target=add, args=(role,)) for role in (Role.AGENT, Role.SUPERVISOR)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["made", "taken"]
    added = [f for _, f in redis_client.xrange(Keys("debtbot").audit) if f.get(b"kind") == b"agent.added"]
    assert len(added) == 1
    assert directory.verify("rosa", "a long enough pass") is not None
