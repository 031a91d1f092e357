"""The compliance gate: every rule, its boundaries, and the time arithmetic across DST changes."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from phonenumbers import timezone as phone_timezone

from bot.compliance.rules import (
    AGENT_MAY_CONTACT_DESPITE,
    KEEP_CONTACT_HOURS,
    PAUSE_REASONS,
    SENT_BY_A_PERSON,
    VULNERABLE_STILL_GETS,
    AddressState,
    ContactRules,
    Debtor,
    Decision,
    FrequencyCap,
    Outgoing,
    Verdict,
    candidate_zones,
    check,
    next_allowed,
)
from bot.privacy import luhn_valid
from dialogue.parsing import ContactWindow

UTC = timezone.utc
RULES = ContactRules()
LA = Debtor("acc-la", timezone="America/Los_Angeles")
SMS_STOP = "Reply STOP to stop texts."
MINI_EN = RULES.mini_miranda["en"]
CARD = "4111 1111 1111 1111"  # Luhn-valid
NOT_A_CARD = "4111111111111112"  # 16 digits, fails Luhn
SUNDAY = 6


def local(
    zone: str,
    year: int,
    month: int,
    day: int,
    hour: int = 0,
    minute: int = 0,
    second: int = 0,
    *,
    fold: int = 0,
) -> datetime:
    """A wall-clock time in ``zone`` (``fold=1``: the second of a repeated hour)."""
    return datetime(year, month, day, hour, minute, second, tzinfo=ZoneInfo(zone), fold=fold)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def sms(text: str = "Hello from Northwind.", **changes: object) -> Outgoing:
    fields: dict[str, object] = {"channel": "sms", "text": text, "language": "en", "proactive": True}
    fields.update(changes)
    return Outgoing(**fields)  # type: ignore[arg-type]


def reply(text: str = "Thanks, noted.", **changes: object) -> Outgoing:
    return sms(text, proactive=False, kind="reply", **changes)


def gate(
    now: datetime,
    debtor: Debtor = LA,
    message: Outgoing | None = None,
    address: AddressState | None = None,
    rules: ContactRules = RULES,
    recent: dict[str, list[datetime]] | None = None,
) -> Decision:
    return check(
        debtor, address or AddressState(), message or sms(), now, rules, recent_proactive=recent or {}
    )


def allowed_everywhere(
    moment: datetime, zones: list[str], rules: ContactRules, window: ContactWindow | None
) -> bool:
    """An independent statement of the hours rule, for the properties."""
    for zone in zones:
        wall = moment.astimezone(ZoneInfo(zone))
        if not rules.earliest <= wall.time().replace(tzinfo=None) < rules.latest:
            return False
        if window is not None and not window.allows(wall):
            return False
    return True


# --- contact hours --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("clock", "verdict", "until"),
    [
        (time(7, 59), Verdict.DEFER, local("America/Los_Angeles", 2026, 6, 10, 8, 0)),
        (time(8, 0), Verdict.SEND, None),
        (time(20, 59), Verdict.SEND, None),
        (time(21, 0), Verdict.DEFER, local("America/Los_Angeles", 2026, 6, 11, 8, 0)),
        (time(23, 30), Verdict.DEFER, local("America/Los_Angeles", 2026, 6, 11, 8, 0)),
        (time(0, 0), Verdict.DEFER, local("America/Los_Angeles", 2026, 6, 10, 8, 0)),
    ],
)
def test_proactive_messages_go_only_from_08_00_until_before_21_00_local(
    clock: time, verdict: Verdict, until: datetime | None
) -> None:
    now = datetime.combine(datetime(2026, 6, 10).date(), clock, tzinfo=ZoneInfo("America/Los_Angeles"))
    decision = gate(now)
    assert decision.verdict is verdict
    assert decision.rule == ("allowed" if verdict is Verdict.SEND else "quiet_hours")
    assert decision.until == until
    if until is not None:
        assert decision.until is not None and decision.until.tzinfo is UTC


def test_seconds_before_eight_are_still_too_early() -> None:
    decision = gate(local("America/Los_Angeles", 2026, 6, 10, 7, 59, 59))
    assert decision.verdict is Verdict.DEFER
    assert decision.until == utc(2026, 6, 10, 15, 0)


@pytest.mark.parametrize(
    ("new_york_clock", "verdict", "until_la"),
    [
        # 09:00 in New York is 06:00 in Los Angeles: too early for the debtor.
        (time(9, 0), Verdict.DEFER, local("America/Los_Angeles", 2026, 6, 10, 8, 0)),
        # 22:00 in New York is 19:00 in Los Angeles: fine for the debtor.
        (time(22, 0), Verdict.SEND, None),
        (time(23, 59), Verdict.SEND, None),
        # Midnight in New York is 21:00 in Los Angeles the evening before.
        (time(0, 0), Verdict.DEFER, local("America/Los_Angeles", 2026, 6, 10, 8, 0)),
    ],
)
def test_the_debtors_zone_counts_not_the_creditors(
    new_york_clock: time, verdict: Verdict, until_la: datetime | None
) -> None:
    rules = ContactRules(default_zone="America/New_York")
    now = datetime.combine(datetime(2026, 6, 10).date(), new_york_clock, tzinfo=ZoneInfo("America/New_York"))
    decision = gate(now, rules=rules)
    assert decision.verdict is verdict
    assert decision.until == until_la
    assert decision.zones == ("America/Los_Angeles",)


@pytest.mark.parametrize(
    ("zone", "now", "expected_utc"),
    [
        # US spring forward, 2026-03-08: 08:00 EDT is 12:00 UTC (08:00 EST would be 13:00).
        ("America/New_York", local("America/New_York", 2026, 3, 7, 22, 0), utc(2026, 3, 8, 12, 0)),
        ("America/New_York", local("America/New_York", 2026, 3, 8, 1, 59), utc(2026, 3, 8, 12, 0)),
        ("America/New_York", local("America/New_York", 2026, 3, 8, 3, 0), utc(2026, 3, 8, 12, 0)),
        ("America/Los_Angeles", local("America/Los_Angeles", 2026, 3, 7, 23, 0), utc(2026, 3, 8, 15, 0)),
        # US fall back, 2026-11-01: 08:00 EST is 13:00 UTC; 01:30 happens twice.
        ("America/New_York", local("America/New_York", 2026, 10, 31, 21, 30), utc(2026, 11, 1, 13, 0)),
        ("America/New_York", local("America/New_York", 2026, 11, 1, 1, 30), utc(2026, 11, 1, 13, 0)),
        ("America/New_York", local("America/New_York", 2026, 11, 1, 1, 30, fold=1), utc(2026, 11, 1, 13, 0)),
        ("America/Chicago", local("America/Chicago", 2026, 10, 31, 22, 0), utc(2026, 11, 1, 14, 0)),
        # Europe, 2026-03-29 and 2026-10-25.
        ("Europe/Madrid", local("Europe/Madrid", 2026, 3, 28, 22, 0), utc(2026, 3, 29, 6, 0)),
        ("Europe/London", local("Europe/London", 2026, 3, 28, 21, 0), utc(2026, 3, 29, 7, 0)),
        ("Europe/Madrid", local("Europe/Madrid", 2026, 10, 24, 21, 30), utc(2026, 10, 25, 7, 0)),
        ("Europe/London", local("Europe/London", 2026, 10, 24, 21, 0), utc(2026, 10, 25, 8, 0)),
    ],
)
def test_a_defer_across_a_dst_change_lands_on_08_00_local(
    zone: str, now: datetime, expected_utc: datetime
) -> None:
    decision = gate(now, debtor=Debtor("acc", timezone=zone))
    assert decision.verdict is Verdict.DEFER
    assert decision.until == expected_utc
    assert decision.until.astimezone(ZoneInfo(zone)).time() == time(8, 0)


@pytest.mark.parametrize(
    ("now", "verdict"),
    [
        (local("America/New_York", 2026, 11, 1, 20, 59), Verdict.SEND),  # EST, the evening after
        (local("America/New_York", 2026, 11, 1, 21, 0), Verdict.DEFER),
        (local("America/New_York", 2026, 3, 8, 20, 59), Verdict.SEND),  # EDT, the evening after
        (local("America/New_York", 2026, 3, 8, 21, 0), Verdict.DEFER),
        (local("Europe/Madrid", 2026, 3, 29, 7, 59), Verdict.DEFER),
        (local("Europe/Madrid", 2026, 3, 29, 8, 0), Verdict.SEND),
    ],
)
def test_hours_on_dst_change_days_follow_the_new_offset(now: datetime, verdict: Verdict) -> None:
    zone = str(now.tzinfo)
    assert gate(now, debtor=Debtor("acc", timezone=zone)).verdict is verdict


def test_a_boundary_inside_the_spring_forward_gap_is_reached_when_the_clock_jumps() -> None:
    # 02:30 does not exist on 2026-03-08 in New York: the clock goes from 01:59:59 to 03:00,
    # so "from 02:30" first holds at 03:00 EDT (07:00 UTC), not at 03:30.
    rules = ContactRules(earliest=time(2, 30))
    found = next_allowed(local("America/New_York", 2026, 3, 8, 1, 0), ["America/New_York"], rules, None)
    assert found == utc(2026, 3, 8, 7, 0)


def test_a_boundary_in_the_repeated_hour_is_found_the_second_time_round() -> None:
    # 01:30-01:45 on 2026-11-01 happens in EDT and again in EST. At 01:50 EDT the next one is
    # 01:30 EST (06:30 UTC), an hour of UTC later, not the next day.
    rules = ContactRules(earliest=time(1, 30), latest=time(1, 45))
    now = local("America/New_York", 2026, 11, 1, 1, 50)
    assert now.utcoffset() == timedelta(hours=-4)
    assert next_allowed(now, ["America/New_York"], rules, None) == utc(2026, 11, 1, 6, 30)


@pytest.mark.parametrize(
    ("zones", "rules", "window", "day"),
    [
        (["America/New_York"], RULES, None, utc(2026, 3, 7)),
        (["America/New_York", "America/Los_Angeles"], RULES, None, utc(2026, 3, 7)),
        (["America/New_York"], ContactRules(earliest=time(2, 15), latest=time(3, 30)), None, utc(2026, 3, 7)),
        (["America/Chicago"], ContactRules(earliest=time(1, 0), latest=time(1, 40)), None, utc(2026, 10, 31)),
        (["Europe/London", "America/New_York"], RULES, ContactWindow(after=time(18, 0)), utc(2026, 10, 24)),
        (["Europe/Madrid", "Atlantic/Canary"], RULES, ContactWindow(before=time(9, 30)), utc(2026, 3, 28)),
        (["Australia/Lord_Howe", "Pacific/Chatham"], RULES, None, utc(2026, 4, 3)),  # 30-minute DST
    ],
)
def test_next_allowed_matches_a_minute_by_minute_scan_around_dst_changes(
    zones: list[str], rules: ContactRules, window: ContactWindow | None, day: datetime
) -> None:
    span = 3 * 24 * 60
    allowed = [allowed_everywhere(day + timedelta(minutes=m), zones, rules, window) for m in range(span + 1)]
    for start in range(0, 2 * 24 * 60, 17):
        expected = next((m for m in range(start, span + 1) if allowed[m]), None)
        found = next_allowed(day + timedelta(minutes=start), zones, rules, window, horizon=timedelta(days=1))
        limit = start + 24 * 60
        want = day + timedelta(minutes=expected) if expected is not None and expected <= limit else None
        assert found == want, f"start {day + timedelta(minutes=start)}"


# --- where the zones come from --------------------------------------------------------------


def test_an_unknown_zone_blocks_proactive_messages_for_an_agent_to_fix() -> None:
    decision = gate(utc(2026, 6, 10, 18, 0), debtor=Debtor("acc"))
    assert (decision.verdict, decision.rule, decision.zones) == (Verdict.BLOCK, "unknown_zone", ())
    assert "agent" in decision.reason
    assert decision.text == ""


def test_the_creditors_default_zone_is_used_when_nothing_is_known_and_said_so() -> None:
    rules = ContactRules(default_zone="America/New_York")
    decision = gate(local("America/New_York", 2026, 6, 10, 7, 0), debtor=Debtor("acc"), rules=rules)
    assert decision.verdict is Verdict.DEFER
    assert decision.until == local("America/New_York", 2026, 6, 10, 8, 0)
    assert decision.zones == ("America/New_York",)
    assert "default zone" in decision.reason and "nothing is known" in decision.reason


def test_the_default_zone_is_not_used_when_anything_is_known() -> None:
    rules = ContactRules(default_zone="America/New_York")
    assert candidate_zones(Debtor("acc", country="ES"), rules) == (
        "Africa/Ceuta",
        "Atlantic/Canary",
        "Europe/Madrid",
    )


@pytest.mark.parametrize(
    "name", ["Mars/Olympus_Mons", "America", "", "../etc/passwd", "Factory", "Etc/Unknown"]
)
def test_an_invalid_account_zone_counts_as_unknown(name: str) -> None:
    decision = gate(utc(2026, 6, 10, 18, 0), debtor=Debtor("acc", timezone=name or None))
    assert decision.rule == "unknown_zone"
    assert candidate_zones(Debtor("acc", timezone=name, phone="+12125550123"), RULES) == ("America/New_York",)


def test_the_accounts_zone_wins_over_phone_and_postal_code() -> None:
    debtor = Debtor("acc", timezone="Europe/Madrid", phone="+12125550123", postal_code="90210", country="US")
    assert candidate_zones(debtor, RULES) == ("Europe/Madrid",)


def test_an_area_code_that_spans_two_zones_gives_both() -> None:
    # 208 (Idaho): the south keeps Mountain time, the panhandle Pacific; phonenumbers says so too.
    number = phonenumbers.parse("+12085550123", None)
    assert set(phone_timezone.time_zones_for_number(number)) == {"America/Boise", "America/Los_Angeles"}
    assert candidate_zones(Debtor("acc", phone="+12085550123"), RULES) == (
        "America/Boise",
        "America/Los_Angeles",
    )


@pytest.mark.parametrize(
    ("los_angeles_clock", "verdict", "until_la"),
    [
        # 07:30 in Los Angeles is 08:30 in Boise: still too early in Los Angeles.
        (time(7, 30), Verdict.DEFER, local("America/Los_Angeles", 2026, 6, 10, 8, 0)),
        (time(8, 0), Verdict.SEND, None),
        (time(19, 59), Verdict.SEND, None),
        (time(20, 0), Verdict.DEFER, local("America/Los_Angeles", 2026, 6, 11, 8, 0)),  # Boise 21:00
        (time(20, 30), Verdict.DEFER, local("America/Los_Angeles", 2026, 6, 11, 8, 0)),
    ],
)
def test_two_candidate_zones_allow_only_the_hours_that_fit_both(
    los_angeles_clock: time, verdict: Verdict, until_la: datetime | None
) -> None:
    now = datetime.combine(
        datetime(2026, 6, 10).date(), los_angeles_clock, tzinfo=ZoneInfo("America/Los_Angeles")
    )
    decision = gate(now, debtor=Debtor("acc", phone="+12085550123"))
    assert decision.verdict is verdict
    assert decision.until == until_la
    assert decision.zones == ("America/Boise", "America/Los_Angeles")


@pytest.mark.parametrize(
    ("postal_code", "country", "zones"),
    [
        ("10001", "US", {"America/New_York"}),
        ("90210-1234", "US", {"America/Los_Angeles"}),
        ("37201", "US", {"America/New_York", "America/Chicago"}),  # Tennessee
        ("79901", "US", {"America/Chicago", "America/Denver"}),  # Texas (El Paso)
        ("46204", "US", {"America/Indiana/Indianapolis", "America/Chicago"}),  # Indiana
        ("40202", "US", {"America/New_York", "America/Chicago"}),  # Kentucky
        ("32501", "US", {"America/New_York", "America/Chicago"}),  # Florida
        ("97201", "US", {"America/Los_Angeles", "America/Boise"}),  # Oregon
        ("83702", "US", {"America/Boise", "America/Los_Angeles"}),  # Idaho
        ("49855", "US", {"America/Detroit", "America/Menominee"}),  # Michigan
        ("67202", "US", {"America/Chicago", "America/Denver"}),  # Kansas
        ("68102", "US", {"America/Chicago", "America/Denver"}),  # Nebraska
        ("57104", "US", {"America/Chicago", "America/Denver"}),  # South Dakota
        ("58102", "US", {"America/Chicago", "America/Denver"}),  # North Dakota
        ("85004", "US", {"America/Phoenix", "America/Denver"}),  # Arizona (Navajo Nation)
        ("96813", "US", {"Pacific/Honolulu"}),
        ("96799", "AS", {"Pacific/Pago_Pago"}),
        ("00901", "PR", {"America/Puerto_Rico"}),
        ("M5V 3L9", "CA", {"America/Toronto"}),
        ("t2p1j9", "CA", {"America/Edmonton"}),
        ("V6B 1A1", "CA", {"America/Vancouver", "America/Edmonton", "America/Dawson_Creek"}),
        ("SW1A 1AA", "GB", {"Europe/London"}),
        ("GX11 1AA", "GB", {"Europe/Gibraltar"}),
        ("GX11 1AA", "GI", {"Europe/Gibraltar"}),  # no table for GI: the country's zone instead
        ("75001", "FR", {"Europe/Paris"}),  # no table for FR: not read as a ZIP code
        ("28013", "ES", {"Europe/Madrid"}),
        ("35001", "ES", {"Atlantic/Canary"}),
        ("38001", "ES", {"Atlantic/Canary"}),
        ("51001", "ES", {"Africa/Ceuta"}),
        ("06600", "MX", {"America/Mexico_City"}),
        ("22000", "MX", {"America/Tijuana"}),
        ("77500", "MX", {"America/Cancun"}),
        ("83000", "MX", {"America/Hermosillo"}),
        ("97000", "MX", {"America/Merida"}),
        ("32000", "MX", {"America/Chihuahua", "America/Ciudad_Juarez", "America/Ojinaga"}),
    ],
)
def test_postal_codes_give_the_zones_of_their_area(postal_code: str, country: str, zones: set[str]) -> None:
    assert set(candidate_zones(Debtor("acc", postal_code=postal_code, country=country), RULES)) == zones


def test_a_zip_in_a_split_state_allows_only_hours_that_fit_both_halves() -> None:
    nashville = Debtor("acc", postal_code="37201", country="US")
    # 20:30 in Chicago is 21:30 in New York: too late for the eastern half of Tennessee.
    assert gate(local("America/Chicago", 2026, 6, 10, 20, 30), debtor=nashville).verdict is Verdict.DEFER
    assert gate(local("America/Chicago", 2026, 6, 10, 19, 59), debtor=nashville).verdict is Verdict.SEND
    # 07:30 in Chicago is 08:30 in New York: still too early for the western half.
    decision = gate(local("America/Chicago", 2026, 6, 10, 7, 30), debtor=nashville)
    assert decision.until == local("America/Chicago", 2026, 6, 10, 8, 0)


def test_phone_and_postal_code_zones_are_joined() -> None:
    debtor = Debtor("acc", phone="+12125550123", postal_code="90210", country="US")
    assert candidate_zones(debtor, RULES) == ("America/Los_Angeles", "America/New_York")


def test_a_postal_code_without_a_country_is_read_with_the_phones_country() -> None:
    debtor = Debtor("acc", phone="+525512345678", postal_code="22000")
    assert candidate_zones(debtor, RULES) == ("America/Mexico_City", "America/Tijuana")


def test_a_postal_code_with_no_country_at_all_counts_every_country_it_could_belong_to() -> None:
    # 10001: New York, Ciudad de México or Cáceres.
    zones = candidate_zones(Debtor("acc", postal_code="10001"), RULES)
    assert zones == ("America/Mexico_City", "America/New_York", "Europe/Madrid")


@pytest.mark.parametrize(
    ("debtor", "zones"),
    [
        (Debtor("acc", country="ES"), ("Africa/Ceuta", "Atlantic/Canary", "Europe/Madrid")),
        (Debtor("acc", country="gb"), ("Europe/London",)),
        (Debtor("acc", country="US", postal_code="09001"), None),  # an APO code: the country decides
        (Debtor("acc", country="FR", postal_code="75001"), ("Europe/Paris",)),
        (Debtor("acc", phone="+18005550123", country="CA"), None),  # toll-free says nothing
        (Debtor("acc", phone="+15555550123"), ()),  # not a real number
        (Debtor("acc", phone="not a number"), ()),
        (Debtor("acc", country="XX"), ()),
    ],
)
def test_without_phone_or_postal_zones_the_country_decides(
    debtor: Debtor, zones: tuple[str, ...] | None
) -> None:
    found = candidate_zones(debtor, RULES)
    if zones is None:
        assert "America/New_York" in found or "America/Toronto" in found
        assert len(found) > 5
    else:
        assert found == zones


def test_a_whole_country_allows_only_hours_that_fit_all_of_it() -> None:
    # Spain without a postal code: the Canaries are an hour behind the mainland.
    decision = gate(local("Europe/Madrid", 2026, 6, 10, 8, 30), debtor=Debtor("acc", country="ES"))
    assert decision.verdict is Verdict.DEFER
    assert decision.until == local("Europe/Madrid", 2026, 6, 10, 9, 0)


# --- the person's own contact window --------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "now", "verdict", "until"),
    [
        # Wednesday 10:00 with "after 18:00": wait for 18:00 the same day.
        (ContactWindow(after=time(18)), (2026, 6, 10, 10, 0), Verdict.DEFER, (2026, 6, 10, 18, 0)),
        (ContactWindow(after=time(18)), (2026, 6, 10, 18, 0), Verdict.SEND, None),
        (ContactWindow(after=time(18)), (2026, 6, 10, 21, 0), Verdict.DEFER, (2026, 6, 11, 18, 0)),
        # Saturday 21:30 with "not on Sundays": Monday 08:00.
        (ContactWindow(excluded_weekdays=frozenset({SUNDAY})), (2026, 6, 13, 21, 30), Verdict.DEFER, (2026, 6, 15, 8, 0)),
        (ContactWindow(excluded_weekdays=frozenset({SUNDAY})), (2026, 6, 14, 12, 0), Verdict.DEFER, (2026, 6, 15, 8, 0)),
        # Both: Saturday 21:00 -> Monday 18:00.
        (
            ContactWindow(after=time(18), excluded_weekdays=frozenset({SUNDAY})),
            (2026, 6, 13, 21, 0), Verdict.DEFER, (2026, 6, 15, 18, 0),
        ),
        (ContactWindow(after=time(18), excluded_weekdays=frozenset({SUNDAY})), (2026, 6, 13, 19, 0), Verdict.SEND, None),
        # "Before 10": 10:00 itself is too late.
        (ContactWindow(before=time(10)), (2026, 6, 10, 10, 0), Verdict.DEFER, (2026, 6, 11, 8, 0)),
        # Not at weekends: Friday 21:00 -> Monday 08:00.
        (ContactWindow(weekdays_only=True), (2026, 6, 12, 21, 0), Verdict.DEFER, (2026, 6, 15, 8, 0)),
    ],
)  # fmt: skip
def test_the_persons_contact_window_narrows_the_hours(
    window: ContactWindow, now: tuple[int, ...], verdict: Verdict, until: tuple[int, ...] | None
) -> None:
    debtor = Debtor("acc", timezone="America/Los_Angeles", contact_window=window)
    decision = gate(local("America/Los_Angeles", *now), debtor=debtor)
    assert decision.verdict is verdict
    assert decision.until == (local("America/Los_Angeles", *until) if until else None)


def test_outside_the_persons_window_but_inside_hours_is_named_contact_window() -> None:
    debtor = Debtor("acc", timezone="America/Los_Angeles", contact_window=ContactWindow(after=time(18)))
    assert gate(local("America/Los_Angeles", 2026, 6, 10, 10, 0), debtor=debtor).rule == "contact_window"
    assert gate(local("America/Los_Angeles", 2026, 6, 10, 6, 0), debtor=debtor).rule == "quiet_hours"


@pytest.mark.parametrize(
    ("debtor", "rules", "zones"),
    [
        # A window that excludes every day.
        (
            Debtor("acc", timezone="America/Los_Angeles", contact_window=ContactWindow(excluded_weekdays=frozenset(range(7)))),
            RULES, ("America/Los_Angeles",),
        ),
        # "After 18:00" in New York and Manila (12-13 hours apart): never both at once.
        (
            Debtor("acc", phone="+63281234567", postal_code="10001", country="US", contact_window=ContactWindow(after=time(18))),
            RULES, ("America/New_York", "Asia/Manila"),
        ),
        # 09:00-17:00 in London and Auckland never overlap.
        (
            Debtor("acc", phone="+6493001234", postal_code="SW1A 1AA", country="GB"),
            ContactRules(earliest=time(9), latest=time(17)), ("Europe/London", "Pacific/Auckland"),
        ),
    ],
)  # fmt: skip
def test_nothing_allowed_within_two_weeks_blocks(
    debtor: Debtor, rules: ContactRules, zones: tuple[str, ...]
) -> None:
    assert candidate_zones(debtor, rules) == zones
    decision = gate(utc(2026, 6, 10, 18, 0), debtor=debtor, rules=rules)
    assert (decision.verdict, decision.rule) == (Verdict.BLOCK, "no_allowed_time")
    assert decision.text == "" and decision.until is None
    assert (
        next_allowed(utc(2026, 1, 1), zones, rules, debtor.contact_window, horizon=timedelta(days=366))
        is None
    )


def test_next_allowed_gives_up_at_the_horizon() -> None:
    window = ContactWindow(excluded_weekdays=frozenset(range(1, 7)))  # Mondays only
    friday = local("America/Los_Angeles", 2026, 6, 12, 12, 0)
    zones = ["America/Los_Angeles"]
    assert next_allowed(friday, zones, RULES, window, horizon=timedelta(days=2)) is None
    assert next_allowed(friday, zones, RULES, window) == local("America/Los_Angeles", 2026, 6, 15, 8, 0)


def test_next_allowed_with_no_zone_is_none_and_an_unknown_zone_is_an_error() -> None:
    assert next_allowed(utc(2026, 6, 10, 18), [], RULES, None) is None
    with pytest.raises(ValueError, match="unknown time zone"):
        next_allowed(utc(2026, 6, 10, 18), ["Nowhere/Special"], RULES, None)


# --- frequency caps -------------------------------------------------------------------------

NOON_LA = local("America/Los_Angeles", 2026, 6, 10, 12, 0)


def days_before(moment: datetime, *days: float) -> list[datetime]:
    return [moment - timedelta(days=d) for d in days]


@pytest.mark.parametrize(
    ("recent", "verdict", "until"),
    [
        ({}, Verdict.SEND, None),
        ({"sms": days_before(NOON_LA, 1, 3)}, Verdict.SEND, None),  # 2 of 3
        # 3 of 3: wait until the oldest (6 days ago) leaves the 7-day window.
        ({"sms": days_before(NOON_LA, 1, 3, 6)}, Verdict.DEFER, NOON_LA + timedelta(days=1)),
        # The oldest leaves at 22:00 local: the next is the next morning at 08:00.
        ({"sms": days_before(NOON_LA, 1, 3, 6 + 14 / 24)}, Verdict.DEFER, local("America/Los_Angeles", 2026, 6, 11, 8, 0)),
        # Exactly seven days ago no longer counts (a rolling window, open at its start).
        ({"sms": days_before(NOON_LA, 1, 3, 7)}, Verdict.SEND, None),
        ({"sms": days_before(NOON_LA, 1, 3, 7 - 1 / 1440)}, Verdict.DEFER, NOON_LA + timedelta(minutes=1)),
        # 4 counted (an agent sent one by hand): room again when the two oldest have left.
        ({"sms": days_before(NOON_LA, 1, 2, 5, 6)}, Verdict.DEFER, NOON_LA + timedelta(days=2)),
        # Other channels count too for the all-channel cap.
        ({"sms": days_before(NOON_LA, 1), "email": days_before(NOON_LA, 2), "telegram": days_before(NOON_LA, 4)},
         Verdict.DEFER, NOON_LA + timedelta(days=3)),
    ],
)  # fmt: skip
def test_the_all_channel_cap_of_three_a_week(
    recent: dict[str, list[datetime]], verdict: Verdict, until: datetime | None
) -> None:
    decision = gate(NOON_LA, recent=recent)
    assert decision.verdict is verdict
    assert decision.rule == ("allowed" if verdict is Verdict.SEND else "frequency_cap")
    assert decision.until == until


PER_CHANNEL = ContactRules(
    caps=(FrequencyCap(1, timedelta(days=1), "sms"), FrequencyCap(3, timedelta(days=7)))
)


@pytest.mark.parametrize(
    ("channel", "recent", "verdict", "until"),
    [
        # One SMS 2 hours ago: no second SMS for a day, but an email may go.
        ("sms", {"sms": [NOON_LA - timedelta(hours=2)]}, Verdict.DEFER, NOON_LA + timedelta(hours=22)),
        ("email", {"sms": [NOON_LA - timedelta(hours=2)]}, Verdict.SEND, None),
        ("telegram", {"sms": [NOON_LA - timedelta(hours=2)]}, Verdict.SEND, None),
        # Emails do not count for the SMS cap, but do for the weekly one.
        ("sms", {"email": [NOON_LA - timedelta(hours=2)]}, Verdict.SEND, None),
        ("email", {"email": days_before(NOON_LA, 1, 2), "sms": days_before(NOON_LA, 5)}, Verdict.DEFER, NOON_LA + timedelta(days=2)),
        # Both caps hold an SMS: the later release wins (weekly cap: 3 days; SMS cap: 22 hours).
        ("sms", {"sms": [NOON_LA - timedelta(hours=2)], "email": days_before(NOON_LA, 2, 4)}, Verdict.DEFER, NOON_LA + timedelta(days=3)),
    ],
)  # fmt: skip
def test_a_per_channel_cap_holds_only_its_channel(
    channel: str, recent: dict[str, list[datetime]], verdict: Verdict, until: datetime | None
) -> None:
    decision = gate(NOON_LA, message=sms(channel=channel), rules=PER_CHANNEL, recent=recent)
    assert decision.verdict is verdict
    assert decision.until == until


def test_a_capped_message_already_carries_its_opt_out_line() -> None:
    decision = gate(NOON_LA, recent={"sms": days_before(NOON_LA, 1, 2, 3)})
    assert decision.verdict is Verdict.DEFER
    assert decision.text.endswith("\n" + SMS_STOP)


def test_caps_do_not_hold_replies() -> None:
    decision = gate(NOON_LA, message=reply(), recent={"sms": days_before(NOON_LA, 0.1, 0.2, 0.3, 0.4)})
    assert decision.verdict is Verdict.SEND


# --- stops ----------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", PAUSE_REASONS)
def test_every_pause_flag_blocks_proactive_messages(reason: str) -> None:
    debtor = Debtor("acc", timezone="America/Los_Angeles", pauses=frozenset({reason}))
    decision = gate(NOON_LA, debtor=debtor)
    assert (decision.verdict, decision.rule) == (Verdict.BLOCK, f"pause:{reason}")
    assert reason in decision.reason
    assert decision.text == "" and decision.added == ()


def test_several_pauses_name_the_first_and_list_them_all() -> None:
    debtor = Debtor(
        "acc", timezone="America/Los_Angeles", pauses=frozenset({"deceased", "dispute", "attorney"})
    )
    decision = gate(NOON_LA, debtor=debtor, address=AddressState(wrong_party=True, opted_out=True))
    assert decision.rule == "pause:dispute"
    assert all(flag in decision.reason for flag in ("dispute", "attorney", "deceased"))


@pytest.mark.parametrize("reason", PAUSE_REASONS)
def test_an_agent_may_write_after_a_crisis_dispute_or_payment_claim_but_never_past_a_legal_stop(
    reason: str,
) -> None:
    debtor = Debtor("acc", timezone="America/Los_Angeles", pauses=frozenset({reason}))
    decision = gate(NOON_LA, debtor=debtor, message=sms("Hi, this is Sam from the team.", kind="agent"))
    if reason in AGENT_MAY_CONTACT_DESPITE:
        assert (decision.verdict, decision.rule) == (Verdict.SEND, "allowed")
    else:
        assert (decision.verdict, decision.rule) == (Verdict.BLOCK, f"pause:{reason}")
    # The same words from the bot are a collection message: paused.
    assert gate(NOON_LA, debtor=debtor).rule == f"pause:{reason}"


def test_an_agent_still_keeps_contact_hours_and_honours_opt_outs_after_a_crisis() -> None:
    debtor = Debtor("acc", timezone="America/Los_Angeles", pauses=frozenset({"crisis"}))
    agent = sms("Hi, this is Sam from the team.", kind="agent")
    night = NOON_LA + timedelta(hours=15)  # 03:00 in Los Angeles
    assert gate(night, debtor=debtor, message=agent).verdict is Verdict.DEFER
    opted_out = gate(NOON_LA, debtor=debtor, message=agent, address=AddressState(opted_out=True))
    assert (opted_out.verdict, opted_out.rule) == (Verdict.BLOCK, "opted_out")


def test_an_unknown_pause_flag_still_pauses() -> None:
    decision = gate(
        NOON_LA, debtor=Debtor("acc", timezone="America/Los_Angeles", pauses=frozenset({"fraud_review"}))
    )
    assert (decision.verdict, decision.rule) == (Verdict.BLOCK, "pause:fraud_review")


VULNERABLE = Debtor("acc", timezone="America/Los_Angeles", vulnerable=True)
WITH_AGENT = Debtor("acc", timezone="America/Los_Angeles", with_agent=True)


@pytest.mark.parametrize(
    ("kind", "verdict", "rule"),
    [
        ("opener", Verdict.BLOCK, "vulnerable"),
        ("missed_payment", Verdict.BLOCK, "vulnerable"),
        ("follow_up", Verdict.BLOCK, "vulnerable"),  # a kind added later is held until named
        ("reminder", Verdict.SEND, "allowed"),  # of the plan the person agreed to
        ("agent", Verdict.SEND, "allowed"),
        ("handback", Verdict.SEND, "allowed"),
    ],
)
def test_a_person_flagged_vulnerable_gets_no_collection_message_but_their_plans_reminders(
    kind: str, verdict: Verdict, rule: str
) -> None:
    decision = gate(NOON_LA, debtor=VULNERABLE, message=sms(kind=kind, verified=kind == "reminder"))
    assert (decision.verdict, decision.rule) == (verdict, rule)
    if verdict is Verdict.BLOCK:
        assert decision.text == ""
        assert "vulnerable" in decision.reason and "until an agent clears" in decision.reason
    assert {"reminder", "agent", "handback"} == VULNERABLE_STILL_GETS


def test_the_vulnerable_flag_holds_nothing_when_it_is_not_set_and_never_a_reply() -> None:
    assert gate(NOON_LA, debtor=LA, message=sms(kind="opener")).verdict is Verdict.SEND
    at_night = local("America/Los_Angeles", 2026, 6, 10, 3, 0)
    decision = gate(at_night, debtor=VULNERABLE, message=reply())
    assert (decision.verdict, decision.rule) == (Verdict.SEND, "reply")


@pytest.mark.parametrize(
    ("kind", "verdict", "rule"),
    [
        ("opener", Verdict.BLOCK, "with_agent"),
        ("reminder", Verdict.BLOCK, "with_agent"),
        ("missed_payment", Verdict.BLOCK, "with_agent"),
        ("follow_up", Verdict.BLOCK, "with_agent"),
        ("agent", Verdict.SEND, "allowed"),  # the agent holding it writes
        ("handback", Verdict.SEND, "allowed"),
    ],
)
def test_while_an_agent_holds_the_conversation_the_bot_starts_nothing(
    kind: str, verdict: Verdict, rule: str
) -> None:
    decision = gate(NOON_LA, debtor=WITH_AGENT, message=sms(kind=kind, verified=kind != "opener"))
    assert (decision.verdict, decision.rule) == (verdict, rule)
    if verdict is Verdict.BLOCK:
        assert "agent" in decision.reason and decision.text == ""
    assert {"agent", "handback"} == SENT_BY_A_PERSON


def test_an_agent_holding_the_conversation_does_not_hold_the_bots_replies() -> None:
    decision = gate(NOON_LA, debtor=WITH_AGENT, message=reply())
    assert (decision.verdict, decision.rule) == (Verdict.SEND, "reply")


def test_pauses_come_before_vulnerable_before_the_agent_before_the_address() -> None:
    everything = AddressState(wrong_party=True, opted_out=True, unreachable=True)
    debtor = Debtor("acc", timezone="America/Los_Angeles", pauses=frozenset({"dispute"}), vulnerable=True,
                    with_agent=True)  # fmt: skip
    assert gate(NOON_LA, debtor=debtor, address=everything).rule == "pause:dispute"
    debtor = Debtor("acc", timezone="America/Los_Angeles", vulnerable=True, with_agent=True)
    assert gate(NOON_LA, debtor=debtor, address=everything).rule == "vulnerable"
    assert gate(NOON_LA, debtor=WITH_AGENT, address=everything).rule == "with_agent"
    # A reminder to a vulnerable person still waits while an agent holds the conversation.
    assert gate(NOON_LA, debtor=debtor, message=sms(kind="reminder", verified=True)).rule == "with_agent"
    # Both hold before the zone is looked at (no zone: still named for what it is).
    assert gate(NOON_LA, debtor=Debtor("acc", vulnerable=True)).rule == "vulnerable"
    # An agent's message still honours the address and the hours.
    agent = sms("Hi, this is Sam from the team.", kind="agent")
    assert gate(NOON_LA, debtor=debtor, message=agent, address=everything).rule == "wrong_party"
    assert gate(NOON_LA + timedelta(hours=15), debtor=debtor, message=agent).verdict is Verdict.DEFER


@pytest.mark.parametrize(
    ("address", "rule"),
    [
        (AddressState(wrong_party=True), "wrong_party"),
        (AddressState(opted_out=True), "opted_out"),
        (AddressState(unreachable=True), "unreachable"),
        (AddressState(wrong_party=True, opted_out=True, unreachable=True), "wrong_party"),
        (AddressState(opted_out=True, unreachable=True), "opted_out"),
    ],
)
def test_address_states_block_proactive_messages_in_order(address: AddressState, rule: str) -> None:
    decision = gate(NOON_LA, address=address)
    assert (decision.verdict, decision.rule) == (Verdict.BLOCK, rule)


def test_blocks_come_before_the_unknown_zone_and_the_unknown_zone_before_caps() -> None:
    assert gate(NOON_LA, debtor=Debtor("acc"), address=AddressState(opted_out=True)).rule == "opted_out"
    capped = {"sms": days_before(NOON_LA, 1, 2, 3)}
    assert gate(NOON_LA, debtor=Debtor("acc"), recent=capped).rule == "unknown_zone"


# --- replies --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("debtor", "address"),
    [
        (LA, AddressState()),
        (LA, AddressState(opted_out=True)),  # the one confirmation of the opt-out
        (LA, AddressState(unreachable=True)),
        (Debtor("acc"), AddressState()),  # no zone known: a reply needs none
        (
            Debtor("acc", timezone="America/Los_Angeles", contact_window=ContactWindow(after=time(18))),
            AddressState(),
        ),
        (Debtor("acc", timezone="America/Los_Angeles", pauses=frozenset({"dispute"})), AddressState()),
    ],
)
def test_replies_go_at_any_hour(debtor: Debtor, address: AddressState) -> None:
    decision = gate(
        local("America/Los_Angeles", 2026, 6, 10, 3, 0), debtor=debtor, message=reply(), address=address
    )
    assert (decision.verdict, decision.rule) == (Verdict.SEND, "reply")
    assert decision.text == "Thanks, noted."


def test_a_reply_to_a_wrong_party_address_is_blocked() -> None:
    decision = gate(NOON_LA, message=reply(), address=AddressState(wrong_party=True))
    assert (decision.verdict, decision.rule, decision.text) == (Verdict.BLOCK, "wrong_party", "")


@pytest.mark.parametrize(
    ("minutes_ago", "verdict", "rule"),
    [
        (0, Verdict.SEND, "reply_window"),
        (10, Verdict.SEND, "reply_window"),
        (30, Verdict.SEND, "reply_window"),
        (31, Verdict.DEFER, "quiet_hours"),
        (-5, Verdict.DEFER, "quiet_hours"),  # a time in the future is clock skew, not a conversation
    ],
)
def test_a_proactive_follow_up_within_the_reply_window_goes_at_any_hour(
    minutes_ago: int, verdict: Verdict, rule: str
) -> None:
    now = local("America/Los_Angeles", 2026, 6, 10, 23, 0)
    debtor = Debtor(
        "acc", timezone="America/Los_Angeles", last_inbound_at=now - timedelta(minutes=minutes_ago)
    )
    decision = gate(now, debtor=debtor, message=sms(kind="follow_up"))
    assert (decision.verdict, decision.rule) == (verdict, rule)
    assert decision.text.endswith(SMS_STOP)


@pytest.mark.parametrize("kind", ["opener", "reminder", "missed_payment"])
@pytest.mark.parametrize("minutes_ago", [0, 3, 30])
def test_openers_and_payment_reminders_keep_contact_hours_even_right_after_the_person_wrote(
    kind: str, minutes_ago: int
) -> None:
    now = local("America/New_York", 2026, 6, 10, 4, 26)
    debtor = Debtor("acc", timezone="America/New_York", last_inbound_at=now - timedelta(minutes=minutes_ago))
    decision = gate(now, debtor=debtor, message=sms(kind=kind, verified=kind != "opener"))
    assert (decision.verdict, decision.rule) == (Verdict.DEFER, "quiet_hours")
    assert decision.until == local("America/New_York", 2026, 6, 10, 8, 0)
    assert {"opener", "reminder", "missed_payment"} == KEEP_CONTACT_HOURS


def test_the_reply_window_does_not_lift_caps_or_stops() -> None:
    now = local("America/Los_Angeles", 2026, 6, 10, 23, 0)
    debtor = Debtor("acc", timezone="America/Los_Angeles", last_inbound_at=now - timedelta(minutes=5))
    assert gate(now, debtor=debtor, recent={"sms": days_before(now, 1, 2, 3)}).rule == "frequency_cap"
    assert gate(now, debtor=debtor, address=AddressState(opted_out=True)).rule == "opted_out"


# --- what a message carries -----------------------------------------------------------------


@pytest.mark.parametrize("message", [sms(f"Card {CARD}, thanks"), reply(f"Card {CARD}, thanks")])
def test_card_numbers_are_redacted_in_proactive_messages_and_replies(message: Outgoing) -> None:
    decision = gate(NOON_LA, message=message)
    assert decision.verdict is Verdict.SEND
    assert CARD not in decision.text
    assert "Card [card number removed], thanks" in decision.text
    assert "card_redacted" in decision.added


@pytest.mark.parametrize(
    "number", ["4111111111111111", "4111-1111-1111-1111", "378282246310005", "6011 0009 9013 9424"]
)
def test_every_luhn_valid_card_layout_is_redacted(number: str) -> None:
    decision = gate(NOON_LA, message=reply(f"use {number}"))
    assert decision.text == "use [card number removed]"


@pytest.mark.parametrize("message", [sms(f"Ref {NOT_A_CARD}"), reply(f"Ref {NOT_A_CARD}")])
def test_digit_runs_that_fail_luhn_stay(message: Outgoing) -> None:
    assert not luhn_valid(NOT_A_CARD)
    decision = gate(NOON_LA, message=message)
    assert NOT_A_CARD in decision.text
    assert "card_redacted" not in decision.added


def test_redaction_never_blocks_and_is_kept_in_a_deferred_text() -> None:
    decision = gate(local("America/Los_Angeles", 2026, 6, 10, 22, 0), message=sms(f"Card {CARD}"))
    assert decision.verdict is Verdict.DEFER
    assert CARD not in decision.text and "card_redacted" in decision.added


@pytest.mark.parametrize(
    ("message", "line"),
    [
        (sms(), SMS_STOP),
        (sms(language="es"), "Responda BAJA para no recibir más mensajes."),
        (sms(channel="email"), RULES.opt_out_text[("email", "en")]),
        (sms(channel="email", language="es"), RULES.opt_out_text[("email", "es")]),
        (sms(channel="telegram"), None),
        (reply(), None),
        (reply(channel="email"), None),
    ],
)
def test_the_opt_out_line_goes_on_proactive_sms_and_email_only(message: Outgoing, line: str | None) -> None:
    decision = gate(NOON_LA, message=message)
    assert decision.verdict is Verdict.SEND
    if line is None:
        assert decision.text == message.text
        assert "opt_out_instruction" not in decision.added
    else:
        assert decision.text == f"{message.text}\n{line}"
        assert decision.added == ("opt_out_instruction",)


def test_the_opt_out_line_is_not_added_twice() -> None:
    message = sms(f"Hello.\n{SMS_STOP}")
    decision = gate(NOON_LA, message=message)
    assert decision.text == message.text
    assert decision.text.count(SMS_STOP) == 1
    assert decision.added == ()


def test_the_opt_out_line_falls_back_to_english() -> None:
    rules = ContactRules(opt_out_text={("sms", "en"): "Text STOP to end."})
    decision = gate(NOON_LA, message=sms(language="es"), rules=rules)
    assert decision.text.endswith("\nText STOP to end.")


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (ContactRules(opt_out_text={("sms", "en"): "Text STOP to end."}), sms(channel="email")),
        (ContactRules(mini_miranda={}), reply(verified=True)),
    ],
)
def test_a_missing_required_text_blocks(rules: ContactRules, message: Outgoing) -> None:
    decision = gate(NOON_LA, message=message, rules=rules)
    assert (decision.verdict, decision.rule) == (Verdict.BLOCK, "missing_text")


@pytest.mark.parametrize(
    ("message", "statement"),
    [
        (reply(verified=True), MINI_EN),
        (sms(verified=True), MINI_EN),
        (reply(verified=True, language="es"), RULES.mini_miranda["es"]),
        (reply(verified=True, mini_miranda_said=True), None),
        (reply(verified=False), None),
        (sms(verified=False), None),
        (reply(verified=False, mini_miranda_said=False), None),
    ],
)
def test_the_mini_miranda_is_said_once_and_only_to_a_verified_person(
    message: Outgoing, statement: str | None
) -> None:
    decision = gate(NOON_LA, message=message)
    assert decision.verdict is Verdict.SEND
    if statement is None:
        assert "debt" not in decision.text and "deuda" not in decision.text
        assert "mini_miranda" not in decision.added
    else:
        assert decision.text.startswith(statement + "\n\n" + message.text)
        assert decision.added[0] == "mini_miranda"


def test_the_mini_miranda_is_not_repeated_when_the_text_already_has_it() -> None:
    decision = gate(NOON_LA, message=reply(f"{MINI_EN} Your balance is $120.", verified=True))
    assert decision.text.count(MINI_EN) == 1
    assert decision.added == ()


def test_everything_added_in_order() -> None:
    decision = gate(NOON_LA, message=sms(f"Pay with {CARD}?", verified=True))
    assert decision.added == ("card_redacted", "mini_miranda", "opt_out_instruction")
    assert decision.text == f"{MINI_EN}\n\nPay with [card number removed]?\n{SMS_STOP}"


# --- the interface --------------------------------------------------------------------------


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        gate(datetime(2026, 6, 10, 12, 0))
    with pytest.raises(ValueError, match="aware"):
        next_allowed(datetime(2026, 6, 10, 12, 0), ["UTC"], RULES, None)
    with pytest.raises(ValueError, match="aware"):
        gate(NOON_LA, recent={"sms": [datetime(2026, 6, 9, 12, 0)]})


@pytest.mark.parametrize(
    "build",
    [
        lambda: ContactRules(earliest=time(21), latest=time(8)),
        lambda: ContactRules(earliest=time(9), latest=time(9)),
        lambda: ContactRules(default_zone="Nowhere/Special"),
        lambda: ContactRules(reply_window=timedelta(minutes=-1)),
        lambda: FrequencyCap(0, timedelta(days=7)),
        lambda: FrequencyCap(3, timedelta(0)),
    ],
)
def test_impossible_rules_are_refused(build: object) -> None:
    with pytest.raises(ValueError):
        build()  # type: ignore[operator]


def test_rules_are_hashable_and_compare_by_value() -> None:
    assert hash(ContactRules()) == hash(ContactRules())
    assert ContactRules() == ContactRules()
    assert ContactRules(mini_miranda={"en": "x"}) != ContactRules()


def test_an_unknown_channel_is_blocked() -> None:
    decision = gate(NOON_LA, message=sms(channel="fax"))
    assert (decision.verdict, decision.rule) == (Verdict.BLOCK, "unknown_channel")


def test_an_invalid_zone_is_named_in_the_reason_without_personal_data() -> None:
    rules = ContactRules(default_zone="America/New_York")
    reason = gate(NOON_LA, debtor=Debtor("acc", timezone="Eastern"), rules=rules).reason
    assert "'Eastern' is not a valid zone name" in reason
    reason = gate(NOON_LA, debtor=Debtor("acc", timezone="+14155550123"), rules=rules).reason
    assert "4155550123" not in reason


def test_reasons_carry_no_phone_number() -> None:
    debtor = Debtor("acc", phone="+12085550123", postal_code="83702", country="US")
    for now in (NOON_LA, local("America/Los_Angeles", 2026, 6, 10, 23, 0)):
        reason = gate(now, debtor=debtor).reason
        assert "2085550123" not in reason and "83702" not in reason


# --- properties -----------------------------------------------------------------------------

REAL_ZONES = [
    "America/New_York", "America/Chicago", "America/Denver", "America/Phoenix", "America/Los_Angeles",
    "America/Anchorage", "Pacific/Honolulu", "America/St_Johns", "America/Halifax", "America/Mexico_City",
    "America/Sao_Paulo", "Europe/London", "Europe/Madrid", "Atlantic/Canary", "Asia/Kolkata",
    "Asia/Kathmandu", "Australia/Lord_Howe", "Australia/Adelaide", "Pacific/Auckland", "Pacific/Chatham",
    "Asia/Tehran", "Africa/Casablanca", "America/Santiago", "Pacific/Kiritimati",
]  # fmt: skip

moments = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)
zone_sets = st.lists(st.sampled_from(REAL_ZONES), min_size=1, max_size=3, unique=True)
clocks = st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 59]))
windows = st.one_of(
    st.none(),
    st.builds(
        ContactWindow,
        after=st.one_of(st.none(), clocks),
        before=st.one_of(st.none(), clocks),
        excluded_weekdays=st.frozensets(st.integers(0, 6), max_size=3),
        weekdays_only=st.booleans(),
    ),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(now=moments, zones=zone_sets, window=windows, data=st.data())
def test_next_allowed_is_the_first_allowed_moment(
    now: datetime, zones: list[str], window: ContactWindow | None, data: st.DataObject
) -> None:
    horizon = timedelta(days=14)
    found = next_allowed(now, zones, RULES, window, horizon=horizon)
    if found is not None:
        assert now <= found <= now + horizon
        assert allowed_everywhere(found, zones, RULES, window)
        end = found
    else:
        end = now + horizon
    # No earlier moment is allowed: the last second and minute before it, and a sample between.
    span = (end - now).total_seconds()
    offsets = data.draw(st.lists(st.floats(0, span), max_size=60)) if span > 0 else []
    probes = [now + timedelta(seconds=s) for s in offsets]
    probes += [end - timedelta(seconds=1), end - timedelta(minutes=1)]
    # Minute boundaries are where the rules change: probe many of them.
    first_minute = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    step = max(1, int(span // 60 // 2000))
    probes += [first_minute + timedelta(minutes=m) for m in range(0, int(span // 60), step)]
    for probe in probes:
        if now <= probe < end:
            assert not allowed_everywhere(probe, zones, RULES, window), probe


@settings(max_examples=150, deadline=None)
@given(
    now=moments,
    zone=st.one_of(st.none(), st.sampled_from(REAL_ZONES)),
    pauses=st.frozensets(st.sampled_from(PAUSE_REASONS), max_size=2),
    address=st.builds(AddressState, st.booleans(), st.booleans(), st.booleans()),
    message=st.builds(
        Outgoing,
        channel=st.sampled_from(["sms", "telegram", "email"]),
        text=st.sampled_from(["Hello.", f"Card {CARD}", f"Ref {NOT_A_CARD}", ""]),
        language=st.sampled_from(["en", "es"]),
        proactive=st.booleans(),
        verified=st.booleans(),
        mini_miranda_said=st.booleans(),
    ),
    sent=st.lists(st.integers(0, 10 * 24 * 60), max_size=5),
    held=st.tuples(st.booleans(), st.booleans()),
)
def test_every_decision_names_a_rule_and_is_consistent(
    now: datetime,
    zone: str | None,
    pauses: frozenset[str],
    address: AddressState,
    message: Outgoing,
    sent: list[int],
    held: tuple[bool, bool],
) -> None:
    debtor = Debtor("acc", timezone=zone, pauses=pauses, vulnerable=held[0], with_agent=held[1])
    recent = {message.channel: [now - timedelta(minutes=m) for m in sent]}
    decision = gate(now, debtor=debtor, message=message, address=address, recent=recent)
    assert decision.rule
    assert decision.reason
    if decision.verdict is Verdict.BLOCK:
        assert decision.text == "" and decision.until is None
        return
    assert CARD not in decision.text
    assert (decision.until is None) == (decision.verdict is Verdict.SEND)
    if decision.until is not None:
        assert decision.until > now and decision.until.tzinfo is UTC
    has_statement = any(text in decision.text for text in RULES.mini_miranda.values())
    assert has_statement == (message.verified and not message.mini_miranda_said)
    needs_opt_out = message.proactive and message.channel in ("sms", "email")
    assert needs_opt_out == ("opt_out_instruction" in decision.added)
    if not message.proactive:
        assert decision.verdict is Verdict.SEND
