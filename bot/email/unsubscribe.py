"""One-click unsubscribe links for email (RFC 8058): a token per address, in every email's
footer and its ``List-Unsubscribe`` header. The pages that use them are
``bot.gateway.unsubscribe``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging

import redis

from bot.store.connection import Keys

logger = logging.getLogger(__name__)

#: A link keeps working this long after the last email that carried it.
TOKEN_TTL_SECONDS = 400 * 24 * 3600


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:32]


class UnsubscribeLinks:
    """Tokens that stand for one address on one channel (stored hashed, with the address)."""

    def __init__(self, client: redis.Redis[bytes], keys: Keys, secret: str, public_url: str) -> None:
        self._redis = client
        self._keys = keys
        self._secret = secret.encode()
        self._public_url = public_url.rstrip("/")

    def url(self, channel: str, address: str, account_id: str | None, language: str) -> str:
        """The unsubscribe URL for ``address`` (the same one every time for an address)."""
        digest = hmac.new(self._secret, f"unsubscribe\0{channel}\0{address.lower()}".encode(), "sha256")
        token = base64.urlsafe_b64encode(digest.digest()[:18]).decode()
        record = {
            "channel": channel,
            "address": address,
            "account_id": account_id or "",
            "language": language,
        }
        self._redis.set(self._keys.unsubscribe_token(_hash(token)), json.dumps(record), ex=TOKEN_TTL_SECONDS)
        return f"{self._public_url}/unsubscribe/{token}"

    def lookup(self, token: str) -> dict[str, str] | None:
        raw = self._redis.get(self._keys.unsubscribe_token(_hash(token)))
        return dict(json.loads(raw)) if raw is not None else None
