"""When a person from the team can answer: the agents' working hours (``console.hours``, in
``console.zone``) said in the debtor's own local time. Pure, so every hour and zone is tested.

Someone told "a colleague will answer" deserves to know roughly when: "today, usually within
the hour" inside working hours; otherwise the day and time the team is back, in their zone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time

from bot.compliance.notices import notice

__all__ = ["next_opening", "promise"]


def _hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def next_opening(
    now: datetime, earliest: str, latest: str, days: Sequence[int], zone: str
) -> datetime | None:
    """``now`` when the team is working, else when it next starts (aware, in the agents' zone);
    ``None`` when ``days`` is empty."""
    local = now.astimezone(ZoneInfo(zone))
    start, end = _hhmm(earliest), _hhmm(latest)
    if local.weekday() in days and start <= local.time() < end:
        return local
    for ahead in range(0, 8):
        day = local.date() + timedelta(days=ahead)
        if day.weekday() not in days:
            continue
        opening = datetime.combine(day, start, tzinfo=ZoneInfo(zone))
        if opening > local:
            return opening
    return None


def promise(
    now: datetime,
    *,
    earliest: str,
    latest: str,
    days: Sequence[int],
    agent_zone: str,
    debtor_zone: str | None,
    language: str,
) -> str:
    """What to tell the person about when a colleague will answer, in ``language``."""
    opening = next_opening(now, earliest, latest, days, agent_zone)
    if opening is None:
        return notice("person_soon", language)
    if opening <= now:
        return notice("person_within_hour", language)
    zone = ZoneInfo(debtor_zone or agent_zone)
    theirs = opening.astimezone(zone)
    today = now.astimezone(zone).date()
    locale = "es" if language == "es" else "en_US"
    at = format_time(theirs.time(), "short", locale=locale)
    if theirs.date() == today:
        day = notice("day_today", language)
    elif theirs.date() == today + timedelta(days=1):
        day = notice("day_tomorrow", language)
    else:
        day = notice("day_on", language).format(day=format_date(theirs.date(), "EEEE", locale=locale))
    return notice("person_later", language).format(day=day, time=at)
