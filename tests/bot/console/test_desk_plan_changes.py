"""Changing a person's payment plan from the console: a new plan replaces the old one, which ends
(marked replaced, ``plan.replaced`` for the creditor, no more reminders for it); once per form; a
change cut short between any two writes leaves the person exactly one plan to be reminded of and is
finished by the retry with the same request key."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
import redis

from bot.console.desk import PLAN_LOCK_SECONDS, DeskError
from bot.console.plans import PlanResult, plan_changed_text, policy_for
from bot.conversations.dialogue_backend import RedisDialogueBackend, settings_from_config
from bot.outreach.payments import PlanPayments
from dialogue.backend import BackendError
from dialogue.plans import Frequency, build_plan
from tests.bot.console.test_desk import ANA, CID, PHONE, World, make_world
from tests.conftest import ConfigFactory

FIRST = "req-first-plan-0001"
CHANGE = "req-change-plan-0001"


@pytest.fixture
def world(make_config: ConfigFactory, redis_client: redis.Redis[bytes]) -> Iterator[World]:
    world = make_world(make_config(server={"public_url": "https://bot.example.com"}), redis_client)
    world.rasa.verified[CID] = True
    world.person_writes("yes, let's do that")
    yield world


def first_plan(world: World) -> str:
    """The person's plan: $40.00 a month from 16 March 2026 (16 March, 16 April, 18 May)."""
    result = world.desk.create_plan(
        CID, ANA, "40", "monthly", "2026-03-16", confirmed=True, request_key=FIRST
    )
    return result.plan_id


def change(
    world: World, old: str, key: str = CHANGE, instalment: str = "60", first_due: str = "2026-03-10"
) -> PlanResult:
    """The change the person agreed to: $60.00 a month from 10 March (10 March, 10 April)."""
    return world.desk.create_plan(
        CID, ANA, instalment, "monthly", first_due, confirmed=True, request_key=key, replaces=old
    )


def events(world: World, kind: str) -> list[dict[str, object]]:
    rows = world.redis.xrange(world.services.keys.events)
    return [json.loads(f[b"body"])["data"] for _, f in rows if f[b"type"] == kind.encode()]


def stored(world: World, account_id: str = "A1") -> list[str]:
    return [p.decode() for p in world.redis.lrange(world.services.keys.account_plans(account_id), 0, -1)]


def state(world: World, plan_id: str) -> dict[str, str]:
    raw = world.redis.hgetall(f"{world.services.keys.plan(plan_id)}:state")
    return {k.decode(): v.decode() for k, v in raw.items()}


def texts(world: World) -> list[str]:
    return [message.text for message in world.queued()]


def reminded_plans(world: World, start: date, end: date) -> list[tuple[str, str, date]]:
    """Every reminder and missed-payment message outreach would send, day by day (3 days ahead),
    as (kind, plan, due)."""
    payments = PlanPayments(world.redis, world.services.keys)
    sent = []
    day = start
    while day <= end:
        while (due := payments.due_message("A1", day, 3)) is not None:
            kind, instalment = due
            assert payments.mark(kind, instalment)
            sent.append((kind, instalment.plan_id, instalment.due))
        day += timedelta(days=1)
    return sent


def test_changing_a_plan_makes_one_new_plan_and_ends_the_old_one_for_the_creditor_and_the_person(
    world: World,
) -> None:
    old = first_plan(world)
    assert [p.plan_id for p in world.desk.active_plans(CID)] == [old]
    result = change(world, old)
    assert result.replaced == old and not result.repeated and result.verdict["outcome"] == "sent"
    new = result.plan_id
    assert stored(world) == [old, new]
    assert [p.plan_id for p in world.desk.active_plans(CID)] == [new]
    marks = state(world, old)
    assert marks["replaced_by"] == new and marks["replaced_at"] == world.clock.now().isoformat()
    # The creditor hears both: the new plan created, the old one replaced (through the same stream).
    assert [e["plan_id"] for e in events(world, "plan.created")] == [old, new]
    assert events(world, "plan.replaced") == [
        {"plan_id": old, "replaced_by": new, "account_id": "A1", "at": world.clock.now().isoformat()}
    ]
    # The person is told the earlier plan ended, and gets the new schedule and link.
    plan = build_plan(
        world.account.balance, "USD", result.option.instalment, Frequency.MONTHLY, date(2026, 3, 10),
        policy_for(settings_from_config(world.config), None), date(2026, 3, 2),
    )  # fmt: skip
    assert texts(world)[-1] == plan_changed_text(plan, result.payment_link, "en", "sms")
    assert texts(world)[-1].startswith("Your payment plan has been changed: the earlier plan has ended")
    assert result.payment_link in texts(world)[-1] and world.queued()[-1].recipient == PHONE
    [line] = [e for e in world.history.read(CID) if e.kind == "plan_replaced"]
    assert line.detail == {"plan_id": old, "replaced_by": new} and line.by == "agent:ana"
    [audit] = [row for row in world.console_audit() if row["kind"] == "console:plan_replaced"]
    assert (audit["by"], audit["plan_id"], audit["replaced_by"]) == ("ana", old, new)
    # The page's account column says what became of each plan.
    view = world.desk.view(CID)
    assert [(p.plan_id, p.active, p.replaced_by) for p in view.stored_plans] == [
        (old, False, new),
        (new, True, ""),
    ]


def test_after_a_change_reminders_go_only_for_the_new_plans_instalments(world: World) -> None:
    old = first_plan(world)
    payments = PlanPayments(world.redis, world.services.keys)
    due = payments.due_message("A1", date(2026, 3, 13), 3)
    assert due is not None and due[1].plan_id == old  # before the change, the old plan is reminded
    new = change(world, old).plan_id
    sent = reminded_plans(world, date(2026, 3, 2), date(2026, 6, 30))
    assert {plan_id for _, plan_id, _ in sent} == {new}
    assert {(kind, due) for kind, _, due in sent} >= {
        ("reminder", date(2026, 3, 10)),
        ("reminder", date(2026, 4, 10)),
    }


def test_a_double_submitted_change_changes_the_plan_once(world: World) -> None:
    old = first_plan(world)
    first = change(world, old)
    again = change(world, old)
    assert again.repeated and again.plan_id == first.plan_id and again.replaced == old
    assert stored(world) == [old, first.plan_id]
    assert len(events(world, "plan.replaced")) == 1 and len(events(world, "plan.created")) == 2
    assert len(texts(world)) == 2  # the first plan's message, and one for the change
    assert [e.kind for e in world.history.read(CID)].count("plan_replaced") == 1


def test_a_change_killed_before_the_old_plan_is_marked_is_finished_by_the_retry(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = first_plan(world)
    assert isinstance(world.desk.plans, RedisDialogueBackend)

    def killed(*args: object, **kwargs: object) -> bool:
        raise SystemExit("killed between storing the new plan and marking the old one")

    monkeypatch.setattr(world.desk.plans, "replace_plan", killed)
    with pytest.raises(SystemExit):
        change(world, old)
    [_, new] = stored(world)
    assert "replaced_by" not in state(world, old) and state(world, old)["replacing"] == CHANGE
    # Cut short here, the person still has exactly one plan to be reminded of: the new one.
    assert [p.plan_id for p in world.desk.active_plans(CID)] == [new]
    assert {plan_id for _, plan_id, _ in reminded_plans(world, date(2026, 3, 2), date(2026, 3, 20))} == {new}
    assert len(texts(world)) == 1 and events(world, "plan.replaced") == []
    # Another form cannot change the old plan again: it is being replaced.
    with pytest.raises(DeskError, match="changed already"):
        change(world, old, key="req-another-form-01")
    monkeypatch.undo()
    done = change(world, old)  # the same form sent again
    assert not done.repeated and done.plan_id == new and done.replaced == old
    assert stored(world) == [old, new] and state(world, old)["replaced_by"] == new
    assert len(events(world, "plan.replaced")) == 1 and len(events(world, "plan.created")) == 2
    assert len(texts(world)) == 2 and texts(world)[-1].startswith("Your payment plan has been changed")


def test_a_change_killed_before_the_new_plan_is_stored_keeps_the_old_plan_until_the_retry(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = first_plan(world)
    assert world.desk.plans is not None

    def killed(*args: object, **kwargs: object) -> object:
        raise SystemExit("killed after recording the change, before storing the new plan")

    monkeypatch.setattr(world.desk.plans, "create_plan", killed)
    with pytest.raises(SystemExit):
        change(world, old)
    assert stored(world) == [old] and state(world, old)["replacing"] == CHANGE
    assert [p.plan_id for p in world.desk.active_plans(CID)] == [old]  # still the person's plan
    due = PlanPayments(world.redis, world.services.keys).due_message("A1", date(2026, 3, 13), 3)
    assert due is not None and due[1].plan_id == old
    monkeypatch.undo()
    new = change(world, old).plan_id
    assert stored(world) == [old, new] and state(world, old)["replaced_by"] == new
    assert [p.plan_id for p in world.desk.active_plans(CID)] == [new]


def test_only_an_active_plan_of_the_account_can_be_replaced(world: World) -> None:
    old = first_plan(world)
    world.add_account("A2", phone="+12025550188", email="luis@example.com")
    world.rasa.verified["acct-A2"] = True
    world.person_writes("yes", conversation_id="acct-A2")
    theirs = world.desk.create_plan(
        "acct-A2", ANA, "40", "monthly", "2026-03-16", confirmed=True, request_key="req-their-plan-01"
    ).plan_id
    for wrong in ("nope", theirs, "../../x"):
        with pytest.raises(DeskError, match="not one of this account's plans"):
            change(world, wrong, key="req-wrong-plan-0001")
    new = change(world, old).plan_id
    with pytest.raises(DeskError, match="changed already"):
        change(world, old, key="req-second-change-01")
    assert stored(world) == [old, new] and len(events(world, "plan.replaced")) == 1
    assert len(texts(world)) == 2
    # The new plan is the one to change now.
    newest = change(world, new, key="req-second-change-02", instalment="30", first_due="2026-03-12")
    assert [p.plan_id for p in world.desk.active_plans(CID)] == [newest.plan_id]


def test_two_changes_of_one_plan_at_once_make_one_until_the_first_is_stale(world: World) -> None:
    old = first_plan(world)
    # Another form started changing it a moment ago (its new plan not stored yet).
    world.redis.hset(f"{world.services.keys.plan(old)}:state", mapping={
        "replacing": "req-other-tab-00001", "replacing_after": "1", "replacing_at": repr(world.clock.timestamp()),
    })  # fmt: skip
    with pytest.raises(DeskError, match="being changed right now"):
        change(world, old)
    assert stored(world) == [old]
    # That attempt died and was never retried: after a while this one may go ahead.
    world.clock.advance(timedelta(seconds=PLAN_LOCK_SECONDS + 1))
    new = change(world, old).plan_id
    assert state(world, old)["replaced_by"] == new and state(world, old)["replacing"] == CHANGE


def test_the_backend_marks_a_plan_replaced_once_and_only_by_a_plan_of_its_account(world: World) -> None:
    old = first_plan(world)
    new = change(world, old).plan_id
    backend = world.desk.plans
    assert isinstance(backend, RedisDialogueBackend)
    assert backend.replace_plan(old, new, at=world.clock.now()) is False  # done already: nothing again
    assert len(events(world, "plan.replaced")) == 1
    extra = world.desk.create_plan(
        CID, ANA, "20", "monthly", "2026-03-16", confirmed=True, request_key="req-extra-plan-0001"
    ).plan_id
    with pytest.raises(BackendError, match="replaced by"):
        backend.replace_plan(old, extra, at=world.clock.now())
    with pytest.raises(BackendError, match="no such plan"):
        backend.replace_plan(new, "f" * 16, at=world.clock.now())
    world.redis.set(world.services.keys.plan("other"), json.dumps({"plan_id": "other", "account_id": "A9"}))
    with pytest.raises(BackendError, match="same account"):
        backend.replace_plan(new, "other", at=world.clock.now())
