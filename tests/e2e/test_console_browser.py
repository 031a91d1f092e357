"""The agents' console in a real browser (Debian's Chromium, Playwright), on the whole product:
the real Rasa server and action server, the worker, Redis, the gateway over real HTTP, the
sandboxed SMS channel, one set clock.

A debtor's "I want to talk to a person" appears in the inbox live (within 2 s, its wait timed
by the same clock as everything else: the action server follows the tests' clock); an agent
claims it, the debtor's next message appears live while the bot stays silent; the SMS segment
counter follows what the agent types; the agent's reply reaches the debtor and Rasa's tracker;
handed back, the bot answers again. Two agents claiming at once: one wins. A reply at a quiet hour
is deferred, and says until when. A dispute flag set in the console stops the next outreach. A
crisis sounds the alert and shows a browser notification without a word about the debt; a wait
past the target is highlighted. A form without its CSRF token gets 400, an agent cannot open a
supervisor's page, the 6th wrong password waits. axe-core finds no accessibility violation on the
inbox or the conversation page, and a debtor's markup stays text. The screenshots in the README
are made here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from bot.config import load_config
from bot.console.agents import AgentDirectory, Role
from bot.console.handoff import State
from bot.gateway.app import create_app
from bot.outreach.scheduler import tick
from tests.conftest import ROOT, TEST_SECRETS, free_port, wait_for
from tests.e2e.conftest import Product

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"]  # fmt: skip
AXE = ROOT / "tests" / "browser" / "node_modules" / "axe-core" / "axe.min.js"
#: Where the screenshots go: var/ on every run; `make screenshots` points this at docs/screenshots
#: (the README's) so a test run never changes files under version control.
SCREENSHOTS = ROOT / os.environ.get("DEBTBOT_SCREENSHOTS_DIR", "var/screenshots")

EMILY = "+14155550132"  # ACC-1005, Los Angeles, English, not verified
CONVERSATION = "acct-ACC-1005"
#: Monday 7 December 2026, 15:00 in New York (12:00 in Los Angeles): agents at work.
MONDAY_AFTERNOON = datetime(2026, 12, 7, 20, 0, tzinfo=timezone.utc)
PASSWORD = "a long console passphrase"
XSS = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script> are you there?'
DARNELL = "+15125550108"  # ACC-1011, Chicago, English; owes Hill Country Internet 230.00
#: Before any page script: records every browser notification and every sound the page plays
#: (the real ones still go ahead).
RECORD_ALERTS = """
(() => {
  const alerts = window.__alerts = {notifications: [], sounds: []};
  const Real = window.Notification;
  if (Real) {
    const Recorded = function (title, options) {
      const given = options || {};
      alerts.notifications.push({title: String(title), body: String(given.body || ""), tag: String(given.tag || "")});
      try { return new Real(title, options); } catch (e) { return {}; }
    };
    Object.defineProperty(Recorded, "permission", {get: () => Real.permission});
    Recorded.requestPermission = (...args) => Real.requestPermission(...args);
    window.Notification = Recorded;
  }
  const play = HTMLMediaElement.prototype.play;
  Audio.prototype.play = function () {
    alerts.sounds.push(this.src);
    return play.call(this).catch(() => undefined);
  };
})();
"""


@dataclass
class Console:
    url: str
    product: Product

    def sms(self, text: str, sid: str) -> None:
        assert self.product.sms(EMILY, text, sid) == 200

    def outbox(self) -> list[str]:
        return [e.text for e in self.product.services.outbox.read(channel="sms", recipient=EMILY)]

    def tracker_events(self) -> list[dict[str, Any]]:
        return list(self.product.services.rasa.tracker(CONVERSATION).get("events") or [])


@pytest.fixture
def console(product: Product) -> Iterator[Console]:
    """The gateway over real HTTP on the product's parts (its clock, Redis and worker), with
    three agents; the public URL is this server's, so the session cookie is not Secure-only."""
    if not Path(CHROMIUM).exists() or not AXE.exists():
        pytest.fail("Debian's chromium and axe-core are needed: make test installs both")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    product.clock.set(MONDAY_AFTERNOON)
    port = free_port()
    config = load_config(product.config.source, {
        "REDIS_URL": product.config.secrets.redis_url or "", **TEST_SECRETS,
        "DEBTBOT__SERVER__PUBLIC_URL": f"http://127.0.0.1:{port}",
    })  # fmt: skip
    directory = AgentDirectory(product.services.redis, product.services.keys, product.clock)
    directory.add("sam", Role.SUPERVISOR, PASSWORD)
    directory.add("ana", Role.AGENT, PASSWORD)
    directory.add("ben", Role.AGENT, PASSWORD)
    server = make_server("127.0.0.1", port, create_app(config, product.services), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Console(f"http://127.0.0.1:{port}", product)
    server.shutdown()


@pytest.fixture
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        yield chromium
        chromium.close()


def _page(browser: Any, *, alerts: bool = False) -> Any:
    """A new browser window at 1280x800 (``alerts``: notifications allowed, and every
    notification and sound recorded in ``window.__alerts``)."""
    # bypass_csp only so the test can inject axe-core; the console's own CSP is tested in
    # tests/bot/console/test_web.py (and nothing in the pages is inline).
    context = browser.new_context(
        viewport={"width": 1280, "height": 800}, bypass_csp=True,
        permissions=["notifications"] if alerts else [],
    )  # fmt: skip
    if alerts:
        context.add_init_script(RECORD_ALERTS)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.dismiss())
    return page


def _signed_in(browser: Any, console: Console, name: str, *, alerts: bool = False) -> Any:
    page = _page(browser, alerts=alerts)
    page.goto(f"{console.url}/console/")
    assert "/console/sign-in" in page.url  # nothing without signing in
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.click("#sign-in")
    page.wait_for_selector("#inbox-items", state="attached")
    return page


def _waited_minutes(page: Any, row: str) -> int:
    """The minutes a row says it has waited ("12 min", "2 h 5 min")."""
    text = page.inner_text(f"{row} td.waited")
    found = re.match(r"^\s*(?:(\d+) h )?(\d+) min", text)
    assert found, f"the waited cell says {text!r}"
    return int(found[1] or 0) * 60 + int(found[2])


def _no_accessibility_violations(page: Any, what: str) -> None:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    violations = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]]
    assert violations == [], f"{what}: {violations}"


def _escalated(console: Console) -> None:
    """Emily asks for a person; the dialogue escalates (wait until the console has it)."""
    console.sms("I want to talk to a person", "SMcon1")
    wait_for(lambda: console.product.services.handoff.get(CONVERSATION).state is State.WAITING,
             timeout=60, what="the escalation")  # fmt: skip


def test_an_agent_takes_over_answers_and_hands_back(browser: Any, console: Console) -> None:
    page = _signed_in(browser, console, "sam")
    page.evaluate("window.__notReloaded = true")
    _escalated(console)
    escalated_at = time.monotonic()
    row = f'tr.inbox-item[data-conversation="{CONVERSATION}"]'
    page.wait_for_selector(row, timeout=2000)
    assert time.monotonic() - escalated_at < 2.0  # live, within 2 s
    assert page.evaluate("window.__notReloaded") is True  # without a reload
    assert "asked_for_person" in page.inner_text(row) or "person" in page.inner_text(row).lower()
    # Escalated by the action server, waiting since the product's now (one clock for all):
    # under the target, so not highlighted.
    target = console.product.config.console.target_minutes
    assert _waited_minutes(page, row) < target
    assert "overdue" not in (page.get_attribute(row, "class") or "")
    assert "over target" not in page.inner_text(row)
    assert console.outbox()[-1].endswith("usually within the hour.")  # told roughly when
    _no_accessibility_violations(page, "the inbox")
    page.screenshot(path=str(SCREENSHOTS / "console-inbox.png"))

    page.click(f"{row} a")
    page.wait_for_selector("#history")
    assert page.is_visible("#not-verified")  # nothing about the debt before verification
    _the_segment_counter_follows_the_typing(page)
    page.click("#claim")
    page.wait_for_selector("#state[data-state='agent']")
    assert "sam" in page.inner_text("#state")
    assert {"event": "pause"}.items() <= _last(console.tracker_events(), "pause").items()

    said_before = len(console.outbox())
    console.sms(XSS, "SMcon2")
    line = page.wait_for_selector(".history-line.in >> text=are you there?", timeout=30_000)
    assert "<img src=x" in line.inner_text()  # shown as text
    assert page.evaluate("window.__pwned") is None  # and run as nothing
    time.sleep(1.0)  # the worker is done with it (the line appears after it was recorded)
    assert len(console.outbox()) == said_before  # the bot stayed silent

    page.fill("#reply-text", "Hi Emily, this is Sam from the team. How are you doing today?")
    page.click("#reply-send")
    page.wait_for_selector("#reply-verdict >> text=Sent")
    wait_for(lambda: "Hi Emily, this is Sam" in " ".join(console.outbox()), timeout=30, what="the reply")
    bot_said = _last(console.tracker_events(), "bot")
    assert bot_said["text"].startswith("Hi Emily, this is Sam") and bot_said["metadata"]["agent"] == "sam"
    page.wait_for_selector(".history-line.out >> text=Hi Emily, this is Sam")
    _no_accessibility_violations(page, "the conversation page")
    page.screenshot(path=str(SCREENSHOTS / "console-conversation.png"), full_page=True)

    page.click("#hand-back")
    page.wait_for_selector("#state[data-state='bot']")
    assert _last(console.tracker_events(), "resume")
    wait_for(lambda: any("back with the assistant" in t for t in console.outbox()), timeout=30,
             what="the bot's welcome back")  # fmt: skip
    answered = len(console.outbox())
    console.sms("hello again", "SMcon3")
    wait_for(lambda: len(console.outbox()) > answered, timeout=60, what="the bot answering again")


def test_two_agents_claim_at_once_and_one_wins(browser: Any, console: Console) -> None:
    _escalated(console)
    pages = [_signed_in(browser, console, name) for name in ("ana", "ben")]
    for page in pages:
        page.goto(f"{console.url}/console/c/{CONVERSATION}")
    for page in pages:  # both press Claim before either answer arrives
        page.evaluate("document.getElementById('claim').click()")
    services = console.product.services
    wait_for(lambda: services.handoff.get(CONVERSATION).state is State.AGENT, timeout=30, what="a claim")
    for page in pages:  # each page, once its form's answer came back
        page.wait_for_selector("#state[data-state='agent']", timeout=30_000)
    winner = services.handoff.get(CONVERSATION).agent
    assert winner in ("ana", "ben")
    loser = pages[1] if winner == "ana" else pages[0]
    loser.wait_for_selector(f"#messages >> text={winner} has already claimed this conversation")


def test_a_reply_at_a_quiet_hour_is_deferred_until_the_persons_morning(
    browser: Any, console: Console
) -> None:
    _escalated(console)
    product = console.product
    # 03:00 in Los Angeles the next night: Emily last wrote fifteen hours ago.
    product.clock.set(MONDAY_AFTERNOON + timedelta(hours=15))
    page = _signed_in(browser, console, "ana")
    page.goto(f"{console.url}/console/c/{CONVERSATION}")
    page.click("#claim")
    page.wait_for_selector("#state[data-state='agent']")
    said = len(console.outbox())
    page.fill("#reply-text", "Hi Emily, I have looked at your account. When suits you to talk?")
    page.click("#reply-send")
    verdict = page.wait_for_selector("#reply-verdict >> text=Deferred until").inner_text()
    assert "08:00" in verdict or "8:00" in verdict  # the person's morning, in both zones
    tick(product.services)
    assert len(console.outbox()) == said  # not at night
    product.clock.set(MONDAY_AFTERNOON + timedelta(hours=20, minutes=1))  # 08:01 in Los Angeles
    tick(product.services)
    wait_for(lambda: len(console.outbox()) > said, timeout=30, what="the deferred reply in the morning")
    assert "When suits you to talk?" in console.outbox()[-1]


def test_a_dispute_flag_set_by_keyboard_in_the_console_stops_the_next_outreach(
    browser: Any, console: Console
) -> None:
    _escalated(console)
    page = _signed_in(browser, console, "ana")
    page.goto(f"{console.url}/console/c/{CONVERSATION}")
    # By keyboard alone: Tab to the button (it shows where the focus is), Enter presses it.
    for _ in range(200):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "flag-dispute":
            break
    else:
        raise AssertionError("Tab never reached the dispute flag's button")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none"), "the focused control shows no focus ring"
    page.keyboard.press("Enter")
    page.wait_for_selector("tr.flag[data-flag='dispute'] >> text=yes")
    services = console.product.services
    # The next run that would contact her: once the interval since she last wrote has passed.
    days = services.config.outreach.contact_every_days
    console.product.clock.set(MONDAY_AFTERNOON + timedelta(days=days, hours=1))
    services.outreach_handler().contact_many(["ACC-1005"])
    decisions = [f for _, f in services.redis.xrange(services.keys.audit) if f.get(b"kind") == b"opener"]
    assert decisions and (decisions[-1][b"verdict"], decisions[-1][b"rule"]) == (b"block", b"pause:dispute")


def _the_segment_counter_follows_the_typing(page: Any) -> None:
    """SMS: GSM-7 fits 160 in one segment, then 153 each; one emoji makes it UCS-2 (70, then 67)."""
    counter = page.locator("#reply-segments")
    text = page.locator("#reply-text")
    text.press_sequentially("a" * 150)
    assert counter.inner_text() == "SMS: 1 segment (GSM-7, 150 characters)"
    text.press_sequentially("b" * 20)
    assert counter.inner_text() == "SMS: 2 segments (GSM-7, 170 characters)"
    text.fill("a" * 68)
    text.press_sequentially("\N{SLIGHTLY SMILING FACE}")  # two UCS-2 units
    assert counter.inner_text() == "SMS: 1 segment (UCS-2, 70 characters)"
    text.press_sequentially("!")
    assert counter.inner_text() == "SMS: 2 segments (UCS-2, 71 characters)"
    text.fill("")


def test_a_crisis_sounds_and_notifies_and_a_long_wait_is_highlighted(browser: Any, console: Console) -> None:
    page = _signed_in(browser, console, "ana", alerts=True)
    assert page.evaluate("Notification.permission") == "granted"
    assert console.product.sms(DARNELL, "I'm going to end it all", "SMcri1") == 200
    row = 'tr.inbox-item.crisis[data-conversation="acct-ACC-1011"]'
    page.wait_for_selector(row, timeout=60_000)
    page.wait_for_function("window.__alerts.notifications.length > 0", timeout=5000)
    alerts = page.evaluate("window.__alerts")
    assert alerts["notifications"] == [
        {"title": "Crisis: a person needs help now", "body": "Darnell (sms)", "tag": "crisis-acct-ACC-1011"}
    ]
    said = json.dumps(alerts["notifications"]).lower()
    assert not any(word in said for word in ("230", "hill country", "debt", "owe", "balance", "$"))
    [sound] = alerts["sounds"]
    assert sound.endswith("/alert.wav")
    played = page.request.get(sound)
    assert played.ok and played.body()[:4] == b"RIFF"  # the sound is there to play

    # Fresh: under the target, not highlighted. Past the target on the product's clock: highlighted.
    target = console.product.config.console.target_minutes
    assert _waited_minutes(page, row) < target
    assert "overdue" not in (page.get_attribute(row, "class") or "")
    console.product.clock.advance(timedelta(minutes=target + 1))
    late = page.wait_for_selector(f"{row}.overdue td.waited .late", timeout=5000)
    assert late.inner_text().strip() == "(over target)"
    assert _waited_minutes(page, row) > target
    assert len(page.evaluate("window.__alerts.notifications")) == 1  # once per crisis, not per redraw

    # An agent cannot open a supervisor's page.
    refused = page.goto(f"{console.url}/console/agents")
    assert refused is not None and refused.status == 403
    assert page.inner_text("h1") == "Not allowed"

    # A form posted without its CSRF token: 400, and nothing changed.
    page.goto(f"{console.url}/console/c/acct-ACC-1011")
    page.evaluate("document.getElementById('claim').form.querySelector('input[name=csrf_token]').remove()")
    with page.expect_navigation() as answer:
        page.click("#claim")
    assert answer.value is not None and answer.value.status == 400
    assert "CSRF" in page.inner_text("main")
    assert console.product.services.handoff.get("acct-ACC-1011").state is not State.AGENT

    # The 6th wrong password in 15 minutes waits (and so does the right one then).
    signing_in = _page(browser)
    signing_in.goto(f"{console.url}/console/sign-in")
    for attempt, password in enumerate([f"wrong guess {n}" for n in range(1, 7)] + [PASSWORD], start=1):
        signing_in.fill("#name", "ben")
        signing_in.fill("#password", password)
        with signing_in.expect_navigation():
            signing_in.click("#sign-in")
        message = signing_in.inner_text("#sign-in-error")
        assert ("Please wait" in message) == (attempt >= 6), (attempt, message)


def _last(events: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [event for event in events if event.get("event") == kind]
    assert found, f"no {kind!r} event in the tracker: {[e.get('event') for e in events][-15:]}"
    return found[-1]


def test_an_agent_checks_the_answer_then_sets_up_a_plan_the_person_agreed_to(
    browser: Any, console: Console
) -> None:
    _escalated(console)
    page = _signed_in(browser, console, "ana")
    page.goto(f"{console.url}/console/c/{CONVERSATION}")
    page.click("#claim")
    page.wait_for_selector("#state[data-state='agent']")
    page.click("#ask-verification")
    wait_for(lambda: "date of birth" in console.outbox()[-1], timeout=30, what="the verification question")
    console.sms("14 September 1988", "SMcon9")  # Emily's, from examples/accounts.csv
    page.wait_for_selector(".history-line.in >> text=14 September 1988", timeout=30_000)
    page.click("#check-verification")
    assert "verified" in page.inner_text("#messages").lower()
    assert page.is_hidden("#not-verified")

    page.click("#plan-use-1")
    page.wait_for_selector("#plan-preview-box")
    schedule = page.inner_text("#plan-schedule")
    assert schedule.strip()  # the schedule, read back before anything is set up
    page.check("#plan-confirmed")
    page.click("#plan-create")
    page.wait_for_selector("#messages >> text=Payment link")
    services = console.product.services
    [plan_id] = [m.decode() for m in services.redis.lrange(services.keys.account_plans("ACC-1005"), 0, -1)]
    link = json.loads(services.redis.get(services.keys.plan(plan_id)) or "{}")["payment_link"]
    wait_for(lambda: any(link in t for t in console.outbox()), timeout=30,
             what="the schedule and payment link sent to the person")  # fmt: skip
    events = [f for _, f in services.redis.xrange(services.keys.events)]
    assert any(f.get(b"type") == b"plan.created" for f in events), events[-3:]
