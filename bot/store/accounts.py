"""Accounts: the placement data a creditor sends, validated, stored in Redis, found by address.

``debtbot accounts import FILE.csv`` loads a file row by row. A bad row is reported with its
line number and the reason and does not stop the good rows; importing the same file again
updates accounts in place (no duplicates, stale phone/email/handle links removed).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
import redis
from babel.numbers import get_currency_precision, list_currencies
from email_validator import EmailNotValidError, validate_email

from bot.privacy import mask_email, mask_phone
from bot.store.connection import Keys

COLUMNS = (
    "account_id", "first_name", "last_name", "phone", "email", "telegram", "balance",
    "currency", "creditor", "timezone", "postal_code", "country", "language",
    "date_of_birth", "account_last4",
)  # fmt: skip
REQUIRED_COLUMNS = ("account_id", "first_name", "balance", "currency", "creditor")

_ACCOUNT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_TELEGRAM = re.compile(r"^@?([A-Za-z][A-Za-z0-9_]{4,31})$")
_LAST4 = re.compile(r"^\d{4}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
# ISO 4217 codes a debt can be in: the X-codes are metals, fund units and test codes,
# except the CFA and East Caribbean francs and the CFP franc, which are real money.
_CURRENCIES = frozenset(
    c for c in list_currencies() if not c.startswith("X") or c in {"XAF", "XOF", "XCD", "XPF"}
)


@dataclass(frozen=True)
class Account:
    """One debtor's placement data."""

    account_id: str
    first_name: str
    balance: Decimal
    currency: str
    creditor: str
    language: str
    last_name: str = ""
    phone: str | None = None
    email: str | None = None
    telegram: str | None = None
    timezone: str | None = None
    postal_code: str | None = None
    country: str | None = None
    date_of_birth: date | None = None
    account_last4: str | None = None

    def to_redis(self) -> dict[str | bytes, str]:
        """Flat string fields for a Redis hash (empty values left out)."""
        out: dict[str | bytes, str] = {}
        for key, value in asdict(self).items():
            if value is None or value == "":
                continue
            out[key] = value.isoformat() if isinstance(value, date) else str(value)
        return out

    @classmethod
    def from_redis(cls, raw: Mapping[bytes, bytes]) -> Account:
        """Inverse of :meth:`to_redis`."""
        data = {k.decode(): v.decode() for k, v in raw.items()}
        dob = data.pop("date_of_birth", None)
        return cls(
            **{k: v for k, v in data.items() if k in _FIELD_NAMES and k != "balance"},
            balance=Decimal(data["balance"]),
            date_of_birth=date.fromisoformat(dob) if dob else None,
        )

    def addresses(self) -> dict[str, str]:
        """The index entries that find this account: kind -> normalised address."""
        found = {}
        if self.phone:
            found["phone"] = self.phone
        if self.email:
            found["email"] = self.email.lower()
        if self.telegram:
            found["telegram"] = self.telegram.lower()
        return found


_FIELD_NAMES = frozenset(Account.__dataclass_fields__)


@dataclass(frozen=True)
class RowError:
    """Why one line of an import file was not loaded."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class ImportReport:
    """What an import did."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def loaded(self) -> int:
        return self.created + self.updated + self.unchanged


class AccountRowInvalid(ValueError):
    """A row failed validation; the message names the column and the rule."""


def parse_row(
    row: Mapping[str, str | None],
    *,
    languages: Iterable[str],
    default_language: str,
    verification_field: str,
    today: date | None = None,
) -> Account:
    """Validate one CSV row and build the account, or raise :class:`AccountRowInvalid`."""
    today = today or date.today()
    values = {k: (v or "").strip() for k, v in row.items() if k is not None}
    problems: list[str] = []

    def need(column: str) -> str:
        value = values.get(column, "")
        if not value:
            problems.append(f"{column}: required")
        return value

    account_id = need("account_id")
    if account_id and not _ACCOUNT_ID.match(account_id):
        problems.append("account_id: letters, digits, '.', '_' or '-' only, at most 64 characters")
    first_name = need("first_name")

    phone = values.get("phone") or None
    if phone:
        phone = _e164(phone, problems)
    email = values.get("email") or None
    if email:
        try:
            email = validate_email(email, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            problems.append(f"email: {mask_email(email)} is not a valid address ({exc})")
    telegram = values.get("telegram") or None
    if telegram:
        match = _TELEGRAM.match(telegram)
        if match:
            telegram = match.group(1)
        else:
            problems.append("telegram: a handle is 5-32 letters, digits or '_', starting with a letter")
    if not (phone or email or telegram):
        problems.append("phone, email, telegram: at least one way to reach the person is required")

    currency = need("currency").upper()
    if currency and currency not in _CURRENCIES:
        problems.append(f"currency: {currency!r} is not an ISO 4217 code (e.g. USD, EUR, GBP, MXN)")
    balance = _balance(need("balance"), currency if currency in _CURRENCIES else None, problems)
    creditor = need("creditor")

    timezone = values.get("timezone") or None
    if timezone:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(f"timezone: {timezone!r} is not an IANA time zone (e.g. America/New_York)")
    country = (values.get("country") or "").upper() or None
    if country and not _COUNTRY.match(country):
        problems.append("country: a two-letter ISO 3166 code (e.g. US, MX, GB)")

    allowed_languages = list(languages)
    language = (values.get("language") or default_language).lower()
    if language not in allowed_languages:
        problems.append(f"language: {language!r} is not one of {', '.join(allowed_languages)}")

    dob = None
    if values.get("date_of_birth"):
        dob = _date_of_birth(values["date_of_birth"], today, problems)
    last4 = values.get("account_last4") or None
    if last4 and not _LAST4.match(last4):
        problems.append("account_last4: exactly four digits")
    postal_code = values.get("postal_code") or None
    if not values.get(verification_field):
        problems.append(
            f"{verification_field}: required, because accounts.verification_field is {verification_field}"
        )
    if problems:
        raise AccountRowInvalid("; ".join(dict.fromkeys(problems)))
    return Account(
        account_id=account_id,
        first_name=first_name,
        last_name=values.get("last_name", ""),
        phone=phone,
        email=email,
        telegram=telegram,
        balance=balance or Decimal(0),
        currency=currency,
        creditor=creditor,
        timezone=timezone,
        postal_code=postal_code,
        country=country,
        language=language,
        date_of_birth=dob,
        account_last4=last4,
    )


def _e164(value: str, problems: list[str]) -> str | None:
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        problems.append(f"phone: {mask_phone(value)} is not in E.164 form (+ country code, digits only)")
        return None
    formatted = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if formatted != value:
        problems.append(f"phone: {mask_phone(value)} is not in E.164 form (expected like +14155550123)")
        return None
    if not phonenumbers.is_valid_number(number):
        problems.append(f"phone: {mask_phone(value)} is not a valid number for its country")
        return None
    return formatted


def _balance(value: str, currency: str | None, problems: list[str]) -> Decimal | None:
    if not value:
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:
        problems.append(
            f"balance: {value!r} is not a number (write it like 1250.50, no symbols or separators)"
        )
        return None
    if not amount.is_finite() or amount < 0:
        problems.append("balance: must be zero or more")
        return None
    places = get_currency_precision(currency) if currency else 2
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        problems.append(f"balance: at most {places} decimal places for {currency}")
        return None
    return amount


def _date_of_birth(value: str, today: date, problems: list[str]) -> date | None:
    try:
        dob = date.fromisoformat(value)
    except ValueError:
        problems.append("date_of_birth: must be a date written YYYY-MM-DD")
        return None
    age = today.year - dob.year - ((today.month, today.day) < (dob.month, dob.day))
    if not 16 <= age <= 120:
        problems.append("date_of_birth: gives an age outside 16-120 years")
        return None
    return dob


class AccountConflict(Exception):
    """An address in a row already belongs to another account."""


class AccountStore:
    """Accounts in Redis: one hash per account, and an index per address kind."""

    def __init__(self, client: redis.Redis[bytes], keys: Keys) -> None:
        self._redis = client
        self._keys = keys

    def get(self, account_id: str) -> Account | None:
        raw = self._redis.hgetall(self._keys.account(account_id))
        return Account.from_redis(raw) if raw else None

    def ids(self) -> list[str]:
        return sorted(v.decode() for v in self._redis.smembers(self._keys.account_ids))

    def find(self, kind: str, address: str) -> Account | None:
        """The account an address belongs to (``kind``: phone, email or telegram)."""
        normalised = address if kind == "phone" else address.lower().lstrip("@")
        account_id = self._redis.get(self._keys.account_index(kind, normalised))
        return self.get(account_id.decode()) if account_id else None

    def upsert(self, account: Account) -> str:
        """Create or replace an account; return ``created``, ``updated`` or ``unchanged``.

        Raises :class:`AccountConflict` when one of its addresses belongs to another account.
        """
        account_key = self._keys.account(account.account_id)
        new_index = {self._keys.account_index(k, v) for k, v in account.addresses().items()}
        fields = account.to_redis()
        with self._redis.pipeline() as pipe:
            while True:
                try:
                    # Optimistic locking: a concurrent import of the same account or address
                    # makes execute() fail, and we read again.
                    pipe.watch(account_key, *new_index)
                    old_raw = cast("dict[bytes, bytes]", pipe.hgetall(account_key))
                    old = Account.from_redis(old_raw) if old_raw else None
                    for index_key in sorted(new_index):
                        owner = cast("bytes | None", pipe.get(index_key))
                        if owner is not None and owner.decode() != account.account_id:
                            kind = index_key.split(":")[-2]
                            raise AccountConflict(f"{kind}: already belongs to account {owner.decode()}")
                    if old == account:
                        return "unchanged"
                    old_index = (
                        {self._keys.account_index(k, v) for k, v in old.addresses().items()} if old else set()
                    )
                    pipe.multi()
                    for stale in old_index - new_index:
                        pipe.delete(stale)
                    for index_key in new_index:
                        pipe.set(index_key, account.account_id)
                    pipe.delete(account_key)
                    pipe.hset(account_key, mapping=fields)
                    pipe.sadd(self._keys.account_ids, account.account_id)
                    pipe.execute()
                    return "updated" if old else "created"
                except redis.WatchError:
                    continue

    def import_csv(
        self,
        text: str,
        *,
        languages: Iterable[str],
        default_language: str,
        verification_field: str,
        today: date | None = None,
    ) -> ImportReport:
        """Load every good row of a CSV document; report the bad ones by line number."""
        report = ImportReport()
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            report.errors.append(RowError(1, f"header: missing column(s) {', '.join(missing)}"))
            return report
        unknown = [h for h in header if h not in COLUMNS]
        if unknown:
            report.errors.append(
                RowError(1, f"header: unknown column(s) {', '.join(unknown)} (allowed: {', '.join(COLUMNS)})")
            )
            return report
        reader.fieldnames = header
        seen: dict[str, int] = {}
        for row in reader:
            line = reader.line_num
            if None in row:
                report.errors.append(RowError(line, "more values than columns (an unquoted comma?)"))
                continue
            try:
                account = parse_row(
                    row,
                    languages=languages,
                    default_language=default_language,
                    verification_field=verification_field,
                    today=today,
                )
            except AccountRowInvalid as exc:
                report.errors.append(RowError(line, str(exc)))
                continue
            if account.account_id in seen:
                first = seen[account.account_id]
                report.errors.append(
                    RowError(line, f"account_id: {account.account_id} already on line {first}")
                )
                continue
            seen[account.account_id] = line
            try:
                outcome = self.upsert(account)
            except AccountConflict as exc:
                report.errors.append(RowError(line, str(exc)))
                continue
            setattr(report, outcome, getattr(report, outcome) + 1)
        return report


def read_import_file(path: Path) -> str:
    """Read an import file as text, accepting a UTF-8 byte-order mark (Excel writes one)."""
    return path.read_text(encoding="utf-8-sig")
