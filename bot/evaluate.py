"""``make eval``: intent F1 on the held-out NLU test sets, per intent and per language.

The test sets (``rasa_project/tests/nlu_<lang>.yml``) are never used for training. The
macro F1 of each language is checked against its bar; the command fails below it.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import click

#: Held-out macro F1 each language must reach.
BARS = {"en": 0.90, "es": 0.85}


@dataclass(frozen=True)
class IntentScore:
    intent: str
    precision: float
    recall: float
    f1: float
    support: int


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


async def _predict(model: Path, texts: Sequence[str]) -> list[str]:
    import logging

    from rasa.core.agent import Agent
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.INFO)  # Rasa's DEBUG lines repeat every message

    agent = Agent.load(str(model))
    predictions = []
    for text in texts:
        parsed = await agent.parse_message(text)
        predictions.append(str((parsed.get("intent") or {}).get("name")))
    return predictions


@click.command()
@click.option("--model", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True)
@click.option(
    "--tests", "tests_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True
)
@click.option(
    "--fail-below",
    type=float,
    default=None,
    help="fail only below this macro F1 (a regression floor) instead of each language's bar",
)
def main(model: Path, tests_dir: Path, fail_below: float | None) -> None:
    """Print per-intent and macro F1 for each language; fail if a language is below its bar."""
    from rasa.shared.nlu.training_data.loading import load_data

    failed = []
    for language, bar in BARS.items():
        data = load_data(str(tests_dir / f"nlu_{language}.yml"))
        examples = [(m.get("text"), m.get("intent")) for m in data.intent_examples]
        predicted = asyncio.run(_predict(model, [text for text, _ in examples]))
        scores, macro = score([intent for _, intent in examples], predicted)
        click.echo(f"\n{language}: {len(examples)} held-out messages")
        click.echo(f"  {'intent':<22} {'precision':>9} {'recall':>7} {'f1':>6} {'n':>4}")
        for s in scores:
            click.echo(f"  {s.intent:<22} {s.precision:>9.2f} {s.recall:>7.2f} {s.f1:>6.2f} {s.support:>4}")
        verdict = "ok" if macro >= bar else "BELOW THE BAR"
        click.echo(f"  macro F1 {macro:.3f} (bar {bar:.2f}): {verdict}")
        for (text, intent), guess in zip(examples, predicted, strict=True):
            if guess != intent:
                click.echo(f"    miss: {text!r} expected {intent}, got {guess}")
        if macro < (bar if fail_below is None else fail_below):
            failed.append(language)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
