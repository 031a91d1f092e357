"""A real Rasa server and action server on the test Redis, started once per module.

Every product here runs on a set clock, never the wall clock: ``DEBTBOT_TEST_CLOCK``
("HH:MM Area/City", the time of day in that zone on the date it is there when the session
starts; default :data:`DEFAULT_CLOCK`). ``make test`` runs the e2e tests marked ``clock`` at a
second setting (night in New York), so each must pass, and prove the right thing, at both.
The action server, a process of its own, follows the same clock through a file
(``DEBTBOT_TEST_CLOCK_FILE``): every set or advance of a test's clock is written there.
"""

from __future__ import annotations

import functools
import html
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from datetime import time as dtime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis
from flask.testing import FlaskClient

from bot.clock import CLOCK_FILE_ENV, Clock, moment_from_setting, publish
from bot.config import Config, load_config
from bot.gateway.app import create_app
from bot.outreach.scheduler import tick
from bot.runtime.launch import actions_ready, actions_spec, child_env, rasa_ready, rasa_spec
from bot.runtime.services import Services, build_services
from bot.runtime.supervisor import ManagedProcess
from bot.runtime.worker import Worker
from bot.store.accounts import AccountStore
from channels.telegram import SECRET_HEADER, button_data
from tests.conftest import ROOT, TEST_SECRETS, free_port, wait_for, write_config
from tests.fakes import telegram_api
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.twilio_api import FakeTwilio
from tests.helpers import InProcessPoster, signed_sms

#: The clock setting when ``DEBTBOT_TEST_CLOCK`` is unset (inside contact hours in New York).
DEFAULT_CLOCK = "15:00 America/New_York"
CLOCK_ENV = "DEBTBOT_TEST_CLOCK"


@functools.lru_cache(maxsize=1)
def clock_start() -> datetime:
    """The moment every e2e product's clock starts at (``DEBTBOT_TEST_CLOCK``), fixed for the
    session: the set time of day on the date it is in that zone when first asked."""
    setting = os.environ.get(CLOCK_ENV) or DEFAULT_CLOCK
    try:
        return moment_from_setting(setting)
    except ValueError as exc:
        raise pytest.UsageError(f"{CLOCK_ENV}: {exc}") from None


class SharedClock(Clock):
    """A test's set clock that the action server follows: each set or advance (and the start)
    is also written to ``path`` (the action server's ``DEBTBOT_TEST_CLOCK_FILE``)."""

    def __init__(self, path: Path, at: datetime) -> None:
        super().__init__(at)
        self.path = path
        publish(path, at)

    def set(self, at: datetime) -> None:
        super().set(at)
        publish(self.path, self.now())

    def advance(self, by: timedelta) -> None:
        super().advance(by)
        publish(self.path, self.now())


@pytest.fixture(scope="session")
def clock_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the tests' clock is written for the action server (the session's start at first)."""
    path = tmp_path_factory.mktemp("clock") / "now"
    publish(path, clock_start())
    return path


@pytest.fixture
def clock(clock_file: Path) -> Clock:
    """The product's clock for one test, set to the session's setting (tests move it); the
    action server follows it."""
    return SharedClock(clock_file, clock_start())


class RasaStack:
    """The Rasa server and action server as the supervisor starts them; each can be stopped. The
    action server reads the time from ``clock_file`` (the tests' clock), never the wall clock."""

    def __init__(self, config: Config, model: Path, log: Path, clock_file: Path) -> None:
        self.config = config
        self.clock_file = clock_file
        self._log = log.open("a", encoding="utf-8")
        env = child_env(config)
        self.rasa = ManagedProcess(rasa_spec(config, env, model), self._log)
        self.actions = ManagedProcess(
            actions_spec(config, {**env, CLOCK_FILE_ENV: str(clock_file)}), self._log
        )

    def start_rasa(self) -> None:
        self.rasa.start()
        wait_for(lambda: rasa_ready(self.config), timeout=240, interval=0.5, what="Rasa server")

    def stop_rasa(self) -> None:
        self.rasa.stop()

    def start(self) -> None:
        self.actions.start()
        self.start_rasa()
        wait_for(lambda: actions_ready(self.config), timeout=60, interval=0.3, what="action server")

    def stop(self) -> None:
        self.rasa.stop()
        self.actions.stop()
        self._log.close()


@pytest.fixture(scope="session")
def stack_config_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("stack")
    path = write_config(
        folder,
        {
            "rasa": {
                "url": f"http://127.0.0.1:{free_port()}",
                "actions_url": f"http://127.0.0.1:{free_port()}",
            },
            "server": {"public_url": "https://bot.example.com"},
        },
    )
    return path


@pytest.fixture(scope="session")
def stack_config(stack_config_path: Path, redis_url: str) -> Config:
    return load_config(stack_config_path, {"REDIS_URL": redis_url, **TEST_SECRETS})


@pytest.fixture(scope="session")
def rasa_stack(
    stack_config: Config, trained_model: Path, tmp_path_factory: pytest.TempPathFactory, clock_file: Path
) -> Iterator[RasaStack]:
    log = tmp_path_factory.mktemp("logs") / "rasa.log"
    stack = RasaStack(stack_config, trained_model, log, clock_file)
    try:
        stack.start()
    except AssertionError:
        stack.stop()
        raise AssertionError("Rasa did not start; its output:\n" + log.read_text()[-5000:]) from None
    yield stack
    stack.stop()


@dataclass
class Product:
    config: Config
    services: Services
    client: FlaskClient
    worker: Worker | None

    def start_worker(self) -> None:
        # The worker's own services read the same clock as the test's.
        self.worker = Worker(build_services(self.config, clock=self.clock))
        self.worker.start()

    def stop_worker(self) -> None:
        assert self.worker is not None
        self.worker.stop()
        self.worker = None

    def sms(self, sender: str, text: str, sid: str) -> int:
        form = {"MessageSid": sid, "From": sender, "To": "+15005550006", "Body": text}
        body, headers = signed_sms(
            form,
            url=f"{self.config.server.public_url}/webhooks/sms",
            token=self.config.secrets.twilio_auth_token or "",
        )
        return self.client.post("/webhooks/sms", data=body, headers=headers).status_code

    def telegram(self, update: dict[str, object]) -> int:
        """Post a Telegram update to the webhook with the bot's secret token."""
        secret = self.config.secrets.telegram_webhook_secret or ""
        answer = self.client.post("/webhooks/telegram", json=update, headers={SECRET_HEADER: secret})
        return answer.status_code

    def telegram_replies(self, chat_id: str) -> list[TelegramSent]:
        if self.telegram_api is not None:
            return [
                TelegramSent(html.unescape(m.text), _titles(m.reply_markup), _data(m.reply_markup))
                for m in self.telegram_api.sent if str(m.chat_id) == chat_id
            ]  # fmt: skip
        return [
            TelegramSent(
                e.text,
                [b["title"] for b in e.buttons],
                [button_data(n, e.offer_id) for n in range(len(e.buttons))],
            )
            for e in self.services.outbox.read(channel="telegram", recipient=chat_id)
        ]

    def replies(self, recipient: str) -> list[Sent]:
        if self.twilio is not None:
            return [Sent(m.body) for m in self.twilio.messages if m.to == recipient]
        return [
            Sent(e.text, e.conversation_id)
            for e in self.services.outbox.read(channel="sms", recipient=recipient)
        ]

    twilio: FakeTwilio | None = None
    telegram_api: FakeTelegram | None = None
    clock: Clock = field(default_factory=Clock)


@dataclass(frozen=True)
class TelegramSent:
    """A Telegram message the product sent: its text as the person sees it, and its buttons."""

    text: str
    buttons: list[str]
    #: Each button's ``callback_data``, what a press sends back.
    data: list[str]


def _titles(markup: dict[str, Any] | None) -> list[str]:
    rows = (markup or {}).get("inline_keyboard", [])
    return [button["text"] for row in rows for button in row]


def _data(markup: dict[str, Any] | None) -> list[str]:
    rows = (markup or {}).get("inline_keyboard", [])
    return [button["callback_data"] for row in rows for button in row]


@dataclass(frozen=True)
class Sent:
    """A message the product sent, wherever it went (the sandbox outbox or Twilio)."""

    text: str
    conversation_id: str = ""


@pytest.fixture
def product(
    stack_config: Config, rasa_stack: RasaStack, redis_client: redis.Redis, clock: Clock
) -> Iterator[Product]:
    yield from _running(stack_config, rasa_stack, redis_client, None, clock=clock)


@pytest.fixture
def live_sms_product(
    stack_config_path: Path,
    redis_url: str,
    rasa_stack: RasaStack,
    redis_client: redis.Redis,
    fake_twilio: FakeTwilio,
    clock: Clock,
) -> Iterator[Product]:
    """The product with SMS live: Twilio credentials set, the REST API at the local stand-in."""
    env = {"REDIS_URL": redis_url, **TEST_SECRETS, "TWILIO_ACCOUNT_SID": TWILIO_SID, "TWILIO_AUTH_TOKEN": "live-token",
           "DEBTBOT__CHANNELS__SMS__API_BASE_URL": fake_twilio.base_url,
           # A short code's pace: a long code's one segment a second would make the test slow.
           "DEBTBOT__CHANNELS__SMS__SEGMENTS_PER_SECOND": "100"}  # fmt: skip
    config = load_config(stack_config_path, env)
    assert config.sms_live
    yield from _running(config, rasa_stack, redis_client, fake_twilio, clock=clock)


TWILIO_SID = "AC" + "5" * 32


@pytest.fixture
def telegram_product(
    stack_config: Config,
    stack_config_path: Path,
    redis_url: str,
    rasa_stack: RasaStack,
    redis_client: redis.Redis,
    clock: Clock,
) -> Iterator[Product]:
    """The product with Telegram live against the Bot API stand-in, or sandboxed when the
    Bot API description is absent (the conversation is worth running either way)."""
    if telegram_api.spec_missing_reason() is not None:
        yield from _running(stack_config, rasa_stack, redis_client, None, clock=clock)
        return
    with telegram_api.FakeTelegram(telegram_api.TelegramSpec.load()) as fake:
        env = {"REDIS_URL": redis_url, **TEST_SECRETS, "TELEGRAM_BOT_TOKEN": fake.token,
               "TELEGRAM_WEBHOOK_SECRET": "e2e-telegram-secret",
               "DEBTBOT__CHANNELS__TELEGRAM__API_BASE_URL": fake.base_url,
               "DEBTBOT__CHANNELS__TELEGRAM__MESSAGES_PER_SECOND_PER_CHAT": "30"}  # fmt: skip
        config = load_config(stack_config_path, env)
        assert config.telegram_live
        yield from _running(config, rasa_stack, redis_client, None, telegram=fake, clock=clock)


def in_contact_hours(product: Product, zone: str) -> bool:
    """Is it inside ``compliance.contact_hours`` in ``zone`` by the product's clock?"""
    hours = product.config.compliance.contact_hours
    local = product.clock.now().astimezone(ZoneInfo(zone)).time()
    return dtime.fromisoformat(hours.earliest) <= local < dtime.fromisoformat(hours.latest)


def open_by_outreach(product: Product, account_id: str, sent: Callable[[], Sequence[object]]) -> object:
    """Start the conversation with ``account_id`` through the real outreach path at the product's
    clock, and return the opener once it went out (``sent()``: what the person has received).

    Inside contact hours it goes at once. Outside them the gate defers it: nothing is sent, the
    deferral is kept in ``outreach:deferred`` for the first allowed moment, and the opener goes
    when the clock reaches that moment and the scheduler's tick releases it to the worker."""
    services = product.services
    account = services.accounts.get(account_id)
    assert account is not None and account.timezone
    services.outreach_handler().contact_many([account_id])
    if in_contact_hours(product, account.timezone):
        assert services.redis.zcard(services.keys.outreach_deferred) == 0
        return wait_for(sent, timeout=60, what="the opener, at once")[0]

    [(task, score)] = services.redis.zrange(services.keys.outreach_deferred, 0, -1, withscores=True)
    assert json.loads(task)["account_id"] == account_id
    until = datetime.fromtimestamp(score, timezone.utc)
    opening = dtime.fromisoformat(product.config.compliance.contact_hours.earliest)
    assert until > product.clock.now() and until.astimezone(ZoneInfo(account.timezone)).time() == opening
    [decision] = [f for _, f in services.redis.xrange(services.keys.audit) if f.get(b"kind") == b"opener"]
    assert (decision[b"verdict"], decision[b"rule"]) == (b"defer", b"quiet_hours")
    time.sleep(1)  # whatever the worker would do, it has had the time to
    assert list(sent()) == [] and not services.outbound.pending_keys()

    product.clock.set(until - timedelta(minutes=1))
    tick(services)  # a minute early: nothing is released
    assert services.redis.zcard(services.keys.outreach_deferred) == 1
    product.clock.set(until)
    tick(services)  # (or the worker's own scheduler, if it ticks first)
    wait_for(lambda: services.redis.zcard(services.keys.outreach_deferred) == 0, timeout=30,
             what="the deferred opener released")  # fmt: skip
    return wait_for(sent, timeout=60, what="the opener, released at the first allowed moment")[0]


def _running(
    config: Config,
    rasa_stack: RasaStack,
    redis_client: redis.Redis,
    twilio: FakeTwilio | None,
    *,
    telegram: FakeTelegram | None = None,
    clock: Clock | None = None,
) -> Iterator[Product]:
    """The product on ``config`` with a worker, on ``clock`` (by default a clock at the session's
    setting that the action server follows: never the wall clock)."""
    stack_config = config
    clock = clock or SharedClock(rasa_stack.clock_file, clock_start())
    services = build_services(stack_config, redis_client, clock)
    report = AccountStore(redis_client, services.keys).import_csv(
        (ROOT / "examples" / "accounts.csv").read_text(),
        languages=["en", "es"], default_language="en", verification_field="date_of_birth",
    )  # fmt: skip
    assert not report.errors
    poster = InProcessPoster()
    app = create_app(stack_config, services, poster=poster)
    poster.app = app
    running = Product(stack_config, services, app.test_client(), None, twilio, telegram, clock)
    running.start_worker()
    yield running
    if running.worker is not None:
        running.stop_worker()
    if not rasa_stack.rasa.alive():
        rasa_stack.start_rasa()
