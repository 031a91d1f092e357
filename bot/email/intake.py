"""Raw mail in, from the webhook or the IMAP poller: parse, then queue it or set it aside.

Both ways in end here, so they behave the same: a readable message is queued once (de-duplicated
by Message-ID), and mail that cannot be read goes to the dead letters with a clear log line.
Nothing is dropped and nothing crashes the caller; only a storage outage raises, so the
webhook answers 503 (the provider retries) and the poller leaves the message for its next pass.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import redis

from bot.compliance.keywords import SmsKeywords
from bot.email.dead_letters import DeadLetters
from bot.store.intake import InboundIntake
from channels.cleaning import clean_line
from channels.email import EmailChannel
from channels.email_parse import MalformedEmail

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmailOutcome:
    """What became of one raw message."""

    status: Literal["accepted", "duplicate", "set_aside"]
    #: The Message-ID (accepted, duplicate) or the dead-letter entry id (set aside).
    reference: str
    reason: str = ""


@dataclass
class EmailIntake:
    """Parse a raw message and hand it to the inbound path, or set it aside."""

    channel: EmailChannel
    intake: InboundIntake
    dead_letters: DeadLetters
    keywords: SmsKeywords | None = None

    def receive(self, raw: bytes) -> EmailOutcome:
        try:
            message = self.channel.parse_raw(raw)
        except MalformedEmail as exc:
            return self._set_aside(raw, exc.reason, str(exc))
        except (redis.RedisError, OSError):
            raise
        except Exception as exc:
            # A parser bug must not lose the mail or block the ones behind it.
            logger.exception("email could not be parsed (unexpected error); setting it aside")
            return self._set_aside(raw, "parser_error", f"{type(exc).__name__}: {exc}")
        if self.keywords is not None:
            # STOP takes effect before anything is queued, as by SMS.
            self.keywords.on_receive(message)
        accepted = self.intake.accept(message)
        if message.kind == "automated":
            logger.info("email %s is automatic (%s): queued, will not be answered",
                        message.external_id, message.raw.get("automated", "bounce"))  # fmt: skip
        return EmailOutcome("accepted" if accepted else "duplicate", message.external_id)

    def too_large(self, headers: bytes, size: int) -> EmailOutcome:
        """A message too big to read (the poller saw its size): only its headers are kept."""
        limit = self.channel.max_message_bytes
        detail = f"the message is {size} bytes, over the {limit}-byte limit; only its headers were kept"
        return self._set_aside(headers, "too_large", detail)

    def _set_aside(self, raw: bytes, reason: str, detail: str) -> EmailOutcome:
        # The detail can quote the mail (a header in a parser's message): clean, like the rest.
        detail = clean_line(detail)
        entry_id = self.dead_letters.add("email", reason, detail, raw)
        logger.warning("email set aside for an agent (dead letter %s): %s: %s", entry_id, reason, detail)
        return EmailOutcome("set_aside", entry_id, reason)
