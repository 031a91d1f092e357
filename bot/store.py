"""The Redis connection and the names of every key the product writes.

All keys start with ``redis.key_prefix`` (default ``debtbot``); ``docs/architecture.md``
lists them with what expires and what is kept.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from urllib.parse import urlsplit

import redis

from bot.config import Config


def redis_url(config: Config) -> str:
    """``REDIS_URL`` when set, else the embedded server on loopback."""
    return config.secrets.redis_url or f"redis://127.0.0.1:{config.redis.embedded_port}/0"


def connect(config: Config) -> redis.Redis[bytes]:
    """A client for the product's Redis (bytes in and out; decode at the edges)."""
    return redis.Redis.from_url(
        redis_url(config), socket_timeout=10, socket_connect_timeout=5, health_check_interval=30
    )


@dataclass(frozen=True)
class RedisAddress:
    """The pieces Rasa's Redis tracker and lock stores take instead of a URL."""

    host: str
    port: int
    db: int
    password: str


def redis_address(config: Config) -> RedisAddress:
    """Split the Redis URL for Rasa's endpoints.yml."""
    parts = urlsplit(redis_url(config))
    db = parts.path.lstrip("/") or "0"
    return RedisAddress(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 6379,
        db=int(db) if db.isdigit() else 0,
        password=parts.password or "",
    )


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
