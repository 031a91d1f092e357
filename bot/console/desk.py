"""What an agent does with a conversation (issue 16): take it over and hand it back, reply on the
person's own channel through the compliance gate, and act for the person (flags, preferences,
opt-outs, callbacks, notes). No Flask here: the console's pages (``bot.console.web``) call this.

``Desk`` is assembled here from its parts, one module each, and everything they offer is
importable from here:

- ``desk_base``: what every part works with (``DeskBase``: the collaborators, the desk's keys,
  claiming, the audit, the conversation's facts, Rasa's tracker events and their flush);
- ``desk_replies``: replies through the compliance gate and the replies it deferred
  (``ReplyVerdict``; how the gate's rules apply to an agent's reply is told there);
- ``desk_plans``: payment plans (options, preview, set up and change);
- ``desk_person``: verification, notes, flags, preferences, opt-out and opt-in, callbacks;
- ``desk_mail``: mail set aside (``MailView``, ``read_mail``, attaching a dead letter);
- ``desk_reading``: the conversation page's view, history lines and audit;
- here: the hand-off actions (hand back, close, reassign, watch, release idle claims).

**Rasa's history stays whole.** A claim is a ``pause`` event in Rasa's tracker, handing back or
closing a ``resume``, and every reply a ``bot`` event with the agent's id in its metadata (see
``desk_base``). **Audit.** Every action writes an entry to the audit stream
(``console:<action>``: who, their role, when, what), never the person's words nor a full address.
"""

from __future__ import annotations

import re

from bot.compliance.notices import notice
from bot.console.desk_base import (
    CONVERSATION_AUDIT_MAXLEN,
    DeskError,
    DialogueEvents,
    dead_letters_done_key,
)
from bot.console.desk_mail import MAIL_TEXT_MAX, DeskMail, MailView, read_mail
from bot.console.desk_person import (
    CALLBACK_FORMATS,
    FLAGS,
    MAX_DETAIL,
    MAX_NOTE,
    MAX_WHEN,
    PAUSE_FLAGS,
    PREFERENCES,
    VERIFICATION_QUESTIONS,
    DeskPerson,
)
from bot.console.desk_plans import PLAN_LOCK_SECONDS, PLAN_REQUEST_TTL, DeskPlans
from bot.console.desk_reading import AUDIT_SCAN, ConversationView, DeskReading, HistoryLine
from bot.console.desk_replies import CANCELLED, MAX_REPLY, RELEASE_LEASE_SECONDS, ReplyVerdict, format_moment
from bot.console.handoff import Actor, Handoff

# Everything the desk's parts offer is importable from here, as it was before the split.
__all__ = [
    "AUDIT_SCAN",
    "CALLBACK_FORMATS",
    "CANCELLED",
    "CONVERSATION_AUDIT_MAXLEN",
    "FLAGS",
    "MAIL_TEXT_MAX",
    "MAX_DETAIL",
    "MAX_NOTE",
    "MAX_REPLY",
    "MAX_WHEN",
    "PAUSE_FLAGS",
    "PLAN_LOCK_SECONDS",
    "PLAN_REQUEST_TTL",
    "PREFERENCES",
    "RELEASE_LEASE_SECONDS",
    "VERIFICATION_QUESTIONS",
    "ConversationView",
    "Desk",
    "DeskError",
    "DialogueEvents",
    "HistoryLine",
    "MailView",
    "ReplyVerdict",
    "dead_letters_done_key",
    "format_moment",
    "read_mail",
]

_AGENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


class Desk(DeskPlans, DeskPerson, DeskReading, DeskMail):
    """The agent console's actions on conversations. Built once per process
    (``bot/runtime/services.py``); every method is safe to call from several threads."""

    # --- taking over and handing back ---------------------------------------------------------

    def hand_back(self, conversation_id: str, agent: Actor) -> Handoff:
        """Back to the bot: a ``resume`` event, and the bot tells the person (in their language)
        that they are back with the assistant."""
        self._check(conversation_id)
        after = self.handoff.hand_back(conversation_id, agent.id, agent.role)
        self.conversation_history.event(conversation_id, "handed_back", by=self._by(agent))
        self._tell_rasa(conversation_id, [{"event": "resume"}])
        facts = self._facts(conversation_id)
        try:
            self._send(
                conversation_id, notice("welcome_back", facts.language), None, facts,
                by="bot", kind="handback", verified=False, who=agent,
            )  # fmt: skip
        except DeskError as exc:
            # No address to write to: the hand-back stands; the history says why nothing went.
            self.conversation_history.event(
                conversation_id, "reply_blocked", by="bot", text=notice("welcome_back", facts.language),
                detail={"rule": "no_address", "reason": str(exc)},
            )  # fmt: skip
        return after

    def close(self, conversation_id: str, agent: Actor, outcome: str) -> Handoff:
        """Closed with an outcome (``plan_set_up``, ``paid``, ``debt_advice``, ``dispute_opened``,
        ``no_contact``, ``other``): back to the bot without a message."""
        self._check(conversation_id)
        after = self.handoff.close(conversation_id, agent.id, outcome, agent.role)
        # A closed conversation says nothing more later: its deferred replies are cancelled.
        cancelled = [m.outbox_id for m in self.deferred_replies(conversation_id)
                     if self.cancel_deferred(conversation_id, agent, m.outbox_id)]  # fmt: skip
        self.conversation_history.event(
            conversation_id, "closed", by=self._by(agent),
            detail={"outcome": str(outcome), **({"cancelled": len(cancelled)} if cancelled else {})},
        )  # fmt: skip
        self._tell_rasa(conversation_id, [{"event": "resume"}])
        return after

    def reassign(self, conversation_id: str, to_agent: str, by: Actor) -> Handoff:
        """A supervisor gives a claimed conversation to another agent."""
        self._check(conversation_id)
        if not isinstance(to_agent, str) or not _AGENT_ID.match(to_agent):
            raise DeskError("choose the agent to give the conversation to")
        after = self.handoff.reassign(conversation_id, to_agent, by.id, by.role)
        self.conversation_history.event(
            conversation_id, "reassigned", by=self._by(by), detail={"to": to_agent}
        )
        return after

    def watch(self, conversation_id: str, supervisor: Actor) -> Handoff:
        self._check(conversation_id)
        return self.handoff.watch(conversation_id, supervisor.id, supervisor.role)

    def unwatch(self, conversation_id: str, supervisor: Actor) -> Handoff:
        self._check(conversation_id)
        return self.handoff.unwatch(conversation_id, supervisor.id, supervisor.role)

    def release_idle(self) -> list[str]:
        """Claims nobody touched for ``console.claim_idle_minutes`` go back to the queue, and
        Rasa is told to ``resume``: a waiting conversation is one the bot still helps with, and a
        paused tracker would answer nothing."""
        released = self.handoff.release_idle(self.config.console.claim_idle_minutes)
        for conversation_id in released:
            self.conversation_history.event(conversation_id, "claim_released", by="system",
                                            text="Idle claim returned to the queue")  # fmt: skip
            self._tell_rasa(conversation_id, [{"event": "resume"}])
        return released
