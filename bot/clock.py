"""The time as the product reads it: one clock, built once in ``Services`` and passed to every
part that decides by the time (the compliance gate, outreach, reminders, the scheduler).

The product runs on the system clock. Tests set the clock to the moment they need (it then
stands still until they set or advance it again), so no test depends on when it runs.
"""

from __future__ import annotations

import re
import threading
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["Clock", "moment_from_setting"]

_SETTING = re.compile(r"^\s*(?P<clock>\d{1,2}:\d{2})\s+(?P<zone>\S+)\s*$")


class Clock:
    """Now, as an aware UTC datetime: the system clock, or a set moment."""

    def __init__(self, at: datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._at = _utc(at) if at is not None else None

    @property
    def is_set(self) -> bool:
        """``True`` once the clock was set (it no longer follows the system clock)."""
        return self._at is not None

    def now(self) -> datetime:
        """The current moment (aware, UTC)."""
        at = self._at
        return at if at is not None else datetime.now(timezone.utc)

    def timestamp(self) -> float:
        """The current moment as Unix seconds."""
        return self.now().timestamp()

    def set(self, at: datetime) -> None:
        """Stand still at ``at`` (aware) from now on."""
        with self._lock:
            self._at = _utc(at)

    def advance(self, by: timedelta) -> None:
        """Move on by ``by`` (a system clock is first set to the system's now)."""
        with self._lock:
            self._at = (self._at or datetime.now(timezone.utc)) + by

    def __repr__(self) -> str:
        return f"Clock({self._at.isoformat() if self._at else 'system'})"


def moment_from_setting(setting: str, reference: datetime | None = None) -> datetime:
    """``"03:00 America/New_York"``: that local time on the date it is in that zone at
    ``reference`` (default: now), as an aware UTC datetime. Also accepts an ISO 8601 moment
    with its offset (``2026-12-05T08:00:00+00:00``). Raises ``ValueError`` naming what is wrong.
    """
    match = _SETTING.match(setting)
    if match is None:
        try:
            moment = datetime.fromisoformat(setting.strip())
        except ValueError:
            raise ValueError(
                f"clock setting {setting!r}: expected 'HH:MM Area/City' or an ISO 8601 moment with an offset"
            ) from None
        if moment.tzinfo is None:
            raise ValueError(f"clock setting {setting!r}: an ISO 8601 moment needs its UTC offset")
        return _utc(moment)
    try:
        zone = ZoneInfo(match["zone"])
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"clock setting {setting!r}: {match['zone']!r} is not an IANA time zone") from None
    try:
        local = time.fromisoformat(match["clock"].zfill(5))
    except ValueError:
        raise ValueError(f"clock setting {setting!r}: {match['clock']!r} is not a time of day") from None
    day = (reference or datetime.now(timezone.utc)).astimezone(zone).date()
    # Through UTC and back: a wall time inside a spring-forward gap becomes the real moment.
    return datetime.combine(day, local, tzinfo=zone).astimezone(timezone.utc)


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("the clock takes aware datetimes only")
    return at.astimezone(timezone.utc)
