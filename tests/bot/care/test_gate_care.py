"""The compliance gate and care: help reaches whoever wrote; a crisis stops all collection."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bot.compliance.rules import (
    CARE_REPLIES,
    PAUSE_REASONS,
    AddressState,
    ContactRules,
    Debtor,
    Outgoing,
    Verdict,
    check,
)

NOON_NY = datetime(2026, 12, 7, 17, 0, tzinfo=timezone.utc)  # a Monday, 12:00 in New York
NY = Debtor("ACC-1", timezone="America/New_York")


def _message(kind: str, proactive: bool = False) -> Outgoing:
    return Outgoing(channel="sms", text="Words.", language="en", proactive=proactive, kind=kind)


@pytest.mark.parametrize("kind", sorted(CARE_REPLIES))
def test_help_and_the_closing_message_reach_a_wrong_party_address(kind: str) -> None:
    decision = check(
        NY, AddressState(wrong_party=True, opted_out=True), _message(kind), NOON_NY, ContactRules()
    )
    assert decision.verdict is Verdict.SEND and decision.text == "Words."


def test_any_other_reply_to_a_wrong_party_address_is_still_blocked() -> None:
    decision = check(NY, AddressState(wrong_party=True), _message("reply"), NOON_NY, ContactRules())
    assert (decision.verdict, decision.rule) == (Verdict.BLOCK, "wrong_party")


@pytest.mark.parametrize("kind", ["opener", "reminder", "missed_payment"])
def test_a_crisis_pause_stops_every_proactive_message(kind: str) -> None:
    debtor = Debtor("ACC-1", timezone="America/New_York", pauses=frozenset({"crisis", "dispute"}))
    decision = check(debtor, AddressState(), _message(kind, proactive=True), NOON_NY, ContactRules())
    assert (decision.verdict, decision.rule) == (Verdict.BLOCK, "pause:crisis")


def test_a_crisis_is_named_first_among_the_pauses() -> None:
    assert PAUSE_REASONS[0] == "crisis"
