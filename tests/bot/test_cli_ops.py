"""The ops commands' wiring: `debtbot test` measures the current model of this configuration's
project and keeps its results under var/ (the engine itself: tests/bot/ops/test_quality.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import main
from tests.conftest import ROOT, TEST_SECRETS


def test_debtbot_test_measures_the_current_model_and_passes_options_on(
    monkeypatch: pytest.MonkeyPatch, trained_model: Path
) -> None:
    seen: list[list[str]] = []

    def quality(argv: list[str]) -> int:
        seen.append(argv)
        return 1  # as on a regression

    monkeypatch.setattr("bot.ops.quality.main", quality)
    ran = CliRunner().invoke(main, ["test", "--config", str(ROOT / "config.yaml"), "--no-stories", "--csv"],
                             env=TEST_SECRETS)  # fmt: skip
    assert ran.exit_code == 1, ran.output
    [argv] = seen
    assert argv[argv.index("--model") + 1] == str(trained_model)
    assert argv[argv.index("--project") + 1] == str(ROOT / "rasa_project")
    assert argv[argv.index("--results") + 1] == str(ROOT / "var" / "quality" / "last.json")
    assert argv[-2:] == ["--no-stories", "--csv"]


def test_debtbot_validate_checks_this_configurations_project(tmp_path: Path) -> None:
    import shutil

    import yaml

    ran = CliRunner().invoke(
        main, ["validate", "--no-rasa", "--config", str(ROOT / "config.yaml")], env=TEST_SECRETS
    )
    assert ran.exit_code == 0, ran.output
    assert "checks passed" in ran.output
    # A copy of the project with a response that lost its Spanish: the command says so, exit 1.
    project = tmp_path / "rasa_project"
    shutil.copytree(
        ROOT / "rasa_project", project, ignore=shutil.ignore_patterns("models", ".rasa", "results")
    )
    domain = yaml.safe_load((project / "domain.yml").read_text())
    name, variants = next((n, v) for n, v in domain["responses"].items() if len(v) > 1)
    domain["responses"][name] = [v for v in variants if "es" not in str(v.get("condition"))]
    (project / "domain.yml").write_text(yaml.safe_dump(domain, allow_unicode=True))
    config = tmp_path / "config.yaml"
    settings = yaml.safe_load((ROOT / "config.yaml").read_text())
    settings.setdefault("rasa", {})["project_dir"] = str(project)
    config.write_text(yaml.safe_dump(settings, allow_unicode=True))
    failed = CliRunner().invoke(main, ["validate", "--no-rasa", "--config", str(config)], env=TEST_SECRETS)
    assert failed.exit_code == 1, failed.output
    assert name in failed.output


def test_debtbot_validate_checks_the_configured_review_file(tmp_path: Path) -> None:
    import yaml

    nlu = yaml.safe_load((ROOT / "rasa_project" / "data" / "nlu" / "en.yml").read_text())
    block = next(b for b in nlu["nlu"] if "intent" in b and b["intent"] != "deny")
    example = block["examples"].splitlines()[0].removeprefix("- ").strip()
    review = tmp_path / "labelled.yml"
    # Labelled in the console under another intent than the shipped data's: a conflict.
    review.write_text(f'version: "3.1"\nnlu:\n- intent: deny\n  examples: |\n    - {example}\n')
    settings = yaml.safe_load((ROOT / "config.yaml").read_text())
    settings["rasa"] = {**settings.get("rasa", {}), "project_dir": str(ROOT / "rasa_project")}
    settings["ops"] = {**settings.get("ops", {}), "review_file": str(review)}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(settings, allow_unicode=True))
    ran = CliRunner().invoke(main, ["validate", "--no-rasa", "--config", str(config)], env=TEST_SECRETS)
    assert ran.exit_code == 1, ran.output
    assert "review_file" in ran.output and block["intent"] in ran.output
