"""The agent's desk: taking over and handing back (with Rasa's tracker kept whole, even while Rasa
is down), replies through the compliance gate (sent, deferred to the person's morning, blocked),
flags the gate honours at once, preferences, opt-outs, callbacks, the history with delivery
statuses, and an audit entry for every action."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import redis

from bot.clock import Clock
from bot.compliance.notices import notice
from bot.compliance.rules import Outgoing, Verdict
from bot.config import Config
from bot.console import desk_reading
from bot.console.desk import VERIFICATION_QUESTIONS, Desk, DeskError, format_moment
from bot.console.handoff import Actor, AlreadyClaimed, HandoffStore, NotAllowed, State, indexed_from_key
from bot.conversations.dialogue_backend import RedisDialogueBackend
from bot.conversations.history import ConversationHistory
from bot.conversations.outbound import Sending, pass_the_gate
from bot.runtime.services import Services, build_services
from bot.store.accounts import Account
from bot.store.addresses import address_key
from channels.base import DeliveryReceipt, DeliveryStatus, OutboundMessage
from dialogue.rasa_client import RasaUnavailable
from tests.conftest import ConfigFactory

#: Monday 2 March 2026, 10:00 in New York, 07:00 in Los Angeles.
T0 = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)
PHONE = "+12025550143"
EMAIL = "maria.lopez@example.com"
CID = "acct-A1"
ANA = Actor.of("ana", "agent")
BEN = Actor.of("ben", "agent")
SUE = Actor.of("sue", "supervisor")


class FakeRasa:
    """Records tracker events; can be made unreachable; answers the ``verified`` slot."""

    def __init__(self) -> None:
        self.events: dict[str, list[Mapping[str, Any]]] = {}
        self.verified: dict[str, bool] = {}
        self.down = False

    def append_events(self, conversation_id: str, events: list[Mapping[str, Any]]) -> None:
        if self.down:
            raise RasaUnavailable("Rasa server unreachable: ConnectError")
        self.events.setdefault(conversation_id, []).extend(events)

    def tracker(self, conversation_id: str) -> dict[str, Any]:
        if self.down:
            raise RasaUnavailable("Rasa server unreachable: ConnectError")
        return {"slots": {"verified": self.verified.get(conversation_id, False)}}

    def kinds(self, conversation_id: str) -> list[str]:
        return [str(event["event"]) for event in self.events.get(conversation_id, [])]


@dataclass
class World:
    config: Config
    services: Services
    clock: Clock
    rasa: FakeRasa
    desk: Desk
    history: ConversationHistory
    handoff: HandoffStore
    account: Account
    accounts: dict[str, Account] = field(default_factory=dict)

    @property
    def redis(self) -> redis.Redis[bytes]:
        return self.services.redis

    def add_account(self, account_id: str, **fields: Any) -> Account:
        values: dict[str, Any] = {
            "first_name": "Maria", "balance": Decimal("120.00"), "currency": "USD", "creditor": "Acme",
            "language": "en", "phone": PHONE, "email": EMAIL, "timezone": "America/New_York",
        }  # fmt: skip
        values.update(fields)
        account = Account(account_id=account_id, **values)
        self.services.accounts.upsert(account)
        self.accounts[account_id] = account
        return account

    def person_writes(self, text: str, conversation_id: str = CID, channel: str = "sms") -> None:
        """The person wrote now (the worker records it in the history and for the gate)."""
        self.history.inbound(
            conversation_id, source=f"{channel}:{uuid.uuid4().hex}", channel=channel, text=text
        )
        account_id = conversation_id.removeprefix("acct-").split("~")[0]
        if conversation_id.startswith("acct-"):
            self.services.gate.record_inbound(account_id, self.clock.timestamp())

    def queued(self, channel: str = "sms", address: str = PHONE) -> list[OutboundMessage]:
        return [
            OutboundMessage.from_json(entry.payload)
            for entry in self.services.outbound.unhandled(address_key(channel, address))
        ]

    def audit(self) -> list[dict[str, str]]:
        rows = self.redis.xrange(self.services.keys.audit)
        return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in rows]

    def console_audit(self) -> list[dict[str, str]]:
        return [row for row in self.audit() if row.get("kind", "").startswith("console:")]


def make_world(config: Config, client: redis.Redis[bytes]) -> World:
    clock = Clock(T0)
    services = build_services(config, client, clock)
    rasa = FakeRasa()
    history = ConversationHistory(client, services.keys, clock.timestamp)
    handoff = HandoffStore(client, services.keys, clock)
    desk = Desk(
        config=config, redis=client, keys=services.keys, clock=clock, accounts=services.accounts,
        addresses=services.addresses, gate=services.gate, deliveries=services.deliveries, history=history,
        handoff=handoff, outbound=services.outbound, jobs=services.jobs, rasa=rasa,
        dead_letters=services.dead_letters, links=services.links,
        plans=RedisDialogueBackend(config, client, services.events),
    )  # fmt: skip
    world = World(config, services, clock, rasa, desk, history, handoff, account=None)  # type: ignore[arg-type]
    world.account = world.add_account("A1")
    return world


@pytest.fixture
def world(make_config: ConfigFactory, redis_client: redis.Redis[bytes]) -> Iterator[World]:
    yield make_world(make_config(server={"public_url": "https://bot.example.com"}), redis_client)


def waiting(world: World, reason: str = "asked_for_person", conversation_id: str = CID) -> None:
    world.handoff.escalate(conversation_id, reason)


# --- taking over and handing back -----------------------------------------------------------


def test_a_claim_pauses_the_bot_in_rasa_and_a_second_claim_is_told_who_has_it(world: World) -> None:
    waiting(world)
    handoff = world.desk.claim(CID, ANA)
    assert handoff.state is State.AGENT and handoff.agent == "ana"
    assert world.handoff.is_silenced_for_bot(CID)
    assert world.rasa.kinds(CID) == ["pause"]
    with pytest.raises(AlreadyClaimed) as raised:
        world.desk.claim(CID, BEN)
    assert raised.value.by == "ana"
    # A double click pauses nothing twice.
    world.desk.claim(CID, ANA)
    assert world.rasa.kinds(CID) == ["pause"]
    assert [e.kind for e in world.history.read(CID)] == ["claimed"]


def test_handing_back_resumes_rasa_and_the_bot_says_the_person_is_back_with_it(world: World) -> None:
    waiting(world)
    world.person_writes("can I talk to a person")
    world.desk.claim(CID, ANA)
    handoff = world.desk.hand_back(CID, ANA)
    assert handoff.state is State.BOT
    assert not world.handoff.is_silenced_for_bot(CID)
    [message] = world.queued()
    assert message.text == notice("welcome_back", "en")
    assert message.text.startswith("Thanks for waiting. You're back with the assistant")
    assert world.rasa.kinds(CID) == ["pause", "resume", "bot"]
    [out] = [e for e in world.history.read(CID) if e.direction == "out"]
    assert out.by == "bot" and out.text == message.text


def test_the_bot_says_it_in_the_persons_language(world: World) -> None:
    world.add_account("A2", language="es", phone="+12025550188", email="luis@example.com")
    cid = "acct-A2"
    waiting(world, conversation_id=cid)
    world.person_writes("quiero hablar con una persona", conversation_id=cid)
    world.desk.claim(cid, ANA)
    world.desk.hand_back(cid, ANA)
    [message] = world.queued(address="+12025550188")
    assert message.text == notice("welcome_back", "es")
    assert message.language == "es"


def test_closing_resumes_rasa_without_a_message_and_counts_the_outcome(world: World) -> None:
    waiting(world)
    world.desk.claim(CID, ANA)
    world.desk.close(CID, ANA, "paid")
    assert world.rasa.kinds(CID) == ["pause", "resume"]
    assert world.queued() == []
    assert [e.kind for e in world.history.read(CID)] == ["claimed", "closed"]
    assert {o.value: n for o, n in world.handoff.outcome_counts().items()} == {"paid": 1}
    with pytest.raises(NotAllowed):
        world.desk.close(CID, ANA, "made-up")


def test_only_a_supervisor_reassigns_and_watches(world: World) -> None:
    waiting(world)
    world.desk.claim(CID, ANA)
    with pytest.raises(NotAllowed):
        world.desk.reassign(CID, "ben", BEN)
    with pytest.raises(DeskError):
        world.desk.reassign(CID, "", SUE)
    assert world.desk.reassign(CID, "ben", SUE).agent == "ben"
    with pytest.raises(NotAllowed):
        world.desk.watch(CID, ANA)
    assert "sue" in world.desk.watch(CID, SUE).watchers
    assert "sue" not in world.desk.unwatch(CID, SUE).watchers


# --- replying -------------------------------------------------------------------------------


def test_a_reply_to_someone_who_just_wrote_is_queued_recorded_and_told_to_rasa(world: World) -> None:
    waiting(world)
    world.person_writes("can I pay next week?")
    world.desk.claim(CID, ANA)
    world.clock.advance(timedelta(minutes=3))
    verdict = world.desk.reply(CID, ANA, "Hi Maria, yes: we can move it to next Friday.")
    assert verdict.outcome == "sent"
    assert verdict.channel == "sms" and verdict.segments == 1
    [message] = world.queued()
    assert message.outbox_id == verdict.outbox_id and message.outbox_id.startswith("agent:")
    assert message.text == "Hi Maria, yes: we can move it to next Friday."
    assert (message.kind, message.proactive, message.conversation_id) == ("agent", False, CID)
    [out] = [e for e in world.history.read(CID) if e.direction == "out"]
    assert (out.by, out.ref, out.kind) == ("agent:ana", verdict.outbox_id, "agent")
    bot = world.rasa.events[CID][-1]
    assert bot["event"] == "bot" and bot["text"] == message.text
    assert bot["metadata"]["agent"] == "ana" and bot["metadata"]["outbox_id"] == verdict.outbox_id
    [line] = [line for line in world.desk.history(CID) if line.direction == "out"]
    assert line.status == "queued"
    # The outbound worker asks the gate again right before sending: the reply passes it.
    assert isinstance(pass_the_gate(Sending(message), gate=world.services.gate,
                                    accounts=world.services.accounts, record=lambda *_: None), Sending)  # fmt: skip


def test_replying_to_a_conversation_nobody_holds_claims_it_and_anothers_claim_refuses(world: World) -> None:
    waiting(world)
    world.person_writes("hello?")
    assert world.desk.reply(CID, ANA, "Hello, I'm here.").outcome == "sent"
    assert world.handoff.get(CID).agent == "ana"
    assert world.rasa.kinds(CID) == ["pause", "bot"]
    with pytest.raises(AlreadyClaimed):
        world.desk.reply(CID, BEN, "Me too")


def test_a_reply_at_a_quiet_hour_to_someone_who_wrote_hours_ago_waits_for_their_morning(world: World) -> None:
    # The person is in Los Angeles, the agents in New York (config.console.zone).
    world.add_account("A1", timezone="America/Los_Angeles")
    world.clock.set(datetime(2026, 3, 2, 19, 0, tzinfo=timezone.utc))  # 11:00 LA
    world.person_writes("I'll think about it")
    waiting(world)
    world.desk.claim(CID, ANA)
    world.clock.set(datetime(2026, 3, 3, 11, 0, tzinfo=timezone.utc))  # 03:00 LA, 06:00 NY
    verdict = world.desk.reply(CID, ANA, "Good morning Maria, shall we set up the plan?")
    eight_la = datetime(2026, 3, 3, 16, 0, tzinfo=timezone.utc)
    assert verdict.outcome == "deferred" and verdict.rule == "quiet_hours"
    assert verdict.until == eight_la
    assert verdict.until_agent == "Tue 3 Mar 11:00 (America/New_York)"
    assert verdict.until_debtor == "Tue 3 Mar 08:00 (America/Los_Angeles)"
    assert "Reply STOP" in world.desk.history(CID)[-1].text  # a proactive text says how to stop
    assert verdict.segments == 1
    assert world.queued() == []
    [line] = [line for line in world.desk.history(CID) if line.direction == "out"]
    assert (line.status, line.until) == ("deferred", eight_la)
    assert world.rasa.kinds(CID) == ["pause"]

    world.clock.set(eight_la - timedelta(minutes=1))
    assert world.desk.release_deferred() == 0
    world.clock.set(eight_la + timedelta(minutes=2))
    assert world.desk.release_deferred() == 1
    [message] = world.queued()
    assert message.outbox_id == verdict.outbox_id and message.proactive
    assert world.rasa.kinds(CID) == ["pause", "bot"]
    [line] = [line for line in world.desk.history(CID) if line.direction == "out"]
    assert line.status == "queued"
    assert world.desk.release_deferred() == 0  # once
    assert isinstance(pass_the_gate(Sending(message), gate=world.services.gate,
                                    accounts=world.services.accounts, record=lambda *_: None), Sending)  # fmt: skip


def test_a_releaser_killed_half_way_loses_nothing_and_the_reply_goes_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    waiting(world)
    world.desk.claim(CID, ANA)
    world.clock.set(datetime(2026, 3, 3, 11, 0, tzinfo=timezone.utc))  # 03:00 in Los Angeles
    verdict = world.desk.reply(CID, ANA, "Good morning Maria, shall we set up the plan?")
    assert verdict.outcome == "deferred" and verdict.until is not None
    world.clock.set(verdict.until + timedelta(minutes=1))
    tell_rasa = world.desk._tell_rasa

    def die(*args: object, **kwargs: object) -> None:
        raise SystemExit("killed between queueing the reply and forgetting it")

    monkeypatch.setattr(world.desk, "_tell_rasa", die)
    with pytest.raises(SystemExit):
        world.desk.release_deferred()
    assert len(world.queued()) == 1  # it was queued before the kill
    monkeypatch.setattr(world.desk, "_tell_rasa", tell_rasa)
    assert world.desk.release_deferred() == 0  # leased by the dead releaser for a while
    world.clock.advance(timedelta(seconds=61))
    assert world.desk.release_deferred() == 1  # released again ...
    assert [m.outbox_id for m in world.queued()] == [verdict.outbox_id]  # ... and queued once
    assert world.desk.release_deferred() == 0


def test_a_deferred_reply_whose_address_opted_out_meanwhile_is_withheld_not_sent(world: World) -> None:
    world.clock.set(datetime(2026, 3, 3, 8, 0, tzinfo=timezone.utc))  # 03:00 New York
    waiting(world)
    verdict = world.desk.reply(CID, ANA, "Hello Maria")
    assert verdict.outcome == "deferred"
    world.services.addresses.opt_out("sms", PHONE, "A1")
    world.clock.set(datetime(2026, 3, 3, 14, 0, tzinfo=timezone.utc))
    assert world.desk.release_deferred() == 0
    assert world.queued() == []
    [line] = [line for line in world.desk.history(CID) if line.direction == "out"]
    assert (line.status, line.rule) == ("withheld", "opted_out")


def test_a_reply_to_an_opted_out_address_is_blocked_with_the_reason(world: World) -> None:
    waiting(world)
    world.person_writes("ok")
    world.services.addresses.opt_out("sms", PHONE, "A1")
    verdict = world.desk.reply(CID, ANA, "Just checking in")
    assert verdict.outcome == "blocked" and verdict.rule == "opted_out"
    assert "opted out of sms" in verdict.reason
    assert world.queued() == []
    blocked = world.history.read(CID)[-1]
    assert blocked.kind == "reply_blocked" and blocked.detail["rule"] == "opted_out"
    assert blocked.text == "Just checking in"
    # Another of the person's channels still works.
    assert world.desk.reply(CID, ANA, "Just checking in", channel="email").outcome == "sent"
    assert [m.recipient for m in world.queued("email", EMAIL)] == [EMAIL]


def test_a_wrong_party_address_is_blocked_by_the_gate(world: World) -> None:
    waiting(world)
    world.person_writes("who is this?")
    world.services.addresses.mark_wrong_party("sms", PHONE, "A1")
    verdict = world.desk.reply(CID, ANA, "Sorry to bother you")
    assert (verdict.outcome, verdict.rule) == ("blocked", "wrong_party")


def test_a_paused_account_blocks_contact_the_agent_starts(world: World) -> None:
    waiting(world)
    world.desk.set_flag(CID, ANA, "attorney", True, "represented by counsel")
    verdict = world.desk.reply(CID, ANA, "Hello")
    assert (verdict.outcome, verdict.rule) == ("blocked", "pause:attorney")
    # Once the person writes, a reply is a reply.
    world.person_writes("please talk to my lawyer")
    assert world.desk.reply(CID, ANA, "Understood.").outcome == "sent"


def test_replies_are_validated(world: World) -> None:
    world.person_writes("hi")
    for text in ("", "   "):
        with pytest.raises(DeskError, match="empty"):
            world.desk.reply(CID, ANA, text)
    with pytest.raises(DeskError, match="too long"):
        world.desk.reply(CID, ANA, "x" * 1_501)
    with pytest.raises(DeskError, match="unknown channel"):
        world.desk.reply(CID, ANA, "hi", channel="fax")
    with pytest.raises(DeskError, match="unknown conversation"):
        world.desk.reply("../../etc", ANA, "hi")
    with pytest.raises(DeskError, match="no telegram address"):
        world.desk.reply(CID, ANA, "hi", channel="telegram")
    with pytest.raises(DeskError, match="no address"):
        world.desk.reply("anon-sms.0123456789abcdef01234567", ANA, "hi")


def test_a_card_number_never_leaves_in_an_agents_reply(world: World) -> None:
    world.person_writes("my card?")
    verdict = world.desk.reply(CID, ANA, "Is it 4111 1111 1111 1111?")
    assert verdict.outcome == "sent"
    [message] = world.queued()
    assert "4111" not in message.text


def test_the_verification_question_is_the_dialogues_in_the_persons_language(world: World) -> None:
    world.person_writes("hola")
    world.desk.ask_verification(CID, ANA)
    world.desk.set_preference(CID, ANA, "language", "es")
    world.desk.ask_verification(CID, ANA)
    texts = [m.text for m in world.queued()]
    assert texts == [
        VERIFICATION_QUESTIONS["date_of_birth"]["en"],
        VERIFICATION_QUESTIONS["date_of_birth"]["es"],
    ]
    assert texts[0].endswith("Could you tell me your date of birth?")


def test_the_persons_answer_is_checked_as_the_dialogue_checks_it_and_only_a_match_verifies(
    world: World,
) -> None:
    world.account = world.add_account("A1", date_of_birth=date(1984, 3, 12))
    waiting(world)
    world.desk.claim(CID, ANA)
    with pytest.raises(DeskError, match="not written an answer"):
        world.desk.check_verification(CID, ANA)
    world.person_writes("1 January 1970")
    assert world.desk.check_verification(CID, ANA) is False
    assert world.rasa.events.get(CID, []) == [{"event": "pause"}]  # claimed, nothing verified
    assert world.history.read(CID)[-1].kind == "verification_failed"
    world.person_writes("12 March 1984")
    assert world.desk.check_verification(CID, ANA) is True
    assert world.rasa.events[CID][-1] == {"event": "slot", "name": "verified", "value": True}
    assert world.history.read(CID)[-1].kind == "verified"
    kinds = [row["kind"] for row in world.console_audit()]
    assert "console:verification_failed" in kinds and "console:verified" in kinds


def test_sms_segments_are_counted_as_the_desk_sends_them(world: World) -> None:
    assert world.desk.segments("") == 1
    assert world.desk.segments("a" * 160) == 1
    assert world.desk.segments("a" * 161) == 2
    assert world.desk.segments("\u2019" * 70) == 1  # curly quotes become GSM-7 apostrophes
    assert world.desk.segments("\U0001f600" * 36) == 2  # emoji stay UCS-2 (2 units each)


# --- Rasa unreachable -----------------------------------------------------------------------


def test_when_rasa_is_down_the_claim_stands_and_the_events_wait_in_order(world: World) -> None:
    waiting(world)
    world.person_writes("anyone?")
    world.rasa.down = True
    world.desk.claim(CID, ANA)
    assert world.handoff.is_silenced_for_bot(CID)
    assert world.desk.reply(CID, ANA, "I'm here").outcome == "sent"
    assert world.desk.pending_tracker_events() == 2
    assert world.desk.flush_tracker_events() == 0
    assert world.desk.pending_tracker_events() == 2
    world.rasa.down = False
    # A new change while events wait goes behind them (and flushes them).
    world.desk.hand_back(CID, ANA)
    assert world.desk.pending_tracker_events() == 0
    assert world.rasa.kinds(CID) == ["pause", "bot", "resume", "bot"]
    assert world.desk.flush_tracker_events() == 0


def test_verified_is_unknown_while_rasa_is_down(world: World) -> None:
    world.rasa.verified[CID] = True
    assert (world.desk.view(CID).verified, world.desk.view(CID).verified_known) == (True, True)
    world.rasa.down = True
    view = world.desk.view(CID)
    assert (view.verified, view.verified_known) == (False, False)


# --- flags, preferences, opt-outs, callbacks, notes ----------------------------------------


def opener_decision(world: World) -> Verdict:
    outgoing = Outgoing(channel="sms", text="Hello", language="en", proactive=True, kind="opener")
    return world.services.gate.decide(world.account, "sms", PHONE, outgoing).verdict


def test_a_dispute_flag_stops_outreach_at_once_and_clearing_it_allows_it(world: World) -> None:
    assert opener_decision(world) is Verdict.SEND
    world.desk.set_flag(CID, ANA, "dispute", True, "says the debt is not theirs")
    outgoing = Outgoing(channel="sms", text="Hello", language="en", proactive=True, kind="opener")
    decision = world.services.gate.decide(world.account, "sms", PHONE, outgoing)
    assert (decision.verdict, decision.rule) == (Verdict.BLOCK, "pause:dispute")
    view = world.desk.view(CID)
    assert view.flags["dispute"]["by"] == "ana" and view.flags["dispute"]["at"].startswith("2026-03-02T15:00")
    world.desk.set_flag(CID, ANA, "dispute", False)
    assert opener_decision(world) is Verdict.SEND
    assert [e.kind for e in world.history.read(CID)] == ["flag_set", "flag_cleared"]


def test_crisis_is_only_cleared_by_a_person_and_vulnerable_holds_collection(world: World) -> None:
    with pytest.raises(DeskError, match="safety screen"):
        world.desk.set_flag(CID, ANA, "crisis", True)
    world.services.crisis.raise_crisis(
        conversation_id=CID, account_id="A1", detail="sms: ...", once="m1", source="nlu"
    )
    assert opener_decision(world) is Verdict.BLOCK
    world.desk.set_flag(CID, ANA, "crisis", False, "spoke with them; they are safe")
    assert opener_decision(world) is Verdict.SEND
    world.desk.set_flag(CID, ANA, "vulnerable", True, "caring for a parent")
    assert opener_decision(world) is Verdict.BLOCK  # no collection opener until a person clears it
    assert "vulnerable" in world.desk.view(CID).flags
    world.desk.set_flag(CID, ANA, "vulnerable", False, "back on their feet")
    assert opener_decision(world) is Verdict.SEND
    with pytest.raises(DeskError, match="unknown flag"):
        world.desk.set_flag(CID, ANA, "angry", True)
    with pytest.raises(DeskError, match="no account"):
        world.desk.set_flag("anon-sms.0123456789abcdef01234567", ANA, "dispute", True)


def test_preferences_are_checked_and_stored_like_the_dialogues(world: World) -> None:
    world.desk.set_preference(CID, ANA, "channel", "email")
    world.desk.set_preference(CID, ANA, "language", "es")
    world.desk.set_preference(CID, ANA, "contact_window", "weekdays after 6pm")
    preferences = world.desk.view(CID).preferences
    assert preferences["channel"] == "email" and preferences["language"] == "es"
    window = json.loads(preferences["contact_window"])
    assert window["after"] == "18:00:00" and window["weekdays_only"] is True
    with pytest.raises(DeskError, match="no telegram address"):
        world.desk.set_preference(CID, ANA, "channel", "telegram")
    with pytest.raises(DeskError, match="unknown language"):
        world.desk.set_preference(CID, ANA, "language", "fr")
    with pytest.raises(DeskError, match="could not understand"):
        world.desk.set_preference(CID, ANA, "contact_window", "purple")
    with pytest.raises(DeskError, match="unknown preference"):
        world.desk.set_preference(CID, ANA, "colour", "blue")
    world.desk.set_preference(CID, ANA, "contact_window", "")
    assert "contact_window" not in world.desk.view(CID).preferences


def test_opting_an_address_out_and_back_in_needs_a_reason(world: World) -> None:
    with pytest.raises(DeskError, match="reason"):
        world.desk.opt_out(CID, ANA, "sms", " ")
    world.desk.opt_out(CID, ANA, "sms", "asked on the phone")
    assert world.services.addresses.status("sms", PHONE).opted_out_at is not None
    assert world.desk.view(CID).address_status["sms"]["opted_out"] is True
    world.desk.opt_in(CID, ANA, "sms", "asked to hear from us again")
    assert world.services.addresses.status("sms", PHONE).opted_out_at is None


def test_a_callback_goes_into_the_dialogues_list(world: World) -> None:
    world.desk.record_callback(CID, ANA, "tomorrow at 3pm", "video")
    [(_, fields)] = world.redis.xrange(world.services.keys.callbacks)
    row = {k.decode(): v.decode() for k, v in fields.items()}
    assert row["conversation_id"] == CID and row["account_id"] == "A1"
    assert (row["when"], row["how"], row["by"]) == ("tomorrow at 3pm", "video", "ana")
    with pytest.raises(DeskError, match="phone, video"):
        world.desk.record_callback(CID, ANA, "tomorrow", "pigeon")


def test_a_note_is_kept_for_agents_and_never_sent(world: World) -> None:
    world.desk.add_note(CID, ANA, "Sounded stressed; offer the smaller plan.")
    [note] = world.history.read(CID)
    assert (note.direction, note.kind, note.by) == ("event", "note", "agent:ana")
    assert world.queued() == [] and world.queued("email", EMAIL) == []
    with pytest.raises(DeskError):
        world.desk.add_note(CID, ANA, "")


def test_actions_keep_a_claim_alive(world: World) -> None:
    waiting(world)
    world.desk.claim(CID, ANA)
    world.clock.advance(timedelta(minutes=15))
    world.desk.add_note(CID, ANA, "still here")
    world.clock.advance(timedelta(minutes=15))
    assert world.handoff.release_idle(20) == []


# --- reading --------------------------------------------------------------------------------


def test_the_view_shows_masked_addresses_reasons_plans_and_the_current_channel(world: World) -> None:
    waiting(world, "dispute")
    world.services.agents.flag(CID, "payment_claimed", account_id="A1")
    world.person_writes("I paid already", channel="email")
    world.redis.rpush(world.services.keys.account_plans("A1"), "p1")
    world.redis.set(world.services.keys.plan("p1"), json.dumps({"plan_id": "p1", "total": "120.00"}))
    view = world.desk.view(CID)
    assert view.channels == {"sms": "+*********43", "email": "m***@example.com"}
    assert "dispute" in view.reasons and "payment_claimed" in view.reasons
    assert [plan["plan_id"] for plan in view.plans] == ["p1"]
    assert view.language == "en" and view.current_channel in view.channels
    assert view.in_reply_window and view.last_inbound_at == T0
    assert view.account == world.account


def test_history_lines_carry_the_delivery_status(world: World) -> None:
    world.person_writes("hi")
    sent = world.desk.reply(CID, ANA, "first")
    withheld = world.desk.reply(CID, ANA, "second")
    deliveries = world.services.deliveries
    deliveries.record(
        DeliveryReceipt(outbox_id=sent.outbox_id, channel="sms", status=DeliveryStatus.DELIVERED)
    )
    deliveries.record(DeliveryReceipt(
        outbox_id=withheld.outbox_id, channel="sms", status=DeliveryStatus.FAILED,
        error_code="compliance:quiet_hours", error_message="It is outside 08:00-21:00",
    ))  # fmt: skip
    lines = world.desk.history(CID)
    assert [(line.direction, line.status) for line in lines] == [
        ("in", ""), ("event", ""), ("out", "delivered"), ("out", "withheld")
    ]  # fmt: skip
    assert lines[-1].rule == "quiet_hours" and "08:00" in lines[-1].error
    assert [line.text for line in world.desk.history(CID, after=lines[1].id)] == ["first", "second"]
    assert lines[-1].to_json()["status"] == "withheld"
    with pytest.raises(DeskError):
        world.desk.history(CID, after="nonsense")


def test_every_action_is_audited_without_the_persons_words_or_full_addresses(world: World) -> None:
    waiting(world)
    world.person_writes("my number is +12025550143, call me")
    world.desk.claim(CID, ANA)
    world.desk.reply(CID, ANA, "Calling you at +12025550143 shortly")
    world.desk.add_note(CID, ANA, "secret note text")
    world.desk.set_flag(CID, ANA, "dispute", True, "detail words")
    world.desk.set_preference(CID, ANA, "language", "es")
    world.desk.opt_out(CID, ANA, "email", "asked by phone")
    world.desk.record_callback(CID, ANA, "tomorrow 9am", "phone")
    world.desk.hand_back(CID, ANA)
    kinds = [row["kind"] for row in world.console_audit()]
    assert kinds == ["console:reply", "console:note", "console:flag", "console:preference",
                     "console:opt_out", "console:callback"]  # fmt: skip
    for row in world.console_audit():
        assert (row["by"], row["role"], row["conversation_id"]) == ("ana", "agent", CID)
        assert float(row["at"]) > 0
    everything = json.dumps(world.audit())
    for secret in ("12025550143", EMAIL, "secret note text", "call me", "Calling you"):
        assert secret not in everything
    trail = world.desk.audit(CID)
    kinds = [row["kind"] for row in trail]
    assert kinds[0] == "handoff" and "console:note" in kinds and kinds[-1] == "handoff"
    assert [row.get("event") for row in trail if row["kind"] == "handoff"] == [
        "escalate",
        "claim",
        "hand_back",
    ]
    assert world.desk.audit("acct-other") == []


def handoff_trail(world: World, conversation_id: str = CID) -> list[tuple[str, str]]:
    """The conversation's audit as its page reads it: (what, who), hand-off changes by event."""
    return [
        (row.get("event", "") if row["kind"] == "handoff" else row["kind"], row["by"])
        for row in world.desk.audit(conversation_id)
    ]


def test_a_conversations_audit_keeps_its_handoff_changes_however_busy_the_audit_stream_gets(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(desk_reading, "AUDIT_SCAN", 300)  # what a busy day's audit would push out
    waiting(world)
    world.desk.claim(CID, ANA)
    world.desk.add_note(CID, ANA, "called them")
    pipe = world.redis.pipeline(transaction=False)
    for n in range(1_000):  # other conversations' entries, newer than all of this one's
        pipe.xadd(world.services.keys.audit, {"kind": "handoff", "conversation_id": f"acct-X{n}", "by": "x"})
    pipe.execute()
    world.desk.hand_back(CID, ANA)
    assert handoff_trail(world) == [
        ("escalate", "system"), ("claim", "ana"), ("console:note", "ana"), ("hand_back", "ana"),
    ]  # fmt: skip


def test_handoff_changes_audited_before_the_conversations_stream_had_them_are_found_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = world.services.keys
    # Written the old way: in the audit stream only.
    world.redis.xadd(keys.audit, {"kind": "handoff", "conversation_id": CID, "event": "escalate",
                                  "by": "system", "at": repr(T0.timestamp() - 60)})  # fmt: skip
    world.redis.xadd(keys.audit, {"kind": "handoff", "conversation_id": "acct-other", "event": "claim",
                                  "by": "ben", "at": repr(T0.timestamp() - 50)})  # fmt: skip
    assert handoff_trail(world) == [("escalate", "system")]  # nothing in the index yet: all found
    world.desk.claim(CID, ANA)
    # A change cut short after its EXEC, before it said where the index starts: the next one says.
    world.redis.delete(indexed_from_key(keys))
    world.clock.advance(timedelta(seconds=1))
    HandoffStore(world.redis, keys, world.clock).hand_back(CID, "ana")
    expected = [("escalate", "system"), ("claim", "ana"), ("hand_back", "ana")]
    assert handoff_trail(world) == expected  # the claim, in both streams, shown once
    # Looked for once: the old entries are kept for the page, the audit stream is not read again.
    calls: list[object] = []
    real = world.redis.xrevrange
    monkeypatch.setattr(
        world.redis, "xrevrange", lambda name, *a, **k: calls.append(name) or real(name, *a, **k)
    )
    assert handoff_trail(world) == expected
    assert calls == [keys.conversation_audit(CID)]


def test_a_dead_letter_attached_to_an_account_becomes_its_conversation(world: World) -> None:
    entry_id = world.services.dead_letters.add(
        "email", "unreadable", "broken MIME", b"Subject: help\r\n\r\nhi"
    )
    cid = world.desk.attach_dead_letter(entry_id, "A1", ANA)
    assert cid == CID
    [line] = world.history.read(CID)
    assert (line.direction, line.kind, line.channel) == ("in", "dead_letter", "email")
    assert world.handoff.get(CID).reasons == ("dead_letter",)
    with pytest.raises(DeskError):
        world.desk.attach_dead_letter(entry_id, "nobody", ANA)


def test_format_moment_reads_like_people_write_it() -> None:
    assert format_moment(datetime(2026, 12, 7, 14, 0, tzinfo=timezone.utc), "America/New_York") == (
        "Mon 7 Dec 09:00 (America/New_York)"
    )
