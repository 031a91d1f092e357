"""The Redis connection and the names of every key the product writes.

All keys start with ``redis.key_prefix`` (default ``debtbot``); ``docs/architecture.md``
lists them with what expires and what is kept.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, quote, unquote, urlsplit, urlunsplit

import redis
from redis.sentinel import Sentinel

from bot.config import Config, SentinelUrl, is_sentinel_url, parse_sentinel_url
from bot.errors import ConfigError, Unavailable

#: The embedded server's password, relative to the configuration file's folder.
REDIS_PASSWORD_FILE = "var/redis-password"  # noqa: S105 (a path, not a password)


def redis_url(config: Config) -> str:
    """``REDIS_URL`` when set (its password or TLS as given), else the embedded server with
    its password."""
    if config.secrets.redis_url:
        return config.secrets.redis_url
    password = quote(embedded_redis_password(config), safe="")
    return f"redis://:{password}@{embedded_redis_host(config)}:{config.redis.embedded_port}/0"


def redis_display_url(url: str) -> str:
    """``url`` with its passwords masked (the Sentinel's in its query too), for banners and
    messages."""
    if is_sentinel_url(url):
        return _sentinel_display_url(url)
    parts = urlsplit(url)
    if not parts.password:
        return url
    user = f"{parts.username}:" if parts.username else ":"
    host = parts.hostname or ""
    netloc = f"{user}***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def embedded_redis_host(config: Config) -> str:
    """Where clients on this machine reach the embedded server."""
    host = config.redis.embedded_host
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104


def embedded_redis_password(config: Config) -> str:
    """The embedded server's ``requirepass``: made once into ``var/redis-password`` (mode 0600)
    and reused by every process and every restart."""
    path = config.path(REDIS_PASSWORD_FILE)
    try:
        return _read_password(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(secrets.token_urlsafe(32) + "\n")
    try:
        # link() never replaces: when two processes race, both use the first one's password.
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return _read_password(path)


def _read_password(path: Path) -> str:
    mode = path.stat().st_mode
    if mode & 0o077:
        # Another user may have read it: tighten it so it is not read again.
        os.chmod(path, 0o600)
    password = path.read_text(encoding="utf-8").strip()
    # It goes into redis.conf and a URL: no spaces, quotes or backslashes, at least 16 characters.
    if len(password) < 16 or not password.isascii() or any(c.isspace() or c in "\"'\\" for c in password):
        raise ConfigError(
            [
                f"{path}: the embedded Redis password must be at least 16 ASCII characters without "
                "spaces, quotes or backslashes; delete the file to have a new one made"
            ]
        )
    return password


def _sentinel_display_url(url: str) -> str:
    scheme, _, rest = url.partition("://")
    rest, mark, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    if password:
        userinfo = f"{username}:***"
    if "sentinel_password=" in query:
        query = "&".join(
            "sentinel_password=***" if item.startswith("sentinel_password=") else item
            for item in query.split("&")
        )
    return f"{scheme}://{userinfo}{at}{hosts}{slash}{path}{mark}{query}"


#: How long a sentinel may take to connect and to answer (s); it only names the master.
SENTINEL_TIMEOUT = 5.0


def sentinel_target(url: str) -> SentinelUrl:
    """A Sentinel ``REDIS_URL`` parsed, or a :class:`ConfigError` naming ``REDIS_URL``."""
    try:
        return parse_sentinel_url(url)
    except ValueError as exc:
        raise ConfigError([f"REDIS_URL: {exc}"]) from None


def sentinel_for(target: SentinelUrl, timeout: float = SENTINEL_TIMEOUT) -> Sentinel:
    """A redis-py :class:`Sentinel` on ``target``'s sentinels (their own user, password and TLS)."""
    sentinel_kwargs: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    sentinel_kwargs |= _credentials(
        target.sentinel_username, target.sentinel_password, target.sentinel_tls, target.ca_certs
    )
    return Sentinel(list(target.sentinels), sentinel_kwargs=sentinel_kwargs)


def _credentials(username: str, password: str, tls: bool, ca_certs: str) -> dict[str, Any]:
    """redis-py's connection options for a user, a password and TLS (with a private CA)."""
    found: dict[str, Any] = {}
    if username:
        found["username"] = username
    if password:
        found["password"] = password
    if tls:
        found["ssl"] = True
        if ca_certs:
            found["ssl_ca_certs"] = ca_certs
    return found


def redis_client(url: str, **options: Any) -> redis.Redis[bytes]:
    """The one way a Redis URL becomes a client (bytes in and out).

    ``redis://``, ``rediss://`` and ``unix://`` go to redis-py's ``from_url`` (its query options,
    e.g. ``?ssl_ca_certs=/path/ca.pem``, included); ``redis+sentinel://`` and
    ``rediss+sentinel://`` give a client of the master the sentinels name, which follows a
    failover by itself (redis-py's ``Sentinel.master_for``). ``options`` are the client's
    (timeouts...). A malformed Sentinel URL is a :class:`ConfigError` naming ``REDIS_URL``.
    """
    if not is_sentinel_url(url):
        return redis.Redis.from_url(url, **options)
    target = sentinel_target(url)
    data: dict[str, Any] = {"db": target.db, **options}
    data |= _credentials(target.username, target.password, target.tls, target.ca_certs)
    client: redis.Redis[bytes] = sentinel_for(target).master_for(target.service, **data)
    return client


def connect(config: Config) -> redis.Redis[bytes]:
    """A client for the product's Redis (bytes in and out; decode at the edges)."""
    return redis_client(
        redis_url(config), socket_timeout=10, socket_connect_timeout=5, health_check_interval=30
    )


@dataclass(frozen=True)
class RedisAddress:
    """The pieces Rasa's Redis tracker and lock stores take instead of a URL."""

    host: str
    port: int
    db: int
    password: str
    username: str = ""
    tls: bool = False
    #: A private CA's certificates for TLS (``?ssl_ca_certs=`` in ``REDIS_URL``), else "".
    ca_certs: str = ""


def redis_address(config: Config) -> RedisAddress:
    """Split the Redis URL for Rasa's endpoints.yml. For a Sentinel URL, the master the
    sentinels name now (Rasa's stores take one host): ``bot/runtime/redis_watch.py`` restarts
    the Rasa servers when it changes. :class:`Unavailable` when no sentinel names one."""
    url = redis_url(config)
    if is_sentinel_url(url):
        target = sentinel_target(url)
        try:
            host, port = master_address(target)
        except redis.RedisError as exc:
            sentinels = ", ".join(f"{h}:{p}" for h, p in target.sentinels)
            raise Unavailable(
                f"REDIS_URL: no sentinel ({sentinels}) names a master for {target.service!r}: {exc}"
            ) from exc
        return RedisAddress(
            host=host,
            port=port,
            db=target.db,
            password=target.password,
            username=target.username,
            tls=target.tls,
            ca_certs=target.ca_certs,
        )
    parts = urlsplit(url)
    db = parts.path.lstrip("/") or "0"
    query = parse_qs(parts.query)
    return RedisAddress(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 6379,
        db=int(db) if db.isdigit() else 0,
        password=unquote(parts.password or ""),
        username=unquote(parts.username or ""),
        tls=parts.scheme == "rediss",
        ca_certs=query.get("ssl_ca_certs", [""])[-1],
    )


def master_address(target: SentinelUrl, timeout: float = SENTINEL_TIMEOUT) -> tuple[str, int]:
    """The master's host and port as the sentinels name it now (``MasterNotFoundError``, a
    :class:`redis.ConnectionError`, when none does)."""
    sentinel = sentinel_for(target, timeout)
    try:
        host, port = sentinel.discover_master(target.service)
    finally:
        for node in sentinel.sentinels:
            node.close()
    return str(host), int(port)


class Keys:
    """Key names, in one place."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def _k(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    # accounts
    def account(self, account_id: str) -> str:
        return self._k("account", account_id)

    @property
    def account_ids(self) -> str:
        return self._k("accounts")

    def account_index(self, kind: str, value: str) -> str:
        # Hashed: key names (visible in MONITOR, SLOWLOG, key scans) carry no phone or email.
        return self._k("idx", kind, hashlib.sha256(value.encode()).hexdigest()[:32])

    # inbound de-duplication
    def dedupe(self, channel: str, external_id: str) -> str:
        return self._k("dedupe", channel, external_id)

    # per-key ordered queues (inbound and outbound)
    @property
    def queues(self) -> str:
        return self._k("q")

    # state the dialogue records on an account: preferences (pref:*) and pauses (pause:*)
    def account_state(self, account_id: str) -> str:
        return self._k("account", account_id, "state")

    def account_plans(self, account_id: str) -> str:
        return self._k("account", account_id, "plans")

    def plan(self, plan_id: str) -> str:
        return self._k("plan", plan_id)

    # per address (hashed): opted_out, wrong_party, unreachable
    def address_status(self, address_hash: str) -> str:
        return self._k("address", address_hash)

    # conversations waiting for an agent (stream) and each conversation's flags (hash)
    @property
    def agent_queue(self) -> str:
        return self._k("agents", "queue")

    def conversation_flags(self, conversation_id: str) -> str:
        return self._k("conversation", conversation_id, "flags")

    @property
    def callbacks(self) -> str:
        return self._k("callbacks")

    # events for the creditor's system (append-only stream)
    @property
    def events(self) -> str:
        return self._k("events")

    # Rasa's conversation events, appended by its event broker (dialogue/event_broker.py builds
    # the same name) and copied into the analytics store by the ingester
    @property
    def rasa_events(self) -> str:
        return self._k("rasa_events")

    # delivery status of each outbound message
    def delivery(self, outbox_id: str) -> str:
        return self._k("delivery", outbox_id)

    # send-rate reservations, one per bucket (a sender number, a chat, a whole bot)
    def rate(self, bucket: str) -> str:
        return self._k("rate", bucket)

    # Telegram deep-link tokens (hashed) -> account id; chat (hashed) -> account id;
    # account -> its linked chat id (needed to write to it first)
    def telegram_token(self, token_hash: str) -> str:
        return self._k("tglink", token_hash)

    def telegram_chat(self, chat_hash: str) -> str:
        return self._k("tgchat", chat_hash)

    def telegram_account_chat(self, account_id: str) -> str:
        return self._k("account", account_id, "telegram_chat")

    @property
    def telegram_poll_offset(self) -> str:
        return self._k("tgpoll", "offset")

    # the numbered choices last offered to an address on a channel without buttons
    def choices(self, address_key: str) -> str:
        return self._k("choices", address_key)

    # email: our Message-IDs (hashed) -> conversation, for threading replies
    def email_thread(self, message_id_hash: str) -> str:
        return self._k("mailthread", message_id_hash)

    # one-click unsubscribe tokens (hashed) -> the address they stop
    def unsubscribe_token(self, token_hash: str) -> str:
        return self._k("unsub", token_hash)

    # bot replies per address in the last hour (sorted set), the last guard against mail loops
    def reply_log(self, address_key: str) -> str:
        return self._k("replies", address_key)

    # proactive messages sent to an account (sorted set "channel:outbox id" -> time), for the caps
    def contact_log(self, account_id: str) -> str:
        return self._k("account", account_id, "contacts")

    # every compliance decision, append-only (a stream)
    @property
    def audit(self) -> str:
        return self._k("audit")

    # the agents' console: each agent (a hash, keyed by the user name the agent chose), the set
    # of names, and one-time set-password tokens (SHA-256 of the token -> the agent's name)
    def console_agent(self, name: str) -> str:
        return self._k("console", "agent", name)

    @property
    def console_agents(self) -> str:
        return self._k("console", "agents")

    def console_password_token(self, token_hash: str) -> str:
        return self._k("console", "pwtoken", token_hash)

    # outreach: accounts deferred to a later moment (sorted set account -> when), the last
    # opener per account, counts per opener wording, and the scheduler's lease
    @property
    def outreach_deferred(self) -> str:
        return self._k("outreach", "deferred")

    def opener_stats(self, language: str, variant: str) -> str:
        return self._k("outreach", "variant", language, variant)

    @property
    def outreach_lease(self) -> str:
        return self._k("outreach", "lease")

    @property
    def outreach_last_run(self) -> str:
        return self._k("outreach", "last_run")

    # the lease of the one worker that reads the IMAP mailbox
    @property
    def mailbox_lease(self) -> str:
        return self._k("mailbox", "lease")

    # mail that could not be read, set aside for an agent (a stream per channel)
    def dead_letters(self, channel: str) -> str:
        return self._k("deadletters", channel)

    # sandbox outbox (a stream)
    @property
    def sandbox_outbox(self) -> str:
        return self._k("sandbox", "outbox")

    # worker heartbeats (sorted set: worker id -> unix time)
    @property
    def worker_heartbeats(self) -> str:
        return self._k("workers")

    # the job engine's own keys
    @property
    def jobs_namespace(self) -> str:
        return self._k("jobs")

    # the agent console's hand-off (bot/console/handoff.py): each conversation's record (hash),
    # waiting conversations (sorted set -> when), claims by last activity (sorted set), every
    # change (stream) and closes per outcome (hash). Conversation ids are opaque (acct-<id>,
    # anon-<channel>.<hash>): no personal data in the key names.
    def handoff(self, conversation_id: str) -> str:
        return self._k("conversation", conversation_id, "handoff")

    @property
    def console_waiting(self) -> str:
        return self._k("console", "waiting")

    @property
    def console_claimed(self) -> str:
        return self._k("console", "claimed")

    @property
    def console_events(self) -> str:
        return self._k("console", "events")

    @property
    def console_outcomes(self) -> str:
        return self._k("console", "outcomes")

    # conversation -> whether the person is verified ("1"/"0"; the inbox's column): written by
    # the dialogue's verification (bot/conversations) and the console, read by the inbox
    @property
    def console_verified(self) -> str:
        return self._k("console", "verified")

    # every delivery outcome kept (stream: outbox_id, channel, status, error_code, conversation_id,
    # at; no address, no text), for the analytics store
    @property
    def deliveries(self) -> str:
        return self._k("deliveries")

    # when retention last ran (bot/ops/analytics; the scheduler runs it daily)
    @property
    def retention_last_run(self) -> str:
        return self._k("retention", "last_run")

    # the console's own keys (bot/console: sessions, sign-in throttles, deferred agent replies,
    # Rasa events still to deliver, canned replies...): console:<parts>
    def console(self, *parts: str) -> str:
        return self._k("console", *parts)

    # what agents did in one conversation (stream; the supervisor's audit view)
    def conversation_audit(self, conversation_id: str) -> str:
        return self._k("conversation", conversation_id, "audit")

    # each conversation's history (stream: what was written, sent and done; the console reads it)
    def conversation_history(self, conversation_id: str) -> str:
        return self._k("conversation", conversation_id, "history")

    # where the person last wrote from, per channel (hash: channel -> address, _last -> channel)
    def conversation_contacts(self, conversation_id: str) -> str:
        return self._k("conversation", conversation_id, "contacts")


class StoreParts(Protocol):
    """The parts almost every process-level piece reads: the configuration, the Redis
    connection and the key names. The narrower ``*Parts`` protocols extend it; the process's
    ``Services`` fits them all without being named."""

    @property
    def config(self) -> Config: ...

    @property
    def redis(self) -> redis.Redis[bytes]: ...

    @property
    def keys(self) -> Keys: ...
