"""`debtbot reload` on the real stack: a new model goes into the running Rasa server while a
conversation is in the middle of the identity check (a form) and while other people write; the
form carries on under the new model and every message is answered. A canary that fails, or a
model that will not load, leaves the server on the model it had."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.ops.reload import current_model, load_model, reload
from tests.conftest import TEST_SECRETS, wait_for
from tests.e2e.conftest import Product, RasaStack

pytestmark = pytest.mark.e2e

JAMES = "+12025550143"  # ACC-1002, born 1979-11-02
EMILY = "+14155550132"  # ACC-1005


def _say(product: Product, who: str, text: str, sid: str) -> list[str]:
    before = len(product.replies(who))
    assert product.sms(who, text, sid) == 200
    wait_for(lambda: len(product.replies(who)) > before, timeout=90, what=f"a reply to {text!r}")
    time.sleep(1.0)  # a reply can be several messages
    return [sent.text for sent in product.replies(who)[before:]]


def test_a_reload_keeps_a_form_going_answers_everyone_and_rolls_back_a_bad_model(
    product: Product, rasa_stack: RasaStack, trained_model: Path, tmp_path: Path
) -> None:
    url, token = rasa_stack.config.rasa.url, rasa_stack.config.secrets.rasa_token
    assert current_model(url, token) == trained_model.name  # Rasa names the archive, no folder
    new = tmp_path / "debtbot-retrained.tar.gz"
    shutil.copy(trained_model, new)  # "newly trained": another archive of the same data
    try:
        _say(product, JAMES, "hello", "SMrl1")
        asked = _say(product, JAMES, "good thanks", "SMrl2")
        assert "date of birth" in asked[-1]  # inside the identity check

        # Others write while the model is swapped: their messages wait, none is lost.
        others = [("hello", "SMrl10"), ("how does this work", "SMrl11"), ("thanks", "SMrl12")]
        sender = threading.Thread(
            target=lambda: [product.sms(EMILY, text, sid) or time.sleep(0.3) for text, sid in others]
        )
        lines: list[str] = []
        sender.start()
        result = reload([url], token, new, models_dir=trained_model.parent, say=lines.append)
        sender.join()
        assert result.ok, lines
        assert current_model(url, token) == new.name
        wait_for(
            lambda: len(product.replies(EMILY)) >= len(others), timeout=120, what="every message answered"
        )

        confirmed = _say(product, JAMES, "2 November 1979", "SMrl3")
        assert confirmed[0] == "Thank you, that's confirmed."  # the form went on under the new model

        failing = reload(
            [url], token, trained_model, models_dir=tmp_path, canary=lambda u, t: "planted failure"
        )
        assert not failing.ok and failing.rolled_back == [url] and "planted failure" in failing.message
        assert current_model(url, token) == new.name  # rolled back to what it ran (found beside it)

        broken = tmp_path / "broken.tar.gz"
        broken.write_bytes(b"not a model")
        refused = reload([url], token, broken, models_dir=tmp_path)
        assert not refused.ok and current_model(url, token) == new.name
        assert _say(product, EMILY, "hello again", "SMrl13")  # and it still answers

        # A model it could not roll back to (not in models/): it refuses before touching anything.
        stuck = reload([url], token, trained_model, models_dir=trained_model.parent)
        assert not stuck.ok and "nothing to roll back to" in stuck.message and stuck.rolled_back == []
        assert current_model(url, token) == new.name

        # The command, from the configuration: the shipped model again.
        load_model(url, token, str(trained_model))
        env = {"REDIS_URL": rasa_stack.config.secrets.redis_url or "", **TEST_SECRETS}
        ran = CliRunner().invoke(
            main,
            ["reload", "--config", str(rasa_stack.config.source), "--model", str(trained_model)],
            env=env,
        )
        assert ran.exit_code == 0, ran.output
        assert f"{trained_model.name} loaded on 1 server(s)" in ran.output
        assert current_model(url, token) == trained_model.name
    finally:
        load_model(url, token, str(trained_model))
