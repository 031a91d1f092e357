"""`debtbot validate`: the shipped Rasa project passes every check, and each check catches a
mistake of its kind planted in a copy of it."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.ops.nlu_inbox import label
from bot.ops.validate import (
    CHECKS,
    CONFIG_THRESHOLDS,
    DEBT_BEFORE_VERIFICATION,
    EMAIL_VARIANT,
    EXAMPLE_UNDER_TWO_INTENTS,
    EXAMPLES_PER_LANGUAGE,
    RASA_DATA_VALIDATE,
    RESPONSE_LANGUAGES,
    REVIEW_FILE,
    Problem,
    check_config_thresholds,
    check_rasa_data_validate,
    debt_responses,
    format_report,
    load_project,
    main,
    normalise_example,
    parse_rasa_output,
    validate,
)

PROJECT = Path(__file__).resolve().parents[3] / "rasa_project"
NOW = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the shipped project to plant mistakes in."""
    copy = tmp_path / "rasa_project"
    shutil.copytree(PROJECT, copy, ignore=shutil.ignore_patterns(".rasa", "models", "__pycache__"))
    return copy


def edit(path: Path, change: Callable[[Any], None]) -> None:
    content = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(content)
    path.write_text(
        yaml.safe_dump(content, allow_unicode=True, sort_keys=False, width=1000), encoding="utf-8"
    )


def found(project: Path, check: str, **kwargs: Any) -> list[Problem]:
    problems = validate(project, run_rasa=False, **kwargs)
    return [p for p in problems if p.check == check]


def drop_variant(response: str, keep: Callable[[dict[str, Any]], bool]) -> Callable[[Any], None]:
    def change(domain: Any) -> None:
        domain["responses"][response] = [v for v in domain["responses"][response] if keep(v)]

    return change


def language_of(variant: dict[str, Any]) -> str | None:
    for c in variant.get("condition") or []:
        if c["name"] == "language":
            return str(c["value"])
    return None


def add_rule(project: Path, rule: dict[str, Any], file: str = "rules.yml") -> None:
    key = "rules" if file == "rules.yml" else "stories"
    edit(project / "data" / file, lambda content: content[key].append(rule))


# --- the shipped project -----------------------------------------------------------------------


def test_the_shipped_project_passes_every_own_check() -> None:
    assert validate(PROJECT, run_rasa=False) == []


def test_rasa_data_validate_passes_on_the_shipped_project() -> None:
    assert check_rasa_data_validate(PROJECT) == []


# --- rasa data validate ------------------------------------------------------------------------


def test_rasa_data_validate_reports_an_intent_the_domain_lost(project: Path) -> None:
    edit(project / "domain.yml", lambda d: d["intents"].remove("thank"))

    problems = check_rasa_data_validate(project)

    assert problems and {p.check for p in problems} == {RASA_DATA_VALIDATE}
    assert any("'thank'" in p.message and "not listed in your domain" in p.message for p in problems)
    assert not any("is not used in any story or rule" in p.message for p in problems)


RASA_OUTPUT = """\
/x/rasa/shared/utils/validation.py:134: DeprecationWarning: pkg_resources is deprecated
  import pkg_resources
\x1b[93m/x/rasa/shared/utils/io.py:100: UserWarning: Issue found in 'data/rules.yml':
Found intent 'thank' in stories which is not part of the domain.
  More info at https://rasa.com/docs/rasa/stories
\x1b[0m2026-12-05 21:04:09 INFO     rasa.validator  - Validating intents...
\x1b[93m/x/rasa/shared/utils/io.py:100: UserWarning: The utterance 'utter_balance' is not used in any story or rule.
\x1b[0m\x1b[93m/x/rasa/shared/utils/io.py:100: UserWarning: The intent 'EXTERNAL_opener' is listed in the \
domain file, but is not found in the NLU training data.
\x1b[0m2026-12-05 21:04:09 WARNING  rasa.validator  - Story structure conflict after intent 'greet':
  utter_greet predicted in 'a'
  utter_goodbye predicted in 'b'
2026-12-05 21:04:09 INFO     rasa.validator  - Story structure validation...
\x1b[91mProject validation completed with errors.\x1b[0m
"""


def test_rasa_output_keeps_what_failed_and_drops_what_never_fails() -> None:
    problems = parse_rasa_output(RASA_OUTPUT, 1)

    assert [p.where for p in problems] == ["rasa_project/data/rules.yml", "rasa_project (rasa data validate)"]
    assert "Found intent 'thank' in stories which is not part of the domain." in problems[0].message
    assert "utter_goodbye predicted in 'b'" in problems[1].message
    assert parse_rasa_output(RASA_OUTPUT, 0) == []


def test_a_failing_rasa_run_without_a_readable_warning_still_is_a_problem() -> None:
    problems = parse_rasa_output("Traceback ...\nKeyError: 'responses'\n", 1)

    assert len(problems) == 1 and "KeyError: 'responses'" in problems[0].message


def test_a_missing_rasa_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    problems = check_rasa_data_validate(PROJECT, rasa_bin=tmp_path / "rasa")

    assert len(problems) == 1 and "not found" in problems[0].message


# --- responses in both languages ---------------------------------------------------------------


def test_a_response_without_a_spanish_variant_is_reported(project: Path) -> None:
    edit(project / "domain.yml", drop_variant("utter_goodbye", lambda v: language_of(v) != "es"))

    problems = found(project, RESPONSE_LANGUAGES)

    assert len(problems) == 1
    assert "'utter_goodbye'" in problems[0].where and "no Spanish variant" in problems[0].message


def test_a_response_without_an_english_variant_is_reported(project: Path) -> None:
    edit(project / "domain.yml", drop_variant("utter_thank", lambda v: language_of(v) == "es"))

    problems = found(project, RESPONSE_LANGUAGES)

    assert len(problems) == 1
    assert "utter_thank has no English variant" in problems[0].message


def test_a_state_no_spanish_variant_covers_is_reported(project: Path) -> None:
    # A Spanish speaker in distress would get the English "Thank you for telling me...".
    edit(
        project / "domain.yml",
        drop_variant(
            "utter_mood_good",
            lambda v: (
                not (
                    language_of(v) == "es"
                    and {"name": "distress", "type": "slot", "value": True} in v["condition"]
                )
            ),
        ),
    )

    problems = found(project, RESPONSE_LANGUAGES)

    assert len(problems) == 1
    assert "utter_mood_good" in problems[0].message and "distress=true" in problems[0].message


# --- channel variants ----------------------------------------------------------------------------


def test_an_email_variant_only_in_english_is_reported(project: Path) -> None:
    edit(
        project / "domain.yml",
        drop_variant(
            "utter_plan_readback", lambda v: not (v.get("channel") == "email" and language_of(v) == "es")
        ),
    )

    problems = found(project, EMAIL_VARIANT)

    assert len(problems) == 1
    assert "'utter_plan_readback'" in problems[0].where
    assert "none in Spanish" in problems[0].message and "the English email variant" in problems[0].message
    assert found(project, RESPONSE_LANGUAGES) == []


def test_an_email_variant_only_in_spanish_is_reported(project: Path) -> None:
    edit(
        project / "domain.yml",
        drop_variant(
            "utter_plan_created", lambda v: not (v.get("channel") == "email" and language_of(v) is None)
        ),
    )

    problems = found(project, EMAIL_VARIANT)

    assert len(problems) == 1
    assert "none in English" in problems[0].message and "plain variant" in problems[0].message


# --- nothing about the debt before verification --------------------------------------------------


def test_debt_responses_come_from_their_placeholders_and_a_verified_condition_guards_a_variant() -> None:
    debt = debt_responses(load_project(PROJECT).domain)

    assert debt["utter_balance"] == "names {balance}, {creditor}"
    assert "{plan_summary}" in debt["utter_plan_readback"] and "{link}" in debt["utter_plan_created"]
    assert "utter_choices" in debt  # named in words
    # utter_resources mentions "this account" only in variants conditioned on verified: true
    assert "utter_resources" not in debt and "utter_greet" not in debt


def test_a_rule_that_says_the_balance_without_verification_is_reported(project: Path) -> None:
    add_rule(
        project,
        {"rule": "balance straight away", "steps": [{"intent": "ask_balance"}, {"action": "utter_balance"}]},
    )

    problems = found(project, DEBT_BEFORE_VERIFICATION)

    assert len(problems) == 1
    assert "rule 'balance straight away'" in problems[0].where
    assert "utter_balance names {balance}, {creditor}" in problems[0].message
    assert "may be false" in problems[0].message


def test_a_rule_that_loses_its_verified_condition_is_reported(project: Path) -> None:
    def unguard(content: Any) -> None:
        for rule in content["rules"]:
            if rule["rule"] == "good mood once verified offers the choices":
                rule["condition"] = [{"slot_was_set": [{"account_known": True}]}]

    edit(project / "data" / "rules.yml", unguard)

    problems = found(project, DEBT_BEFORE_VERIFICATION)

    assert [("good mood once verified" in p.where, "utter_choices" in p.message) for p in problems] == [
        (True, True)
    ]


def test_a_response_reached_through_other_rules_before_verification_is_reported(project: Path) -> None:
    # "the settlement offer is declined" has no condition: it is safe only because every way to
    # action_pay_in_full passes verification. A way that does not makes it unsafe.
    add_rule(
        project,
        {
            "rule": "paying in full without verification",
            "condition": [{"slot_was_set": [{"verified": False}]}],
            "steps": [{"intent": "pay_in_full"}, {"action": "action_pay_in_full"}],
        },
    )

    problems = found(project, DEBT_BEFORE_VERIFICATION)

    assert len(problems) == 1
    assert "rule 'the settlement offer is declined'" in problems[0].where
    assert "utter_settlement_declined" in problems[0].message


def test_a_form_that_asks_about_a_plan_before_verification_is_reported(project: Path) -> None:
    add_rule(
        project,
        {
            "rule": "a plan for anyone",
            "steps": [
                {"intent": "request_payment_plan"},
                {"action": "payment_plan_form"},
                {"active_loop": "payment_plan_form"},
            ],
        },
    )

    problems = found(project, DEBT_BEFORE_VERIFICATION)

    planted = [p for p in problems if "rule 'a plan for anyone'" in p.where]
    assert any("payment_plan_form asks utter_ask_plan_offer" in p.message for p in planted)
    # ... and the rules that run while that form is active are unsafe too now
    assert any(
        "rule 'hardship during the plan'" in p.where and "utter_hardship_options" in p.message
        for p in problems
    )


def test_a_story_is_checked_step_by_step(project: Path) -> None:
    unverified = {
        "story": "options before verification",
        "steps": [
            {"slot_was_set": [{"verified": False}]},
            {"intent": "request_payment_plan"},
            {"action": "utter_plan_options"},
        ],
    }
    verified_first = {
        "story": "options once verified",
        "steps": [
            {"intent": "inform"},
            {"action": "verify_form"},
            {"slot_was_set": [{"verified": True}]},
            {"intent": "request_payment_plan"},
            {"action": "utter_plan_options"},
        ],
    }
    add_rule(project, unverified, file="stories.yml")
    add_rule(project, verified_first, file="stories.yml")

    problems = found(project, DEBT_BEFORE_VERIFICATION)

    assert [p.where.split(": ", 1)[1].split(" (")[0] for p in problems] == [
        "story 'options before verification'"
    ]


# --- NLU examples ----------------------------------------------------------------------------------


def test_an_intent_short_of_examples_in_one_language_is_reported(project: Path) -> None:
    def shorten(content: Any) -> None:
        for block in content["nlu"]:
            if block.get("intent") == "thank":
                block["examples"] = "".join(block["examples"].splitlines(keepends=True)[:3])

    edit(project / "data" / "nlu" / "es.yml", shorten)

    problems = found(project, EXAMPLES_PER_LANGUAGE)

    assert len(problems) == 1
    assert "intent 'thank'" in problems[0].where and "Spanish 3" in problems[0].message


def test_the_bar_is_a_parameter_and_product_sent_intents_need_no_examples() -> None:
    problems = found(PROJECT, EXAMPLES_PER_LANGUAGE, min_examples=100_000)

    intents = {p.where.split("'")[1] for p in problems}
    assert "crisis" in intents and "greet" in intents  # crisis lives in a file of both languages
    assert "EXTERNAL_opener" not in intents


def test_an_example_under_two_intents_is_reported_within_a_language(project: Path) -> None:
    def plant(content: Any) -> None:
        greet = next(b for b in content["nlu"] if b.get("intent") == "greet")
        greet["examples"] += "- Thank   YOU\n"

    edit(project / "data" / "nlu" / "en.yml", plant)

    problems = found(project, EXAMPLE_UNDER_TWO_INTENTS)

    assert len(problems) == 1
    assert "'thank you' is an example of greet, thank" in problems[0].message


def test_an_example_under_two_intents_is_reported_across_languages(project: Path) -> None:
    def plant(intent: str, text: str) -> Callable[[Any], None]:
        def change(content: Any) -> None:
            block = next(b for b in content["nlu"] if b.get("intent") == intent)
            block["examples"] += f"- {text}\n"

        return change

    edit(project / "data" / "nlu" / "es.yml", plant("affirm", "vale [mañana](date)  a las 5"))
    edit(project / "data" / "nlu" / "en.yml", plant("deny", "VALE mañana a las 5"))

    problems = found(project, EXAMPLE_UNDER_TWO_INTENTS)

    assert len(problems) == 1
    assert "nlu/es.yml" in problems[0].where and "nlu/en.yml" in problems[0].where
    assert "affirm, deny" in problems[0].message


def test_examples_are_normalised_before_comparing() -> None:
    assert normalise_example("  I can pay [50](amount) a\tWEEK ") == "i can pay 50 a week"
    assert normalise_example('pay [50]{"entity": "amount"} now') == "pay 50 now"


# --- config.yml -------------------------------------------------------------------------------------


def set_component(section: str, name: str, **values: Any) -> Callable[[Any], None]:
    def change(config: Any) -> None:
        next(c for c in config[section] if c["name"] == name).update(values)

    return change


@pytest.mark.parametrize(
    ("section", "name", "key", "value"),
    [
        ("pipeline", "FallbackClassifier", "threshold", 1.5),
        ("pipeline", "FallbackClassifier", "ambiguity_threshold", 0),
        ("policies", "RulePolicy", "core_fallback_threshold", -0.1),
    ],
)
def test_a_threshold_outside_zero_and_one_is_reported(
    project: Path, section: str, name: str, key: str, value: float
) -> None:
    edit(project / "config.yml", set_component(section, name, **{key: value}))

    problems = found(project, CONFIG_THRESHOLDS)

    assert len(problems) == 1
    assert f"{name} {key}" in problems[0].where and "strictly between 0 and 1" in problems[0].message


def test_an_opt_out_bar_below_the_fallback_threshold_is_reported(project: Path) -> None:
    edit(project / "config.yml", set_component("pipeline", "FallbackClassifier", threshold=0.6))

    problems = found(project, CONFIG_THRESHOLDS)

    assert len(problems) == 1
    assert (
        "dialogue.opt_out.CONFIDENT = 0.45 is below the FallbackClassifier threshold 0.6"
        in problems[0].message
    )


def test_a_product_bar_outside_zero_and_one_is_reported() -> None:
    problems = check_config_thresholds(load_project(PROJECT), product_confidences={"some.BAR": 1.2})

    assert [p.where for p in problems] == ["some.BAR"]


def test_a_missing_fallback_classifier_is_reported_when_rules_use_it(project: Path) -> None:
    def remove(config: Any) -> None:
        config["pipeline"] = [c for c in config["pipeline"] if c["name"] != "FallbackClassifier"]

    edit(project / "config.yml", remove)

    problems = found(project, CONFIG_THRESHOLDS)

    assert len(problems) == 1 and "no FallbackClassifier" in problems[0].message


# --- the report and the command -----------------------------------------------------------------------


def test_the_report_says_all_passed_or_counts_per_check() -> None:
    assert format_report([], CHECKS[1:]) == "all 7 checks passed"
    report = format_report(
        [
            Problem(RESPONSE_LANGUAGES, "d.yml: response 'x'", "no Spanish"),
            Problem(RESPONSE_LANGUAGES, "y", "z"),
        ],
        CHECKS,
    )
    lines = report.splitlines()
    assert f"{RESPONSE_LANGUAGES}  " in lines[3] and lines[3].endswith("2")
    assert any(line.startswith(EMAIL_VARIANT) and line.endswith("0") for line in lines)
    assert "  - d.yml: response 'x'" in report and "    no Spanish" in report


def test_main_passes_on_the_shipped_project(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--project", str(PROJECT), "--no-rasa"]) == 0

    out, err = capsys.readouterr()
    assert out.strip() == "all 7 checks passed"
    assert "validate: debt_before_verification: ok" in err and "rasa" not in err


def test_main_fails_on_a_planted_mistake(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit(project / "domain.yml", drop_variant("utter_goodbye", lambda v: language_of(v) != "es"))

    assert main(["--project", str(project), "--no-rasa", "--min-examples", "5"]) == 1

    out, err = capsys.readouterr()
    assert "utter_goodbye" in out and "validate: response_languages: 1 problem(s)" in err


def test_an_unreadable_project_is_one_problem(tmp_path: Path) -> None:
    problems = validate(tmp_path, run_rasa=False)

    assert [p.check for p in problems] == ["project_files"]


# --- the NLU inbox's review file ------------------------------------------------------------------------


def write_review(path: Path, blocks: dict[str, list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ['version: "3.1"', "nlu:", "# added by olga at 2026-03-02T15:00:00Z: a comment, not an example"]
    for intent, examples in blocks.items():
        lines += [f"- intent: {intent}", "  examples: |", *(f"    - {text}" for text in examples)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_review_file_labelled_by_the_inbox_passes(project: Path) -> None:
    review = project / "data" / "nlu" / "review.yml"
    label(review, "how much do I still owe you lot", "ask_balance", by="olga", now=NOW,
          known_intents={"ask_balance"})  # fmt: skip
    label(review, "can we talk about the amount on the 2nd", "ask_balance", by="olga", now=NOW,
          known_intents={"ask_balance"})  # fmt: skip

    assert validate(project, run_rasa=False, min_examples=5) == []


def test_a_duplicate_in_the_review_file_is_reported(project: Path) -> None:
    write_review(project / "data" / "nlu" / "review.yml",
                 {"ask_balance": ["How much do I owe", "what is my total please", "What is my total  please"]})  # fmt: skip

    problems = found(project, REVIEW_FILE)

    assert len(problems) == 2
    shipped, twice = problems
    assert "rasa_project/data/nlu/review.yml line 6: intent 'ask_balance'" in shipped.where
    assert "already an example of ask_balance (rasa_project/data/nlu/en.yml line" in shipped.message
    assert "review.yml line 8" in twice.where and "(rasa_project/data/nlu/review.yml line 7)" in twice.message


def test_a_conflict_with_the_review_file_is_reported_once_naming_both_intents(project: Path) -> None:
    write_review(project / "data" / "nlu" / "review.yml",
                 {"hardship": ["how much do i owe", "i lost my job again"], "deny": ["I lost my job again"]})  # fmt: skip

    problems = found(project, REVIEW_FILE)

    assert [p.message.split(":")[0] for p in problems] == [
        "'how much do i owe' is labelled hardship here but is an example of ask_balance in rasa_project/data/nlu/en.yml",
        "'I lost my job again' is labelled deny here but is an example of hardship in rasa_project/data/nlu/review.yml",
    ]
    assert found(project, EXAMPLE_UNDER_TWO_INTENTS) == []  # not twice


def test_a_new_intent_in_the_review_file_must_be_added_to_the_domain(project: Path) -> None:
    write_review(
        project / "data" / "nlu" / "review.yml", {"freeze_interest": ["can you freeze the interest"]}
    )

    (problem,) = found(project, REVIEW_FILE)

    assert problem.where == "rasa_project/data/nlu/review.yml: intent 'freeze_interest'"
    assert "add it to domain.yml's intents and give it responses/rules before training" in problem.message


def test_scrubbing_left_undone_is_reported_without_the_detail(project: Path) -> None:
    write_review(project / "data" / "nlu" / "review.yml",
                 {"change_channel": ["email me at maria.lopez@gmail.com or ring 415 867 5309 instead"]})  # fmt: skip

    (problem,) = found(project, REVIEW_FILE)

    assert "still holds a email and a phone number" in problem.message
    assert "person1@example.com or ring 202 555 0100 instead" in problem.message
    assert "maria" not in problem.message and "867" not in problem.message


def test_a_review_file_outside_the_data_folder_is_checked_too(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    review = write_review(tmp_path / "elsewhere" / "review.yml", {"affirm": ["How much do I owe"]})

    problems = found(project, REVIEW_FILE, review_file=review)
    code = main(["--project", str(project), "--no-rasa", "--review-file", str(review)])

    assert len(problems) == 1 and "is an example of ask_balance" in problems[0].message
    assert problems[0].where.startswith(f"{review} line 6")
    assert code == 1 and "review_file (1):" in capsys.readouterr().out
    assert found(project, REVIEW_FILE) == []  # the project's own (absent) review file is fine
