"""The simulator page in a real browser (Debian's Chromium): pick an account and a channel,
write as the debtor, see the bot's reply, all through a real HTTP gateway."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator

import pytest
import redis
from werkzeug.serving import make_server

from bot.config import Config, load_config
from bot.gateway.app import create_app
from bot.runtime.services import build_services
from bot.runtime.worker import Worker
from bot.store.accounts import AccountStore
from tests.conftest import ROOT, TEST_SECRETS, free_port
from tests.e2e.conftest import RasaStack

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
BROWSER_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture
def gateway_url(
    stack_config: Config, rasa_stack: RasaStack, redis_client: redis.Redis, redis_url: str
) -> Iterator[str]:
    port = free_port()
    config = load_config(
        stack_config.source,
        {"REDIS_URL": redis_url, **TEST_SECRETS, "DEBTBOT__SERVER__PORT": str(port),
         "DEBTBOT__SERVER__PUBLIC_URL": f"http://127.0.0.1:{port}"},
    )  # fmt: skip
    services = build_services(config, redis_client)
    AccountStore(redis_client, services.keys).import_csv(
        (ROOT / "examples" / "accounts.csv").read_text(),
        languages=["en", "es"], default_language="en", verification_field="date_of_birth",
    )  # fmt: skip
    server = make_server("127.0.0.1", port, create_app(config, services), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    worker = Worker(build_services(config))
    worker.start()
    yield f"http://127.0.0.1:{port}"
    worker.stop()
    server.shutdown()


def test_debtor_writes_in_the_simulator_and_sees_the_reply(gateway_url: str) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not shutil.which(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{gateway_url}/simulator")
            assert "DEVELOPMENT SIMULATOR" in page.inner_text(".banner")
            page.wait_for_selector("#account option[value='ACC-1008']", state="attached")
            page.select_option("#account", "ACC-1008")
            page.select_option("#channel", "sms")
            page.fill("#text", "hola")
            page.click("#send")
            page.wait_for_selector(".msg.bot", timeout=60_000)
            bubbles = page.locator(".msg").all_inner_texts()
            assert bubbles == ["hola", "¡Hola, Lucía! Gracias por escribir. ¿Cómo está hoy?"]
            assert "webhook accepted (HTTP 200)" in page.inner_text("#status")
        finally:
            browser.close()
