"""`make eval` scores the product's opt-outs the way it acts, fails on any false opt-out, and
its held-out sets stay held out."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
import yaml

from bot.ops.evaluate import (
    OPT_OUT_RECALL_BAR,
    OptOutScore,
    Parsed,
    load_opt_out_set,
    opt_out_failures,
    opts_out,
    score_opt_out,
    suggest_threshold,
    threshold_table,
)
from dialogue.opt_out import CONFIDENT, normalize

PROJECT = Path(__file__).resolve().parents[3] / "rasa_project"
_ANNOTATION = re.compile(r"\[([^\]]*)\]\([^)]*\)")


def _training_texts() -> set[str]:
    texts = set()
    for path in (PROJECT / "data" / "nlu").glob("*.yml"):
        for block in yaml.safe_load(path.read_text(encoding="utf-8"))["nlu"]:
            for line in block.get("examples", "").splitlines():
                if line.strip().startswith("- "):
                    texts.add(normalize(_ANNOTATION.sub(r"\1", line.strip()[2:])))
    return texts


def _nlu_test_examples(language: str, intent: str) -> list[str]:
    data = yaml.safe_load((PROJECT / "tests" / f"nlu_{language}.yml").read_text(encoding="utf-8"))
    block = next(b for b in data["nlu"] if b.get("intent") == intent)
    return [line.strip()[2:] for line in block["examples"].splitlines() if line.strip().startswith("- ")]


def test_the_product_opts_out_only_on_a_confident_opt_out_in_clear_words() -> None:
    assert opts_out("please stop texting me", Parsed("opt_out", max(CONFIDENT, 0.9)))
    assert not opts_out("please stop texting me", Parsed("opt_out", CONFIDENT - 0.01))
    assert not opts_out("can you stop the late fees", Parsed("opt_out", 0.99))
    assert not opts_out("please stop texting me", Parsed("hardship", 0.99))


def test_opt_out_scores_count_false_opt_outs_and_missed_ones() -> None:
    s = score_opt_out([True, True, False, False], [True, False, True, False])
    assert (s.true_opt_outs, s.false_opt_outs, s.support) == (1, 1, 2)
    assert s.precision == 0.5
    assert s.recall == 0.5


def test_no_opt_out_at_all_silences_nobody_and_has_full_precision() -> None:
    assert score_opt_out([True, False], [False, False]).precision == 1.0


def test_any_false_opt_out_or_low_recall_fails_the_evaluation() -> None:
    perfect = OptOutScore(1.0, 1.0, 40, 0, 40)
    one_false = OptOutScore(40 / 41, 1.0, 40, 1, 40)
    low_recall = OptOutScore(1.0, OPT_OUT_RECALL_BAR - 0.01, 37, 0, 40)
    assert opt_out_failures({"en": perfect}) == []
    assert opt_out_failures({"en": one_false}) == ["en: 1 false opt-out(s)"]
    assert len(opt_out_failures({"es": low_recall})) == 1


@pytest.mark.parametrize("language", ["en", "es"])
def test_each_language_has_a_held_out_opt_out_set_of_at_least_forty_each_way(language: str) -> None:
    opt_set = load_opt_out_set(PROJECT / "tests" / f"opt_out_{language}.yml")
    assert opt_set.language == language
    assert len(opt_set.opt_out) >= 40
    assert len(opt_set.not_opt_out) >= 40


@pytest.mark.parametrize("language", ["en", "es"])
def test_held_out_opt_outs_crisis_and_idioms_are_never_training_sentences(language: str) -> None:
    training = _training_texts()
    opt_set = load_opt_out_set(PROJECT / "tests" / f"opt_out_{language}.yml")
    held_out = [*opt_set.opt_out, *opt_set.not_opt_out, *_nlu_test_examples(language, "crisis")]
    assert [text for text in held_out if normalize(text) in training] == []


def test_a_malformed_opt_out_set_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "opt_out_en.yml"
    path.write_text("language: en\nopt_out: [stop texting me]\n", encoding="utf-8")
    with pytest.raises(click.ClickException):
        load_opt_out_set(path)


def test_the_suggested_threshold_is_the_lowest_precise_one_without_false_opt_outs() -> None:
    labels = ["opt_out", "opt_out", "opt_out", "already_paid", "hardship"]
    texts = [
        "stop texting me",
        "unsubscribe me",
        "leave me alone",
        "i paid, stop texting me",
        "stop the fees",
    ]
    predictions = [
        Parsed("opt_out", 0.9),
        Parsed("opt_out", 0.5),
        Parsed("opt_out", 0.3),
        Parsed("opt_out", 0.4),  # reads CLEAR: a false opt-out below 0.45
        Parsed("opt_out", 0.8),  # reads ELSEWHERE: never opted out, but lowers precision
    ]
    rows = threshold_table(labels, texts, predictions, [0.2, 0.45, 0.85])
    assert [r.false_opt_outs for r in rows] == [1, 0, 0]
    assert [round(r.recall, 2) for r in rows] == [1.0, 0.67, 0.33]
    best = suggest_threshold(rows)
    assert best is not None
    assert best.threshold == 0.85  # at 0.45 the classifier is right on 2 of 3 only
