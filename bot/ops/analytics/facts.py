"""One row per conversation for review and the funnel: what happened in it, when, and where it
stopped (``ConversationFacts``). Built from Rasa's events and the product's events by
``bot.ops.analytics.conversations`` and kept in the ``conversations`` table; the funnel and the
review pages read only these."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["ConversationFacts"]


@dataclass(frozen=True)
class ConversationFacts:
    """What one conversation did (times are aware UTC; ``None``: it did not happen)."""

    conversation_id: str
    account_id: str | None
    #: The first and the last thing that happened in it (a message either way, or a product event).
    started_at: datetime
    last_at: datetime
    channel: str | None
    language: str | None
    creditor: str | None
    #: The opener wording (``config.outreach`` variant id) the product sent first, if it opened.
    opener_variant: str | None
    #: The product's first opener sent; the person's first message (after it, or at all).
    contacted_at: datetime | None
    replied_at: datetime | None
    #: The ``verified`` slot first set true; a plan first offered (the plan form or the offer
    #: action ran); a plan created; the first instalment paid.
    verified_at: datetime | None
    plan_offered_at: datetime | None
    plan_created_at: datetime | None
    first_payment_at: datetime | None
    #: An instalment missed after the plan (a plan broken); ``None`` while none is.
    plan_missed_at: datetime | None
    opted_out_at: datetime | None
    escalated_at: datetime | None
    escalation_reasons: tuple[str, ...]
    #: How an agent closed it (``bot.console.handoff.Outcome`` values), if one did.
    outcome: str | None
    #: The person's messages; those the bot fell back on (``nlu_fallback``, ``action_default_fallback``
    #: or the two-stage fallback); those whose intent's confidence was under the review threshold.
    user_turns: int
    fallbacks: int
    low_confidence: int
    #: The last dialogue step (the last action other than ``action_listen``, or the active form)
    #: before the conversation's last user message went unanswered or it went quiet: where the bot
    #: may have lost the person.
    last_step: str | None
    #: Set by ops in the review pages.
    tags: tuple[str, ...] = ()
    reviewed: bool = False
    #: Who marked it reviewed, and when (``None`` while it is not).
    reviewed_by: str | None = None
    reviewed_at: datetime | None = None
