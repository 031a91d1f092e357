"""What every email the bot sends carries besides its text: subject and thread, language,
the visible opt-out line and the one-click unsubscribe link."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from bot.compliance.notices import notice
from bot.email.threads import EmailThreads
from bot.email.unsubscribe import UnsubscribeLinks
from channels.base import InboundMessage, OutboundMessage
from channels.email import message_id_for, reply_subject


@dataclass(frozen=True)
class EmailEnvelope:
    """The parts the email path needs, built once per process."""

    threads: EmailThreads
    unsubscribe: UnsubscribeLinks
    from_address: str
    #: The subject of a mail the bot starts, per language, company already filled in.
    subjects: Mapping[str, str]

    def dress(
        self,
        messages: Sequence[OutboundMessage],
        *,
        account_id: str | None,
        language: str,
        answering: InboundMessage | None = None,
    ) -> list[OutboundMessage]:
        """``messages`` (all to one address) ready for email, their Message-IDs remembered
        so the person's reply finds this conversation."""
        if not messages:
            return []
        if answering is not None:
            subject = reply_subject(str(answering.raw.get("subject") or ""))
            references = tuple(str(ref) for ref in answering.raw.get("references") or ())
        else:
            subject = self.subjects.get(language) or next(iter(self.subjects.values()))
            references = ()
        url = self.unsubscribe.url("email", messages[0].recipient, account_id, language)
        dressed = [
            replace(
                message,
                subject=subject,
                references=references,
                language=language,
                opt_out_text=notice("email_opt_out", language),
                unsubscribe_url=url,
            )
            for message in messages
        ]
        if account_id:
            self.threads.remember(
                [message_id_for(message.outbox_id, self.from_address) for message in dressed], account_id
            )
        return dressed
