"""The product's one clock: the system clock by default, a set moment in tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import redis

from bot.clock import Clock, moment_from_setting
from bot.runtime.services import build_services
from tests.conftest import ConfigFactory

NY = ZoneInfo("America/New_York")


def test_the_default_clock_follows_the_system_clock() -> None:
    clock = Clock()
    before = datetime.now(timezone.utc)
    now = clock.now()
    assert before <= now <= datetime.now(timezone.utc) and now.tzinfo is not None and not clock.is_set


def test_a_set_clock_stands_still_until_moved() -> None:
    clock = Clock(datetime(2026, 12, 5, 3, 0, tzinfo=NY))
    assert clock.now() == datetime(2026, 12, 5, 8, 0, tzinfo=timezone.utc) == clock.now()
    assert clock.timestamp() == datetime(2026, 12, 5, 8, 0, tzinfo=timezone.utc).timestamp()
    clock.advance(timedelta(hours=5))
    assert clock.now().astimezone(NY) == datetime(2026, 12, 5, 8, 0, tzinfo=NY)
    clock.set(datetime(2026, 12, 6, 15, 0, tzinfo=NY))
    assert clock.now().astimezone(NY).hour == 15


def test_a_clock_takes_aware_times_only() -> None:
    with pytest.raises(ValueError, match="aware"):
        Clock(datetime(2026, 12, 5, 3, 0))
    with pytest.raises(ValueError, match="aware"):
        Clock().set(datetime(2026, 12, 5, 3, 0))


@pytest.mark.parametrize(
    ("setting", "reference", "expected"),
    [
        # 07:50 UTC is 02:50 in New York: "03:00 New York" is ten minutes later the same day.
        ("03:00 America/New_York", datetime(2026, 12, 5, 7, 50, tzinfo=timezone.utc),
         datetime(2026, 12, 5, 3, 0, tzinfo=NY)),
        # 02:00 UTC on the 6th is still the 5th in New York.
        ("15:00 America/New_York", datetime(2026, 12, 6, 2, 0, tzinfo=timezone.utc),
         datetime(2026, 12, 5, 15, 0, tzinfo=NY)),
        ("9:30 Europe/Madrid", datetime(2026, 7, 1, 12, 0, tzinfo=timezone.utc),
         datetime(2026, 7, 1, 9, 30, tzinfo=ZoneInfo("Europe/Madrid"))),
        # Inside the spring-forward gap: the moment the clocks jump to.
        ("02:30 America/New_York", datetime(2026, 3, 8, 12, 0, tzinfo=timezone.utc),
         datetime(2026, 3, 8, 7, 30, tzinfo=timezone.utc)),
        ("2026-12-05T08:00:00+00:00", None, datetime(2026, 12, 5, 8, 0, tzinfo=timezone.utc)),
    ],
)  # fmt: skip
def test_a_clock_setting_is_a_time_of_day_in_a_zone_on_the_date_it_is_there(
    setting: str, reference: datetime | None, expected: datetime
) -> None:
    moment = moment_from_setting(setting, reference)
    assert moment == expected and moment.tzinfo == timezone.utc


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("03:00 Mars/Olympus", "not an IANA time zone"),
        ("25:00 America/New_York", "not a time of day"),
        ("three o'clock", "expected 'HH:MM Area/City'"),
        ("2026-12-05T08:00:00", "needs its UTC offset"),
    ],
)
def test_a_bad_clock_setting_says_what_is_wrong(setting: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        moment_from_setting(setting)


def test_services_wire_one_clock_to_every_part_that_reads_the_time(
    make_config: ConfigFactory, redis_client: redis.Redis
) -> None:
    clock = Clock(datetime(2026, 12, 5, 3, 0, tzinfo=NY))
    services = build_services(make_config(), redis_client, clock)
    assert services.clock is clock and services.gate.clock is clock
    assert services.outreach_handler().clock is clock
    assert build_services(make_config(), redis_client).clock.is_set is False  # the system clock
