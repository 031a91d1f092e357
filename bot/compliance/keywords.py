"""STOP, START and HELP by SMS (and STOP by email): handled before the dialogue, the same way
every time.

The gateway opts a number out the moment a STOP arrives (before any queue), so nothing
else is sent to it even while the worker catches up. The worker then sends the one
confirmation, to the message that did it and no other. START words only count while the
number is opted out: otherwise "yes" and "sí" are ordinary answers for the dialogue.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.compliance.notices import notice
from bot.config import Config, SmsRepliesConfig
from bot.store.accounts import Account, AccountStore
from bot.store.addresses import AddressBook
from channels.base import InboundMessage
from channels.sms_keywords import KeywordKind, KeywordMatch, KeywordSet, match_keyword

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class KeywordOutcome:
    """What a keyword did: the texts to send back (possibly none)."""

    kind: KeywordKind
    replies: tuple[str, ...]


class SmsKeywords:
    """The SMS compliance keywords, from ``channels.sms.keywords`` and ``channels.sms.replies``."""

    def __init__(self, config: Config, addresses: AddressBook, accounts: AccountStore | None = None) -> None:
        sms = config.channels.sms
        self._accounts = accounts
        self._keywords = KeywordSet(
            stop=frozenset(sms.keywords.stop),
            start=frozenset(sms.keywords.start),
            help=frozenset(sms.keywords.help),
            spanish=frozenset(sms.keywords.spanish),
        )
        # Keyed by plain language code (config validated the set of languages).
        self._replies: dict[str, SmsRepliesConfig] = {str(k): v for k, v in sms.replies.items()}
        self._replies_by_twilio = sms.keyword_replies_by_twilio
        self._fill = {
            "company": config.company.display_name,
            "phone": config.company.phone,
            "website": config.company.website,
            "stop": sms.keywords.stop[0],
        }
        self._default_language = config.accounts.default_language
        self._addresses = addresses

    def match(self, message: InboundMessage) -> KeywordMatch | None:
        """The keyword ``message`` is, if any: all of them by SMS; by email only the stop words
        (every email says "reply STOP"; HELP and START are for the dialogue there)."""
        if message.channel not in ("sms", "email"):
            return None
        found = match_keyword(message.text, self._keywords)
        if message.channel == "email" and (found is None or found.kind is not KeywordKind.STOP):
            return None
        return found

    def on_receive(self, message: InboundMessage) -> None:
        """Gateway side: a STOP opts the address out at once."""
        found = self.match(message)
        if found is not None and found.kind is KeywordKind.STOP:
            # The opt-out's record names the account when the address is known (one lookup, STOP
            # only): ops count opt-outs per creditor and conversation; never the address itself.
            account = self._account_of(message)
            account_id = account.account_id if account is not None else None
            self._addresses.opt_out(
                message.channel, message.sender, account_id, by_message=message.external_id
            )

    def _account_of(self, message: InboundMessage) -> Account | None:
        kind = {"sms": "phone", "email": "email"}.get(message.channel)
        if self._accounts is None or kind is None:
            return None
        return self._accounts.find(kind, message.sender)

    def handle(self, message: InboundMessage, account: Account | None) -> KeywordOutcome | None:
        """Worker side: act on a keyword; ``None`` when the message is for the dialogue."""
        found = self.match(message)
        if found is None:
            return None
        language = found.language or (account.language if account else self._default_language)
        channel = message.channel
        status = self._addresses.status(channel, message.sender)
        account_id = account.account_id if account else None
        if found.kind is KeywordKind.STOP:
            newly = self._addresses.opt_out(
                channel, message.sender, account_id, by_message=message.external_id
            )
            confirm = (
                newly or self._addresses.status(channel, message.sender).opted_out_by == message.external_id
            )
            logger.info("%s message %s: %s, address opted out", channel, message.external_id, found.word)
            if channel == "email":
                return KeywordOutcome(found.kind, (notice("email_stopped", language),) if confirm else ())
            return KeywordOutcome(found.kind, self._reply(confirm, language, "stop"))
        if found.kind is KeywordKind.START:
            if status.opted_out_at is None:
                return None  # "yes" in a conversation, not a request to resubscribe
            self._addresses.opt_in("sms", message.sender)
            logger.info("sms message %s: %s, number opted back in", message.external_id, found.word)
            # A number marked "not the right person" stays silent, so no promise of texts.
            return KeywordOutcome(found.kind, self._reply(status.wrong_party_at is None, language, "start"))
        # HELP is always answered (carriers require it); its text says who we are, no more.
        return KeywordOutcome(found.kind, self._reply(True, language, "help"))

    def _reply(self, send: bool, language: str, which: str) -> tuple[str, ...]:
        if not send or self._replies_by_twilio:
            return ()
        texts = self._replies.get(language) or self._replies[self._default_language]
        return (getattr(texts, which).format(**self._fill),)
