"""The TF-IDF intent classifier learns, ranks, survives a save and load, and refuses
model files with classes it does not trust."""

from __future__ import annotations

from pathlib import Path

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from dialogue.nlu import TfidfIntentClassifier

EXAMPLES = {
    "greet": ["hi", "hello there", "hola", "buenos días", "hey"],
    "opt_out": [
        "stop texting me",
        "unsubscribe",
        "deja de escribirme",
        "no me manden mensajes",
        "leave me alone",
    ],
    "ask_balance": [
        "how much do i owe",
        "what is my balance",
        "cuánto debo",
        "cuál es mi saldo",
        "balance please",
    ],
}


@pytest.fixture
def parts(tmp_path: Path) -> tuple[LocalModelStorage, Resource, ExecutionContext]:
    return LocalModelStorage(tmp_path), Resource("intent"), ExecutionContext(GraphSchema({}), "test")


def training_data() -> TrainingData:
    return TrainingData([Message.build(text=t, intent=i) for i, texts in EXAMPLES.items() for t in texts])


def trained(parts: tuple[LocalModelStorage, Resource, ExecutionContext]) -> TfidfIntentClassifier:
    storage, resource, context = parts
    classifier = TfidfIntentClassifier.create(
        TfidfIntentClassifier.get_default_config(), storage, resource, context
    )
    classifier.train(training_data())
    return classifier


def classify(classifier: TfidfIntentClassifier, text: str) -> Message:
    [message] = classifier.process([Message.build(text=text)])
    return message


def test_new_messages_get_the_right_intent_and_a_ranking(
    parts: tuple[LocalModelStorage, Resource, ExecutionContext],
) -> None:
    classifier = trained(parts)
    message = classify(classifier, "pls stop txting me")
    assert message.get("intent")["name"] == "opt_out"
    ranking = message.get("intent_ranking")
    assert ranking[0]["name"] == "opt_out" and len(ranking) == 3
    assert [r["confidence"] for r in ranking] == sorted((r["confidence"] for r in ranking), reverse=True)
    assert abs(sum(r["confidence"] for r in ranking) - 1.0) < 1e-6
    assert classify(classifier, "cuanto debo?").get("intent")["name"] == "ask_balance"


def test_a_saved_model_loads_and_predicts_the_same(
    parts: tuple[LocalModelStorage, Resource, ExecutionContext],
) -> None:
    classifier = trained(parts)
    storage, resource, context = parts
    loaded = TfidfIntentClassifier.load(
        TfidfIntentClassifier.get_default_config(), storage, resource, context
    )
    for text in ("hey hola", "what do i owe", "unsubscribe me"):
        assert classify(loaded, text).get("intent") == classify(classifier, text).get("intent")


def test_a_model_file_with_untrusted_classes_is_not_loaded(
    parts: tuple[LocalModelStorage, Resource, ExecutionContext], monkeypatch: pytest.MonkeyPatch
) -> None:
    trained(parts)
    import skops.io as sio

    monkeypatch.setattr(sio, "get_untrusted_types", lambda file: ["os.system"])
    storage, resource, context = parts
    loaded = TfidfIntentClassifier.load(
        TfidfIntentClassifier.get_default_config(), storage, resource, context
    )
    assert loaded.model is None
    [message] = loaded.process([Message.build(text="hi")])
    assert message.get("intent") is None
