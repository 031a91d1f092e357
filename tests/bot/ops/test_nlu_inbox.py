"""The NLU inbox: the messages the bot did not understand, read from Rasa's own event log (on SQLite
and PostgreSQL), grouped by similarity, scrubbed, and labelled into a review file Rasa reads."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from bot.clock import Clock
from bot.errors import InvalidRequest
from bot.ops.analytics.schema import RASA_EVENTS
from bot.ops.analytics.store import AnalyticsStore
from bot.ops.nlu_inbox import (
    CORRECTED,
    FALLBACK,
    LOW_CONFIDENCE,
    Done,
    InboxState,
    LabelRefused,
    Misread,
    find_details,
    group,
    label,
    misunderstood,
    read_examples,
    scrub,
    text_key,
)
from bot.store.connection import Keys

pytest_plugins = ["tests.fakes.postgres"]

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)
PROJECT = Path(__file__).resolve().parents[3] / "rasa_project"
INTENTS = {"greet", "affirm", "deny", "ask_balance", "request_payment_plan", "hardship", "EXTERNAL_opener"}


# --- Rasa-shaped events ---------------------------------------------------------------------------


class Events:
    """Writes events as Rasa 3.6's SQL event broker does (one JSON row per event), a second apart."""

    def __init__(self, store: AnalyticsStore, start: datetime = T0) -> None:
        self.store = store
        self.now = start.timestamp()

    def add(self, sender: str, event: dict[str, Any]) -> None:
        self.raw(sender, json.dumps({"timestamp": self.now, **event}))
        self.now += 1

    def raw(self, sender: str, data: str) -> None:
        with self.store.transaction() as connection:
            connection.execute(RASA_EVENTS.insert().values(sender_id=sender, data=data))

    def user(
        self, sender: str, text: str, intent: str, confidence: float, *, ranking: list[tuple[str, float]] = (),
        entities: list[dict[str, Any]] = (), metadata: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        ranking_ = [{"name": n, "confidence": c} for n, c in ranking] or [
            {"name": intent, "confidence": confidence}
        ]
        self.add(sender, {
            "event": "user", "text": text, "input_channel": "debtbot",
            "parse_data": {"intent": {"name": intent, "confidence": confidence}, "entities": list(entities),
                           "intent_ranking": ranking_, "text": text},
            "metadata": {"channel": "sms", "language": "en", "address": "+14158675309", **(metadata or {})},
        })  # fmt: skip

    def fallback(self, sender: str, text: str, best: str, confidence: float) -> None:
        """A message the FallbackClassifier turned into ``nlu_fallback``."""
        self.user(sender, text, "nlu_fallback", 0.15, ranking=[(best, confidence), ("nlu_fallback", 0.15)])

    def action(self, sender: str, name: str) -> None:
        self.add(sender, {"event": "action", "name": name})

    def ask(self, sender: str, intent: str) -> None:
        """The first stage of the two-stage fallback: "did you mean ...?" with yes/no buttons."""
        self.action(sender, "action_two_stage_fallback")
        self.add(sender, {"event": "bot", "text": "Sorry, just to check: do you want to ...?",
                          "data": {"buttons": [{"title": "Yes", "payload": f"/{intent}"},
                                               {"title": "No", "payload": "/deny"}]}})  # fmt: skip
        self.add(sender, {"event": "active_loop", "name": "action_two_stage_fallback"})
        self.action(sender, "action_listen")


@pytest.fixture
def store(analytics_database: str) -> Iterator[AnalyticsStore]:
    store = AnalyticsStore(analytics_database, clock=Clock(T0))
    store.migrate()
    yield store
    store.close()


@pytest.fixture
def events(store: AnalyticsStore) -> Events:
    return Events(store)


def read(store: AnalyticsStore, **kwargs: Any) -> dict[str, Misread]:
    options: dict[str, Any] = {"low_confidence": 0.6, "since": None, "limit": 100, **kwargs}
    return {m.text: m for m in misunderstood(store, **options)}


# --- what counts --------------------------------------------------------------------------------------


def test_fallbacks_and_unsure_answers_count_and_confident_ones_do_not(
    store: AnalyticsStore, events: Events
) -> None:
    events.user("c1", "hello there", "greet", 0.97)
    events.action("c1", "utter_greet")
    events.fallback("c1", "wot do u want from me", "ask_balance", 0.12)
    events.ask("c1", "ask_balance")
    events.user("c2", "my hours got cut", "hardship", 0.41)
    events.action("c2", "utter_hardship")

    found = read(store)

    assert set(found) == {"wot do u want from me", "my hours got cut"}
    fell_back = found["wot do u want from me"]
    assert fell_back.reasons == {FALLBACK, LOW_CONFIDENCE}
    # The bot's guess is the best intent behind the fallback, with its confidence.
    assert (fell_back.intent, fell_back.confidence) == ("ask_balance", 0.12)
    assert (fell_back.conversation_id, fell_back.channel, fell_back.at) == (
        "c1",
        "sms",
        T0 + timedelta(seconds=2),
    )
    unsure = found["my hours got cut"]
    assert unsure.reasons == {LOW_CONFIDENCE} and (unsure.intent, unsure.confidence) == ("hardship", 0.41)
    # The bar is the caller's.
    assert set(read(store, low_confidence=0.3)) == {"wot do u want from me"}


def test_a_no_to_did_you_mean_marks_the_guess_corrected_and_a_yes_keeps_the_meaning(
    store: AnalyticsStore, events: Events
) -> None:
    events.fallback("c1", "can we sort smth out", "ask_balance", 0.2)
    events.ask("c1", "ask_balance")
    events.user("c1", "/deny", "deny", 1.0)  # the "No" button
    events.action("c1", "action_two_stage_fallback")  # "could you say it another way?"
    events.user("c1", "i want a payment plan", "request_payment_plan", 0.93)
    events.action("c1", "payment_plan_form")
    events.fallback("c2", "how much is it", "ask_balance", 0.25)
    events.ask("c2", "ask_balance")
    events.user("c2", "/ask_balance", "ask_balance", 1.0)  # the "Yes" button
    events.fallback("c3", "whats the damage", "ask_balance", 0.22)
    events.ask("c3", "ask_balance")
    events.user("c3", "yes", "affirm", 0.9)  # typed

    found = read(store)

    denied = found["can we sort smth out"]
    assert CORRECTED in denied.reasons
    assert denied.meant == "request_payment_plan"  # what the person said when asked again
    assert CORRECTED not in found["how much is it"].reasons and found["how much is it"].meant == "ask_balance"
    assert found["whats the damage"].meant == "ask_balance"
    assert "i want a payment plan" not in found  # understood


def test_a_confident_intent_the_dialogue_could_not_follow_is_corrected(
    store: AnalyticsStore, events: Events
) -> None:
    events.user("c1", "yeah go on then", "affirm", 0.88)
    events.action("c1", "action_default_fallback")  # the RulePolicy's core fallback
    events.user("c1", "pay it all", "request_payment_plan", 0.81)
    events.action("c1", "payment_plan_form")

    found = read(store)

    assert set(found) == {"yeah go on then"}
    assert found["yeah go on then"].reasons == {CORRECTED}


def test_triggers_payloads_empty_texts_an_agents_part_and_broken_rows_are_skipped(
    store: AnalyticsStore, events: Events
) -> None:
    events.add("c1", {"event": "user", "text": "EXTERNAL: EXTERNAL_opener", "metadata": {"is_external": True},
                      "parse_data": {"intent": {"name": "EXTERNAL_opener", "confidence": 1.0}}})  # fmt: skip
    events.user("c1", "/crisis", "crisis", 1.0)
    events.user("c1", "   ", "nlu_fallback", 0.1)
    events.raw("c1", "{not json")
    events.raw("c1", "[1, 2]")
    events.add("c1", {"event": "user", "text": "odd row", "parse_data": "not a mapping", "metadata": 7})
    events.add("c1", {"event": "user", "text": 42})
    events.add("c1", {"event": "action"})
    events.add("c1", {"event": "pause"})
    events.user("c1", "can I talk to you instead", "nlu_fallback", 0.1)  # to the agent
    events.add("c1", {"event": "resume"})
    events.user("c1", "ok what now", "nlu_fallback", 0.1, ranking=[("affirm", 0.1)])

    found = read(store)

    # The row without an intent counts (nothing understood), the broken ones are skipped.
    assert set(found) == {"odd row", "ok what now"}
    assert found["odd row"].intent is None and found["odd row"].reasons == {LOW_CONFIDENCE}


def test_since_and_limit_keep_the_newest_and_batches_change_nothing(store: AnalyticsStore) -> None:
    events = Events(store, start=T0 - timedelta(days=10))
    for day in range(10):
        events.now = (T0 - timedelta(days=10 - day)).timestamp()
        events.fallback(f"c{day}", f"message of day {day}", "ask_balance", 0.2)
        events.action(f"c{day}", "action_two_stage_fallback")

    recent = misunderstood(store, low_confidence=0.6, since=T0 - timedelta(days=3, hours=1), limit=100)
    newest = misunderstood(store, low_confidence=0.6, since=None, limit=4)
    small_batches = misunderstood(store, low_confidence=0.6, since=None, limit=100, batch=3)

    assert [m.text for m in recent] == ["message of day 9", "message of day 8", "message of day 7"]
    assert [m.text for m in newest] == [f"message of day {d}" for d in (9, 8, 7, 6)]
    assert [m.event_id for m in small_batches] == [
        m.event_id for m in misunderstood(store, low_confidence=0.6)
    ]
    assert len(small_batches) == 10
    # What ops handled takes no room under the limit.
    handled = {text_key("message of day 9"), text_key("MESSAGE of day 8")}
    assert [m.text for m in misunderstood(store, low_confidence=0.6, limit=2, exclude=handled)] == [
        "message of day 7",
        "message of day 6",
    ]


def test_the_text_is_scrubbed_and_its_entities_annotated_for_the_page(
    store: AnalyticsStore, events: Events
) -> None:
    text = "born 03/12/1984, can pay 50 a month, mail me maria.lopez@gmail.com"
    entities = [{"entity": "date", "start": 5, "end": 15, "value": "03/12/1984"},
                {"entity": "amount", "start": 25, "end": 27, "value": "50"}]  # fmt: skip
    events.user("c1", text, "propose_payment", 0.3, entities=entities)

    (misread,) = misunderstood(store, low_confidence=0.6)

    assert misread.scrubbed == "born 07/14/1985, can pay 50 a month, mail me person1@example.com"
    assert (
        misread.annotated
        == "born [07/14/1985](date), can pay [50](amount) a month, mail me person1@example.com"
    )
    assert misread.key == text_key(text)


# --- grouping -----------------------------------------------------------------------------------------


def misread(n: int, text: str, *, intent: str = "ask_balance", language: str | None = "en",
            meant: str | None = None) -> Misread:  # fmt: skip
    return Misread(n, f"c{n}", text, scrub(text), scrub(text), T0 + timedelta(minutes=n), "sms", language,
                   intent, 0.3, {FALLBACK}, meant)  # fmt: skip


SAMPLE = [
    misread(1, "how much do I owe"),
    misread(2, "how much do i owe??", meant="ask_balance"),
    misread(3, "How much do I owe you"),
    misread(4, "hw much do i owe", intent="greet"),
    misread(5, "how much do I owe"),
    misread(6, "I lost my job", intent="hardship"),
    misread(7, "i lost my job last week", intent="hardship"),
    misread(8, "quiero hablar con una persona", language="es", intent="request_human"),
    misread(9, "quiero hablar con alguien", language="es", intent="request_human"),
    misread(10, "who are you", intent="greet"),
]


def test_near_identical_messages_group_together_and_different_ones_apart() -> None:
    groups = group(SAMPLE, threshold=0.5)

    members = [sorted({m.text for m in SAMPLE if m.key in g.keys}) for g in groups]
    assert members == [
        ["How much do I owe you", "how much do I owe", "how much do i owe??", "hw much do i owe"],
        ["quiero hablar con alguien", "quiero hablar con una persona"],  # as big, seen last: first
        ["I lost my job", "i lost my job last week"],
        ["who are you"],
    ]
    owe = groups[0]
    assert owe.count == 5 and owe.representative == "how much do I owe"
    assert [e.event_id for e in owe.examples] == [5, 4, 3, 2]  # newest first, one per distinct text
    assert owe.intents == (("ask_balance", 4), ("greet", 1)) and owe.meant == "ask_balance"
    assert owe.languages == ("en",) and groups[1].languages == ("es",)
    assert (owe.first_seen, owe.last_seen) == (T0 + timedelta(minutes=1), T0 + timedelta(minutes=5))
    assert owe.reasons == ((FALLBACK, 5),)
    assert len(group(SAMPLE, threshold=0.5, examples=2)[0].examples) == 2


def test_grouping_is_deterministic_whatever_the_order() -> None:
    def shape(groups: list[Any]) -> list[tuple[Any, ...]]:
        return [
            (g.key, g.count, g.representative, g.keys, tuple(e.event_id for e in g.examples)) for g in groups
        ]

    expected = shape(group(SAMPLE, threshold=0.5))
    for seed in range(5):
        shuffled = SAMPLE[:]
        random.Random(seed).shuffle(shuffled)
        assert shape(group(shuffled, threshold=0.5)) == expected
    assert group([], threshold=0.5) == []
    assert [g.count for g in group(SAMPLE[:1], threshold=0.5)] == [1]


def test_a_stricter_threshold_splits_groups() -> None:
    assert (
        len(group(SAMPLE, threshold=0.99))
        > len(group(SAMPLE, threshold=0.5))
        >= len(group(SAMPLE, threshold=0.05))
    )


# --- scrubbing ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "scrubbed"),
    [
        ("email me at maria.lopez@gmail.com", "email me at person1@example.com"),
        ("call +1 415 867 5309 or (415) 867-5309", "call +1 202 555 0100 or (202) 555-0101"),
        ("my dob is 03/12/1984", "my dob is 07/14/1985"),
        ("born 23/11/79", "born 14/07/85"),
        ("nací el 12 de marzo de 1984", "nací el 14 de julio de 1985"),
        ("born March 5th, 1990", "born July 14th, 1985"),
        ("1984-03-12", "1985-07-14"),
        ("card 4111 1111 1111 1111 please", "card 1234 5678 9012 3456 please"),
        ("account number 99887766", "account number 12345678"),
        ("I'm @maria_lopez on telegram", "I'm @person_handle on telegram"),
        # Amounts, payment dates, short numbers stay: they carry the intent.
        ("I can pay $50 a month from 02/05/2026", "I can pay $50 a month from 02/05/2026"),
        ("I owe 1,250.50, zip 90210, card ends 4821", "I owe 1,250.50, zip 90210, card ends 4821"),
    ],
)
def test_scrub_replaces_what_identifies_a_person_and_keeps_amounts(text: str, scrubbed: str) -> None:
    assert scrub(text) == scrubbed
    assert scrub(scrubbed) == scrubbed and find_details(scrubbed) == []


def test_find_details_names_each_kind() -> None:
    kinds = [d.kind for d in find_details("a@b.org, 415 867 5309, 3/12/1984, 99887766, @someone")]

    assert kinds == ["email", "phone number", "date of birth", "card or account number", "Telegram handle"]


# --- labelling ----------------------------------------------------------------------------------------


def load_with_rasa(path: Path) -> dict[str, set[str]]:
    from rasa.shared.nlu.training_data.loading import load_data

    data = load_data(str(path))
    found: dict[str, set[str]] = {}
    for example in data.intent_examples:
        found.setdefault(example.get("intent"), set()).add(example.get("text"))
    return found


def test_labelling_creates_then_merges_a_review_file_rasa_reads(tmp_path: Path) -> None:
    review = tmp_path / "data" / "nlu" / "review.yml"

    first = label(review, "how much do i owe you", "ask_balance", by="olga", now=T0, known_intents=INTENTS)
    label(review, "whats the total", "ask_balance", by="olga", now=T0, known_intents=INTENTS)
    new = label(review, "can you freeze interest", "freeze_interest", by="sam", now=T0, known_intents=INTENTS)
    label(review, "I can pay [50](amount) a month", "request_payment_plan", by="olga", now=T0,
          known_intents=INTENTS)  # fmt: skip

    assert first.created and not first.new_intent and first.text == "how much do i owe you"
    assert new.new_intent and not new.created
    assert load_with_rasa(review) == {
        "ask_balance": {"how much do i owe you", "whats the total"},
        "freeze_interest": {"can you freeze interest"},
        "request_payment_plan": {"I can pay 50 a month"},
    }
    content = review.read_text(encoding="utf-8")
    assert content.count("- intent: ask_balance") == 1  # merged into one block
    assert "# added by sam at 2026-03-02T15:00:00Z: can you freeze interest" in content
    assert yaml.safe_load(content)["version"] == "3.1"
    # Comments are YAML comments, never examples.
    assert [text for _, text in read_examples(review) if "added by" in text] == []


def test_what_is_written_is_scrubbed_and_on_one_line(tmp_path: Path) -> None:
    review = tmp_path / "review.yml"

    result = label(review, "my email is maria@gmail.com\nplease\tstop", "greet", by="olga", now=T0,
                   known_intents=INTENTS)  # fmt: skip

    assert result.text == "my email is person1@example.com please stop"
    assert load_with_rasa(review) == {"greet": {result.text}}


def test_duplicates_and_conflicts_are_refused_with_the_other_intent_named(tmp_path: Path) -> None:
    folder = tmp_path / "data" / "nlu"
    folder.mkdir(parents=True)
    (folder / "en.yml").write_text(
        'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hello there\n', encoding="utf-8"
    )
    review = folder / "review.yml"
    label(review, "what do I owe", "ask_balance", by="olga", now=T0, known_intents=INTENTS)
    before = review.read_text(encoding="utf-8")

    with pytest.raises(LabelRefused, match=r"already an example of ask_balance in review\.yml") as duplicate:
        label(review, "What do  I owe", "ask_balance", by="olga", now=T0, known_intents=INTENTS)
    with pytest.raises(LabelRefused, match=r"already an example of ask_balance in review\.yml") as conflict:
        label(review, "what do i owe", "hardship", by="olga", now=T0, known_intents=INTENTS)
    with pytest.raises(LabelRefused, match=r"already an example of greet in en\.yml"):
        label(review, "Hello there", "affirm", by="olga", now=T0, known_intents=INTENTS)
    with pytest.raises(LabelRefused, match=r"already an example of greet in en\.yml"):
        label(review, "hello [there](date)", "greet", by="olga", now=T0, known_intents=INTENTS)

    assert duplicate.value.reason == "duplicate" and conflict.value.reason == "conflict"
    assert isinstance(conflict.value, InvalidRequest)
    assert review.read_text(encoding="utf-8") == before


@pytest.mark.parametrize(
    ("text", "intent", "reason"),
    [
        ("  ", "greet", "empty"),
        ("[](amount)", "greet", "empty"),
        ("hi", "Not-An-Intent", "intent"),
        ("hi", "x", "intent"),
        ("hi", "nlu_fallback", "intent"),
        ("hi", "EXTERNAL_opener", "intent"),
        ("pay [50](money", "greet", "annotation"),
    ],
)
def test_empty_texts_bad_intent_names_and_broken_annotations_are_refused(
    tmp_path: Path, text: str, intent: str, reason: str
) -> None:
    review = tmp_path / "review.yml"

    with pytest.raises(LabelRefused) as refused:
        label(review, text, intent, by="olga", now=T0, known_intents=INTENTS)

    assert refused.value.reason == reason and not review.exists()


def test_an_entity_outside_the_domain_is_refused_when_the_domain_is_given(tmp_path: Path) -> None:
    with pytest.raises(LabelRefused, match="'money' is not an entity of the domain"):
        label(tmp_path / "review.yml", "pay [50](money)", "greet", by="olga", now=T0, known_intents=INTENTS,
              known_entities={"amount"})  # fmt: skip


def test_concurrent_labels_all_land(tmp_path: Path) -> None:
    review = tmp_path / "review.yml"
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def work(who: str) -> None:
        start.wait()
        try:
            for n in range(15):
                label(review, f"message {n} from {who}", "greet", by=who, now=T0, known_intents=INTENTS)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(who,)) for who in ("olga", "sam")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert load_with_rasa(review)["greet"] == {
        f"message {n} from {w}" for n in range(15) for w in ("olga", "sam")
    }
    assert not list(tmp_path.glob("*.tmp"))


def test_an_unreadable_review_file_is_refused_not_overwritten(tmp_path: Path) -> None:
    review = tmp_path / "review.yml"
    review.write_text("nlu: [unclosed\n", encoding="utf-8")

    with pytest.raises(LabelRefused, match="cannot be read"):
        label(review, "hi there", "greet", by="olga", now=T0, known_intents=INTENTS)

    assert review.read_text(encoding="utf-8") == "nlu: [unclosed\n"


def test_a_hand_edited_review_file_keeps_its_examples_and_other_items(tmp_path: Path) -> None:
    review = tmp_path / "review.yml"
    review.write_text(
        'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hiya\n'
        "- synonym: fifty\n  examples: |\n    - 50\n",
        encoding="utf-8",
    )

    label(review, "howdy", "greet", by="olga", now=T0, known_intents=INTENTS)

    assert load_with_rasa(review)["greet"] == {"hiya", "howdy"}
    assert yaml.safe_load(review.read_text(encoding="utf-8"))["nlu"][1]["synonym"] == "fifty"


# --- the done state -----------------------------------------------------------------------------------


def test_handled_texts_are_remembered_by_key_without_their_text(redis_client: redis.Redis) -> None:
    state = InboxState(redis_client, Keys("test"))
    key = text_key("How much do I owe, maria@gmail.com?")

    state.mark([key], Done("labelled", "ask_balance", "olga", T0))

    assert state.done([key, text_key("something else")]) == {key: Done("labelled", "ask_balance", "olga", T0)}
    assert state.handled() == {key}
    assert key == text_key("how much do i  owe, person1@example.com?")  # scrubbed, case and spaces folded
    stored = redis_client.hgetall("test:console:ops:nlu_done")
    assert b"owe" not in b"".join(stored.values()) and len(stored) == 1


def test_a_scan_from_since_starts_near_it_not_at_the_first_row(store: AnalyticsStore) -> None:
    from bot.ops.nlu_inbox import _start_after

    events = Events(store, start=T0 - timedelta(days=30))
    for _ in range(200):  # 200 events, one every 3 hours
        events.action("c1", "action_listen")
        events.now += 3 * 3600 - 1
    events.raw("c1", "{broken")

    after = _start_after(store, T0 - timedelta(days=10))

    # Event n (id n + 1) is at T0 - 720 h + 3n h; with an hour's slack before since (T0 - 240 h),
    # the first read is n = 160, at since itself (n = 159 is 3 hours before it).
    assert after == 160
    assert _start_after(store, T0 - timedelta(days=60)) == 0
    assert _start_after(store, T0 + timedelta(days=60)) == 200  # only the broken row is read (skipped)
