"""What the custom actions need from the rest of the product, as a small interface.

The action server runs the actions in ``dialogue/actions``; they may not import ``bot``
(dialogue code stays independent of the app). ``bot.conversations.dialogue_backend`` implements this
interface on Redis and the configuration, and ``bot.runtime.action_server`` installs it with
:func:`set_backend` before the action server starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Protocol

from dialogue.plans import Frequency, Plan, PlanPolicy, Settlement


class BackendError(Exception):
    """Root of the errors a backend raises (e.g. storage unreachable)."""


@dataclass(frozen=True)
class AccountView:
    """What the dialogue may know of an account. Only said after verification."""

    account_id: str
    first_name: str
    balance: Decimal
    currency: str
    creditor: str
    language: str
    country: str | None = None


@dataclass(frozen=True)
class Resource:
    name: str
    contact: str


@dataclass(frozen=True)
class DialogueSettings:
    """Configuration the dialogue reads (from ``config.yaml``)."""

    company_name: str
    company_display_name: str
    company_phone: str
    company_website: str
    company_verify_url: str
    company_licence: str
    verification_field: str
    verification_attempts: int
    mini_miranda: dict[str, str]
    resources: dict[str, tuple[Resource, ...]]
    min_instalment: Decimal
    max_term_months: int
    frequencies: tuple[str, ...]
    first_payment_within_days: int
    down_payment_percent: Decimal = Decimal(0)
    settlement_floor_percent: Decimal | None = None
    settlement_offer_percent: Decimal | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def plan_policy(self, country: str | None) -> PlanPolicy:
        """The plan policy from configuration, with the account's country for its holidays:
        the one the dialogue and the agents' console both offer plans under."""
        return PlanPolicy(
            min_instalment=self.min_instalment,
            max_term_months=self.max_term_months,
            frequencies=tuple(Frequency(f) for f in self.frequencies),
            first_payment_within_days=self.first_payment_within_days,
            down_payment_percent=self.down_payment_percent,
            settlement_floor_percent=self.settlement_floor_percent,
            settlement_offer_percent=self.settlement_offer_percent,
            country=country,
        )


@dataclass(frozen=True)
class CreatedPlan:
    """A stored plan and the link the person pays with."""

    plan_id: str
    payment_link: str


class DialogueBackend(Protocol):
    """Reads accounts and records what conversations decide. Every method may raise BackendError."""

    def settings(self) -> DialogueSettings: ...

    def account(self, account_id: str) -> AccountView | None: ...

    def verify(self, account_id: str, answer: str, *, today: date) -> bool:
        """Does ``answer`` match the account's configured verification field?"""
        ...

    def record_verification(
        self,
        account_id: str | None,
        conversation_id: str,
        *,
        verified: bool,
        failures: int = 0,
        message_id: str = "",
    ) -> None:
        """The person answered the verification check in ``conversation_id``: rightly
        (``verified``: the product knows at once, e.g. the agents' inbox shows them verified) or
        wrongly for the ``failures``-th time in a row. Once per ``message_id`` (the answer)."""
        ...

    def flag_for_agent(
        self,
        account_id: str | None,
        conversation_id: str,
        reason: str,
        detail: str = "",
        *,
        message_id: str = "",
    ) -> None:
        """Put the conversation in the agents' queue with a reason; once per ``message_id``
        (the user message that led to it) when given, however often the turn is retried."""
        ...

    def mark_wrong_party(
        self, account_id: str | None, channel: str, address: str, message_id: str = ""
    ) -> None:
        """This address does not reach the account holder: never contact it again, except the
        one closing reply to ``message_id`` (the message that said so)."""
        ...

    def opt_out(self, account_id: str | None, channel: str, address: str, message_id: str = "") -> None:
        """The person asked for no more messages on this channel (in ``message_id``, which
        gets the one confirmation)."""
        ...

    def set_preference(self, account_id: str, name: str, value: str) -> None:
        """Store a preference (``channel``, ``language``, ``contact_window``) on the account."""
        ...

    def pause_collection(self, account_id: str, reason: str, detail: str = "") -> None:
        """Stop collection messages until an agent clears the reason (dispute, payment claim...)."""
        ...

    def record_callback(
        self, account_id: str | None, conversation_id: str, when: str, how: str, *, message_id: str = ""
    ) -> None:
        """A request for a person to call back (phone or video) at a preferred time; once per
        ``message_id`` (the message that completed the request) when given."""
        ...

    def raise_crisis(
        self,
        account_id: str | None,
        conversation_id: str,
        *,
        channel: str,
        address: str,
        language: str,
        text: str,
        message_id: str = "",
    ) -> str:
        """A sign of crisis: escalate at the top priority, pause collection, and return what to
        say (sorry, you matter, the crisis line of the person's country, a person will reach out;
        nothing about a debt)."""
        ...

    def create_plan(
        self,
        account_id: str,
        conversation_id: str,
        plan: Plan | Settlement,
        *,
        kind: str = "plan",
        channel: str = "",
        message_id: str = "",
    ) -> CreatedPlan:
        """Store an agreed plan (or settlement) with the ``channel`` it was agreed on (its
        reminders go there), build its payment link and announce it to the creditor.

        With ``message_id`` (the user message that agreed it) this happens once: a retried
        turn gets the plan already made for that message back."""
        ...


_backend: DialogueBackend | None = None


def set_backend(backend: DialogueBackend) -> None:
    """Install the backend the actions use (once, at action-server start)."""
    global _backend
    _backend = backend


def get_backend() -> DialogueBackend:
    """The installed backend; raises BackendError when the action server was started without one."""
    if _backend is None:
        raise BackendError(
            "no dialogue backend installed: start the action server with "
            "`python -m bot.runtime.action_server`"
        )
    return _backend
