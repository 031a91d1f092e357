"""The agents' inbox: the priority of every reason the product flags, the order (most urgent,
then longest waiting), the filters, dead letters and reply caps as work items, the callbacks by
the time the person asked for, and the live changes."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import redis

from bot.care.screen import Concern
from bot.console.desk import DeskError
from bot.console.handoff import IDLE_REASON, Actor
from bot.console.inbox import Inbox, InboxFilter, parse_callback_time, priority
from bot.store.agent_queue import AgentQueue
from tests.bot.console.test_desk import ANA, BEN, T0, World, make_world
from tests.conftest import ROOT, ConfigFactory

NEW_YORK = ZoneInfo("America/New_York")

#: Every reason the product flags for a person (and the names the issue uses), with its level.
LEVELS: dict[str, int] = {
    "crisis": 0,
    "vulnerable:self_harm": 0,
    "vulnerable:harm_to_others": 0,
    **{f"vulnerable:{c.value}": 1 for c in Concern if c not in (Concern.SELF_HARM, Concern.HARM_TO_OTHERS)},
    "vulnerable": 1,
    "bereavement": 1,
    "illness": 1,
    "mental_health": 1,
    "abuse": 1,
    "addiction": 1,
    "dispute": 2,
    "payment_claimed": 2,
    "disputed": 2,
    "payment_claim": 2,
    "hardship": 3,
    "asked_for_person": 4,
    "human": 4,
    "callback": 4,
    "video_call": 4,
    "agent_requested": 4,
    "verification_failed": 5,
    "not_answered": 5,
    "wrote_after_opted_out": 5,
    "wrote_after_wrong_party": 5,
    "email_reply_cap_reached": 5,
    IDLE_REASON: 5,
    "dead_letter": 5,
    "something_nobody_named_yet": 5,
}

#: The f-string reasons in the code, and what they become.
PATTERNS = {
    "wrote_after_{}": {"wrote_after_opted_out", "wrote_after_wrong_party"},
    "vulnerable:{}": {f"vulnerable:{c.value}" for c in Concern},
}


@pytest.mark.parametrize(("reason", "level"), sorted(LEVELS.items()))
def test_each_reason_has_its_level(reason: str, level: int) -> None:
    assert priority([reason]) == level


def test_the_most_urgent_reason_decides_and_no_reason_is_the_rest() -> None:
    assert priority([]) == 5
    assert priority(["not_answered", "hardship", "dispute"]) == 2
    assert priority(["callback", "crisis"]) == 0
    assert priority(("claim_idle", "vulnerable:bereavement")) == 1


def _reasons_in_code() -> set[str]:
    """The reason argument of every ``flag_for_agent`` / ``.flag`` / ``.escalate`` call in the
    product, as literals, constants or f-string patterns."""
    constants = {"NOT_ANSWERED": "not_answered", "CRISIS": "crisis", "IDLE_REASON": IDLE_REASON,
                 "DEAD_LETTER": "dead_letter", "EMAIL_REPLY_CAP": "email_reply_cap_reached"}  # fmt: skip
    found: set[str] = set()
    for path in [*(ROOT / "bot").rglob("*.py"), *(ROOT / "dialogue").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            index = {"flag_for_agent": 2, "flag": 1, "escalate": 1}.get(node.func.attr)
            if index is None or len(node.args) <= index:
                continue
            arg = node.args[index]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.add(arg.value)
            elif isinstance(arg, ast.Name) and arg.id.isupper():  # lower case: a parameter passed on
                assert arg.id in constants, f"{path}: a reason named {arg.id}: add it to this test"
                found.add(constants[arg.id])
            elif isinstance(arg, ast.JoinedStr):
                found.add("".join(str(v.value) if isinstance(v, ast.Constant) else "{}" for v in arg.values))
    return found


def test_every_reason_the_code_flags_has_a_level_here() -> None:
    found = _reasons_in_code()
    assert {"dispute", "hardship", "callback", "crisis", "not_answered"} <= found  # the scan works
    for reason in found:
        if "{" in reason:
            assert reason in PATTERNS, f"a new kind of reason {reason!r}: give it a level"
            assert PATTERNS[reason] <= set(LEVELS)
        else:
            assert reason in LEVELS, f"the code flags {reason!r}: give it a level in LEVELS"


# --- the inbox ------------------------------------------------------------------------------


@pytest.fixture
def world(make_config: ConfigFactory, redis_client: redis.Redis[bytes]) -> Iterator[World]:
    yield make_world(make_config(server={"public_url": "https://bot.example.com"}), redis_client)


def make_inbox(world: World) -> Inbox:
    s = world.services
    return Inbox(
        s.config, s.redis, s.keys, world.clock, s.accounts, world.handoff, world.history, s.dead_letters
    )


def escalate(world: World, conversation_id: str, reason: str) -> None:
    """What the product does when something needs a person: the hand-off and the flag."""
    world.handoff.escalate(conversation_id, reason)
    account_id = conversation_id.removeprefix("acct-") if conversation_id.startswith("acct-") else None
    AgentQueue(world.redis, world.services.keys, clock=world.clock.timestamp).flag(
        conversation_id, reason, account_id=account_id
    )


ANON = "anon-sms.0123456789abcdef01234567"


def busy_morning(world: World) -> None:
    """One conversation per level, a minute apart, the least urgent first."""
    world.add_account("A3", creditor="Globex", phone="+12025550103", email="a3@example.com")
    world.add_account("A4", first_name="Ben", phone="+12025550104", email="a4@example.com")
    world.add_account("A5", phone="+12025550105", email="a5@example.com")
    world.add_account("A6", language="es", phone="+12025550106", email="a6@example.com")
    world.add_account("A7", phone="+12025550107", email="a7@example.com")
    world.add_account("A8", phone="+12025550108", email="a8@example.com")
    world.person_writes("hello??", conversation_id=ANON)
    for conversation_id, reason in (
        (ANON, "not_answered"),
        ("acct-A3", "hardship"),
        ("acct-A4", "asked_for_person"),
        ("acct-A5", "dispute"),
        ("acct-A6", "vulnerable:illness"),
        ("acct-A7", "crisis"),
        ("acct-A8", "payment_claimed"),
    ):
        escalate(world, conversation_id, reason)
        world.clock.advance(timedelta(minutes=1))
    world.person_writes("I already paid this\nlast week, see the receipt " + "x" * 200, conversation_id="acct-A8",
                        channel="email")  # fmt: skip


def ids(items: list) -> list[str]:  # type: ignore[type-arg]
    return [item.conversation_id for item in items]


def test_the_most_urgent_come_first_then_the_longest_waiting(world: World) -> None:
    busy_morning(world)
    world.desk.claim("acct-A4", ANA)
    items = make_inbox(world).items("ana")
    assert ids(items) == ["acct-A7", "acct-A6", "acct-A5", "acct-A8", "acct-A3", "acct-A4", ANON]
    assert [item.priority for item in items] == [0, 1, 2, 2, 3, 4, 5]
    claimed = items[5]
    assert (claimed.state, claimed.agent) == ("agent", "ana")
    # Handed back: it leaves the inbox.
    world.desk.hand_back("acct-A4", ANA)
    assert "acct-A4" not in ids(make_inbox(world).items("ana"))


def test_rows_say_who_what_where_and_how_long(world: World) -> None:
    busy_morning(world)
    world.clock.set(T0 + timedelta(minutes=20))
    items = {item.conversation_id: item for item in make_inbox(world).items("ana")}
    anon, a8, a7 = items[ANON], items["acct-A8"], items["acct-A7"]
    assert anon.display_name == "Unknown sender" and anon.account_id == "" and anon.summary == "hello??"
    assert (anon.waited_minutes, anon.overdue) == (20.0, True)
    assert (a7.waited_minutes, a7.overdue) == (15.0, False)  # not past the 15-minute target
    assert a7.display_name == "Maria" and a7.creditor == "Acme" and a7.reasons == ("crisis",)
    assert a8.channel == "email" and a8.kind == "conversation"
    assert "\n" not in a8.summary and len(a8.summary) == 140 and a8.summary.endswith("…")
    assert a8.summary.startswith("I already paid this last week")
    assert a8.waiting_since == T0 + timedelta(minutes=6)
    assert items["acct-A6"].language == "es"
    assert a7.verified is None
    world.rasa.verified["acct-A7"] = True
    world.desk.view("acct-A7")
    assert {i.conversation_id: i for i in make_inbox(world).items("ana")}["acct-A7"].verified is True
    assert a7.to_json()["waiting_since"] == a7.waiting_since.isoformat()


def test_filters(world: World) -> None:
    busy_morning(world)
    world.desk.claim("acct-A4", ANA)
    world.desk.claim("acct-A3", BEN)
    inbox = make_inbox(world)
    assert ids(inbox.items("ana", InboxFilter(mine=True))) == ["acct-A4"]
    assert ids(inbox.items("ben", InboxFilter(mine=True))) == ["acct-A3"]
    assert ids(inbox.items("ana", InboxFilter(unassigned=True))) == [
        "acct-A7",
        "acct-A6",
        "acct-A5",
        "acct-A8",
        ANON,
    ]
    assert ids(inbox.items("ana", InboxFilter(reason="vulnerable"))) == ["acct-A6"]
    assert ids(inbox.items("ana", InboxFilter(reason="payment_claimed"))) == ["acct-A8"]
    assert ids(inbox.items("ana", InboxFilter(channel="email"))) == ["acct-A8"]
    assert ids(inbox.items("ana", InboxFilter(language="es"))) == ["acct-A6"]
    assert ids(inbox.items("ana", InboxFilter(creditor="Globex"))) == ["acct-A3"]
    assert inbox.items("ana", InboxFilter(creditor="Nobody")) == []
    facets = inbox.facets()
    assert facets["creditors"] == ["Acme", "Globex"]
    assert facets["languages"] == ["en", "es"]
    assert "crisis" in facets["reasons"] and "email" in facets["channels"]


def test_an_agent_sees_what_waits_and_their_own_not_other_agents_claims(world: World) -> None:
    busy_morning(world)
    world.desk.claim("acct-A4", ANA)
    world.desk.claim("acct-A3", BEN)
    world.desk.claim("acct-A5", BEN)
    # ana, promoted for the day, follows a colleague's conversation
    world.desk.watch("acct-A5", Actor.of("ana", "supervisor"))
    inbox = make_inbox(world)
    mine = ids(inbox.items("ana", supervisor=False))
    assert "acct-A4" in mine and "acct-A5" in mine and "acct-A3" not in mine
    assert {"acct-A7", "acct-A6", "acct-A8", ANON} <= set(mine)
    assert "acct-A4" not in ids(inbox.items("ben", supervisor=False))
    assert (
        "agents" in inbox.facets("ana", supervisor=False)
        and inbox.facets("ana", supervisor=False)["agents"] == []
    )


def test_a_supervisor_sees_every_queue_and_filters_by_who_holds_it(world: World) -> None:
    busy_morning(world)
    world.desk.claim("acct-A4", ANA)
    world.desk.claim("acct-A3", BEN)
    inbox = make_inbox(world)
    everything = ids(inbox.items("sue", supervisor=True))
    assert {"acct-A4", "acct-A3"} <= set(everything) and len(everything) == 7
    assert ids(inbox.items("sue", InboxFilter(claimed_by="ben"), supervisor=True)) == ["acct-A3"]
    assert inbox.facets("sue", supervisor=True)["agents"] == ["ana", "ben"]


def test_dead_letters_and_reply_caps_are_work_items(world: World) -> None:
    escalate(world, "acct-A1", "email_reply_cap_reached")
    entry_id = world.services.dead_letters.add("email", "unreadable", "no sender", b"garbage")
    inbox = make_inbox(world)
    items = {item.kind: item for item in inbox.items("ana")}
    assert items["email_reply_cap"].conversation_id == "acct-A1"
    letter = items["dead_letter"]
    assert (
        letter.conversation_id == f"deadletter:email:{entry_id}" and letter.summary == "unreadable: no sender"
    )
    assert inbox.dead_letter("email", entry_id) is not None
    world.desk.attach_dead_letter(entry_id, "A1", ANA)
    assert [item.kind for item in inbox.items("ana")] == ["email_reply_cap"]


def test_changes_give_the_new_events_after_an_id(world: World) -> None:
    inbox = make_inbox(world)
    last, events = inbox.changes("")
    assert (last, events) == ("0-0", [])
    escalate(world, "acct-A1", "dispute")
    last, events = inbox.changes(last)
    assert [(e["conversation_id"], e["event"]) for e in events] == [("acct-A1", "escalate")]
    assert inbox.changes(last) == (last, [])
    assert inbox.changes("$") == (last, [])
    with pytest.raises(DeskError):
        inbox.changes("1-0; DROP")


# --- callbacks ------------------------------------------------------------------------------


def test_callbacks_come_by_the_time_the_person_asked_for_in_their_zone(world: World) -> None:
    world.add_account("A2", first_name="Luis", timezone="America/Los_Angeles", phone="+12025550102",
                      email="luis@example.com")  # fmt: skip
    world.add_account("A3", phone="+12025550103", email="a3@example.com")
    world.add_account("A4", phone="+12025550104", email="a4@example.com")
    world.add_account("A5", phone="+12025550105", email="a5@example.com")
    world.desk.record_callback("acct-A1", ANA, "tomorrow at 3pm", "phone")
    world.desk.record_callback("acct-A2", ANA, "today after 5", "video")
    world.desk.record_callback("acct-A3", ANA, "whenever suits", "phone")
    world.clock.advance(timedelta(hours=1))
    world.desk.record_callback("acct-A4", ANA, "friday morning", "phone")
    world.clock.advance(timedelta(hours=1))
    world.desk.record_callback("acct-A5", ANA, "no sé", "phone")
    callbacks = make_inbox(world).callbacks()
    assert [c.account_id for c in callbacks] == ["A2", "A1", "A4", "A3", "A5"]
    luis, maria = callbacks[0], callbacks[1]
    assert luis.when == datetime(2026, 3, 2, 17, 0, tzinfo=ZoneInfo("America/Los_Angeles"))
    assert (luis.how, luis.contact, luis.display_name, luis.zone) == (
        "video", "l***@example.com", "Luis", "America/Los_Angeles"
    )  # fmt: skip
    assert maria.when == datetime(2026, 3, 3, 15, 0, tzinfo=NEW_YORK)
    assert (maria.how, maria.contact, maria.when_raw) == ("phone", "+*********43", "tomorrow at 3pm")
    # Which address to reveal (``Desk.reveal_address``) to call them: a video call's is the email.
    assert (luis.channel, maria.channel) == ("email", "sms")
    assert callbacks[2].when == datetime(2026, 3, 6, 10, 0, tzinfo=NEW_YORK)
    assert callbacks[3].when is None and callbacks[4].when is None
    assert callbacks[3].asked_at == T0


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("tomorrow at 3pm", datetime(2026, 3, 3, 15, 0)),
        ("3:30 pm", datetime(2026, 3, 2, 15, 30)),
        ("at 9", datetime(2026, 3, 3, 9, 0)),  # 09:00 has passed today: tomorrow's
        ("after 5", datetime(2026, 3, 2, 17, 0)),  # nobody is called at 5 in the morning
        ("9am", datetime(2026, 3, 3, 9, 0)),
        ("el viernes por la tarde", datetime(2026, 3, 6, 15, 0)),
        ("mañana a las 4", datetime(2026, 3, 3, 16, 0)),
        ("next monday", datetime(2026, 3, 9, 9, 0)),
        ("noon", datetime(2026, 3, 2, 12, 0)),
        ("whenever", None),
        ("", None),
    ],
)
def test_callback_times_are_read_from_the_moment_asked(words: str, expected: datetime | None) -> None:
    asked = datetime(2026, 3, 2, 10, 0, tzinfo=NEW_YORK)  # a Monday
    found = parse_callback_time(words, asked.astimezone(timezone.utc), "America/New_York",
                                "es" if re.search("[ñé]|viernes", words) else "en")  # fmt: skip
    assert found == (expected.replace(tzinfo=NEW_YORK) if expected else None)
