"""The compliance gate: the one check every outgoing message passes before it leaves.

:func:`check` is pure: no Redis, no I/O beyond the time zone database, no clock reads (the
current time is an argument). It answers a :class:`Decision`: SEND (with the text exactly as it
must leave), DEFER (until a moment in UTC) or BLOCK, always naming the rule that decided.

The rules, in the order they are applied:

1. Card numbers never leave: Luhn-valid 13-19 digit runs are redacted from every text, replies
   included (``added`` says ``card_redacted``). This never blocks.
2. Replies (``proactive=False``) are sent at any hour: the person wrote. Only a ``wrong_party``
   address blocks them, and not even that for the kinds in :data:`CARE_REPLIES` (help for a
   person in crisis, the one closing message to a wrong party). Opted-out addresses are *not*
   blocked here, because the one confirmation of an opt-out is itself a reply; the caller
   makes sure nothing else goes.
3. Proactive messages are blocked by, in this order: any pause flag (``pause:<reason>``, the
   first in :data:`PAUSE_REASONS` order; every flag is named in the reason); ``vulnerable``: a
   person flagged the account vulnerable, and the bot starts nothing that chases the debt
   (only what :data:`VULNERABLE_STILL_GETS` names goes); ``with_agent``: an agent holds the
   conversation, and the bot starts nothing while a person is talking with them (an agent's own
   messages go: :data:`SENT_BY_A_PERSON`); then ``wrong_party``, ``opted_out``, ``unreachable``.
   Then ``unknown_zone`` when no time zone at all can be derived: every BLOCK comes before any
   DEFER, because a defer would only end in that block. (A block is not the end of it: outreach
   decides again at its next run, so what was held goes once the flag is cleared or the
   conversation handed back.)
4. Frequency caps: when sending would exceed a cap, DEFER until enough counted messages have
   left the rolling window, then to the first moment inside contact hours after that.
5. Contact hours: a proactive message goes only at a moment inside ``[earliest, latest)`` local
   time in *every* candidate zone and inside the person's own contact window (evaluated in each
   zone's local time); else DEFER to :func:`next_allowed`, or BLOCK ``no_allowed_time`` when
   no such moment comes within the horizon. Someone who wrote within ``reply_window`` is in a
   conversation: a proactive follow-up may then go at any hour (caps still apply), but not
   what the bot starts on its own schedule (:data:`KEEP_CONTACT_HOURS`: openers, payment
   reminders, missed-payment messages), which keeps contact hours whenever the person wrote.
6. What a message must carry (in SEND and DEFER decisions): the mini-Miranda statement
   prepended for a verified person who has not had it in this conversation (never for an
   unverified one: it would disclose the debt to a possibly wrong person), and the channel's
   opt-out instruction appended on its own line to proactive SMS and email (Telegram has its
   own block button and needs none). A text the rules lack blocks the message (``missing_text``):
   a message without a required statement must not leave.

Where the candidate zones come from (:func:`candidate_zones`): the account's IANA time zone when
it is set and valid; else the union of the zones of the phone number (area code) and of the
postal code; else every zone of the country; else the creditor's ``default_zone``, which the
decision then says was used. With nothing at all, the message is blocked for ops to add a zone.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from enum import Enum
from functools import lru_cache
from importlib import resources
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import phonenumbers
from phonenumbers import PhoneNumberType
from phonenumbers import timezone as phone_timezone

from bot.privacy import redact_card_numbers, scrub
from dialogue.parsing import ContactWindow

__all__ = [
    "AGENT_MAY_CONTACT_DESPITE",
    "CARE_REPLIES",
    "HORIZON",
    "PAUSE_REASONS",
    "SENT_BY_A_PERSON",
    "VULNERABLE_STILL_GETS",
    "AddressState",
    "ContactRules",
    "Debtor",
    "Decision",
    "FrequencyCap",
    "Outgoing",
    "Verdict",
    "candidate_zones",
    "check",
    "next_allowed",
]

#: Reasons that stop every collection message until a person clears them, the first named
#: first: a sign of crisis (bot/care) before everything else.
PAUSE_REASONS = (
    "crisis", "dispute", "payment_claimed", "bankruptcy", "attorney", "deceased", "breathing_space",
)  # fmt: skip

#: Pauses that do not stop a person from the team writing (``kind="agent"``): a crisis (the
#: person was told someone would reach out), a dispute or a payment claim (resolved by talking).
AGENT_MAY_CONTACT_DESPITE = frozenset({"crisis", "dispute", "payment_claimed"})

#: Proactive kinds a person from the team sends (an agent's message; the "you are back with the
#: assistant" note a person's hand-back sends): they go while an agent holds the conversation
#: (rule ``with_agent`` holds only what the bot starts on its own).
SENT_BY_A_PERSON = frozenset({"agent", "handback"})

#: What still goes to an account a person flagged vulnerable (rule ``vulnerable``): what a person
#: from the team sends, and reminders of an instalment of a plan the person agreed to. Nothing
#: else the bot starts goes (openers, missed-payment chasers, and any kind added later, until it
#: is named here). Why the reminders go: the person chose the plan and its dates; a kind reminder
#: of their own date is what they would want, and holding it back makes a missed payment (and a
#: missed-payment message, fees, a broken plan) more likely, which hurts someone already
#: struggling more than the reminder does. Chasing a missed payment, or opening a new collection
#: conversation, is pressure: that waits until a person has spoken with them and clears the flag.
VULNERABLE_STILL_GETS = SENT_BY_A_PERSON | {"reminder"}

#: Replies that go even to a wrong party: they say nothing about a debt and must reach
#: whoever wrote (the answer to a sign of crisis; the one closing message to a wrong party).
CARE_REPLIES = frozenset({"crisis", "closing"})

#: The channels the gate knows; a message for any other is blocked.
CHANNELS = ("sms", "telegram", "email")
#: Channels whose proactive messages must say how to stop them.
_OPT_OUT_CHANNELS = frozenset({"sms", "email"})

_UTC = timezone.utc
#: How far ahead the gate looks for an allowed moment before it gives up (``no_allowed_time``).
HORIZON = timedelta(days=14)
_NO_HISTORY: Mapping[str, Sequence[datetime]] = MappingProxyType({})

_DEFAULT_OPT_OUT: Mapping[tuple[str, str], str] = MappingProxyType(
    {
        ("sms", "en"): "Reply STOP to stop texts.",
        ("sms", "es"): "Responda BAJA para no recibir más mensajes.",
        ("email", "en"): "You can stop these emails at any time: reply STOP, or use the unsubscribe link.",
        ("email", "es"): (
            "Puede dejar de recibir estos correos cuando quiera: responda BAJA "
            "o use el enlace para darse de baja."
        ),
    }
)
_DEFAULT_MINI_MIRANDA: Mapping[str, str] = MappingProxyType(
    {
        "en": "This is a communication from a debt collector. This is an attempt to collect a debt, "
        "and any information obtained will be used for that purpose.",
        "es": "Esta es una comunicación de un cobrador de deudas. Es un intento de cobrar una deuda, "
        "y cualquier información obtenida se utilizará con ese fin.",
    }
)


# --- the data -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FrequencyCap:
    """At most ``max_messages`` proactive messages in any rolling ``window``.

    ``channel`` limits the cap to one channel (and to messages on it); ``None`` counts the
    proactive messages of every channel together and applies to all of them.
    """

    max_messages: int
    window: timedelta
    channel: str | None = None

    def __post_init__(self) -> None:
        if self.max_messages < 1:
            raise ValueError("a frequency cap allows at least one message")
        if self.window <= timedelta(0):
            raise ValueError("a frequency cap needs a positive window")


@dataclass(frozen=True)
class ContactRules:
    """The rules for one creditor/jurisdiction (built from config.yaml by the caller)."""

    earliest: time = time(8, 0)
    latest: time = time(21, 0)
    reply_window: timedelta = timedelta(minutes=30)
    caps: tuple[FrequencyCap, ...] = (FrequencyCap(3, timedelta(days=7)),)
    # Mappings are left out of the hash (they are not hashable); equality still compares them.
    opt_out_text: Mapping[tuple[str, str], str] = field(default=_DEFAULT_OPT_OUT, hash=False)
    mini_miranda: Mapping[str, str] = field(default=_DEFAULT_MINI_MIRANDA, hash=False)
    default_zone: str | None = None

    def __post_init__(self) -> None:
        if _naive(self.earliest) >= _naive(self.latest):
            raise ValueError("earliest must come before latest (contact hours cannot wrap midnight)")
        if self.reply_window < timedelta(0):
            raise ValueError("reply_window cannot be negative")
        if self.default_zone is not None and _load_zone(self.default_zone) is None:
            raise ValueError(f"default_zone {self.default_zone!r} is not a known IANA time zone")


@dataclass(frozen=True)
class Debtor:
    """What the gate needs to know about the account."""

    account_id: str
    timezone: str | None = None
    phone: str | None = None
    postal_code: str | None = None
    country: str | None = None
    contact_window: ContactWindow | None = None
    pauses: frozenset[str] = frozenset()
    last_inbound_at: datetime | None = None
    #: A person flagged the account vulnerable (the console's ``vulnerable`` flag).
    vulnerable: bool = False
    #: An agent holds the account's conversation (the console's hand-off is in state ``agent``).
    with_agent: bool = False


@dataclass(frozen=True)
class AddressState:
    """What is known about the address (phone number, chat, mailbox) the message goes to."""

    opted_out: bool = False
    wrong_party: bool = False
    unreachable: bool = False


@dataclass(frozen=True)
class Outgoing:
    """A message the bot wants to send."""

    channel: str
    text: str
    language: str
    proactive: bool
    verified: bool = False
    mini_miranda_said: bool = False
    kind: str = "opener"


class Verdict(str, Enum):
    """What to do with the message."""

    SEND = "send"
    DEFER = "defer"
    BLOCK = "block"


@dataclass(frozen=True)
class Decision:
    """The gate's answer, complete enough for the audit log."""

    verdict: Verdict
    rule: str
    reason: str
    until: datetime | None = None
    text: str = ""
    added: tuple[str, ...] = ()
    zones: tuple[str, ...] = ()


# --- time zones -----------------------------------------------------------------------------


def _naive(clock: time) -> time:
    return clock.replace(tzinfo=None)


@lru_cache(maxsize=1)
def _known_zone_names() -> frozenset[str]:
    # "Factory" is a placeholder zone with no real local time.
    return frozenset(available_timezones()) - {"Factory"}


@lru_cache(maxsize=1024)
def _load_zone(name: str) -> ZoneInfo | None:
    """The zone called ``name``, or ``None`` for anything that is not an IANA zone name."""
    if name not in _known_zone_names():
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def _valid_zones(names: Iterable[str]) -> set[str]:
    return {name for name in names if _load_zone(name) is not None}


@lru_cache(maxsize=1)
def _zones_by_country() -> Mapping[str, tuple[str, ...]]:
    """ISO country -> its zones, from the zone.tab the tzdata package ships (every country)."""
    table: dict[str, list[str]] = {}
    text = resources.files("tzdata").joinpath("zoneinfo/zone.tab").read_text(encoding="utf-8")
    for line in text.splitlines():
        if line and not line.startswith("#"):
            columns = line.split("\t")
            table.setdefault(columns[0], []).append(columns[2])
    return MappingProxyType({country: tuple(zones) for country, zones in table.items()})


# US ZIP codes by their first three digits (USPS sectional centres), to a state or territory.
# Prefixes for the military (090-099 AE, 340 AA, 962-966 AP) are absent on purpose: where an
# APO/FPO address is on the planet is not knowable from the code. A handful of 5-digit ZIPs
# serve a few addresses across a state line; the phone number then usually adds the other zone.
_ZIP3_STATES: tuple[tuple[int, int, str], ...] = (
    (5, 5, "NY"), (6, 7, "PR"), (8, 8, "VI"), (9, 9, "PR"), (10, 27, "MA"), (28, 29, "RI"),
    (30, 38, "NH"), (39, 49, "ME"), (50, 54, "VT"), (55, 55, "MA"), (56, 59, "VT"), (60, 69, "CT"),
    (70, 89, "NJ"), (100, 149, "NY"), (150, 196, "PA"), (197, 199, "DE"), (200, 200, "DC"),
    (201, 201, "VA"), (202, 205, "DC"), (206, 219, "MD"), (220, 246, "VA"), (247, 268, "WV"),
    (270, 289, "NC"), (290, 299, "SC"), (300, 319, "GA"), (320, 339, "FL"), (341, 349, "FL"),
    (350, 369, "AL"), (370, 385, "TN"), (386, 397, "MS"), (398, 399, "GA"), (400, 427, "KY"),
    (430, 459, "OH"), (460, 479, "IN"), (480, 499, "MI"), (500, 528, "IA"), (530, 549, "WI"),
    (550, 567, "MN"), (570, 577, "SD"), (580, 588, "ND"), (590, 599, "MT"), (600, 629, "IL"),
    (630, 658, "MO"), (660, 679, "KS"), (680, 693, "NE"), (700, 715, "LA"), (716, 729, "AR"),
    (730, 732, "OK"), (733, 733, "TX"), (734, 749, "OK"), (750, 799, "TX"), (800, 816, "CO"),
    (820, 831, "WY"), (832, 838, "ID"), (840, 847, "UT"), (850, 865, "AZ"), (870, 884, "NM"),
    (885, 885, "TX"), (889, 898, "NV"), (900, 961, "CA"), (967, 968, "HI"), (969, 969, "GU"),
    (970, 979, "OR"), (980, 994, "WA"), (995, 999, "AK"),
)  # fmt: skip

_EASTERN = ("America/New_York",)
_CENTRAL = ("America/Chicago",)
_MOUNTAIN = ("America/Denver",)
_PACIFIC = ("America/Los_Angeles",)
_EASTERN_STATES = frozenset({"CT", "DC", "DE", "GA", "MA", "MD", "ME", "NC", "NH", "NJ", "NY", "OH", "PA"})
_EASTERN_STATES |= {"RI", "SC", "VA", "VT", "WV"}
# A state split between zones lists every zone it has (officially): a ZIP prefix does not
# follow county lines, and the compliant reading of "which of these?" is "all of them".
_STATE_ZONES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        **dict.fromkeys(_EASTERN_STATES, _EASTERN),
        **dict.fromkeys(("AL", "AR", "IA", "IL", "LA", "MN", "MO", "MS", "OK", "WI"), _CENTRAL),
        **dict.fromkeys(("CO", "MT", "NM", "UT", "WY"), _MOUNTAIN),
        **dict.fromkeys(("CA", "WA"), _PACIFIC),
        "AK": ("America/Anchorage", "America/Adak"),  # the Aleutians west of 169°30'W
        "AZ": ("America/Phoenix", "America/Denver"),  # the Navajo Nation keeps daylight time
        "FL": ("America/New_York", "America/Chicago"),  # the Panhandle
        "ID": ("America/Boise", "America/Los_Angeles"),  # the north
        "IN": ("America/Indiana/Indianapolis", "America/Chicago"),  # the NW and SW corners
        "KS": ("America/Chicago", "America/Denver"),
        "KY": ("America/New_York", "America/Chicago"),
        "MI": ("America/Detroit", "America/Menominee"),  # four Upper Peninsula counties
        "ND": ("America/Chicago", "America/Denver"),
        "NE": ("America/Chicago", "America/Denver"),
        "NV": ("America/Los_Angeles", "America/Denver"),  # West Wendover
        "OR": ("America/Los_Angeles", "America/Boise"),  # Malheur County
        "SD": ("America/Chicago", "America/Denver"),
        "TN": ("America/New_York", "America/Chicago"),
        "TX": ("America/Chicago", "America/Denver"),  # El Paso and Hudspeth
        "HI": ("Pacific/Honolulu",),
        "PR": ("America/Puerto_Rico",),
        "VI": ("America/St_Thomas",),
        # 969: Guam, the Northern Marianas, Palau, Micronesia and the Marshall Islands.
        "GU": ("Pacific/Guam", "Pacific/Palau", "Pacific/Chuuk", "Pacific/Pohnpei", "Pacific/Majuro"),
    }
)
#: Whole ZIP codes whose zone differs from their prefix's.
_ZIP5_ZONES: Mapping[str, tuple[str, ...]] = MappingProxyType({"96799": ("Pacific/Pago_Pago",)})

# Canada by the postal code's first letter (the province or region).
_CANADA_ZONES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "A": ("America/St_Johns", "America/Goose_Bay"),  # Newfoundland and Labrador
        "B": ("America/Halifax",),
        "C": ("America/Halifax",),
        "E": ("America/Moncton",),
        # Eastern Quebec: the Magdalen Islands keep Atlantic time, the Lower North Shore AST.
        "G": ("America/Toronto", "America/Halifax", "America/Blanc-Sablon"),
        "H": ("America/Toronto",),
        "J": ("America/Toronto",),
        "K": ("America/Toronto",),
        "L": ("America/Toronto",),
        "M": ("America/Toronto",),
        "N": ("America/Toronto",),
        "P": ("America/Toronto", "America/Winnipeg"),  # north-western Ontario keeps Central time
        "R": ("America/Winnipeg",),
        "S": ("America/Regina", "America/Edmonton", "America/Winnipeg"),  # Lloydminster, Creighton
        "T": ("America/Edmonton",),
        "V": ("America/Vancouver", "America/Edmonton", "America/Dawson_Creek"),  # the Kootenays, NE
        "X": ("America/Edmonton", "America/Iqaluit", "America/Rankin_Inlet", "America/Cambridge_Bay"),
        "Y": ("America/Whitehorse",),
    }
)

_MX_CENTRAL = ("America/Mexico_City",)
_MX_NORTHEAST = ("America/Monterrey", "America/Matamoros")  # the US border strip keeps US DST
# Mexico by the postal code's first two digits (the state), SEPOMEX's allocation.
_MEXICO_RANGES: tuple[tuple[int, int, tuple[str, ...]], ...] = (
    (1, 16, _MX_CENTRAL),  # Ciudad de México
    (20, 20, _MX_CENTRAL),  # Aguascalientes
    (21, 22, ("America/Tijuana",)),  # Baja California
    (23, 23, ("America/Mazatlan",)),  # Baja California Sur
    (24, 24, ("America/Merida",)),  # Campeche
    (25, 27, _MX_NORTHEAST),  # Coahuila
    (28, 30, _MX_CENTRAL),  # Colima, Chiapas
    (31, 33, ("America/Chihuahua", "America/Ciudad_Juarez", "America/Ojinaga")),  # Chihuahua
    (34, 35, ("America/Monterrey",)),  # Durango
    (36, 62, _MX_CENTRAL),  # Guanajuato, Guerrero, Hidalgo, Jalisco, México, Michoacán, Morelos
    (63, 63, ("America/Mazatlan", "America/Bahia_Banderas")),  # Nayarit
    (64, 67, _MX_NORTHEAST),  # Nuevo León
    (68, 76, _MX_CENTRAL),  # Oaxaca, Puebla, Querétaro
    (77, 77, ("America/Cancun",)),  # Quintana Roo
    (78, 79, _MX_CENTRAL),  # San Luis Potosí
    (80, 82, ("America/Mazatlan",)),  # Sinaloa
    (83, 85, ("America/Hermosillo",)),  # Sonora
    (86, 86, _MX_CENTRAL),  # Tabasco
    (87, 89, _MX_NORTHEAST),  # Tamaulipas
    (90, 96, _MX_CENTRAL),  # Tlaxcala, Veracruz
    (97, 97, ("America/Merida",)),  # Yucatán
    (98, 99, _MX_CENTRAL),  # Zacatecas
)

_ZIP = re.compile(r"(\d{5})(?:[ -]?\d{4})?")
_CANADIAN = re.compile(r"([ABCEGHJ-NPRSTVXY])\d[ABCEGHJ-NPRSTV-Z] ?\d[ABCEGHJ-NPRSTV-Z]\d")
_BRITISH = re.compile(r"([A-Z]{1,2})\d[A-Z\d]? ?\d[A-Z]{2}")
_FIVE_DIGITS = re.compile(r"(\d{2})\d{3}")

#: Countries whose postal codes are US ZIP codes.
_ZIP_COUNTRIES = frozenset({"US", "PR", "VI", "GU", "AS", "MP", "FM", "MH", "PW", "UM"})
_BRITISH_COUNTRIES = frozenset({"GB", "IM", "JE", "GG"})


def _us_zones(code: str) -> tuple[str, ...]:
    match = _ZIP.fullmatch(code)
    if match is None:
        return ()
    zip5 = match.group(1)
    if zip5 in _ZIP5_ZONES:
        return _ZIP5_ZONES[zip5]
    prefix = int(zip5[:3])
    for low, high, state in _ZIP3_STATES:
        if low <= prefix <= high:
            return _STATE_ZONES[state]
    return ()


def _canadian_zones(code: str) -> tuple[str, ...]:
    match = _CANADIAN.fullmatch(code)
    return _CANADA_ZONES[match.group(1)] if match else ()


def _british_zones(code: str) -> tuple[str, ...]:
    match = _BRITISH.fullmatch(code)
    if match is None:
        return ()
    return ("Europe/Gibraltar",) if match.group(1) == "GX" else ("Europe/London",)


def _spanish_zones(code: str) -> tuple[str, ...]:
    match = _FIVE_DIGITS.fullmatch(code)
    if match is None or not 1 <= int(match.group(1)) <= 52:
        return ()
    province = int(match.group(1))
    if province in (35, 38):  # Las Palmas, Santa Cruz de Tenerife
        return ("Atlantic/Canary",)
    if province in (51, 52):  # Ceuta, Melilla
        return ("Africa/Ceuta",)
    return ("Europe/Madrid",)


def _mexican_zones(code: str) -> tuple[str, ...]:
    match = _FIVE_DIGITS.fullmatch(code)
    if match is None:
        return ()
    state = int(match.group(1))
    for low, high, zones in _MEXICO_RANGES:
        if low <= state <= high:
            return zones
    return ()


_POSTAL_READERS = {
    "US": _us_zones,
    "CA": _canadian_zones,
    "GB": _british_zones,
    "ES": _spanish_zones,
    "MX": _mexican_zones,
}


def _postal_zones(code: str, country: str | None, phone_region: str | None) -> set[str]:
    """The zones a postal code points to, read with the rules of the country it belongs to."""
    code = re.sub(r"\s+", " ", code.strip().upper())

    def read(region: str) -> tuple[str, ...]:
        if region in _ZIP_COUNTRIES:
            region = "US"
        elif region in _BRITISH_COUNTRIES:
            region = "GB"
        reader = _POSTAL_READERS.get(region)
        return reader(code) if reader else ()

    if country:
        # A country we have no table for: its postal codes say nothing (a French 75001 is not
        # a Mexican or Spanish one); the country's own zones are the fallback.
        return set(read(country))
    if phone_region and (zones := read(phone_region)):
        return set(zones)
    # Nothing says which country: every reading that fits counts (a lone "10001" may be New
    # York, Mexico City or Cáceres), and only hours that fit all of them are used.
    return {zone for region in _POSTAL_READERS for zone in read(region)}


# Numbers that say nothing about where their holder is.
_NON_GEOGRAPHIC = frozenset(
    {
        PhoneNumberType.TOLL_FREE,
        PhoneNumberType.PREMIUM_RATE,
        PhoneNumberType.SHARED_COST,
        PhoneNumberType.UAN,
        PhoneNumberType.PAGER,
        PhoneNumberType.VOICEMAIL,
    }
)


def _phone_zones(phone: str) -> tuple[set[str], str | None]:
    """The zones of a phone number's country / area code, and its region (ISO)."""
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return set(), None
    if not phonenumbers.is_valid_number(number) or phonenumbers.number_type(number) in _NON_GEOGRAPHIC:
        return set(), None
    zones = {zone for zone in phone_timezone.time_zones_for_number(number) if zone != "Etc/Unknown"}
    return _valid_zones(zones), phonenumbers.region_code_for_number(number)


@dataclass(frozen=True)
class _Location:
    zones: tuple[str, ...]
    source: str  # a phrase for the reason: where the zones came from
    note: str = ""  # a remark for the record (e.g. an invalid zone name that was ignored)


def _locate(debtor: Debtor, rules: ContactRules) -> _Location:
    note = ""
    if debtor.timezone:
        if _load_zone(debtor.timezone) is not None:
            return _Location((debtor.timezone,), "the account's time zone")
        # The field is free text: scrubbed, so a phone number typed into it stays out of the log.
        note = (
            f"The account's time zone {scrub(debtor.timezone)!r} is not a valid zone name and was ignored. "
        )
    zones: set[str] = set()
    sources = []
    phone_region = None
    if debtor.phone:
        phone_zones, phone_region = _phone_zones(debtor.phone)
        if phone_zones:
            zones |= phone_zones
            sources.append("phone number")
    country = debtor.country.strip().upper() if debtor.country else None
    if debtor.postal_code:
        postal = _valid_zones(_postal_zones(debtor.postal_code, country, phone_region))
        if postal:
            zones |= postal
            sources.append("postal code")
    if zones:
        return _Location(tuple(sorted(zones)), "the " + " and ".join(sources), note)
    if country and (by_country := _valid_zones(_zones_by_country().get(country, ()))):
        return _Location(tuple(sorted(by_country)), f"the country ({country}, every zone it has)", note)
    if rules.default_zone:
        source = "the creditor's default zone: nothing is known about where the debtor lives"
        return _Location((rules.default_zone,), source, note)
    return _Location((), "nothing", note)


def candidate_zones(debtor: Debtor, rules: ContactRules) -> tuple[str, ...]:
    """The IANA zones the debtor may be in (sorted); empty when nothing at all is known."""
    return _locate(debtor, rules).zones


# --- contact hours --------------------------------------------------------------------------


def _require_aware(moment: datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime")


def _hours_ok(local: datetime, rules: ContactRules) -> bool:
    clock = local.time()  # naive wall-clock time
    return _naive(rules.earliest) <= clock < _naive(rules.latest)


def _allowed(
    moment: datetime, zones: Sequence[ZoneInfo], rules: ContactRules, window: ContactWindow | None
) -> bool:
    for zone in zones:
        local = moment.astimezone(zone)
        if not _hours_ok(local, rules) or (window is not None and not window.allows(local)):
            return False
    return True


def _transitions(zone: ZoneInfo, start: datetime, end: datetime) -> set[datetime]:
    """The UTC instants in ``(start, end]`` where ``zone``'s offset changes (DST and the like).

    Sampled every day, then bisected to the second (zones change offset on whole seconds, and
    no zone changes twice within a day).
    """

    def offset(seconds: int) -> timedelta | None:
        return datetime.fromtimestamp(seconds, zone).utcoffset()

    found: set[datetime] = set()
    before = math.floor(start.timestamp())
    stop = math.ceil(end.timestamp())
    while before < stop:
        after = min(before + 86_400, stop)
        if offset(before) != offset(after):
            low, high = before, after  # offset(low) is the old one, offset(high) the new one
            while high - low > 1:
                middle = (low + high) // 2
                if offset(middle) == offset(low):
                    low = middle
                else:
                    high = middle
            instant = datetime.fromtimestamp(high, _UTC)
            if start < instant <= end:
                found.add(instant)
        before = after
    return found


def _days(first: date, last: date) -> Iterable[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def next_allowed(
    now: datetime,
    zones: Sequence[str],
    rules: ContactRules,
    window: ContactWindow | None,
    *,
    horizon: timedelta = HORIZON,
) -> datetime | None:
    """The first moment at or after ``now`` (UTC, aware) allowed in every zone, or ``None``.

    Allowed: inside ``[earliest, latest)`` local time in every zone and inside ``window`` in
    each zone's local time. ``None`` when no such moment comes within ``horizon``, or when
    ``zones`` is empty (with no zone, no moment can be said to be allowed).

    Exact, not sampled: whether a moment is allowed only changes where some zone's wall clock
    reaches a boundary (earliest, latest, the window's edges, midnight for the weekday) or
    jumps (a DST transition), and every interval between two such instants starts closed. So
    the answer is the first of ``now`` and those instants that is allowed. A boundary is
    converted with both folds (on a fall-back day 01:30 happens twice); a boundary inside a
    spring-forward gap is reached at the transition instant, which is a candidate too.
    """
    _require_aware(now, "now")
    loaded = []
    for name in dict.fromkeys(zones):
        zone = _load_zone(name)
        if zone is None:
            raise ValueError(f"unknown time zone {name!r}")
        loaded.append(zone)
    if not loaded:
        return None
    start = now.astimezone(_UTC)
    end = start + horizon
    if _allowed(start, loaded, rules, window):
        return start
    marks = {time(0), _naive(rules.earliest), _naive(rules.latest)}
    if window is not None:
        marks |= {_naive(edge) for edge in (window.after, window.before) if edge is not None}
    candidates: set[datetime] = set()
    for zone in loaded:
        # One day of margin either side: local dates straddle the UTC span.
        first = start.astimezone(zone).date() - timedelta(days=1)
        last = end.astimezone(zone).date() + timedelta(days=1)
        for day in _days(first, last):
            for mark in marks:
                for fold in (0, 1):
                    instant = datetime.combine(day, mark, tzinfo=zone).replace(fold=fold).astimezone(_UTC)
                    if start < instant <= end:
                        candidates.add(instant)
        candidates |= _transitions(zone, start, end)
    for instant in sorted(candidates):
        if _allowed(instant, loaded, rules, window):
            return instant
    return None


# --- the gate -------------------------------------------------------------------------------


def _carry(text: str, added: list[str], message: Outgoing, rules: ContactRules) -> tuple[str, str | None]:
    """``text`` with what it must carry; the second item names a missing text (then nothing goes)."""
    if message.verified and not message.mini_miranda_said:
        statement = rules.mini_miranda.get(message.language) or rules.mini_miranda.get("en")
        if not statement:
            return text, "the debt-collector statement"
        if statement not in text:
            text = f"{statement}\n\n{text}" if text.strip() else statement
            added.append("mini_miranda")
    if message.proactive and message.channel in _OPT_OUT_CHANNELS:
        instruction = rules.opt_out_text.get((message.channel, message.language)) or rules.opt_out_text.get(
            (message.channel, "en")
        )
        if not instruction:
            return text, f"the {message.channel} opt-out instruction"
        if instruction not in text:
            text = f"{text.rstrip()}\n{instruction}" if text.strip() else instruction
            added.append("opt_out_instruction")
    return text, None


def _cap_release(
    message: Outgoing, now: datetime, rules: ContactRules, recent: Mapping[str, Sequence[datetime]]
) -> tuple[datetime, FrequencyCap, int] | None:
    """When sending would exceed a cap: the moment every cap has room again, the cap that
    holds the message longest, and how many messages it counted. ``None`` when within caps."""
    worst: tuple[datetime, FrequencyCap, int] | None = None
    for cap in rules.caps:
        if cap.channel is not None and cap.channel != message.channel:
            continue
        times: list[datetime] = []
        for channel, sent in recent.items():
            if cap.channel is None or channel == cap.channel:
                for moment in sent:
                    _require_aware(moment, "recent_proactive times")
                    # A message sent at s counts while now - s < window; future times (clock
                    # skew between servers) count too.
                    if moment > now - cap.window:
                        times.append(moment)
        if len(times) < cap.max_messages:
            continue
        times.sort()
        # Room for one more once all but max_messages - 1 of them have left the window.
        release = (times[len(times) - cap.max_messages] + cap.window).astimezone(_UTC)
        if worst is None or release > worst[0]:
            worst = (release, cap, len(times))
    return worst


def _local_times(moment: datetime, zones: Sequence[str]) -> str:
    zoned = (moment.astimezone(ZoneInfo(zone)) for zone in zones)
    return ", ".join(f"{local:%a %Y-%m-%d %H:%M} {zone}" for local, zone in zip(zoned, zones, strict=True))


def _span(length: timedelta) -> str:
    """``timedelta(days=7)`` -> "7 days", for reasons people read."""
    seconds = int(length.total_seconds())
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds % size == 0 and seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


#: Proactive kinds that keep contact hours even right after the person wrote: the bot sends
#: them on its own schedule, not as part of the conversation (rule 5).
KEEP_CONTACT_HOURS = frozenset({"opener", "reminder", "missed_payment"})


def check(
    debtor: Debtor,
    address: AddressState,
    message: Outgoing,
    now: datetime,
    rules: ContactRules,
    *,
    recent_proactive: Mapping[str, Sequence[datetime]] = _NO_HISTORY,
) -> Decision:
    """Decide whether ``message`` may go to ``debtor`` at ``now`` (aware), and in what words.

    ``recent_proactive`` maps a channel to the times (aware) of proactive messages already sent
    to this account on it. See the module docstring for the rules and their order.
    """
    _require_aware(now, "now")
    location = _locate(debtor, rules)
    zones = location.zones
    note = location.note

    def decide(
        verdict: Verdict, rule: str, reason: str, until: datetime | None = None, text: str | None = None
    ) -> Decision:
        # Only SEND and DEFER carry the text (a blocked text must not be sent by mistake).
        if text is None:
            return Decision(verdict, rule, note + reason, until=until, zones=zones)
        return Decision(verdict, rule, note + reason, until=until, text=text, added=tuple(added), zones=zones)

    if message.channel not in CHANNELS:
        return decide(
            Verdict.BLOCK, "unknown_channel", f"{message.channel!r} is not a channel the gate knows."
        )

    # Rule 1: card numbers never leave, whatever else happens.
    added: list[str] = []
    text = redact_card_numbers(message.text)
    if text != message.text:
        added.append("card_redacted")

    if not message.proactive:
        # Rule 2: a reply to someone who wrote goes at any hour, opted out or not (the one
        # confirmation of an opt-out is a reply), but never to someone who is not the debtor,
        # except what says nothing about a debt and must reach whoever wrote: help for a
        # person in crisis, and the one closing message to a wrong party.
        if address.wrong_party and message.kind not in CARE_REPLIES:
            return decide(Verdict.BLOCK, "wrong_party", "The address belongs to someone else (wrong party).")
        text, missing = _carry(text, added, message, rules)
        if missing:
            return decide(Verdict.BLOCK, "missing_text", f"The rules have no {missing} for this message.")
        return decide(
            Verdict.SEND, "reply", "A reply to someone who wrote: replies may go at any hour.", text=text
        )

    # Rule 3: stops, in order of precedence. A person's own message (an agent's, from the
    # console) is not a collection message: after a crisis, a dispute or a payment claim a
    # person must be able to reach out (that is what the person was promised); bankruptcy, an
    # attorney, a death or a breathing space stop every contact, an agent's too.
    pauses = debtor.pauses - AGENT_MAY_CONTACT_DESPITE if message.kind == "agent" else debtor.pauses
    if pauses:
        known = [reason for reason in PAUSE_REASONS if reason in pauses]
        # A flag the gate does not know still pauses: an agent set it for a reason.
        flags = known + sorted(pauses - set(PAUSE_REASONS))
        reason = f"Collection messages are paused until an agent clears: {', '.join(flags)}."
        return decide(Verdict.BLOCK, f"pause:{flags[0]}", reason)
    if debtor.vulnerable and message.kind not in VULNERABLE_STILL_GETS:
        reason = (
            "A person flagged this account vulnerable: the bot sends no openers or missed-payment "
            "messages until an agent clears the flag (reminders of a plan the person agreed to, "
            "and messages from the team, still go)."
        )
        return decide(Verdict.BLOCK, "vulnerable", reason)
    if debtor.with_agent and message.kind not in SENT_BY_A_PERSON:
        reason = (
            "An agent is talking with the person in the console: the bot starts nothing while the "
            "agent holds the conversation; outreach looks again after it is handed back or closed."
        )
        return decide(Verdict.BLOCK, "with_agent", reason)
    if address.wrong_party:
        return decide(Verdict.BLOCK, "wrong_party", "The address belongs to someone else (wrong party).")
    if address.opted_out:
        return decide(Verdict.BLOCK, "opted_out", f"The person opted out of {message.channel} messages.")
    if address.unreachable:
        return decide(Verdict.BLOCK, "unreachable", f"The {message.channel} address is marked unreachable.")
    if not zones:
        reason = (
            "No time zone is known for the debtor (no valid time zone, phone number, postal code or "
            "country) and the creditor has no default zone: an agent must add one before any "
            "proactive message."
        )
        return decide(Verdict.BLOCK, "unknown_zone", reason)

    text, missing = _carry(text, added, message, rules)
    if missing:
        return decide(Verdict.BLOCK, "missing_text", f"The rules have no {missing} for this message.")
    window = debtor.contact_window
    hours = f"{_naive(rules.earliest):%H:%M}-{_naive(rules.latest):%H:%M}"

    # Rule 4: frequency caps.
    capped = _cap_release(message, now, rules, recent_proactive)
    if capped is not None:
        release, cap, count = capped
        until = next_allowed(release, zones, rules, window)
        scope = f"on {cap.channel}" if cap.channel else "on all channels"
        if until is None:
            reason = (
                f"The frequency cap ({cap.max_messages} {scope} per {_span(cap.window)}) holds the message "
                f"until {release:%Y-%m-%d %H:%M} UTC, and no moment in the {_span(HORIZON)} after that is "
                f"inside {hours} and the contact window in every zone ({location.source})."
            )
            return decide(Verdict.BLOCK, "no_allowed_time", reason)
        reason = (
            f"{count} proactive messages {scope} in the last {_span(cap.window)} (cap {cap.max_messages}); "
            f"the next may go at {_local_times(until, zones)} (zones from {location.source})."
        )
        return decide(Verdict.DEFER, "frequency_cap", reason, until=until, text=text)

    # Rule 5: contact hours (waived for a follow-up while the person is in a conversation;
    # never for what the bot sends on its own schedule).
    inbound = debtor.last_inbound_at
    if inbound is not None and message.kind not in KEEP_CONTACT_HOURS:
        _require_aware(inbound, "last_inbound_at")
        if timedelta(0) <= now - inbound <= rules.reply_window:
            reason = (
                f"The person wrote within {_span(rules.reply_window)}: a {message.kind} may go at any hour."
            )
            return decide(Verdict.SEND, "reply_window", reason, text=text)
    loaded = [ZoneInfo(zone) for zone in zones]
    if _allowed(now, loaded, rules, window):
        reason = (
            f"Inside {hours} and the contact window at {_local_times(now, zones)} "
            f"(zones from {location.source})."
        )
        return decide(Verdict.SEND, "allowed", reason, text=text)
    until = next_allowed(now, zones, rules, window)
    quiet = [zone for zone, tz in zip(zones, loaded, strict=True) if not _hours_ok(now.astimezone(tz), rules)]
    rule = "quiet_hours" if quiet else "contact_window"
    why = (
        f"outside {hours} local time in {', '.join(quiet)}"
        if quiet
        else "outside the person's own contact window"
    )
    if until is None:
        reason = (
            f"It is {why}, and no moment in the next {_span(HORIZON)} is inside {hours} and the "
            f"contact window in every zone ({location.source}: {', '.join(zones)})."
        )
        return decide(Verdict.BLOCK, "no_allowed_time", reason)
    reason = (
        f"It is {why} at {_local_times(now, zones)}; the first allowed moment is "
        f"{_local_times(until, zones)} (zones from {location.source})."
    )
    return decide(Verdict.DEFER, rule, reason, until=until, text=text)
