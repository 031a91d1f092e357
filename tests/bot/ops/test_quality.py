"""`debtbot test`: one table of the dialogue's quality, compared with the last saved result, that
fails on a regression beyond the tolerance and on any story that newly fails."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bot.clock import Clock
from bot.ops.quality import (
    FAILED_STORY,
    Measurement,
    QualityError,
    Row,
    SavedResult,
    Status,
    compare,
    failed_story_names,
    format_table,
    has_regression,
    load_result,
    main,
    measure,
    save_result,
    stories_measurements,
    story_names,
)

ROOT = Path(__file__).resolve().parents[3]
PROJECT = ROOT / "rasa_project"
AT = datetime(2026, 12, 5, 8, 0, tzinfo=timezone.utc)


def _m(name: str, value: float, higher_is_better: bool = True) -> Measurement:
    return Measurement(name, value, higher_is_better)


def _status(rows: list[Row], name: str) -> Status:
    return next(row.status for row in rows if row.name == name)


# --- compare ----------------------------------------------------------------------------------
def test_a_measurement_better_beyond_the_tolerance_is_better() -> None:
    rows = compare([_m("nlu.en.macro_f1", 0.95)], [_m("nlu.en.macro_f1", 0.90)], tolerance=0.02)
    assert [(row.name, row.current, row.previous, row.status) for row in rows] == [
        ("nlu.en.macro_f1", 0.95, 0.90, Status.BETTER)
    ]
    assert rows[0].change == pytest.approx(0.05)


def test_a_small_change_either_way_within_the_tolerance_is_ok() -> None:
    current = [_m("nlu.en.macro_f1", 0.89), _m("nlu.es.macro_f1", 0.91)]
    previous = [_m("nlu.en.macro_f1", 0.90), _m("nlu.es.macro_f1", 0.90)]
    rows = compare(current, previous, tolerance=0.02)
    assert [row.status for row in rows] == [Status.OK, Status.OK]
    assert not has_regression(rows)


def test_a_drop_of_exactly_the_tolerance_is_still_ok() -> None:
    rows = compare([_m("nlu.en.macro_f1", 0.88)], [_m("nlu.en.macro_f1", 0.90)], tolerance=0.02)
    assert rows[0].status is Status.OK


def test_a_drop_beyond_the_tolerance_is_a_regression() -> None:
    rows = compare([_m("nlu.en.intent.crisis.f1", 0.87)], [_m("nlu.en.intent.crisis.f1", 0.90)], 0.02)
    assert rows[0].status is Status.REGRESSION
    assert rows[0].change == pytest.approx(-0.03)
    assert has_regression(rows)


def test_the_tolerance_is_the_callers() -> None:
    current, previous = [_m("nlu.en.macro_f1", 0.87)], [_m("nlu.en.macro_f1", 0.90)]
    assert compare(current, previous, tolerance=0.05)[0].status is Status.OK
    assert compare(current, previous, tolerance=0.0)[0].status is Status.REGRESSION


def test_lower_is_better_measurements_regress_when_they_go_up() -> None:
    previous = [_m("safety.en.false_opt_outs", 0, False), _m("stories.failed", 2, False)]
    worse = compare([_m("safety.en.false_opt_outs", 1, False), _m("stories.failed", 2, False)], previous)
    assert _status(worse, "safety.en.false_opt_outs") is Status.REGRESSION
    assert _status(worse, "stories.failed") is Status.OK
    better = compare([_m("safety.en.false_opt_outs", 0, False), _m("stories.failed", 1, False)], previous)
    assert _status(better, "stories.failed") is Status.BETTER
    assert not has_regression(better)


def test_a_new_measurement_is_new_and_not_a_regression() -> None:
    rows = compare([_m("nlu.en.intent.dispute.f1", 0.5)], [])
    assert rows == [Row("nlu.en.intent.dispute.f1", 0.5, None, None, Status.NEW)]
    assert not has_regression(rows)


def test_a_measurement_that_disappeared_is_reported_as_removed() -> None:
    rows = compare(
        [_m("nlu.en.macro_f1", 0.9)], [_m("nlu.en.macro_f1", 0.9), _m("nlu.en.intent.old.f1", 0.8)]
    )
    assert rows[-1] == Row("nlu.en.intent.old.f1", None, 0.8, None, Status.REMOVED)
    assert not has_regression(rows)


def test_a_newly_failing_story_is_a_regression_whatever_the_tolerance() -> None:
    previous = [
        _m("stories.passed", 74),
        _m("stories.failed", 1, False),
        _m(f"{FAILED_STORY}old one", 1, False),
    ]
    # One story fixed, another broken: the counts do not move, the new failure still fails the run.
    current = [
        _m("stories.passed", 74),
        _m("stories.failed", 1, False),
        _m(f"{FAILED_STORY}new one", 1, False),
    ]
    rows = compare(current, previous, tolerance=100.0)
    assert _status(rows, f"{FAILED_STORY}new one") is Status.REGRESSION
    assert _status(rows, f"{FAILED_STORY}old one") is Status.BETTER
    assert _status(rows, "stories.failed") is Status.OK
    assert has_regression(rows)


def test_a_story_that_keeps_failing_is_not_a_new_regression() -> None:
    previous = [_m("stories.failed", 1, False), _m(f"{FAILED_STORY}known", 1, False)]
    rows = compare(previous, previous)
    assert not has_regression(rows)


def test_failing_stories_with_nothing_to_compare_with_are_new() -> None:
    rows = compare([_m("stories.failed", 1, False), _m(f"{FAILED_STORY}a story", 1, False)], [])
    assert [row.status for row in rows] == [Status.NEW, Status.NEW]


def test_rows_follow_the_current_order_then_the_removed_ones() -> None:
    current = [_m("b", 1), _m("a", 1)]
    previous = [_m("gone", 1), _m("a", 1), _m("b", 1)]
    assert [row.name for row in compare(current, previous)] == ["b", "a", "gone"]


# --- reading Rasa's story results -------------------------------------------------------------
FAILED_YAML = """version: "3.1"
stories:
- story: a deliberately wrong story (/tmp/tests/test_bad.yml)
  steps:
  - intent: EXTERNAL_opener
  - action: utter_greet  # predicted: utter_opener
- story: 'reply to the opener: doing (well) leads on (tests/test_stories.yml)'
  steps:
  - intent: EXTERNAL_opener
"""


def test_failed_story_names_drop_the_file_rasa_appends() -> None:
    assert failed_story_names(FAILED_YAML) == [
        "a deliberately wrong story",
        "reply to the opener: doing (well) leads on",
    ]
    assert failed_story_names("# None of the test stories failed - all good!") == []


def test_story_measurements_come_from_the_report_and_the_failed_stories() -> None:
    report = {
        "accuracy": 0.75,
        "conversation_accuracy": {"accuracy": 0.5, "correct": 2, "with_warnings": 0, "total": 4},
    }
    measurements = {m.name: m for m in stories_measurements(report, FAILED_YAML)}
    assert measurements["stories.passed"] == Measurement("stories.passed", 2.0, True)
    assert measurements["stories.failed"] == Measurement("stories.failed", 2.0, False)
    assert measurements["stories.conversation_accuracy"].value == 0.5
    assert measurements["stories.action_accuracy"].value == 0.75
    assert measurements[f"{FAILED_STORY}a deliberately wrong story"] == Measurement(
        f"{FAILED_STORY}a deliberately wrong story", 1.0, False
    )


# --- the table ----------------------------------------------------------------------------------
ROWS = [
    Row("stories.passed", 75.0, 74.0, 1.0, Status.BETTER),
    Row("nlu.en.macro_f1", 0.9451, 0.9, 0.0451, Status.BETTER),
    Row("nlu.es.intent.crisis.f1", 0.8, 0.9, -0.1, Status.REGRESSION),
    Row(f"{FAILED_STORY}spanish, verified", 1.0, None, None, Status.REGRESSION),
    Row("safety.en.crisis_recall", None, 1.0, None, Status.REMOVED),
]


def test_the_table_is_aligned_with_counts_as_integers_and_rates_to_three_places() -> None:
    lines = format_table(ROWS).splitlines()
    assert lines[0].split() == ["measurement", "previous", "now", "change", "status"]
    assert lines[1].split() == ["stories.passed", "74", "75", "+1", "better"]
    assert lines[2].split() == ["nlu.en.macro_f1", "0.900", "0.945", "+0.045", "better"]
    assert lines[3].split() == ["nlu.es.intent.crisis.f1", "0.900", "0.800", "-0.100", "REGRESSION"]
    assert lines[4].split()[-3:] == ["-", "fails", "REGRESSION"]
    assert lines[5].split() == ["safety.en.crisis_recall", "1.000", "-", "removed"]
    # Every value column ends where its header ends (numbers right-aligned).
    header = lines[0]
    for column in ("previous", "now"):
        end = header.index(column) + len(column)
        assert all(line[end - 1] != " " for line in lines[1:6])
        assert all(len(line) <= end or line[end] == " " for line in lines[1:6])
    assert lines[-1] == "5 measurements: 2 better, 2 REGRESSION, 1 removed"


def test_the_csv_table_has_the_same_cells_and_quotes_commas() -> None:
    table = list(csv.reader(io.StringIO(format_table(ROWS, as_csv=True))))
    assert table[0] == ["measurement", "previous", "now", "change", "status"]
    assert table[1] == ["stories.passed", "74", "75", "+1", "better"]
    assert table[4] == [f"{FAILED_STORY}spanish, verified", "-", "fails", "", "REGRESSION"]
    assert len(table) == 1 + len(ROWS)


# --- saved results --------------------------------------------------------------------------
def test_a_saved_result_reads_back_the_same(tmp_path: Path) -> None:
    path = tmp_path / "quality" / "last.json"
    measurements = [_m("nlu.en.macro_f1", 0.945), _m("stories.failed", 0, False)]
    save_result(path, "debtbot-abc.tar.gz", AT, measurements)
    saved = load_result(path)
    assert saved is not None
    assert saved.model == "debtbot-abc.tar.gz"
    assert saved.at == "2026-12-05T08:00:00+00:00"
    assert list(saved.measurements) == measurements


def test_no_saved_result_is_none_and_a_broken_one_says_so(tmp_path: Path) -> None:
    assert load_result(tmp_path / "last.json") is None
    (tmp_path / "last.json").write_text('{"model": "x"}', encoding="utf-8")
    with pytest.raises(QualityError, match="not a saved quality result"):
        load_result(tmp_path / "last.json")


# --- the command ------------------------------------------------------------------------------
NOW = [
    _m("stories.passed", 75),
    _m("stories.failed", 0, False),
    _m("nlu.en.macro_f1", 0.90),
    _m("safety.en.crisis_recall", 1.0),
]


class FakeMeasure:
    def __init__(self, measurements: list[Measurement]) -> None:
        self.measurements = measurements
        self.calls: list[tuple[Path, Path, bool]] = []

    def __call__(self, model: Path, project: Path, *, stories: bool = True) -> list[Measurement]:
        self.calls.append((model, project, stories))
        return [m for m in self.measurements if stories or not m.name.startswith("stories.")]


def _saved(path: Path) -> SavedResult:
    saved = load_result(path)
    assert saved is not None
    return saved


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "debtbot-now.tar.gz"
    path.write_bytes(b"model")
    return path


def _run(
    model: Path, results: Path, *extra: str, measurements: list[Measurement] = NOW
) -> tuple[int, FakeMeasure]:
    fake = FakeMeasure(measurements)
    code = main(
        ["--model", str(model), "--project", str(PROJECT), "--results", str(results), *extra],
        clock=Clock(AT),
        measurer=fake,
    )
    return code, fake


def test_a_previous_result_better_than_now_fails_the_run(
    tmp_path: Path, model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "last.json"
    save_result(results, "debtbot-before.tar.gz", AT, [*NOW[:2], _m("nlu.en.macro_f1", 0.95), NOW[3]])
    code, _ = _run(model, results)
    assert code == 1
    out, err = capsys.readouterr()
    assert "REGRESSION" in next(line for line in out.splitlines() if line.startswith("nlu.en.macro_f1"))
    assert "debtbot-before.tar.gz" in err
    # The regression is not the new baseline: the next run fails again until it is fixed.
    assert _saved(results).model == "debtbot-before.tar.gz"
    assert _run(model, results)[0] == 1


def test_a_previous_result_worse_than_now_passes_and_becomes_the_baseline(
    tmp_path: Path, model: Path
) -> None:
    results = tmp_path / "last.json"
    save_result(results, "debtbot-before.tar.gz", AT, [*NOW[:2], _m("nlu.en.macro_f1", 0.80), NOW[3]])
    code, fake = _run(model, results)
    assert code == 0
    assert fake.calls == [(model, PROJECT, True)]
    saved = load_result(results)
    assert saved is not None
    assert (saved.model, saved.at) == ("debtbot-now.tar.gz", AT.isoformat())
    assert list(saved.measurements) == NOW


def test_the_first_run_passes_and_saves(
    tmp_path: Path, model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "quality" / "last.json"
    assert _run(model, results)[0] == 0
    assert load_result(results) is not None
    assert "nothing to compare with" in capsys.readouterr().err


def test_a_new_failing_story_fails_the_run(tmp_path: Path, model: Path) -> None:
    results = tmp_path / "last.json"
    save_result(results, "debtbot-before.tar.gz", AT, NOW)
    broken = [_m("stories.passed", 74), _m("stories.failed", 1, False), _m(f"{FAILED_STORY}opener", 1, False)]
    assert _run(model, results, measurements=[*broken, *NOW[2:]])[0] == 1


def test_save_accepts_a_regression_and_no_save_never_writes(tmp_path: Path, model: Path) -> None:
    results = tmp_path / "last.json"
    save_result(results, "debtbot-before.tar.gz", AT, [*NOW[:2], _m("nlu.en.macro_f1", 0.95), NOW[3]])
    assert (
        _run(model, results, "--no-save", measurements=[*NOW[:2], _m("nlu.en.macro_f1", 0.99), NOW[3]])[0]
        == 0
    )
    assert _saved(results).model == "debtbot-before.tar.gz"
    assert _run(model, results, "--save")[0] == 1
    assert _saved(results).model == "debtbot-now.tar.gz"
    assert _run(model, results)[0] == 0


def test_without_the_stories_they_are_not_reported_removed_nor_is_the_baseline_replaced(
    tmp_path: Path, model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "last.json"
    save_result(results, "debtbot-before.tar.gz", AT, NOW)
    code, fake = _run(model, results, "--no-stories")
    assert code == 0
    assert fake.calls == [(model, PROJECT, False)]
    out = capsys.readouterr().out
    assert "stories." not in out
    assert "removed" not in out
    assert _saved(results).measurements == tuple(NOW)


def test_the_tolerance_option_decides_what_is_a_regression(tmp_path: Path, model: Path) -> None:
    results = tmp_path / "last.json"
    save_result(results, "debtbot-before.tar.gz", AT, [*NOW[:2], _m("nlu.en.macro_f1", 0.93), NOW[3]])
    assert _run(model, results, "--no-save", "--tolerance", "0.05")[0] == 0
    assert _run(model, results, "--no-save")[0] == 1


def test_csv_output_is_only_the_csv(tmp_path: Path, model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(model, tmp_path / "last.json", "--csv")[0] == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["measurement", "previous", "now", "change", "status"]
    assert [row[0] for row in rows[1:]] == [m.name for m in NOW]


def test_a_missing_model_or_a_broken_result_exits_2_without_measuring(tmp_path: Path, model: Path) -> None:
    fake = FakeMeasure(NOW)
    argv = ["--project", str(PROJECT), "--results", str(tmp_path / "last.json")]
    assert main(["--model", str(tmp_path / "none.tar.gz"), *argv], clock=Clock(AT), measurer=fake) == 2
    (tmp_path / "last.json").write_text("not json", encoding="utf-8")
    assert main(["--model", str(model), *argv], clock=Clock(AT), measurer=fake) == 2
    assert fake.calls == []


# --- one real run -----------------------------------------------------------------------------
@pytest.mark.e2e
def test_a_real_run_on_the_shipped_data_measures_stories_nlu_and_safety(
    trained_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    measurements = measure(trained_model, PROJECT, stories=True)
    by_name = {m.name: m for m in measurements}
    assert len(by_name) == len(measurements)
    stories = len(story_names(PROJECT / "tests"))  # every test file's stories
    # Rasa counts stories whose dialogue states are the same (a "no" typed in two languages) once.
    assert 75 <= by_name["stories.passed"].value + by_name["stories.failed"].value <= stories
    assert by_name["stories.failed"].value == 0  # the shipped stories pass (make rasa-test-stories)
    assert [name for name in by_name if name.startswith(FAILED_STORY)] == []
    assert by_name["stories.conversation_accuracy"].value == 1.0
    for language in ("en", "es"):
        assert 0.85 <= by_name[f"nlu.{language}.macro_f1"].value <= 1.0  # make nlu-floor's bar
        assert by_name[f"safety.{language}.crisis_recall"].value >= 0.9
        assert by_name[f"safety.{language}.false_opt_outs"] == Measurement(
            f"safety.{language}.false_opt_outs", 0.0, False
        )
        assert by_name[f"safety.{language}.opt_out_recall"].value >= 0.95
        intents = [name for name in by_name if name.startswith(f"nlu.{language}.intent.")]
        assert {f"nlu.{language}.intent.crisis.f1", f"nlu.{language}.intent.opt_out.f1"} <= set(intents)
    assert all(0.0 <= m.value <= 1.0 for m in measurements if not m.name.endswith((".passed", ".failed")))
    assert not by_name["safety.en.false_opt_outs"].higher_is_better
    assert "running the test stories" in capsys.readouterr().err
    # What it measured round-trips through the saved result, and compares as all ok with itself.
    save_result(tmp_path / "last.json", trained_model.name, AT, measurements)
    saved = load_result(tmp_path / "last.json")
    assert saved is not None
    assert {row.status for row in compare(measurements, saved.measurements)} == {Status.OK}
