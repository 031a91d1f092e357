"""Importing placement data: bad rows reported by line, good rows loaded, re-import updates."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import redis

from bot.store.accounts import AccountRowInvalid, AccountStore, parse_row
from bot.store.connection import Keys
from tests.conftest import ROOT, TEST_SECRETS, write_config

HEADER = "account_id,first_name,last_name,phone,email,telegram,balance,currency,creditor,timezone,language,date_of_birth\n"
GOOD = (
    "A-1,Ana,Ruiz,+13055550101,ana@example.com,ana_ruiz,100.50,USD,Acme Bank,America/New_York,es,1980-01-02\n"
)
OPTIONS = {
    "languages": ["en", "es"],
    "default_language": "en",
    "verification_field": "date_of_birth",
    "today": date(2026, 11, 24),
}


@pytest.fixture
def store(redis_client: redis.Redis) -> AccountStore:
    return AccountStore(redis_client, Keys("debtbot"))


def test_example_file_loads_a_dozen_accounts_in_several_zones_and_both_languages(store: AccountStore) -> None:
    report = store.import_csv((ROOT / "examples" / "accounts.csv").read_text(), **OPTIONS)
    assert report.errors == []
    assert report.created >= 12
    accounts = [store.get(i) for i in store.ids()]
    assert {a.language for a in accounts if a} == {"en", "es"}
    assert len({a.timezone for a in accounts if a}) >= 4


def test_bad_rows_are_reported_by_line_and_good_rows_still_load(store: AccountStore) -> None:
    text = (
        HEADER
        + GOOD
        + (
            "A-2,,Smith,+13055550102,,,10,USD,Acme,,en,1980-01-02\n"  # line 3: no first name
            "A-3,Bo,Li,555-0103,,,10,USD,Acme,,en,1980-01-02\n"  # line 4: not E.164
            "A-4,Cy,Do,+13055550104,,,ten,USD,Acme,,en,1980-01-02\n"  # line 5: balance
            "A-5,Di,Ek,+13055550105,,,10,XXX,Acme,,en,1980-01-02\n"  # line 6: currency
            "A-6,Ed,Fo,+13055550106,,,10,USD,Acme,Mars/Olympus,en,1980-01-02\n"  # line 7: time zone
            "A-7,Fi,Go,+13055550107,,,10,USD,Acme,,fr,1980-01-02\n"  # line 8: language
            "A-8,Gu,Ha,+13055550108,,,10,USD,Acme,,en,\n"  # line 9: verification field
            "A-9,Hu,Io,,,,10,USD,Acme,,en,1980-01-02\n"  # line 10: no way to reach
            "A-10,Ivy,Ja,+13055550110,,,10.123,USD,Acme,,en,1980-01-02\n"  # line 11: too many decimals
            "A-1,Ana,Ruiz,+13055550111,,,1,USD,Acme,,en,1980-01-02\n"  # line 12: repeated id
            "A-12,Jo,Ka,+13055550112,,,10,USD,Acme,,en,2020-01-02\n"  # line 13: too young
            "A-13,Ken,La,+13055550113,,,5.5,usd,Acme,America/Chicago,,1970-05-06\n"  # line 14: good
        )
    )
    report = store.import_csv(text, **OPTIONS)
    by_line = {e.line: e.reason for e in report.errors}
    assert "first_name: required" in by_line[3]
    assert "phone:" in by_line[4] and "E.164" in by_line[4]
    assert "balance:" in by_line[5]
    assert "currency:" in by_line[6]
    assert "timezone:" in by_line[7]
    assert "language:" in by_line[8]
    assert "date_of_birth: required, because accounts.verification_field is date_of_birth" in by_line[9]
    assert "at least one way to reach" in by_line[10]
    assert "at most 2 decimal places" in by_line[11]
    assert "already on line 2" in by_line[12]
    assert "age outside" in by_line[13]
    assert set(by_line) == {3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}
    assert report.created == 2
    assert store.get("A-13") is not None and store.get("A-13").currency == "USD"  # type: ignore[union-attr]
    assert store.get("A-13").language == "en"  # type: ignore[union-attr]


def test_error_messages_do_not_repeat_full_phone_numbers(store: AccountStore) -> None:
    report = store.import_csv(HEADER + "A-3,Bo,Li,305-555-0103,,,10,USD,Acme,,en,1980-01-02\n", **OPTIONS)
    assert "305-555-0103" not in report.errors[0].reason
    assert "3055550103" not in report.errors[0].reason


def test_reimport_updates_in_place_and_moves_the_phone_index(store: AccountStore) -> None:
    store.import_csv(HEADER + GOOD, **OPTIONS)
    changed = GOOD.replace("+13055550101", "+13055550199").replace("100.50", "80.00")
    report = store.import_csv(HEADER + changed, **OPTIONS)
    assert (report.created, report.updated) == (0, 1)
    assert store.ids() == ["A-1"]
    account = store.find("phone", "+13055550199")
    assert account is not None and account.balance == Decimal("80.00")
    assert store.find("phone", "+13055550101") is None
    again = store.import_csv(HEADER + changed, **OPTIONS)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 1)


def test_an_address_of_another_account_is_refused(store: AccountStore) -> None:
    store.import_csv(HEADER + GOOD, **OPTIONS)
    thief = GOOD.replace("A-1,", "A-2,").replace("ana_ruiz", "other_handle").replace("ana@", "other@")
    report = store.import_csv(HEADER + thief, **OPTIONS)
    assert report.errors and "phone: already belongs to account A-1" in report.errors[0].reason
    assert store.find("phone", "+13055550101").account_id == "A-1"  # type: ignore[union-attr]


def test_lookup_by_email_and_telegram_handle_ignores_case(store: AccountStore) -> None:
    store.import_csv(HEADER + GOOD, **OPTIONS)
    assert store.find("email", "ANA@example.com").account_id == "A-1"  # type: ignore[union-attr]
    assert store.find("telegram", "@Ana_Ruiz").account_id == "A-1"  # type: ignore[union-attr]


def test_missing_required_column_is_reported_on_the_header_line(store: AccountStore) -> None:
    report = store.import_csv("account_id,first_name\nA-1,Ana\n", **OPTIONS)
    assert report.errors[0].line == 1
    assert "missing column(s) balance, currency, creditor" in report.errors[0].reason


def test_row_with_more_values_than_columns_is_rejected(store: AccountStore) -> None:
    report = store.import_csv(HEADER + GOOD.replace("Acme Bank", "Acme, Bank"), **OPTIONS)
    assert report.errors[0].line == 2 and "more values than columns" in report.errors[0].reason


def test_parse_row_normalises_handle_currency_and_email() -> None:
    account = parse_row(
        {"account_id": "Z-1", "first_name": "Zoe", "telegram": "@zoe_handle", "balance": "1", "currency": "eur",
         "creditor": "C", "email": "Zoe@Example.COM", "date_of_birth": "1990-01-01"},
        languages=["en"], default_language="en", verification_field="date_of_birth",
    )  # fmt: skip
    assert (account.telegram, account.currency, account.email) == ("zoe_handle", "EUR", "Zoe@example.com")


def test_parse_row_reports_every_problem_of_a_row_at_once() -> None:
    with pytest.raises(AccountRowInvalid) as caught:
        parse_row({"account_id": "bad id!", "balance": "-1"}, languages=["en"], default_language="en",
                  verification_field="postal_code")  # fmt: skip
    message = str(caught.value)
    for column in ("account_id", "first_name", "currency", "creditor", "balance", "postal_code"):
        assert f"{column}:" in message


def test_cli_import_reports_lines_and_exit_code(tmp_path: Path, redis_url: str) -> None:
    config = write_config(tmp_path, {})
    csv_file = tmp_path / "accounts.csv"
    csv_file.write_text(HEADER + GOOD + "A-2,,x,+13055550102,,,1,USD,Acme,,en,1980-01-02\n")
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "accounts", "import", str(csv_file), "--config", str(config)],
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "REDIS_URL": redis_url, **TEST_SECRETS},
        check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "accounts.csv: line 3: first_name: required" in result.stderr
    assert "1 account(s) loaded (1 new, 0 updated, 0 unchanged); 1 row(s) rejected" in result.stdout
