"""Reading money, frequencies, dates and contact windows from what people write, in English and Spanish."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialogue.parsing import (
    Cadence,
    ContactWindow,
    Money,
    parse_birth_date,
    parse_contact_window,
    parse_date,
    parse_frequency,
    parse_money,
)
from dialogue.plans import Frequency

TODAY = date(2026, 11, 24)  # a Tuesday
MONTHLY, WEEKLY, FORTNIGHTLY = Frequency.MONTHLY, Frequency.WEEKLY, Frequency.FORTNIGHTLY


# --- money ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "amount", "currency"),
    [
        # the product owner's examples
        ("$1,250.50", "1250.50", "USD"),
        ("fifty bucks", "50", "USD"),
        ("£20/wk", "20", "GBP"),
        ("cien euros", "100", "EUR"),
        # amounts in digits
        ("I can do 50 a month", "50", None),
        ("20 quid a week", "20", "GBP"),
        ("1.250,50 €", "1250.50", "EUR"),
        ("1,250", "1250", None),
        ("1.250", "1250", None),
        ("12,50 euros", "12.50", "EUR"),
        ("12.5", "12.5", None),
        ("2k", "2000", None),
        ("1.5k dollars", "1500", "USD"),
        ("5 mil pesos", "5000", "MXN"),
        ("USD 300", "300", "USD"),
        ("usd300", "300", "USD"),
        ("300 dólares", "300", "USD"),
        ("300 dolares", "300", "USD"),
        ("$ 40", "40", "USD"),
        ("40$", "40", "USD"),
        ("MX$500", "500", "MXN"),
        ("€75", "75", "EUR"),
        ("1,250,000", "1250000", None),
        ("2000", "2000", None),
        ("pagos de 2000", "2000", None),
        # amounts in words
        ("twenty five dollars", "25", "USD"),
        ("twenty-five", "25", None),
        ("one hundred and fifty", "150", None),
        ("a hundred quid", "100", "GBP"),
        ("two thousand five hundred", "2500", None),
        ("fifteen hundred", "1500", None),
        ("cincuenta al mes", "50", None),
        ("doscientos cincuenta pesos", "250", "MXN"),
        ("mil quinientos", "1500", None),
        ("treinta y cinco", "35", None),
        ("treinta y un euros", "31", "EUR"),
        ("veintiún dólares", "21", "USD"),
        ("ciento veinte", "120", None),
        ("un millón de pesos", "1000000", "MXN"),
        ("CINCUENTA DÓLARES", "50", "USD"),
        # cents
        ("twenty dollars and fifty cents", "20.50", "USD"),
        ("veinte euros con cincuenta céntimos", "20.50", "EUR"),
        ("50 pence", "0.50", "GBP"),
        # several amounts: the one with a currency, else the first plain one
        ("12 payments of 50", "50", None),
        ("I can pay 30 on the 15th", "30", None),
        ("in two weeks I could pay 40, maybe $60", "60", "USD"),
        ("40 or 50", "40", None),
        ("call me at 6pm, I can pay 25", "25", None),
        ("account #12345, I can pay 60", "60", None),
        ("I can pay 60 in 2027", "60", None),
    ],
)
def test_parse_money_reads_amounts_and_currencies(text: str, amount: str, currency: str | None) -> None:
    money = parse_money(text)
    assert money == Money(Decimal(amount), currency)
    assert isinstance(money.amount, Decimal)


@pytest.mark.parametrize(
    "text",
    [
        "no money",
        "",
        "   ",
        "I can't pay anything right now",
        "on the 15th",
        "at 6pm",
        "at 6",
        "6:30",
        "12/03/1984",
        "2026-12-04",
        "12/04",
        "March 3",
        "3 de marzo",
        "el 15",
        "born in 1984",
        "since 2019",
        "March 2026",
        "call me on 555-123-4567",
        "+1 305 555 0101",
        "(305) 555-0101",
        "my number is 3055550101",
        "in two weeks",
        "every 2 weeks",
        "cada 15 días",
        "70%",
        "once a month",
        "no one answers",
        "una vez al mes",
    ],
)
def test_parse_money_finds_no_amount_in_dates_times_phones_counts_or_words(text: str) -> None:
    assert parse_money(text) is None


@pytest.mark.parametrize(
    ("text", "default", "expected"),
    [
        ("I can do 50 a month", "USD", Money(Decimal(50), "USD")),
        ("cincuenta al mes", "MXN", Money(Decimal(50), "MXN")),
        # "$" is the account's currency when that is written with "$" too ...
        ("$50", "MXN", Money(Decimal(50), "MXN")),
        ("puedo pagar $50", "MXN", Money(Decimal(50), "MXN")),
        ("$50", "CAD", Money(Decimal(50), "CAD")),
        # ... and US dollars otherwise, whatever the language of the text.
        ("puedo pagar $50", None, Money(Decimal(50), "USD")),
        ("puedo pagar $50", "EUR", Money(Decimal(50), "USD")),
        # Words name their currency, whatever the account's.
        ("300 dólares", "MXN", Money(Decimal(300), "USD")),
        ("20 euros", "USD", Money(Decimal(20), "EUR")),
        ("cien pesos", "COP", Money(Decimal(100), "COP")),
        ("cien pesos", "USD", Money(Decimal(100), "MXN")),
        ("50 cents", "USD", Money(Decimal("0.50"), "USD")),
    ],
)
def test_parse_money_falls_back_to_the_default_currency_and_reads_the_dollar_sign_by_it(
    text: str, default: str | None, expected: Money
) -> None:
    assert parse_money(text, default_currency=default) == expected


# --- frequency -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "frequency", "weekday"),
    [
        ("every other Friday", FORTNIGHTLY, 4),  # the product owner's example
        ("a month", MONTHLY, None),
        ("50 per month", MONTHLY, None),
        ("monthly", MONTHLY, None),
        ("$50/mo", MONTHLY, None),
        ("every month", MONTHLY, None),
        ("once a month", MONTHLY, None),
        ("a week", WEEKLY, None),
        ("weekly", WEEKLY, None),
        ("£20/wk", WEEKLY, None),
        ("every week", WEEKLY, None),
        ("per week", WEEKLY, None),
        ("every two weeks", FORTNIGHTLY, None),
        ("every 2 weeks", FORTNIGHTLY, None),
        ("fortnightly", FORTNIGHTLY, None),
        ("biweekly", FORTNIGHTLY, None),
        ("bi-weekly", FORTNIGHTLY, None),
        ("every other week", FORTNIGHTLY, None),
        ("every two weeks on Friday", FORTNIGHTLY, 4),
        ("every Friday", WEEKLY, 4),
        ("EVERY MONDAY", WEEKLY, 0),
        ("on Fridays", WEEKLY, 4),
        ("weekly on thursdays", WEEKLY, 3),
        ("al mes", MONTHLY, None),
        ("cincuenta al mes", MONTHLY, None),
        ("por mes", MONTHLY, None),
        ("mensual", MONTHLY, None),
        ("mensualmente", MONTHLY, None),
        ("cada mes", MONTHLY, None),
        ("a la semana", WEEKLY, None),
        ("por semana", WEEKLY, None),
        ("semanal", WEEKLY, None),
        ("cada semana", WEEKLY, None),
        ("cada quincena", FORTNIGHTLY, None),
        ("quincenal", FORTNIGHTLY, None),
        ("cada dos semanas", FORTNIGHTLY, None),
        ("cada 15 días", FORTNIGHTLY, None),
        ("cada 15 dias", FORTNIGHTLY, None),
        ("cada viernes", WEEKLY, 4),
        ("cada miércoles", WEEKLY, 2),
        ("todos los lunes", WEEKLY, 0),
        ("un viernes sí y otro no", FORTNIGHTLY, 4),
        ("un viernes si y otro no", FORTNIGHTLY, 4),
        ("cada dos viernes", FORTNIGHTLY, 4),
    ],
)
def test_parse_frequency_reads_how_often_and_which_weekday(
    text: str, frequency: Frequency, weekday: int | None
) -> None:
    assert parse_frequency(text) == Cadence(frequency, weekday)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        "50 dollars",
        "every other month",
        "every two months",
        "cada dos meses",
        "every 3 weeks",
        "in a week",
        "friday",
    ],
)
def test_parse_frequency_answers_none_for_no_or_unsupported_frequency(text: str) -> None:
    assert parse_frequency(text) is None


# --- payment dates -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        ("today", "en", date(2026, 11, 24)),
        ("tomorrow", "en", date(2026, 11, 25)),
        ("the day after tomorrow", "en", date(2026, 11, 26)),
        ("next friday", "en", date(2026, 11, 27)),
        ("this friday", "en", date(2026, 11, 27)),
        ("Friday", "en", date(2026, 11, 27)),
        ("on fri", "en", date(2026, 11, 27)),
        ("tuesday", "en", date(2026, 12, 1)),  # today is Tuesday: the next one
        ("on the 15th", "en", date(2026, 12, 15)),
        ("the 24th", "en", date(2026, 12, 24)),  # today is the 24th: from tomorrow
        ("the 25th", "en", date(2026, 11, 25)),
        ("on the 31st", "en", date(2026, 12, 31)),
        ("march 3", "en", date(2027, 3, 3)),
        ("3 march", "en", date(2027, 3, 3)),
        ("march 3rd", "en", date(2027, 3, 3)),
        ("the 3rd of March", "en", date(2027, 3, 3)),
        ("November 24", "en", date(2026, 11, 24)),
        ("December 4, 2026", "en", date(2026, 12, 4)),
        ("2026-12-04", "en", date(2026, 12, 4)),
        ("12/04", "en", date(2026, 12, 4)),
        ("12/04/2026", "en", date(2026, 12, 4)),
        ("12/04/26", "en", date(2026, 12, 4)),
        ("12/04", "es", date(2027, 4, 12)),
        ("in two weeks", "en", date(2026, 12, 8)),
        ("in 10 days", "en", date(2026, 12, 4)),
        ("in a week", "en", date(2026, 12, 1)),
        ("in a month", "en", date(2026, 12, 24)),
        ("hoy", "es", date(2026, 11, 24)),
        ("mañana", "es", date(2026, 11, 25)),
        ("manana", "es", date(2026, 11, 25)),
        ("mañana por la mañana", "es", date(2026, 11, 25)),
        ("pasado mañana", "es", date(2026, 11, 26)),
        ("el viernes", "es", date(2026, 11, 27)),
        ("el próximo viernes", "es", date(2026, 11, 27)),
        ("el sábado", "es", date(2026, 11, 28)),
        ("el 15", "es", date(2026, 12, 15)),
        ("el día 15", "es", date(2026, 12, 15)),
        ("el 15 de marzo", "es", date(2027, 3, 15)),
        ("15/03", "es", date(2027, 3, 15)),
        ("en dos semanas", "es", date(2026, 12, 8)),
        ("dentro de 3 días", "es", date(2026, 11, 27)),
    ],
)
def test_parse_date_reads_payment_dates(text: str, language: str, expected: date) -> None:
    assert parse_date(text, TODAY, language) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "whenever",
        "soon",
        "13/45",
        "2026-02-30",
        "February 30",
        "yesterday",
        "por la mañana",
        "50 dollars",
    ],
)
def test_parse_date_answers_none_for_vague_or_impossible_dates(text: str) -> None:
    assert parse_date(text, TODAY) is None


def test_parse_date_on_the_31st_skips_months_without_one() -> None:
    assert parse_date("on the 31st", date(2027, 3, 31)) == date(2027, 5, 31)


# --- dates of birth ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        ("1984-03-12", "en", date(1984, 3, 12)),
        ("03/12/1984", "en", date(1984, 3, 12)),
        ("12/03/1984", "es", date(1984, 3, 12)),
        ("12.03.1984", "es", date(1984, 3, 12)),
        ("13/03/1984", "en", date(1984, 3, 13)),  # only one reading is possible
        ("March 12, 1984", "en", date(1984, 3, 12)),
        ("march 12th 1984", "en", date(1984, 3, 12)),
        ("12 March 1984", "en", date(1984, 3, 12)),
        ("12th of March, 1984", "en", date(1984, 3, 12)),
        ("12 de marzo de 1984", "es", date(1984, 3, 12)),
        ("12 de Marzo del 1984", "es", date(1984, 3, 12)),
        ("12 marzo 84", "es", date(1984, 3, 12)),
        ("12 marzo 25", "es", date(2025, 3, 12)),
        ("I was born on 12/03/84", "es", date(1984, 3, 12)),
    ],
)
def test_parse_birth_date_reads_dates_of_birth(text: str, language: str, expected: date) -> None:
    assert parse_birth_date(text, language) == expected


def test_parse_birth_date_reads_two_digit_years_against_today() -> None:
    assert parse_birth_date("12/03/31", "es") == date(1931, 3, 12)  # default pivot: above 30 is 19xx
    assert parse_birth_date("12/03/30", "es") == date(2030, 3, 12)
    assert parse_birth_date("12/03/26", "es", today=TODAY) == date(2026, 3, 12)
    assert parse_birth_date("12/03/27", "es", today=TODAY) == date(1927, 3, 12)


@pytest.mark.parametrize(
    ("text", "today"),
    [
        ("30/02/1984", None),
        ("1984-02-30", None),
        ("February 30, 1984", None),
        ("31 de abril de 1990", None),
        ("March 12", None),
        ("hello", None),
        ("", None),
        ("12/03/1850", None),
        ("12/03/2030", TODAY),
    ],
)
def test_parse_birth_date_answers_none_for_impossible_or_incomplete_dates(
    text: str, today: date | None
) -> None:
    assert parse_birth_date(text, "es", today=today) is None


# --- contact windows -----------------------------------------------------------------------

NONE = frozenset[int]()


@pytest.mark.parametrize(
    ("text", "window"),
    [
        ("only after 6pm", ContactWindow(time(18), None, NONE, False)),
        ("before 9am", ContactWindow(None, time(9), NONE, False)),
        ("between 9 and 5", ContactWindow(time(9), time(17), NONE, False)),
        ("9-5", ContactWindow(time(9), time(17), NONE, False)),
        ("from 10am to 2pm", ContactWindow(time(10), time(14), NONE, False)),
        ("between 6 and 9", ContactWindow(time(18), time(21), NONE, False)),
        ("after 18:30", ContactWindow(time(18, 30), None, NONE, False)),
        ("after six", ContactWindow(time(18), None, NONE, False)),
        ("not before 10", ContactWindow(time(10), None, NONE, False)),
        ("after 6 but before 9", ContactWindow(time(18), time(21), NONE, False)),
        ("mornings", ContactWindow(None, time(12), NONE, False)),
        ("good morning! evenings please", ContactWindow(time(18), None, NONE, False)),
        ("evenings", ContactWindow(time(18), None, NONE, False)),
        ("afternoons", ContactWindow(time(12), time(17), NONE, False)),
        ("not on Sundays", ContactWindow(None, None, frozenset({6}), False)),
        ("not on saturdays or sundays", ContactWindow(None, None, frozenset({5, 6}), False)),
        ("only on fridays", ContactWindow(None, None, frozenset({0, 1, 2, 3, 5, 6}), False)),
        ("weekdays only", ContactWindow(None, None, NONE, True)),
        ("not on weekends", ContactWindow(None, None, NONE, True)),
        ("not at work", ContactWindow(time(17), None, NONE, False)),
        ("during work hours", ContactWindow(time(17), None, NONE, False)),
        ("after work", ContactWindow(time(17), None, NONE, False)),
        ("weekdays after 6pm, not fridays", ContactWindow(time(18), None, frozenset({4}), True)),
        ("anytime", ContactWindow(None, None, NONE, False)),
        ("solo después de las 6", ContactWindow(time(18), None, NONE, False)),
        ("solo despues de las 6", ContactWindow(time(18), None, NONE, False)),
        ("después de las 8 de la noche", ContactWindow(time(20), None, NONE, False)),
        ("antes de las 9 de la mañana", ContactWindow(None, time(9), NONE, False)),
        ("por las tardes", ContactWindow(time(12), time(20), NONE, False)),
        ("por las noches", ContactWindow(time(18), None, NONE, False)),
        ("por la mañana", ContactWindow(None, time(12), NONE, False)),
        ("de 9 a 5", ContactWindow(time(9), time(17), NONE, False)),
        ("entre las 10 y las 2", ContactWindow(time(10), time(14), NONE, False)),
        ("los domingos no", ContactWindow(None, None, frozenset({6}), False)),
        ("nunca los sábados", ContactWindow(None, None, frozenset({5}), False)),
        ("entre semana", ContactWindow(None, None, NONE, True)),
        ("de lunes a viernes", ContactWindow(None, None, NONE, True)),
        ("fines de semana no", ContactWindow(None, None, NONE, True)),
        ("fuera del horario de trabajo", ContactWindow(time(17), None, NONE, False)),
    ],
)
def test_parse_contact_window_reads_times_and_days(text: str, window: ContactWindow) -> None:
    assert parse_contact_window(text) == window


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        "yes",
        "I will pay 50",
        "after 9pm but before 8am",
        "not any day of the week: not monday, not tuesday, not wednesday, not thursday, not friday, not saturday, not sunday",
    ],
)
def test_parse_contact_window_answers_none_when_it_finds_no_usable_window(text: str) -> None:
    assert parse_contact_window(text) is None


def test_a_contact_window_allows_only_its_times_and_days() -> None:
    window = parse_contact_window("weekdays after 6pm, not fridays")
    assert window is not None
    assert window.allows(datetime(2026, 11, 24, 18, 30))  # Tuesday evening
    assert not window.allows(datetime(2026, 11, 24, 17, 59))
    assert not window.allows(datetime(2026, 11, 27, 19, 0))  # a Friday
    assert not window.allows(datetime(2026, 11, 28, 19, 0))  # a Saturday
    office = ContactWindow(time(9), time(17))
    assert office.allows(datetime(2026, 11, 28, 9, 0)) and not office.allows(datetime(2026, 11, 28, 17, 0))


# --- odd input -----------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_no_parser_raises_on_any_text(text: str) -> None:
    money = parse_money(text, default_currency="USD")
    assert money is None or isinstance(money.amount, Decimal)
    parse_frequency(text)
    parse_date(text, TODAY, "en")
    parse_date(text, TODAY, "es")
    parse_birth_date(text, "en")
    parse_contact_window(text)


@pytest.mark.parametrize("value", [None, 50, b"fifty dollars", ["$5"]])
def test_parsers_answer_none_for_what_is_not_text(value: object) -> None:
    assert parse_money(value) is None  # type: ignore[arg-type]
    assert parse_frequency(value) is None  # type: ignore[arg-type]
    assert parse_date(value, TODAY) is None  # type: ignore[arg-type]
    assert parse_birth_date(value) is None  # type: ignore[arg-type]
    assert parse_contact_window(value) is None  # type: ignore[arg-type]
