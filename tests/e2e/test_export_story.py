"""*Save as test story* on the real stack: James's conversation by SMS (hello, good thanks, his
date of birth, an offer, yes) is exported from Rasa's tracker, and ``rasa test`` passes the file
with the trained model, while nothing in it names James, his date of birth, phone or email."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from bot.cli import main
from bot.ops.stories import export_story
from tests.conftest import ROOT, TEST_SECRETS, wait_for, write_config
from tests.e2e.conftest import Product

pytestmark = pytest.mark.e2e

JAMES = "+12025550143"  # ACC-1002: James Whitfield, born 1979-11-02, owes $389.99
REAL_DETAILS = ("James", "Whitfield", "1979", "November", "2025550143", "555-0143", "whitfield@", "389.99")


def _say(product: Product, text: str, sid: str) -> list[str]:
    before = len(product.replies(JAMES))
    assert product.sms(JAMES, text, sid) == 200
    wait_for(lambda: len(product.replies(JAMES)) > before, timeout=90, what=f"a reply to {text!r}")
    count = -1
    while count != len(product.replies(JAMES)):  # a reply can be several messages: let them all land
        count = len(product.replies(JAMES))
        time.sleep(0.7)
    return [sent.text for sent in product.replies(JAMES)[before:]]


def test_a_real_conversation_exported_as_a_story_passes_rasa_test_and_names_nobody(
    product: Product, trained_model: Path, tmp_path: Path
) -> None:
    assert "date of birth" not in " ".join(_say(product, "hello", "SMst1"))
    assert "date of birth" in _say(product, "good thanks", "SMst2")[-1]
    assert _say(product, "2 November 1979", "SMst3")[0] == "Thank you, that's confirmed."
    assert _say(product, "I can do 50 a month", "SMst4")[-1].startswith("Shall I set that up for you?")
    assert _say(product, "yes", "SMst5")[0].startswith("All set, thank you.")
    conversation_id = product.replies(JAMES)[0].conversation_id or "acct-ACC-1002"

    out = tmp_path / "tests"
    path = export_story(product.services.rasa, conversation_id, product.services.accounts, out)
    again = export_story(product.services.rasa, conversation_id, product.services.accounts, out)
    assert path.parent == out and path.name.startswith("test_") and path.suffix == ".yml"
    assert again != path and again.name == path.name.replace(".yml", "_2.yml")  # never overwritten

    text = path.read_text(encoding="utf-8")
    leaked = [detail for detail in REAL_DETAILS if detail.lower() in text.lower()]
    assert not leaked, f"real details in the story: {leaked}\n{text}"
    assert conversation_id not in text and "ACC-1002" not in text
    [story] = yaml.safe_load(text)["stories"]
    steps = story["steps"]
    assert steps[0]["slot_was_set"][:2] == [{"account_known": True}, {"verified": False}]  # the session start
    intents = [step["intent"] for step in steps if "intent" in step]
    assert intents == ["greet", "mood_good", "inform", "propose_payment", "affirm"]
    actions = [step["action"] for step in steps if "action" in step]
    assert actions[-1] == "action_create_plan" and "verify_form" in actions and "payment_plan_form" in actions
    assert {"user": "14 July 1985", "intent": "inform"} in steps  # the date of birth, still a date
    assert {"slot_was_set": [{"verified": True}]} in steps  # verify_form's doing: rasa test runs no action

    results = tmp_path / "results"
    run = subprocess.run(
        [str(Path(sys.executable).parent / "rasa"), "test", "core", "--stories", str(path),
         "--model", str(trained_model), "--fail-on-prediction-errors", "--out", str(results)],
        cwd=ROOT / "rasa_project", capture_output=True, text=True, timeout=600,
        env={**os.environ, "RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2"},
    )  # fmt: skip
    assert run.returncode == 0, f"rasa test failed on\n{text}\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    assert "None of the test stories failed" in (results / "failed_test_stories.yml").read_text()

    # The command: into the configured project's tests/ folder (here a copy), the path printed.
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "rasa_project" / "domain.yml", project / "domain.yml")
    (tmp_path / "cli").mkdir()
    config = write_config(
        tmp_path / "cli", {"rasa": {"project_dir": str(project), "url": product.config.rasa.url}}
    )
    env = {"REDIS_URL": product.config.secrets.redis_url or "", **TEST_SECRETS}
    ran = CliRunner().invoke(main, ["export-story", conversation_id, "--config", str(config), "--name", "from_cli"],
                             env=env)  # fmt: skip
    assert ran.exit_code == 0, ran.output
    assert ran.output.strip() == str(project / "tests" / "test_from_cli.yml")
    assert yaml.safe_load((project / "tests" / "test_from_cli.yml").read_text())["stories"]
    unknown = CliRunner().invoke(main, ["export-story", "acct-NOBODY", "--config", str(config)], env=env)
    assert unknown.exit_code == 1 and "acct-NOBODY" in unknown.output
