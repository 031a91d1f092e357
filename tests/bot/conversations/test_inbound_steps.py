"""The inbound and outbound paths' steps, each alone: given a context and fakes, it stops or
passes on, with what effect. The handlers' end-to-end behaviour is tested in test_handlers.py,
tests/bot/care/ and tests/e2e/."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from bot.care.screen import Concern, Screening
from bot.compliance.keywords import KeywordOutcome
from bot.config import ConsoleConfig
from bot.conversations import outbound
from bot.conversations.inbound import InboundHandler
from bot.conversations.inbound_steps import (
    STEPS,
    Context,
    DialogueFailed,
    answer_keyword,
    ask_the_dialogue,
    cap_email_replies,
    defer_to_agent,
    flag_vulnerability,
    greet_on_start,
    promise_a_person,
    read_button_press,
    read_numbered_answer,
    record_message,
    redeem_deep_link,
    reject_unsupported,
    respect_silence,
    safety_screen,
    send_replies,
    skip_machine_mail,
    strip_card_number,
)
from bot.conversations.outbound import (
    OUTBOUND_STEPS,
    OutboundHandler,
    Sending,
    skip_if_recorded,
    withhold_if_silenced,
)
from bot.conversations.steps import Stop, bind, collaborators, run
from bot.privacy import CARD_PLACEHOLDER
from bot.store.addresses import AddressStatus
from bot.store.queues import GiveUp, RetryLater
from channels.base import DeliveryReceipt, DeliveryStatus, InboundMessage, OutboundMessage
from channels.sms_keywords import KeywordKind
from dialogue.rasa_client import BotReply, RasaActionFailed, RasaRejected, RasaUnavailable

ARCHITECTURE = Path(__file__).resolve().parents[3] / "docs" / "architecture.md"
PHONE = "+12025550143"

# --------------------------------------------------------------------------------------------
# Fakes: each records what it was asked
# --------------------------------------------------------------------------------------------


@dataclass
class Sent:
    replies: list[BotReply]
    what: str
    kind: str
    source: str | None
    offer_id: str | None
    conversation_id: str


@dataclass
class FakeSay:
    sent: list[Sent] = field(default_factory=list)
    acknowledged: list[tuple[str, str | None]] = field(default_factory=list)

    def send(
        self,
        context: Context,
        replies: Any,
        what: str,
        *,
        kind: str = "reply",
        source: str | None = None,
        offer_id: str | None = None,
    ) -> None:
        self.sent.append(Sent(list(replies), what, kind, source, offer_id, context.conversation_id))

    def acknowledge(self, message: InboundMessage, notice_text: str | None = None) -> None:
        self.acknowledged.append((message.external_id, notice_text))

    @property
    def texts(self) -> list[str]:
        return [reply.text for sent in self.sent for reply in sent.replies]


@dataclass
class FakeAgents:
    flags: list[tuple[str, str, str | None]] = field(default_factory=list)

    def flag(
        self,
        conversation_id: str,
        reason: str,
        *,
        account_id: str | None = None,
        detail: str = "",
        once: str | None = None,
    ) -> bool:
        self.flags.append((conversation_id, reason, once))
        return True


@dataclass
class FakeAddresses:
    state: AddressStatus = field(default_factory=AddressStatus)
    calls: list[str] = field(default_factory=list)

    def status(self, channel: str, address: str) -> AddressStatus:
        return self.state

    def clear_unreachable(self, channel: str, address: str) -> None:
        self.calls.append("clear_unreachable")

    def open_care_window(self, channel: str, address: str, until: float) -> None:
        self.calls.append(f"care until {until:.0f}")

    def mark_unreachable(self, channel: str, address: str) -> None:
        self.calls.append(f"unreachable {address}")


@dataclass
class FakeChoices:
    payloads: dict[str, str] = field(default_factory=dict)
    remembered: list[list[BotReply]] = field(default_factory=list)

    def pressed(self, channel: str, address: str, data: str) -> str | None:
        return self.payloads.get(data)

    def resolve(self, channel: str, address: str, text: str) -> str:
        return self.payloads.get(text, text)

    def remember(self, channel: str, address: str, replies: Any) -> str | None:
        self.remembered.append(list(replies))
        return "offer1" if any(reply.buttons for reply in replies) else None


@dataclass
class FakeRasa:
    answer: list[BotReply] = field(default_factory=list)
    fails_with: Exception | None = None
    heard: list[tuple[str, str, str | None, dict[str, Any]]] = field(default_factory=list)

    def send_message(
        self, conversation_id: str, text: str, *, channel: str, metadata: Any, message_id: str | None = None
    ) -> list[BotReply]:
        self.heard.append((conversation_id, text, message_id, dict(metadata)))
        if self.fails_with is not None:
            raise self.fails_with
        return self.answer


@dataclass
class FakeCrisisDesk:
    follow_up_hours: float = 2.0
    raised: list[str] = field(default_factory=list)

    def raise_crisis(
        self, *, conversation_id: str, account_id: str | None, detail: str, once: str, source: str
    ) -> bool:
        self.raised.append(once)
        return True

    def reply(self, language: str, country: str | None) -> str:
        return f"crisis line ({language})"

    def line(self, country: str | None, language: str) -> str:
        return "988"


def _context(typed: str = "hello", kind: str = "text", channel: str = "sms", **known: Any) -> Context:
    """The context of message "SM1" as the steps before would pass it on (``known`` overrides)."""
    message = InboundMessage(channel=channel, external_id="SM1", sender=PHONE, text=typed, kind=kind)
    context = Context.of(message)
    defaults: dict[str, Any] = {"conversation_id": "acct-A1", "language": "en"}
    return Context(**{**{f.name: getattr(context, f.name) for f in fields(context)}, **defaults, **known})


# --------------------------------------------------------------------------------------------
# The lists
# --------------------------------------------------------------------------------------------


def _documented(start: str, end: str) -> list[str]:
    """The step names listed in docs/architecture.md's inbound path diagram between two lines."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    section = text[text.index(start) : text.index(end, text.index(start))]
    return re.findall(r"^ {5}([a-z_]+) {2,}", section, flags=re.MULTILINE)


def test_the_inbound_steps_run_in_the_order_the_architecture_gives() -> None:
    documented = _documented('worker (Dramatiq actor "drain"', "advance :cursor")
    assert documented == [step.__name__ for step in STEPS]


def test_the_outbound_steps_run_in_the_order_the_architecture_gives() -> None:
    documented = _documented("(outbound, bot/conversations/outbound.py", "\nemail: POST")
    assert documented == [step.__name__ for step in OUTBOUND_STEPS]


def test_every_collaborator_a_step_names_is_one_its_handler_has() -> None:
    inbound_parts = {f.name for f in fields(InboundHandler)} | {"say"}
    for step in STEPS:
        missing = set(collaborators(step)) - inbound_parts
        assert not missing, (step.__name__, missing)
    outbound_parts = {f.name for f in fields(OutboundHandler)} | {"record"}
    for step in OUTBOUND_STEPS:
        missing = set(collaborators(step)) - outbound_parts
        assert not missing, (step.__name__, missing)


def test_run_passes_each_steps_context_on_and_ends_at_the_first_stop() -> None:
    seen: list[str] = []

    def add(letter: str) -> Any:
        def step(context: str) -> str:
            seen.append(context)
            return context + letter

        return step

    def person_owns_it(context: str) -> Stop:  # e.g. a new rule: an agent holds the conversation
        seen.append(context)
        return Stop("an agent has it")

    assert run([add("a"), add("b"), person_owns_it, add("never")], "") == Stop("an agent has it")
    assert seen == ["", "a", "ab"]
    assert run([add("a"), add("b")], "") == "ab"


def test_bind_gives_a_step_only_the_collaborators_it_names() -> None:
    def step(context: Context, *, say: FakeSay) -> Stop:
        say.acknowledge(context.message)
        return Stop("done")

    say = FakeSay()
    bound = bind(step, {"say": say, "rasa": object()})
    assert bound(_context(kind="choice")) == Stop("done") and say.acknowledged == [("SM1", None)]


# --------------------------------------------------------------------------------------------
# Inbound steps
# --------------------------------------------------------------------------------------------


def test_a_deep_link_is_redeemed_and_the_message_passes_on() -> None:
    redeemed: list[tuple[str, str]] = []

    class Links:
        def redeem(self, token: str, chat_id: str) -> str | None:
            redeemed.append((token, chat_id))
            return "A1"

    context = _context("tok123", kind="start", channel="telegram")
    assert redeem_deep_link(context, links=Links()) is context
    assert redeemed == [("tok123", PHONE)]
    text = _context("hi")
    assert redeem_deep_link(text, links=Links()) is text
    assert len(redeemed) == 1


def test_machine_mail_stops_and_a_bounce_marks_the_address_unreachable() -> None:
    addresses = FakeAddresses()
    auto = _context(kind="automated", channel="email")
    assert isinstance(skip_machine_mail(auto, addresses=addresses, deliveries=None), Stop)
    bounce = Context.of(
        InboundMessage(
            channel="email",
            external_id="<b@x>",
            sender="mailer-daemon@x",
            text="",
            kind="automated",
            raw={"bounce": {"permanent": True, "status": "5.1.1", "recipients": ["a@example.com"]}},
        )
    )
    assert skip_machine_mail(bounce, addresses=addresses, deliveries=None) == Stop("bounce")
    assert addresses.calls == ["unreachable a@example.com"]
    text = _context("hi", channel="email")
    assert skip_machine_mail(text, addresses=addresses, deliveries=None) is text


def _screen(context: Context, **fakes: Any) -> Any:
    parts: dict[str, Any] = {
        "crisis": FakeCrisisDesk(),
        "addresses": FakeAddresses(),
        "choices": FakeChoices(),
        "rasa": FakeRasa(),
        "say": FakeSay(),
        "clock": lambda: 1000.0,
    }
    parts.update(fakes)
    return safety_screen(context, **parts), parts


def test_a_sign_of_crisis_is_answered_escalated_and_told_to_the_dialogue_then_stops() -> None:
    outcome, parts = _screen(_context("no puedo más, me quiero morir"))
    assert outcome == Stop("crisis")
    assert parts["crisis"].raised == ["sms:SM1"]
    [sent] = parts["say"].sent
    assert sent.kind == "crisis" and sent.replies == [
        BotReply(text="crisis line (es)")
    ]  # the language written in
    assert parts["addresses"].calls == [f"care until {1000 + 2 * 3600}"]
    assert parts["choices"].remembered == [[]]  # earlier buttons withdrawn
    [(conversation, text, message_id, metadata)] = parts["rasa"].heard
    assert (conversation, text, message_id, metadata["screened"]) == (
        "acct-A1",
        "/crisis",
        "sms:SM1",
        "crisis",
    )


def test_a_crisis_from_a_silenced_address_is_answered_but_not_told_to_the_dialogue() -> None:
    outcome, parts = _screen(
        _context("I want to die"), addresses=FakeAddresses(AddressStatus(opted_out_at=1.0))
    )
    assert outcome == Stop("crisis") and parts["say"].texts == ["crisis line (en)"]
    assert parts["rasa"].heard == []


def test_a_crisis_answer_stays_queued_when_the_dialogue_is_down_and_the_message_waits() -> None:
    say = FakeSay()
    with pytest.raises(RetryLater):
        _screen(_context("I want to die"), rasa=FakeRasa(fails_with=RasaUnavailable("down")), say=say)
    assert say.texts == ["crisis line (en)"]  # queued once by outbox id: the retry adds nothing


def test_what_else_the_screen_saw_passes_on_in_the_context() -> None:
    outcome, parts = _screen(_context("I have cancer"))
    assert isinstance(outcome, Context) and Concern.ILLNESS in outcome.screening.concerns
    assert parts["say"].sent == [] and parts["rasa"].heard == []


def test_a_keyword_is_answered_from_config_and_stops_the_path() -> None:
    class Keywords:
        def handle(self, message: InboundMessage, account: Any) -> KeywordOutcome | None:
            return (
                KeywordOutcome(KeywordKind.STOP, ("You're unsubscribed.",))
                if message.text == "STOP"
                else None
            )

    say = FakeSay()
    assert answer_keyword(_context("STOP"), keywords=Keywords(), say=say) == Stop("keyword stop")
    assert say.texts == ["You're unsubscribed."] and say.sent[0].what == "keyword stop"
    context = _context("stop by later")
    assert answer_keyword(context, keywords=Keywords(), say=say) is context


def _silence(state: AddressStatus, now: float = 1000.0) -> tuple[Any, FakeSay, FakeAgents, FakeAddresses]:
    say, agents, addresses = FakeSay(), FakeAgents(), FakeAddresses(state)
    outcome = respect_silence(
        _context("are you there?"),
        addresses=addresses,
        agents=agents,
        crisis=FakeCrisisDesk(),
        say=say,
        clock=lambda: now,
    )
    return outcome, say, agents, addresses


def test_an_opted_out_address_gets_no_answer_and_a_person_reads_it() -> None:
    outcome, say, agents, _ = _silence(AddressStatus(opted_out_at=1.0))
    assert outcome == Stop("address opted_out")
    assert say.sent == [] and agents.flags == [("acct-A1", "wrote_after_opted_out", "sms:SM1")]


def test_a_silenced_address_inside_its_care_window_hears_a_person_has_its_words() -> None:
    outcome, say, agents, _ = _silence(AddressStatus(wrong_party_at=1.0, care_until=2000.0), now=1000.0)
    assert outcome == Stop("care follow-up")
    [sent] = say.sent
    assert sent.kind == "crisis" and "988" in sent.replies[0].text
    assert agents.flags == [("acct-A1", "wrote_after_wrong_party", "sms:SM1")]


def test_writing_from_an_unreachable_address_clears_the_mark_and_passes_on() -> None:
    outcome, say, agents, addresses = _silence(AddressStatus(unreachable_at=1.0))
    assert isinstance(outcome, Context) and addresses.calls == ["clear_unreachable"]
    assert say.sent == [] and agents.flags == []


def test_vulnerability_is_flagged_once_per_concern_and_passes_on() -> None:
    agents = FakeAgents()
    screening = Screening(concerns=frozenset({Concern.ILLNESS, Concern.BEREAVEMENT}))
    context = _context("my mother died and I am in hospital", screening=screening)
    assert flag_vulnerability(context, agents=agents) is context
    assert agents.flags == [
        ("acct-A1", "vulnerable:bereavement", "sms:SM1"),
        ("acct-A1", "vulnerable:illness", "sms:SM1"),
    ]


def test_an_unsupported_message_gets_the_text_only_notice_without_the_dialogue() -> None:
    say = FakeSay()
    assert reject_unsupported(_context("", kind="unsupported"), say=say) == Stop("not text")
    assert "I can only read text here" in say.texts[0]


def test_a_button_press_passes_on_its_payload_and_a_stale_one_stops() -> None:
    say, choices = FakeSay(), FakeChoices({"c1:offer1": "/choose_plan"})
    pressed = read_button_press(
        _context("c1:offer1", kind="choice", channel="telegram"), choices=choices, say=say
    )
    assert isinstance(pressed, Context) and pressed.text == "/choose_plan"
    stale = read_button_press(_context("c9:old", kind="choice", channel="telegram"), choices=choices, say=say)
    assert stale == Stop("stale button")
    assert say.acknowledged[0] == ("SM1", None) and say.acknowledged[1][1]  # the second with a notice


def test_opening_the_chat_is_a_greeting() -> None:
    started = greet_on_start(_context("", kind="start", channel="telegram"))
    assert isinstance(started, Context) and started.text == "/greet"


def test_a_number_answers_the_numbered_choices_offered_last() -> None:
    choices = FakeChoices({"2": "/pay_in_full"})
    answered = read_numbered_answer(_context("2"), choices=choices)
    assert isinstance(answered, Context) and answered.text == "/pay_in_full"
    pressed = _context("2", kind="choice", text="/from_the_button")  # a button's payload is not typed
    assert read_numbered_answer(pressed, choices=choices) is pressed


def test_a_card_number_is_explained_and_the_rest_goes_on_to_the_dialogue() -> None:
    say = FakeSay()
    outcome = strip_card_number(_context(f"my card is {CARD_PLACEHOLDER} can I pay"), say=say)
    assert (
        isinstance(outcome, Context) and CARD_PLACEHOLDER not in outcome.text and "can I pay" in outcome.text
    )
    [sent] = say.sent
    assert sent.source == "sms:SM1:card" and sent.what == "card number"


def test_only_a_card_number_is_explained_and_stops() -> None:
    say = FakeSay()
    assert strip_card_number(_context(CARD_PLACEHOLDER), say=say) == Stop("only a card number")
    assert len(say.sent) == 1


def test_an_email_address_over_its_reply_cap_is_flagged_and_not_answered() -> None:
    class Cap:
        def __init__(self, allows: bool) -> None:
            self.allows = allows

        def take(self, address_key: str, message_id: str) -> bool:
            return self.allows

    agents = FakeAgents()
    email = _context("again", channel="email")
    assert cap_email_replies(email, reply_cap=Cap(False), agents=agents) == Stop("email reply cap")
    assert agents.flags == [("acct-A1", "email_reply_cap_reached", None)]
    assert cap_email_replies(email, reply_cap=Cap(True), agents=agents) is email
    sms = _context("again")
    assert cap_email_replies(sms, reply_cap=Cap(False), agents=agents) is sms


def test_the_dialogue_hears_the_text_once_by_message_id_and_its_answers_pass_on() -> None:
    rasa = FakeRasa(answer=[BotReply(text="Pick one", buttons=(("1", "/a"),))])
    context = _context("2", text="/pay_in_full", screening=Screening(distress=True))
    outcome = ask_the_dialogue(context, rasa=rasa, choices=FakeChoices(), addresses=FakeAddresses())
    assert isinstance(outcome, Context)
    assert (
        outcome.replies == (BotReply(text="Pick one", buttons=(("1", "/a"),)),)
        and outcome.offer_id == "offer1"
    )
    assert not outcome.closing
    [(conversation, text, message_id, metadata)] = rasa.heard
    assert (conversation, text, message_id) == ("acct-A1", "/pay_in_full", "sms:SM1")
    assert metadata["screen"] == {"concerns": [], "distress": True} and metadata["address"] == PHONE


def test_the_answer_to_wrong_number_is_the_closing_message() -> None:
    addresses = FakeAddresses(AddressStatus(wrong_party_at=1.0, wrong_party_by="SM1"))
    outcome = ask_the_dialogue(
        _context("wrong number"),
        rasa=FakeRasa(answer=[BotReply(text="Sorry")]),
        choices=FakeChoices(),
        addresses=addresses,
    )
    assert isinstance(outcome, Context) and outcome.closing
    say = FakeSay()
    assert send_replies(outcome, say=say) == Stop("answered")
    assert say.sent[0].kind == "closing" and say.texts == ["Sorry"]


@pytest.mark.parametrize(
    ("failure", "raised"),
    [
        (RasaUnavailable("down"), RetryLater),
        (RasaActionFailed("boom"), DialogueFailed),
        (RasaRejected("401"), GiveUp),
    ],
)
def test_the_dialogues_failures_go_to_the_queue(failure: Exception, raised: type[Exception]) -> None:
    choices = FakeChoices()
    with pytest.raises(raised):
        ask_the_dialogue(
            _context("hi"), rasa=FakeRasa(fails_with=failure), choices=choices, addresses=FakeAddresses()
        )
    assert choices.remembered == []  # nothing of a failed turn is kept


# --------------------------------------------------------------------------------------------
# Outbound steps
# --------------------------------------------------------------------------------------------


@dataclass
class FakeDeliveries:
    known: Any = None

    def get(self, outbox_id: str) -> Any:
        return self.known


def test_a_message_with_a_recorded_outcome_is_not_sent_again() -> None:
    from bot.conversations.deliveries import DeliveryRecord

    sending = Sending(OutboundMessage(outbox_id="o1", channel="sms", recipient=PHONE, text="Hi"))
    sent = DeliveryRecord(status=DeliveryStatus.SENT, external_id="SMx", error_code="", channel="sms")
    assert skip_if_recorded(sending, deliveries=FakeDeliveries(sent)) == Stop("already sent")
    unsure = DeliveryRecord(
        status=None, external_id="", error_code="", channel="sms", unsure_since=datetime.now(timezone.utc)
    )
    passed = skip_if_recorded(sending, deliveries=FakeDeliveries(unsure))
    assert isinstance(passed, Sending) and passed.known == unsure  # the next step asks the provider


def test_a_proactive_message_to_a_silenced_address_is_withheld_and_recorded() -> None:
    recorded: list[DeliveryReceipt] = []
    opted_out = FakeAddresses(AddressStatus(opted_out_at=1.0))
    proactive = Sending(
        OutboundMessage(outbox_id="o2", channel="sms", recipient=PHONE, text="Hi", proactive=True)
    )
    outcome = withhold_if_silenced(proactive, addresses=opted_out, record=lambda m, r: recorded.append(r))
    assert outcome == Stop("address opted_out")
    assert [(r.status, r.error_code) for r in recorded] == [(DeliveryStatus.FAILED, "withheld")]
    # Made after the opt-out (its confirmation): it goes.
    reply = Sending(OutboundMessage(outbox_id="o3", channel="sms", recipient=PHONE, text="Understood."))
    assert withhold_if_silenced(reply, addresses=opted_out, record=lambda m, r: recorded.append(r)) is reply


def test_an_outbound_channel_that_is_not_enabled_sets_the_message_aside() -> None:
    sending = Sending(OutboundMessage(outbox_id="o4", channel="whatsapp", recipient=PHONE, text="Hi"))
    with pytest.raises(GiveUp):
        outbound.find_channel(sending, channels={})


# --------------------------------------------------------------------------------------------
# The agents' console: the history, a claimed conversation, the promise of a person
# --------------------------------------------------------------------------------------------


@dataclass
class FakeHistory:
    inbound_calls: list[dict[str, Any]] = field(default_factory=list)

    def inbound(self, conversation_id: str, **kwargs: Any) -> bool:
        self.inbound_calls.append({"conversation_id": conversation_id, **kwargs})
        return True


@dataclass
class FakeDesk:
    claimed: set[str] = field(default_factory=set)
    waiting_since: dict[str, datetime] = field(default_factory=dict)
    told: set[str] = field(default_factory=set)

    def is_silenced_for_bot(self, conversation_id: str) -> bool:
        return conversation_id in self.claimed

    def first_promise(self, conversation_id: str) -> datetime | None:
        since = self.waiting_since.get(conversation_id)
        if since is None or conversation_id in self.told:
            return None
        self.told.add(conversation_id)
        return since


def test_what_the_person_wrote_goes_into_the_conversations_history_with_the_address() -> None:
    history = FakeHistory()
    context = _context("can I pay later?")
    assert record_message(context, history=history) is context  # type: ignore[arg-type]
    assert history.inbound_calls == [{
        "conversation_id": "acct-A1", "source": "sms:SM1", "channel": "sms", "text": "can I pay later?",
        "kind": "text", "address": PHONE, "detail": None,
    }]  # fmt: skip


def test_an_emails_subject_and_thread_are_kept_so_an_agent_answers_in_it() -> None:
    history = FakeHistory()
    message = InboundMessage(
        channel="email", external_id="<m2@mail.example>", sender="maria@example.com", text="see below",
        raw={"subject": "Re: Your account", "references": ["<m1@bot.example>"]},
    )  # fmt: skip
    record_message(Context.of(message), history=history)  # type: ignore[arg-type]
    assert history.inbound_calls[0]["detail"] == {
        "subject": "Re: Your account", "references": ["<m1@bot.example>"],
    }  # fmt: skip


def test_a_claimed_conversation_stops_before_the_dialogue_and_a_button_press_is_acknowledged() -> None:
    say, desk = FakeSay(), FakeDesk(claimed={"acct-A1"})
    assert defer_to_agent(_context("hello"), handoff=desk, say=say) == Stop("with an agent")  # type: ignore[arg-type]
    pressed = defer_to_agent(_context("c1:o", kind="choice", channel="telegram"), handoff=desk, say=say)  # type: ignore[arg-type]
    assert pressed == Stop("with an agent") and say.acknowledged[-1] == ("SM1", None)  # spinner stopped
    assert say.sent == []  # the bot says nothing


def test_an_unclaimed_or_waiting_conversation_passes_on_to_the_bot() -> None:
    desk = FakeDesk(waiting_since={"acct-A1": datetime(2026, 12, 4, 15, tzinfo=timezone.utc)})
    context = _context("hello")
    assert defer_to_agent(context, handoff=desk, say=FakeSay()) is context  # type: ignore[arg-type]


def _promised(now: datetime, replies: tuple[BotReply, ...], desk: FakeDesk, **known: Any) -> Context | Stop:
    context = _context("I want to talk to a person", replies=replies, **known)
    return promise_a_person(context, handoff=desk, console=ConsoleConfig(), clock=now.timestamp)  # type: ignore[arg-type]


def test_a_waiting_person_hears_once_roughly_when_a_colleague_answers_in_the_same_message() -> None:
    friday_3pm_new_york = datetime(2026, 12, 4, 20, 0, tzinfo=timezone.utc)
    desk = FakeDesk(waiting_since={"acct-A1": friday_3pm_new_york})
    said = (BotReply(text="I've asked a colleague to look at this."),)
    first = _promised(friday_3pm_new_york, said, desk)
    assert isinstance(first, Context) and len(first.replies) == 1
    assert first.replies[0].text == (
        "I've asked a colleague to look at this.\n\n"
        "A colleague from our team will answer you here, usually within the hour."
    )
    again = _promised(friday_3pm_new_york, said, desk)
    assert isinstance(again, Context) and again.replies == said  # told once per wait


def test_out_of_hours_the_promise_names_the_day_and_time_in_the_persons_own_zone() -> None:
    friday_11pm_new_york = datetime(2026, 12, 5, 4, 0, tzinfo=timezone.utc)
    desk = FakeDesk(waiting_since={"acct-A1": friday_11pm_new_york})
    buttons = (BotReply(text="Pick one", buttons=(("A", "/a"),)),)
    promised = _promised(friday_11pm_new_york, buttons, desk, language="es")
    assert isinstance(promised, Context) and promised.replies[0] == buttons[0]  # buttons kept apart
    assert promised.replies[1].text == (
        "Nuestro equipo no está disponible ahora; una persona le responderá por aquí el lunes a partir "
        "de las 9:00 (su hora)."
    )


def test_no_promise_when_not_waiting_or_when_the_answer_is_the_closing_message() -> None:
    now = datetime(2026, 12, 4, 20, 0, tzinfo=timezone.utc)
    said = (BotReply(text="ok"),)
    not_waiting = _promised(now, said, FakeDesk())
    assert isinstance(not_waiting, Context) and not_waiting.replies == said
    closing = _promised(now, said, FakeDesk(waiting_since={"acct-A1": now}), closing=True)
    assert isinstance(closing, Context) and closing.replies == said
