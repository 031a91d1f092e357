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
