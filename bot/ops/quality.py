"""``debtbot test``: the dialogue's quality as one table, compared with the last saved result.

One run measures (:func:`measure`):

- the test stories (``rasa test core`` on ``<project>/tests``): ``stories.passed``,
  ``stories.failed``, ``stories.conversation_accuracy``, ``stories.action_accuracy``, and one
  ``stories.failed.<story name>`` (value 1) for each story that fails;
- the held-out NLU sets (:mod:`bot.ops.evaluate`): ``nlu.<lang>.macro_f1`` and
  ``nlu.<lang>.intent.<intent>.f1``;
- the safety checks: ``safety.<lang>.crisis_recall``, ``safety.<lang>.opt_out_precision``,
  ``safety.<lang>.opt_out_recall`` and ``safety.<lang>.false_opt_outs``.

:func:`compare` sets each measurement beside the saved one: ``ok`` (within the tolerance, either
way), ``better``, ``REGRESSION`` (worse by more than the tolerance, an absolute difference: 0.02
is two points of F1 and any count that moves the wrong way), ``new`` or ``removed``. A story
that fails now and did not before is a regression whatever the tolerance.

The result is saved (``var/quality/last.json``) with the model's name and the time, so the next
run compares with it. It is saved only when it is a fair baseline: the whole run (stories too)
and no regression, so a regression keeps failing until it is fixed or accepted on purpose
with ``--save``. ``--no-save`` never saves.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

import yaml

from bot.clock import Clock
from bot.errors import BotError
from bot.ops.progress import bar, rasa_tqdm_position

__all__ = [
    "DEFAULT_RESULTS",
    "DEFAULT_TOLERANCE",
    "Measurement",
    "QualityError",
    "Row",
    "SavedResult",
    "Status",
    "compare",
    "format_table",
    "has_regression",
    "load_result",
    "main",
    "measure",
    "measure_nlu",
    "measure_stories",
    "save_result",
]

DEFAULT_RESULTS = Path("var/quality/last.json")
DEFAULT_TOLERANCE = 0.02
#: The prefix of the one measurement per failing story (its value is 1).
FAILED_STORY = "stories.failed."
#: ``rasa test core`` takes a minute on the shipped stories; a hang must not block forever.
STORIES_TIMEOUT_SECONDS = 30 * 60
_FORMAT_VERSION = 1
#: Rasa names a failed story ``<name> (<file it came from>)``.
_STORY_SOURCE = re.compile(r"^(?P<name>.*) \((?P<source>[^()]*\.ya?ml)\)$")


class QualityError(BotError):
    """A measurement could not be taken, or a saved result cannot be read."""


@dataclass(frozen=True)
class Measurement:
    name: str
    value: float
    higher_is_better: bool


class Status(str, Enum):
    OK = "ok"
    BETTER = "better"
    REGRESSION = "REGRESSION"
    NEW = "new"
    REMOVED = "removed"


@dataclass(frozen=True)
class Row:
    """One line of the table: a measurement now and in the saved result."""

    name: str
    current: float | None  # None: removed since the saved result
    previous: float | None  # None: new
    change: float | None  # current - previous, when both exist
    status: Status


@dataclass(frozen=True)
class SavedResult:
    model: str
    at: str  # ISO 8601, from the clock the run was given
    measurements: tuple[Measurement, ...]


# --- measuring ------------------------------------------------------------------------------
def _progress(message: str) -> None:
    print(f"debtbot test: {message}", file=sys.stderr, flush=True)


def measure(model: Path, project: Path, *, stories: bool = True) -> list[Measurement]:
    """Run the test stories (unless ``stories=False``) and the held-out NLU and safety sets."""
    measurements: list[Measurement] = []
    if stories:
        _progress("running the test stories (rasa test core; about a minute)...")
        started = time.monotonic()
        measurements += measure_stories(model, project)
        _progress(f"test stories done in {time.monotonic() - started:.0f}s")
    _progress("evaluating the held-out NLU and safety sets (loads the model; under a minute)...")
    started = time.monotonic()
    measurements += measure_nlu(model, project / "tests")
    _progress(f"NLU and safety sets done in {time.monotonic() - started:.0f}s")
    return measurements


def measure_stories(model: Path, project: Path) -> list[Measurement]:
    """``rasa test core`` on every story in ``<project>/tests``, read from the files it writes."""
    with tempfile.TemporaryDirectory(prefix="debtbot-stories-") as out:
        out_dir = Path(out)
        log = out_dir / "rasa.log"
        command = [
            sys.executable, "-m", "rasa", "test", "core",
            "--stories", str((project / "tests").resolve()),
            "--model", str(model.resolve()),
            "--out", str(out_dir / "results"),
            "--no-plot",
        ]  # fmt: skip
        env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2"}
        returncode = _run_showing_progress(command, project, env, log)
        report = out_dir / "results" / "story_report.json"
        if returncode != 0 or not report.exists():
            tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-20:])
            raise QualityError(f"rasa test core failed (exit code {returncode}):\n{tail}")
        return stories_measurements(
            json.loads(report.read_text(encoding="utf-8")),
            (out_dir / "results" / "failed_test_stories.yml").read_text(encoding="utf-8"),
        )


def _run_showing_progress(command: list[str], cwd: Path, env: dict[str, str], log: Path) -> int:
    """Run ``rasa test core`` with its output in ``log``; a bar follows the conversations it has
    tested (read from its own tqdm lines in the log). Returns the exit code."""
    deadline = time.monotonic() + STORIES_TIMEOUT_SECONDS
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT)
        shown = 0
        try:
            with bar("test stories", len(story_names(cwd / "tests")) or 1) as progress:
                while True:
                    try:
                        return process.wait(timeout=0.5)
                    except subprocess.TimeoutExpired:
                        if time.monotonic() > deadline:
                            raise QualityError(
                                f"rasa test core did not finish in {STORIES_TIMEOUT_SECONDS}s"
                            ) from None
                    position = rasa_tqdm_position(_tail(log))
                    if position is not None and position[0] > shown:
                        progress.update(position[0] - shown)
                        shown = position[0]
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def _tail(path: Path, size: int = 4096) -> str:
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - size))
        return handle.read().decode("utf-8", errors="replace")


def story_names(tests_dir: Path) -> list[str]:
    """The test stories in ``tests_dir``'s YAML files (the bar's length)."""
    names = []
    for path in sorted(tests_dir.glob("*.yml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(data, dict):
            names += [
                str(story.get("story", "")) for story in data.get("stories") or [] if isinstance(story, dict)
            ]
    return names


def failed_story_names(failed_stories_yaml: str) -> list[str]:
    """The names of the stories in Rasa's ``failed_test_stories.yml`` (without their file)."""
    data = yaml.safe_load(failed_stories_yaml)  # only a comment when none failed
    if not isinstance(data, dict):
        return []
    names = []
    for story in data.get("stories") or []:
        raw = str(story.get("story", ""))
        match = _STORY_SOURCE.match(raw)
        names.append(match.group("name") if match else raw)
    return names


def stories_measurements(report: dict[str, Any], failed_stories_yaml: str) -> list[Measurement]:
    """Measurements from Rasa 3.6's ``story_report.json`` and ``failed_test_stories.yml``."""
    failed = failed_story_names(failed_stories_yaml)
    conversations = report.get("conversation_accuracy") or {}
    total = int(conversations.get("total", len(failed)))
    passed = int(conversations.get("correct", total - len(failed)))
    measurements = [
        Measurement("stories.passed", float(passed), True),
        Measurement("stories.failed", float(total - passed), False),
        Measurement("stories.conversation_accuracy", float(conversations.get("accuracy", 0.0)), True),
        Measurement("stories.action_accuracy", float(report.get("accuracy", 0.0)), True),
    ]
    measurements += [Measurement(f"{FAILED_STORY}{name}", 1.0, False) for name in sorted(set(failed))]
    return measurements


def measure_nlu(model: Path, tests_dir: Path) -> list[Measurement]:
    """Per-intent and macro F1 per language, crisis recall and opt-out precision/recall."""
    from bot.ops.evaluate import evaluate

    with contextlib.redirect_stdout(sys.stderr):  # Rasa prints "Loading model" to stdout
        evaluation = evaluate(
            model, tests_dir, progress=lambda total: bar("held-out NLU and safety sets", total)
        )
    measurements = []
    for language, result in evaluation.nlu.items():
        measurements.append(Measurement(f"nlu.{language}.macro_f1", result.macro_f1, True))
        measurements += [
            Measurement(f"nlu.{language}.intent.{s.intent}.f1", s.f1, True) for s in result.scores
        ]
    for language, result in evaluation.nlu.items():
        if result.crisis is not None:
            measurements.append(Measurement(f"safety.{language}.crisis_recall", result.crisis.recall, True))
        opt_out = evaluation.opt_out.get(language)
        if opt_out is not None:
            s = opt_out.score
            measurements += [
                Measurement(f"safety.{language}.opt_out_precision", s.precision, True),
                Measurement(f"safety.{language}.opt_out_recall", s.recall, True),
                Measurement(f"safety.{language}.false_opt_outs", float(s.false_opt_outs), False),
            ]
    return measurements


# --- comparing ------------------------------------------------------------------------------
def compare(
    current: Sequence[Measurement], previous: Sequence[Measurement], tolerance: float = DEFAULT_TOLERANCE
) -> list[Row]:
    """Each current measurement beside the previous one, then those that are gone.

    A failing story that did not fail before is a REGRESSION whatever the tolerance (when the
    previous result ran the stories at all); one that no longer fails is ``better``.
    """
    before = {m.name: m for m in previous}
    stories_measured_before = "stories.failed" in before
    now_names = {m.name for m in current}
    rows = []
    for m in current:
        old = before.get(m.name)
        if old is None:
            failing_story = m.name.startswith(FAILED_STORY)
            status = Status.REGRESSION if failing_story and stories_measured_before else Status.NEW
            rows.append(Row(m.name, m.value, None, None, status))
            continue
        change = m.value - old.value
        rows.append(Row(m.name, m.value, old.value, change, _status(change, m.higher_is_better, tolerance)))
    for old in previous:
        if old.name not in now_names:
            status = Status.BETTER if old.name.startswith(FAILED_STORY) else Status.REMOVED
            rows.append(Row(old.name, None, old.value, None, status))
    return rows


def _status(change: float, higher_is_better: bool, tolerance: float) -> Status:
    gain = change if higher_is_better else -change
    margin = tolerance + 1e-9  # a change of exactly the tolerance is within it
    if gain < -margin:
        return Status.REGRESSION
    if gain > margin:
        return Status.BETTER
    return Status.OK


def has_regression(rows: Iterable[Row]) -> bool:
    return any(row.status == Status.REGRESSION for row in rows)


# --- the table ------------------------------------------------------------------------------
_HEADER = ("measurement", "previous", "now", "change", "status")


def _is_count(name: str) -> bool:
    return name in ("stories.passed", "stories.failed") or name.endswith(".false_opt_outs")


def _value(name: str, value: float | None) -> str:
    if value is None:
        return "-"
    if name.startswith(FAILED_STORY):
        return "fails"
    return f"{value:.0f}" if _is_count(name) else f"{value:.3f}"


def _change(name: str, change: float | None) -> str:
    if change is None:
        return ""
    if name.startswith(FAILED_STORY):
        return ""
    return f"{change:+.0f}" if _is_count(name) else f"{change:+.3f}"


def format_table(rows: Sequence[Row], *, as_csv: bool = False) -> str:
    """An aligned plain-text table (numbers right-aligned) and a summary line, or CSV."""
    cells = [
        (
            row.name,
            _value(row.name, row.previous),
            _value(row.name, row.current),
            _change(row.name, row.change),
            row.status.value,
        )
        for row in rows
    ]
    if as_csv:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(_HEADER)
        writer.writerows(cells)
        return buffer.getvalue()
    widths = [max(len(line[i]) for line in [_HEADER, *cells]) for i in range(len(_HEADER))]
    lines = []
    for line in [_HEADER, *cells]:
        name, previous, now, change, status = line
        lines.append(
            f"{name:<{widths[0]}}  {previous:>{widths[1]}}  {now:>{widths[2]}}  "
            f"{change:>{widths[3]}}  {status}".rstrip()
        )
    counts = {s: sum(1 for row in rows if row.status is s) for s in Status}
    summary = ", ".join(f"{n} {s.value}" for s, n in counts.items() if n)
    lines.append("")
    lines.append(f"{len(rows)} measurements: {summary or 'none'}")
    return "\n".join(lines) + "\n"


# --- saved results --------------------------------------------------------------------------
def save_result(path: Path, model: str, at: datetime, measurements: Sequence[Measurement]) -> None:
    """Write the result (atomically: a half-written baseline would be worse than none)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "version": _FORMAT_VERSION,
        "model": model,
        "at": at.isoformat(),
        "measurements": [
            {"name": m.name, "value": m.value, "higher_is_better": m.higher_is_better} for m in measurements
        ],
    }
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    temporary.replace(path)


def load_result(path: Path) -> SavedResult | None:
    """The saved result, or ``None`` when there is none yet."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        measurements = tuple(
            Measurement(str(m["name"]), float(m["value"]), bool(m["higher_is_better"]))
            for m in data["measurements"]
        )
        return SavedResult(str(data["model"]), str(data["at"]), measurements)
    except (ValueError, KeyError, TypeError) as error:
        raise QualityError(
            f"{path}: not a saved quality result ({error}); move it away to start over"
        ) from error


# --- the command ----------------------------------------------------------------------------
Measure = Callable[..., list[Measurement]]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot.ops.quality",
        description=(
            "Test stories, held-out NLU F1 (per intent and language) and the crisis and opt-out "
            "checks as one table, compared with the last saved result. Exit 1 on a regression."
        ),
    )
    parser.add_argument(
        "--model",
        type=Path,
        help="the model (default: the newest models/debtbot-*.tar.gz beside the project)",
    )
    parser.add_argument("--project", type=Path, default=Path("rasa_project"), help="the Rasa project")
    parser.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        help="how much worse (absolute) a measurement may get before it is a regression (default 0.02)",
    )
    parser.add_argument("--no-stories", action="store_true", help="skip the test stories (the slow part)")
    parser.add_argument(
        "--results", type=Path, default=DEFAULT_RESULTS, help="the saved result to compare with"
    )
    saving = parser.add_mutually_exclusive_group()
    saving.add_argument(
        "--save",
        dest="save",
        action="store_true",
        default=None,
        help="save this result even with a regression or without the stories (accept it as the baseline)",
    )
    saving.add_argument("--no-save", dest="save", action="store_false", help="never save this result")
    parser.add_argument("--csv", action="store_true", help="print the table as CSV")
    return parser


def _newest_model(project: Path) -> Path:
    models = sorted((project.parent / "models").glob("debtbot-*.tar.gz"), key=lambda p: p.stat().st_mtime)
    if not models:
        raise QualityError(
            f"no model in {project.parent / 'models'}: train one (debtbot train) or pass --model"
        )
    return models[-1]


def main(
    argv: Sequence[str] | None = None, *, clock: Clock | None = None, measurer: Measure = measure
) -> int:
    """Measure, print the table, save the result; 1 on a regression, 2 when it cannot run."""
    args = _parser().parse_args(argv)
    clock = clock or Clock()
    os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up lines hide the progress
    try:
        model: Path = args.model or _newest_model(args.project)
        if not model.exists():
            raise QualityError(f"{model}: no such model")
        previous = load_result(args.results)
        current = measurer(model, args.project, stories=not args.no_stories)
    except QualityError as error:
        print(f"debtbot test: {error}", file=sys.stderr)
        return 2
    baseline = list(previous.measurements) if previous else []
    if args.no_stories:  # not run is not removed
        baseline = [m for m in baseline if not m.name.startswith("stories.")]
    rows = compare(current, baseline, args.tolerance)
    if previous is None:
        _progress(f"no saved result in {args.results}: nothing to compare with yet")
    else:
        _progress(f"compared with {previous.model} measured at {previous.at} ({args.results})")
    sys.stdout.write(format_table(rows, as_csv=args.csv))
    regression = has_regression(rows)
    save = args.save if args.save is not None else not regression and not args.no_stories
    if save:
        save_result(args.results, model.name, clock.now(), current)
        _progress(f"saved this result to {args.results}")
    elif args.save is None:
        why = "a regression" if regression else "a run without the stories"
        _progress(f"not saved ({why}); the saved result stays the baseline (--save accepts this one)")
    if regression:
        _progress(f"REGRESSION beyond the tolerance {args.tolerance} (see the table)")
    return 1 if regression else 0


if __name__ == "__main__":
    sys.exit(main())
