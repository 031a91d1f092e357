"""The ops pages in a real browser (Debian's Chromium, Playwright) on the whole product: the real
Rasa server (its SQL event broker writing into the analytics store), the worker, Redis, the
gateway over real HTTP, the sandboxed SMS channel.

One tuning cycle, as docs/ops.md tells it: the product opens a conversation with Darnell, he
answers something the bot does not understand well; the scheduler's housekeeping brings the
events into the analytics store; an ops person finds the conversation in the review with the
intent and confidence of each message, saves it as a test story, finds the message in the NLU
inbox and labels it into the review file, and sees the conversation counted in the funnel and the
opener comparison, with charts that load and tables beside them. axe-core finds no
accessibility violation on any of these pages. The screenshots in docs/ops.md are made here.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from werkzeug.serving import make_server

from bot.config import Config, load_config
from bot.console.agents import AgentDirectory, Role
from bot.gateway.app import create_app
from bot.ops.web import ops_blueprint
from tests.conftest import ROOT, TEST_SECRETS, free_port, wait_for
from tests.e2e import test_console_browser
from tests.e2e.conftest import Product, open_by_outreach
from tests.e2e.test_console_browser import AXE, CHROMIUM, SCREENSHOTS, _no_accessibility_violations

# The console's browser (Debian's Chromium through Playwright), found by name.
browser = test_console_browser.browser

pytestmark = pytest.mark.e2e

DARNELL = "+15125550108"  # ACC-1011, Austin, English, Hill Country Internet
ACCOUNT = "ACC-1011"
CONVERSATION = "acct-ACC-1011"
CREDITOR = "Hill Country Internet"
#: The person asks to move a payment date: the model reads it as ``inform`` with low confidence.
UNCLEAR = "can u do it on the 15th instead"
PASSWORD = "a long ops passphrase"


@dataclass
class OpsConsole:
    url: str
    product: Product
    config: Config

    @property
    def project(self) -> Path:
        return self.config.path(self.config.rasa.project_dir)

    @property
    def review_file(self) -> Path:
        return self.config.path(self.config.ops.review_file)


class _WithConfig:
    """The product's parts, with this console's configuration (its own Rasa project)."""

    def __init__(self, services: Any, config: Config) -> None:
        self._services = services
        self.config = config

    def __getattr__(self, name: str) -> Any:
        return getattr(self._services, name)


@pytest.fixture
def ops_console(product: Product) -> Iterator[OpsConsole]:
    """The gateway with the ops pages over real HTTP, on the product's parts; its Rasa project is
    a copy in the test's folder, so the story and the label written here never touch the repo's."""
    if not Path(CHROMIUM).exists() or not AXE.exists():
        pytest.fail("Debian's chromium and axe-core are needed: make test installs both")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # The project copy sits where a deployment's does, beside the configuration (its paths are
    # then shown as in production: rasa_project/...); made afresh for each run.
    project = product.config.base_dir / "rasa_project"
    shutil.rmtree(project, ignore_errors=True)
    shutil.copytree(
        ROOT / "rasa_project", project, ignore=shutil.ignore_patterns("models", ".rasa", "results")
    )
    port = free_port()
    config = load_config(product.config.source, {
        "REDIS_URL": product.config.secrets.redis_url or "", **TEST_SECRETS,
        "DEBTBOT__SERVER__PUBLIC_URL": f"http://127.0.0.1:{port}",
        "DEBTBOT__RASA__PROJECT_DIR": str(project),
        "DEBTBOT__OPS__REVIEW_FILE": "rasa_project/data/nlu/review.yml",
    })  # fmt: skip
    services = product.services
    AgentDirectory(services.redis, services.keys, product.clock).add("olga", Role.OPS, PASSWORD)
    parts = _WithConfig(services, config)
    app = create_app(config, parts, blueprints=[ops_blueprint(parts)])  # type: ignore[arg-type]
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield OpsConsole(f"http://127.0.0.1:{port}", product, config)
    server.shutdown()
    shutil.rmtree(project, ignore_errors=True)


def _say(product: Product, text: str, sid: str) -> None:
    before = len(product.replies(DARNELL))
    assert product.sms(DARNELL, text, sid) == 200
    wait_for(lambda: len(product.replies(DARNELL)) > before, timeout=90, what=f"a reply to {text!r}")


def _checked(page: Any, what: str, screenshot: str | None = None) -> None:
    """No axe-core violation on the page; its screenshot for docs/ops.md."""
    _no_accessibility_violations(page, what)
    if screenshot:
        page.screenshot(path=str(SCREENSHOTS / screenshot), full_page=True)


def _image_loaded(page: Any, selector: str) -> bool:
    return bool(page.evaluate(f"() => {{ const i = document.querySelector('{selector}'); "
                              "return !!i && i.complete && i.naturalWidth > 0; }"))  # fmt: skip


def test_one_tuning_cycle_in_the_ops_pages(browser: Any, ops_console: OpsConsole) -> None:
    product = ops_console.product
    services = product.services
    open_by_outreach(product, ACCOUNT, lambda: product.replies(DARNELL))
    _say(product, "hi, doing ok thanks", "SMops1")
    _say(product, UNCLEAR, "SMops2")
    time.sleep(1.0)  # Rasa's event broker has written the last turn
    services.ops_housekeeping(product.clock.now())  # the scheduler's tick: ingest, then summarise

    # bypass_csp only so the test can inject axe-core; the pages' own CSP is tested in
    # tests/bot/ops/test_web.py (nothing in them is inline).
    page = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True).new_page()
    page.goto(f"{ops_console.url}/console/ops/")
    assert "/console/sign-in" in page.url  # nothing without signing in
    page.fill("#name", "olga")
    page.fill("#password", PASSWORD)
    page.click("#sign-in")
    page.wait_for_url("**/console/ops/")
    assert "Inbox" not in page.inner_text("nav")  # ops people tune the bot; agents answer people

    # Review: the conversation, each message with its intent and confidence.
    page.click("nav >> text=Review")
    row = f'tr.review-item[data-conversation="{CONVERSATION}"]'
    page.wait_for_selector(row)
    assert CREDITOR in page.inner_text(row)
    _checked(page, "the review list", "ops-review.png")
    page.click(f"{row} a")
    unclear = page.wait_for_selector(f".turn-user:has-text('{UNCLEAR}')")
    assert "intent inform" in unclear.inner_text() and "low confidence" in unclear.inner_text()
    assert unclear.query_selector(".confidence") is not None
    _checked(page, "a conversation under review", "ops-review-conversation.png")

    # Save as test story: an anonymised story in the project's tests/.
    page.click("#story-form button")
    saved = page.wait_for_selector("#messages .message").inner_text()
    written = sorted((ops_console.project / "tests").glob("test_conversation_*.yml"))
    assert len(written) == 1 and written[0].name in saved, saved
    story = written[0]
    text = story.read_text(encoding="utf-8")
    assert "Darnell" not in text and "5125550108" not in text and CONVERSATION not in text
    assert UNCLEAR in text  # what he wrote stays (nothing in it identifies him)

    # The NLU inbox: the message, labelled under the intent it meant.
    page.click("nav >> text=NLU inbox")
    example = page.wait_for_selector(f"tr.nlu-example:has-text('{UNCLEAR}')")
    _checked(page, "the NLU inbox", "ops-nlu-inbox.png")
    example.query_selector("select[name=intent]").select_option("set_contact_time")
    example.query_selector("button[type=submit]").click()
    page.wait_for_selector("#messages >> text=set_contact_time")
    assert page.query_selector(f"tr.nlu-example:has-text('{UNCLEAR}')") is None  # handled: gone
    labelled = yaml.safe_load(ops_console.review_file.read_text(encoding="utf-8"))
    [block] = [b for b in labelled["nlu"] if b["intent"] == "set_contact_time"]
    assert UNCLEAR in block["examples"]

    # The funnel: contacted and replied, the chart drawn, the numbers beside it, a CSV.
    today = product.clock.now().astimezone(ZoneInfo(ops_console.config.console.zone)).date()
    days = f"since={today - timedelta(days=3)}&until={today + timedelta(days=3)}"
    page.goto(
        f"{ops_console.url}/console/ops/funnel?{days}&by=creditor&creditor={CREDITOR.replace(' ', '+')}"
    )
    page.wait_for_selector("#funnel-table")
    wait_for(lambda: _image_loaded(page, "#funnel-chart"), timeout=10, what="the funnel chart")
    assert page.inner_text("#funnel-1-contacted").split()[0] == "1"
    assert page.inner_text("#funnel-1-replied").split()[0] == "1"
    _checked(page, "the funnel", "ops-funnel.png")
    csv = page.request.get(f"{ops_console.url}/console/ops/funnel.csv?{days}&by=creditor&table=stages")
    assert csv.ok and csv.headers["content-type"].startswith("text/csv")
    assert CREDITOR in csv.text()

    # The opener wordings compared, and where the bot loses people.
    page.goto(f"{ops_console.url}/console/ops/openers?{days}")
    page.wait_for_selector("#openers-table")
    wait_for(lambda: _image_loaded(page, "#openers-chart"), timeout=10, what="the openers chart")
    _checked(page, "the opener wordings", "ops-openers.png")
    page.goto(f"{ops_console.url}/console/ops/losses?{days}")
    page.wait_for_selector("main table")
    _checked(page, "where the bot loses people", "ops-losses.png")
