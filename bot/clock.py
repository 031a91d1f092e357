"""The time as the product reads it: one clock, built once in ``Services`` and passed to every
part that decides by the time (the compliance gate, outreach, reminders, the scheduler).

The product runs on the system clock. Tests set the clock to the moment they need (it then
stands still until they set or advance it again), so no test depends on when it runs.

A process the tests start separately (the action server) reads the tests' clock from a file:
``DEBTBOT_TEST_CLOCK_FILE`` names it, :class:`FileClock` follows it, :func:`publish` writes it.
"""

from __future__ import annotations

import os
import re
import threading
from datetime import datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["CLOCK_FILE_ENV", "Clock", "FileClock", "moment_from_setting", "publish"]

#: Tests only: a file holding the moment (ISO 8601) a process follows instead of the system clock.
CLOCK_FILE_ENV = "DEBTBOT_TEST_CLOCK_FILE"

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


class FileClock(Clock):
    """Now as another process set it (tests): the moment :func:`publish` last wrote to ``path``,
    read at every call; the system clock while there is no such file."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._path = path

    @property
    def is_set(self) -> bool:
        return self._path.exists()

    def now(self) -> datetime:
        try:
            written = self._path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return datetime.now(timezone.utc)
        return _utc(datetime.fromisoformat(written))

    def set(self, at: datetime) -> None:
        publish(self._path, at)

    def advance(self, by: timedelta) -> None:
        with self._lock:
            publish(self._path, self.now() + by)

    def __repr__(self) -> str:
        return f"FileClock({str(self._path)!r})"


def publish(path: Path, at: datetime) -> None:
    """Write ``at`` (aware) for the :class:`FileClock` on ``path``, at once (a reader never sees
    half a moment)."""
    moment = _utc(at).isoformat()
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    partial.write_text(moment, encoding="utf-8")
    os.replace(partial, path)


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
