"""``make eval``: intent F1 on the held-out NLU test sets, per intent and per language; the
recall of the ``crisis`` intent; and "opt-out in words" on its own held-out set.

The test sets (``rasa_project/tests/nlu_<lang>.yml``, ``opt_out_<lang>.yml``) are never used
for training. The macro F1 of each language is checked against its bar; the command fails
below it. The opt-out set is checked the way the product acts: it opts someone out iff the
model's top intent is ``opt_out`` and :func:`dialogue.opt_out.decide` says OPT_OUT. Any false
opt-out fails the command, and so does a recall below :data:`OPT_OUT_RECALL_BAR`.

``python -m bot.ops.evaluate --calibrate-opt-out`` is how :data:`dialogue.opt_out.CONFIDENT` was
chosen: from the training data only, by cross-validation (see :func:`calibrate_opt_out`).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import click
import yaml

from bot.ops.progress import Bar
from dialogue.opt_out import OptOutDecision, Reading, decide, read_opt_out

#: Held-out macro F1 each language must reach.
BARS = {"en": 0.90, "es": 0.85}
#: Share of the held-out opt-outs in words the product must act on (and no false opt-out).
OPT_OUT_RECALL_BAR = 0.95
#: The classifier alone must be right this often on what it calls opt_out above CONFIDENT.
CALIBRATION_PRECISION = 0.90


@dataclass(frozen=True)
class IntentScore:
    intent: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class OptOutSet:
    """A held-out opt-out set: messages that ask to stop contact, and ones that do not."""

    language: str
    opt_out: tuple[str, ...]
    not_opt_out: tuple[str, ...]


@dataclass(frozen=True)
class OptOutScore:
    precision: float
    recall: float
    true_opt_outs: int  # opt-outs the product acted on
    false_opt_outs: int  # people opted out who did not ask
    support: int  # opt-outs in the set


@dataclass(frozen=True)
class Parsed:
    intent: str
    confidence: float


def score(expected: Sequence[str], predicted: Sequence[str]) -> tuple[list[IntentScore], float]:
    """Per-intent precision/recall/F1 over the expected intents, and their macro F1."""
    scores = []
    for intent in sorted(set(expected)):
        tp = sum(1 for e, p in zip(expected, predicted, strict=True) if e == intent and p == intent)
        fp = sum(1 for e, p in zip(expected, predicted, strict=True) if e != intent and p == intent)
        fn = sum(1 for e, p in zip(expected, predicted, strict=True) if e == intent and p != intent)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        scores.append(IntentScore(intent, precision, recall, f1, tp + fn))
    macro = sum(s.f1 for s in scores) / len(scores) if scores else 0.0
    return scores, macro


def load_opt_out_set(path: Path) -> OptOutSet:
    """Read an ``opt_out_<lang>.yml`` file (its format is described at the top of the file)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not {"language", "opt_out", "not_opt_out"} <= data.keys():
        raise click.ClickException(f"{path}: needs the keys language, opt_out and not_opt_out")
    lists = {}
    for key in ("opt_out", "not_opt_out"):
        items = data[key]
        if not isinstance(items, list) or not all(isinstance(item, str) and item for item in items):
            raise click.ClickException(f"{path}: {key} must be a list of messages")
        lists[key] = tuple(items)
    return OptOutSet(str(data["language"]), lists["opt_out"], lists["not_opt_out"])


def opts_out(text: str, parsed: Parsed) -> bool:
    """What the product does with a message: opt the person out or not."""
    return decide(text, parsed.intent, parsed.confidence) is OptOutDecision.OPT_OUT


def score_opt_out(expected: Sequence[bool], opted: Sequence[bool]) -> OptOutScore:
    """Precision and recall of the product's opt-outs against the set's labels."""
    tp = sum(1 for e, o in zip(expected, opted, strict=True) if e and o)
    fp = sum(1 for e, o in zip(expected, opted, strict=True) if not e and o)
    support = sum(1 for e in expected if e)
    # No opt-out at all is a precision of 1.0: nobody was silenced who did not ask.
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / support if support else 1.0
    return OptOutScore(precision, recall, tp, fp, support)


def opt_out_failures(scores: Mapping[str, OptOutScore]) -> list[str]:
    """Why the opt-out scores fail the evaluation (empty when they pass)."""
    failures = []
    for name, s in scores.items():
        if s.false_opt_outs:
            failures.append(f"{name}: {s.false_opt_outs} false opt-out(s)")
        if s.recall < OPT_OUT_RECALL_BAR:
            failures.append(f"{name}: opt-out recall {s.recall:.3f} < {OPT_OUT_RECALL_BAR:.2f}")
    return failures


async def _parse_all(model: Path, texts: Sequence[str], progress: Bar | None = None) -> list[Parsed]:
    import logging

    from rasa.core.agent import Agent
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.INFO)  # Rasa's DEBUG lines repeat every message

    agent = Agent.load(str(model))
    parsed = []
    for text in texts:
        result = await agent.parse_message(text)
        intent = result.get("intent") or {}
        parsed.append(Parsed(str(intent.get("name")), float(intent.get("confidence") or 0.0)))
        if progress is not None:
            progress.update(1)
    return parsed


@dataclass(frozen=True)
class LanguageResult:
    """One language's held-out NLU set: each message, the model's intent for it, the scores."""

    language: str
    examples: tuple[tuple[str, str], ...]  # (text, expected intent)
    predicted: tuple[str, ...]
    scores: tuple[IntentScore, ...]
    macro_f1: float

    @property
    def crisis(self) -> IntentScore | None:
        return next((s for s in self.scores if s.intent == "crisis"), None)


@dataclass(frozen=True)
class OptOutResult:
    """One language's held-out opt-out set: each message, what the model said, what the product did."""

    language: str
    labelled: tuple[tuple[str, bool], ...]  # (text, asks to stop)
    parsed: tuple[Parsed, ...]
    opted: tuple[bool, ...]
    score: OptOutScore


@dataclass(frozen=True)
class Evaluation:
    """Everything ``make eval`` reports, as data (``bot.ops.quality`` reads it)."""

    nlu: Mapping[str, LanguageResult]
    opt_out: Mapping[str, OptOutResult]  # only the languages with an opt-out set

    @property
    def opt_out_overall(self) -> OptOutScore | None:
        if not self.opt_out:
            return None
        results = list(self.opt_out.values())
        expected = [wanted for r in results for _, wanted in r.labelled]
        return score_opt_out(expected, [did for r in results for did in r.opted])


def evaluate(
    model: Path, tests_dir: Path, *, progress: Callable[[int], AbstractContextManager[Bar]] | None = None
) -> Evaluation:
    """Parse every held-out message with the model once and score it (no output; ``progress``
    makes a bar of the given length that moves with each message parsed)."""
    from rasa.shared.nlu.training_data.loading import load_data

    nlu: dict[str, list[tuple[str, str]]] = {}
    for language in BARS:
        data = load_data(str(tests_dir / f"nlu_{language}.yml"))
        nlu[language] = [(m.get("text"), m.get("intent")) for m in data.intent_examples]
    opt_sets = {
        language: load_opt_out_set(path)
        for language in BARS
        if (path := tests_dir / f"opt_out_{language}.yml").exists()
    }
    texts = [text for examples in nlu.values() for text, _ in examples]
    texts += [text for s in opt_sets.values() for text in (*s.opt_out, *s.not_opt_out)]
    with progress(len(texts)) if progress is not None else contextlib.nullcontext(None) as moving:
        parsed = iter(asyncio.run(_parse_all(model, texts, moving)))  # one model load for everything

    languages = {}
    for language, examples in nlu.items():
        predicted = [next(parsed).intent for _ in examples]
        scores, macro = score([intent for _, intent in examples], predicted)
        languages[language] = LanguageResult(
            language, tuple(examples), tuple(predicted), tuple(scores), macro
        )
    opt_outs = {}
    for language, opt_set in opt_sets.items():
        labelled = [(t, True) for t in opt_set.opt_out] + [(t, False) for t in opt_set.not_opt_out]
        results = [next(parsed) for _ in labelled]
        opted = [opts_out(text, p) for (text, _), p in zip(labelled, results, strict=True)]
        opt_outs[language] = OptOutResult(
            language,
            tuple(labelled),
            tuple(results),
            tuple(opted),
            score_opt_out([wanted for _, wanted in labelled], opted),
        )
    return Evaluation(languages, opt_outs)


def _evaluate(model: Path, tests_dir: Path, fail_below: float | None) -> list[str]:
    """Evaluate, report, and say what failed."""
    evaluation = evaluate(model, tests_dir)
    failed = []
    for language, result in evaluation.nlu.items():
        _report_intents(result)
        if result.macro_f1 < (BARS[language] if fail_below is None else fail_below):
            failed.append(f"{language}: macro F1 {result.macro_f1:.3f}")
    overall = evaluation.opt_out_overall
    if overall is not None:
        click.echo("\nopt-out in words (opted out iff top intent opt_out and decide() is OPT_OUT)")
        scores: dict[str, OptOutScore] = {}
        for language, opt_result in evaluation.opt_out.items():
            _report_opt_out(opt_result)
            scores[language] = opt_result.score
        scores["overall"] = overall
        click.echo(f"  overall: precision {overall.precision:.3f}, recall {overall.recall:.3f}")
        problems = opt_out_failures(scores)
        verdict = "; ".join(problems) or "ok"
        click.echo(f"  (bar: no false opt-out, recall >= {OPT_OUT_RECALL_BAR:.2f}): {verdict}")
        failed += problems
    return failed


def _report_intents(result: LanguageResult) -> None:
    bar = BARS[result.language]
    click.echo(f"\n{result.language}: {len(result.examples)} held-out messages")
    click.echo(f"  {'intent':<22} {'precision':>9} {'recall':>7} {'f1':>6} {'n':>4}")
    for s in result.scores:
        click.echo(f"  {s.intent:<22} {s.precision:>9.2f} {s.recall:>7.2f} {s.f1:>6.2f} {s.support:>4}")
    verdict = "ok" if result.macro_f1 >= bar else "BELOW THE BAR"
    click.echo(f"  macro F1 {result.macro_f1:.3f} (bar {bar:.2f}): {verdict}")
    crisis = result.crisis
    if crisis is not None:
        click.echo(
            f"  crisis recall {crisis.recall:.3f} ({round(crisis.recall * crisis.support)}/{crisis.support})"
        )
    for (text, intent), guess in zip(result.examples, result.predicted, strict=True):
        if guess != intent:
            click.echo(f"    miss: {text!r} expected {intent}, got {guess}")


def _report_opt_out(result: OptOutResult) -> None:
    s = result.score
    click.echo(
        f"  {result.language}: precision {s.precision:.3f}, recall {s.recall:.3f} "
        f"({s.true_opt_outs}/{s.support} opt-outs, {s.false_opt_outs} false opt-outs, "
        f"{len(result.labelled) - s.support} messages that are not opt-outs)"
    )
    for (text, wanted), p, did in zip(result.labelled, result.parsed, result.opted, strict=True):
        if wanted != did:
            reading = read_opt_out(text)
            seen = reading.reading.value + (f" {reading.target}" if reading.target else "")
            what = "FALSE OPT-OUT" if did else "not opted out"
            click.echo(f"    {what}: {text!r} ({p.intent} {p.confidence:.2f}, reading {seen})")


# --- calibration of dialogue.opt_out.CONFIDENT --------------------------------------------
@dataclass(frozen=True)
class ThresholdRow:
    threshold: float
    classifier_precision: float  # share of opt_out predictions at >= threshold that are opt-outs
    false_opt_outs: int  # other intents the product would opt out (reading CLEAR too)
    recall: float  # of the opt-outs read CLEAR, the share the product opts out


def threshold_table(
    labels: Sequence[str], texts: Sequence[str], predictions: Sequence[Parsed], thresholds: Sequence[float]
) -> list[ThresholdRow]:
    """How the product would do at each threshold, from out-of-fold predictions."""
    clear = [read_opt_out(text).reading is Reading.CLEAR for text in texts]
    clear_opt_outs = sum(1 for label, c in zip(labels, clear, strict=True) if label == "opt_out" and c)
    rows = []
    for t in thresholds:
        called = [
            (label, c)
            for label, c, p in zip(labels, clear, predictions, strict=True)
            if p.intent == "opt_out" and p.confidence >= t
        ]
        right = sum(1 for label, _ in called if label == "opt_out")
        rows.append(
            ThresholdRow(
                threshold=t,
                classifier_precision=right / len(called) if called else 1.0,
                false_opt_outs=sum(1 for label, c in called if label != "opt_out" and c),
                recall=sum(1 for label, c in called if label == "opt_out" and c) / clear_opt_outs
                if clear_opt_outs
                else 1.0,
            )
        )
    return rows


def suggest_threshold(rows: Sequence[ThresholdRow]) -> ThresholdRow | None:
    """The lowest threshold where the classifier alone is right on at least
    :data:`CALIBRATION_PRECISION` of what it calls opt_out and the product makes no false
    opt-out. Lowest, because every point above it only asks people who did ask to stop."""
    for row in sorted(rows, key=lambda r: r.threshold):
        if row.classifier_precision >= CALIBRATION_PRECISION and row.false_opt_outs == 0:
            return row
    return None


def _fallback(config: Mapping[str, Any]) -> tuple[float, float]:
    for component in config.get("pipeline") or []:
        if component.get("name") == "FallbackClassifier":
            return float(component.get("threshold", 0.3)), float(component.get("ambiguity_threshold", 0.1))
    return 0.0, 0.0


def calibrate_opt_out(project: Path, folds: int = 5) -> None:
    """Print the out-of-fold threshold table and the suggested CONFIDENT.

    Every training message is classified by the intent model (dialogue/nlu.py, with the
    settings of config.yml) trained on the other folds, the FallbackClassifier applied as in
    the product; nothing here reads a held-out set.
    """
    import numpy as np
    from rasa.shared.nlu.training_data.loading import load_data
    from sklearn.model_selection import StratifiedKFold

    from dialogue.nlu import TfidfIntentClassifier

    config = yaml.safe_load((project / "config.yml").read_text(encoding="utf-8"))
    settings = TfidfIntentClassifier.get_default_config()
    for component in config.get("pipeline") or []:
        if component.get("name", "").endswith("TfidfIntentClassifier"):
            settings.update({k: v for k, v in component.items() if k != "name"})
    threshold, ambiguity = _fallback(config)

    data = load_data(str(project / "data" / "nlu"))
    examples = [(m.get("text"), m.get("intent")) for m in data.intent_examples if m.get("text")]
    texts = np.array([text for text, _ in examples], dtype=object)
    labels = np.array([intent for _, intent in examples])
    predictions: list[Parsed | None] = [None] * len(examples)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    for number, (train, test) in enumerate(splitter.split(texts, labels), start=1):
        click.echo(f"fold {number}/{folds}", err=True)
        component = TfidfIntentClassifier(settings, cast(Any, None), cast(Any, None))
        model = component._new_model()
        model.fit(list(texts[train]), list(labels[train]))
        for index, row in zip(test, model.predict_proba(list(texts[test])), strict=True):
            order = np.argsort(-row)
            top, second = float(row[order[0]]), float(row[order[1]])
            name = str(model.classes_[order[0]])
            if top < threshold or top - second < ambiguity:
                name = "nlu_fallback"
            predictions[index] = Parsed(name, top)
    parsed = [p for p in predictions if p is not None]
    grid = [round(threshold + 0.05 * step, 2) for step in range(int((0.9 - threshold) / 0.05) + 1)]
    rows = threshold_table(list(labels), list(texts), parsed, grid)
    click.echo(f"{len(examples)} training messages, {folds}-fold out-of-fold predictions")
    click.echo(f"  {'threshold':>9} {'classifier precision':>21} {'false opt-outs':>15} {'recall':>7}")
    for r in rows:
        click.echo(
            f"  {r.threshold:>9.2f} {r.classifier_precision:>21.3f} {r.false_opt_outs:>15} {r.recall:>7.3f}"
        )
    best = suggest_threshold(rows)
    if best is None:
        click.echo("no threshold meets the rule: look at the data")
    else:
        click.echo(
            f"suggested CONFIDENT = {best.threshold:.2f} (lowest threshold with classifier precision >= "
            f"{CALIBRATION_PRECISION:.2f} and no false opt-out; out-of-fold recall {best.recall:.3f})"
        )


@click.command()
@click.option("--model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--tests", "tests_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--fail-below",
    type=float,
    default=None,
    help="fail only below this macro F1 (a regression floor) instead of each language's bar",
)
@click.option(
    "--calibrate-opt-out",
    "calibrate",
    is_flag=True,
    help="print how dialogue.opt_out.CONFIDENT is calibrated on the training data, and exit",
)
@click.option(
    "--project",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=Path("rasa_project"),
    show_default=True,
    help="the Rasa project (for --calibrate-opt-out)",
)
def main(
    model: Path | None, tests_dir: Path | None, fail_below: float | None, calibrate: bool, project: Path
) -> None:
    """Print per-intent and macro F1 for each language, the crisis recall and the opt-out
    precision and recall; fail below a bar or on any false opt-out."""
    if calibrate:
        calibrate_opt_out(project)
        return
    if model is None or tests_dir is None:
        raise click.UsageError("--model and --tests are needed (or --calibrate-opt-out)")
    failed = _evaluate(model, tests_dir, fail_below)
    if failed:
        click.echo(f"\nFAILED: {'; '.join(failed)}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
