"""Canned replies: kind defaults in each language, edited by supervisors only, with the three
placeholders filled in and any other refused."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import redis

from bot.clock import Clock
from bot.console.canned import DEFAULTS, CannedReplies, placeholders_in
from bot.console.desk import DeskError
from bot.console.handoff import Actor, NotAllowed
from bot.store.accounts import Account
from bot.store.connection import Keys

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)
ANA = Actor.of("ana", "agent")
SUE = Actor.of("sue", "supervisor")
MARIA = Account(account_id="A1", first_name="Maria", balance=Decimal("120"), currency="USD", creditor="Acme",
                language="en")  # fmt: skip


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def canned(redis_client: redis.Redis[bytes], clock: Clock) -> Iterator[CannedReplies]:
    yield CannedReplies(redis_client, Keys("test"), clock)


def test_each_language_starts_with_kind_defaults(canned: CannedReplies) -> None:
    for language in ("en", "es"):
        replies = canned.list(language)
        assert {r.id for r in replies} == {"hello", "how_are_you", "set_up", "debt_advice", "goodbye"}
        assert all(r.updated_by == "system" and r.language == language for r in replies)
        for reply in replies:
            placeholders_in(reply.text)  # every default renders
            assert not re.search(r"legal action|court|sue|final notice|demanda|tribunal", reply.text, re.I)
    assert "debt advice" in canned.get("debt_advice", "en").text  # type: ignore[union-attr]
    assert canned.get("hello", "es").text.startswith("Hola")  # type: ignore[union-attr]


def test_an_agent_cannot_edit_them_a_supervisor_can(canned: CannedReplies, clock: Clock) -> None:
    with pytest.raises(NotAllowed):
        canned.save("en", "Plan", "Your plan is ready, {first_name}.", ANA)
    clock.advance(timedelta(minutes=1))
    saved = canned.save("en", "Plan ready", "Your plan is ready, {first_name}.", SUE)
    assert (saved.updated_by, saved.updated_at) == ("sue", (T0 + timedelta(minutes=1)).timestamp())
    assert canned.get(saved.id, "en") == saved
    changed = canned.save("en", "Plan ready", "Your new plan is ready.", SUE, id=saved.id)
    assert canned.get(saved.id, "en").text == "Your new plan is ready."  # type: ignore[union-attr]
    assert changed.id == saved.id and saved.id not in {r.id for r in canned.list("es")}
    with pytest.raises(NotAllowed):
        canned.delete(saved.id, "en", ANA)
    canned.delete(saved.id, "en", SUE)
    assert canned.get(saved.id, "en") is None
    with pytest.raises(DeskError, match="no longer exists"):
        canned.save("en", "Gone", "text", SUE, id=saved.id)


def test_deleted_defaults_do_not_come_back(canned: CannedReplies) -> None:
    for reply in canned.list("en"):
        canned.delete(reply.id, "en", SUE)
    assert canned.list("en") == []
    assert len(canned.list("es")) == len(DEFAULTS["es"])


def test_placeholders_are_filled_and_unknown_ones_refused(canned: CannedReplies) -> None:
    text = "Hi {first_name}, this is {agent_name} from {company}. {{braces}} stay."
    assert (
        canned.render(text, MARIA, "Ana", "Northwind")
        == "Hi Maria, this is Ana from Northwind. {braces} stay."
    )
    assert (
        canned.render("Hi {first_name}, this is {agent_name}.", None, "Ana", "Northwind")
        == "Hi, this is Ana."
    )
    assert canned.render("Thanks, {first_name}.", None, "Ana", "N") == "Thanks."
    for bad in (
        "Your balance is {balance}",
        "{0}",
        "{}",
        "{first_name!r}",
        "{company:>30}",
        "open {",
        "{a.b}",
    ):
        with pytest.raises(DeskError):
            canned.render(bad, MARIA, "Ana", "N")
        with pytest.raises(DeskError):
            canned.save("en", "Bad", bad, SUE)
    # The person's own name cannot smuggle a placeholder in.
    sneaky = Account(account_id="A2", first_name="{company}", balance=Decimal("1"), currency="USD", creditor="X",
                     language="en")  # fmt: skip
    assert canned.render("Hi {first_name}", sneaky, "Ana", "N") == "Hi {company}"


def test_saving_is_validated_and_audited(canned: CannedReplies, redis_client: redis.Redis[bytes]) -> None:
    with pytest.raises(DeskError, match="title"):
        canned.save("en", " ", "text", SUE)
    with pytest.raises(DeskError, match="text"):
        canned.save("en", "Title", "x" * 1_001, SUE)
    with pytest.raises(DeskError, match="unknown language"):
        canned.save("fr", "Bonjour", "Bonjour", SUE)
    saved = canned.save("es", "Plan", "Su plan está listo.", SUE)
    canned.delete(saved.id, "es", SUE)
    rows = [
        {k.decode(): v.decode() for k, v in f.items()} for _, f in redis_client.xrange(Keys("test").audit)
    ]
    assert [(r["kind"], r["by"], r["canned_id"]) for r in rows] == [
        ("console:canned_save", "sue", saved.id), ("console:canned_delete", "sue", saved.id)
    ]  # fmt: skip
