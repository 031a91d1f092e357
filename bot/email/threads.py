"""Which conversation an email belongs to, from its ``In-Reply-To`` and ``References``.

Every email the bot sends has a Message-ID of its own (``channels.email.message_id_for``);
remembering which conversation each one belongs to lets a reply find its conversation even
when it comes from another address than the one on the account (a forward, a work address).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import redis

from bot.store.connection import Keys

#: How long a sent Message-ID still threads a reply (people answer old mail).
THREAD_TTL_SECONDS = 400 * 24 * 3600


def _hash(message_id: str) -> str:
    return hashlib.sha256(message_id.strip().lower().encode()).hexdigest()[:32]


class EmailThreads:
    """Message-ID -> account, in Redis."""

    def __init__(self, client: redis.Redis[bytes], keys: Keys) -> None:
        self._redis = client
        self._keys = keys

    def remember(self, message_ids: Iterable[str], account_id: str) -> None:
        """Our mails ``message_ids`` were sent in ``account_id``'s conversation."""
        pipe = self._redis.pipeline(transaction=False)
        for message_id in message_ids:
            pipe.set(self._keys.email_thread(_hash(message_id)), account_id, ex=THREAD_TTL_SECONDS)
        pipe.execute()

    def account_for(self, in_reply_to: str | None, references: Iterable[str]) -> str | None:
        """The account whose conversation a reply continues: the mail it answers first, then
        the thread's other mails from the newest back."""
        candidates = [in_reply_to] if in_reply_to else []
        candidates += [ref for ref in reversed(list(references)) if ref != in_reply_to]
        if not candidates:
            return None
        found = self._redis.mget([self._keys.email_thread(_hash(mid)) for mid in candidates])
        for value in found:
            if value is not None:
                return value.decode()
        return None
