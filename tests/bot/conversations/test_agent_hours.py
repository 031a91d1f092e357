"""When a colleague can answer, said in the person's own time: every kind of moment."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from bot.conversations.agent_hours import next_opening, promise

NY = "America/New_York"
WEEKDAYS = [0, 1, 2, 3, 4]


def _ny(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in December 2026 in New York (the 7th is a Monday)."""
    return datetime(2026, 12, day, hour, minute, tzinfo=ZoneInfo(NY))


@pytest.mark.parametrize(
    ("now", "opening"),
    [
        (_ny(7, 9, 0), _ny(7, 9, 0)),  # opening minute: open
        (_ny(7, 16, 59), _ny(7, 16, 59)),  # last minute: open
        (_ny(7, 17, 0), _ny(8, 9, 0)),  # closing time: tomorrow
        (_ny(7, 8, 59), _ny(7, 9, 0)),  # before opening: today
        (_ny(11, 18, 0), _ny(14, 9, 0)),  # Friday evening: Monday
        (_ny(12, 12, 0), _ny(14, 9, 0)),  # Saturday noon: Monday
    ],
)
def test_the_next_opening_is_now_inside_hours_else_the_next_working_morning(
    now: datetime, opening: datetime
) -> None:
    assert next_opening(now, "09:00", "17:00", WEEKDAYS, NY) == opening


def test_no_working_days_means_no_opening_and_a_plain_as_soon_as_possible() -> None:
    now = _ny(7, 12)
    assert next_opening(now, "09:00", "17:00", [], NY) is None
    words = promise(now, earliest="09:00", latest="17:00", days=[], agent_zone=NY, debtor_zone=None,
                    language="en")  # fmt: skip
    assert words == "A colleague from our team will answer you here as soon as they can."


@pytest.mark.parametrize(
    ("now", "zone", "language", "expected"),
    [
        (_ny(7, 10), "Europe/Madrid", "es",
         "Una persona de nuestro equipo le responderá por aquí, normalmente en menos de una hora."),
        (_ny(7, 6), "America/Los_Angeles", "en",
         "Our team is away right now; a colleague will answer you here today after 6:00\u202fAM (your time)."),
        (_ny(7, 20), None, "en",
         "Our team is away right now; a colleague will answer you here tomorrow after 9:00\u202fAM (your time)."),
        (_ny(11, 20), "Europe/Madrid", "es",
         "Nuestro equipo no está disponible ahora; una persona le responderá por aquí el lunes a partir de "
         "las 15:00 (su hora)."),
        # 23:30 Sunday in Madrid is 17:30 in New York: "tomorrow" is Madrid's Monday.
        (_ny(13, 17, 30), "Europe/Madrid", "en",
         "Our team is away right now; a colleague will answer you here tomorrow after 3:00\u202fPM (your time)."),
    ],
)  # fmt: skip
def test_the_promise_is_said_in_the_persons_zone_and_language(
    now: datetime, zone: str | None, language: str, expected: str
) -> None:
    words = promise(now, earliest="09:00", latest="17:00", days=WEEKDAYS, agent_zone=NY, debtor_zone=zone,
                    language=language)  # fmt: skip
    assert words == expected


def test_the_answer_does_not_depend_on_the_machines_zone_only_on_the_moment() -> None:
    moment = _ny(7, 20)
    as_utc = moment.astimezone(timezone.utc)
    args = {"earliest": "09:00", "latest": "17:00", "days": WEEKDAYS, "agent_zone": NY, "debtor_zone": NY,
            "language": "en"}  # fmt: skip
    assert promise(moment, **args) == promise(as_utc, **args)  # type: ignore[arg-type]
