"""The one typed configuration object: ``config.yaml`` plus environment overrides.

Secrets never come from the file, only from environment variables. Every mistake is
reported as a :class:`~bot.errors.ConfigError` whose lines each name the key (or the
environment variable) and what is allowed; callers print it and stop, never a traceback.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets as secrets_module
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    Extra,
    Field,
    PrivateAttr,
    StrictBool,
    ValidationError,
    root_validator,
    validator,
)

from bot.errors import ConfigError

ENV_PREFIX = "DEBTBOT__"
DEFAULT_CONFIG_PATH = "config.yaml"

#: Keys that look like secrets, and the environment variable that carries each instead.
_SECRET_ENV_FOR_KEY = {
    "auth_token": "TWILIO_AUTH_TOKEN",
    "account_sid": "TWILIO_ACCOUNT_SID",
    "bot_token": "TELEGRAM_BOT_TOKEN",
    "webhook_secret": "TELEGRAM_WEBHOOK_SECRET",
    "secret_key": "DEBTBOT_SECRET_KEY",
    "token": "RASA_AUTH_TOKEN",
    "url": "REDIS_URL",
    "password": "REDIS_URL",
}


class _Section(BaseModel):
    class Config:
        extra = Extra.forbid
        allow_mutation = False


def _http_url_with_path(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    return value


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if parts.path not in ("", "/"):
        raise ValueError("must not have a path: give scheme://host[:port] only")
    return value.rstrip("/")


class ServerConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    public_url: str = "http://127.0.0.1:8000"
    workers: int = Field(default=2, ge=1, le=64)
    threads: int = Field(default=4, ge=1, le=64)
    #: Reverse proxies in front of the gateway that set ``X-Forwarded-For``/``-Proto``: the
    #: client's address is read that many hops back (werkzeug's ``ProxyFix``); 0: the headers
    #: are ignored and the client is the socket's peer.
    trusted_proxies: int = Field(default=0, ge=0, le=10)

    _check_url = validator("public_url", allow_reuse=True)(_http_url)

    @property
    def internal_url(self) -> str:
        """Where this machine reaches the gateway directly."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host  # noqa: S104
        return f"http://{host}:{self.port}"


class RedisConfig(_Section):
    #: The interface the embedded server listens on: loopback unless other machines need it
    #: (it always asks for its password, kept in ``var/redis-password``).
    embedded_host: str = Field(default="127.0.0.1", min_length=1)
    embedded_port: int = Field(default=6390, ge=1, le=65535)
    data_dir: str = "var/redis"
    key_prefix: str = Field(default="debtbot", regex=r"^[A-Za-z0-9]+$")


@dataclass(frozen=True)
class RasaServer:
    """One Rasa server and the action server its endpoints point to."""

    url: str
    actions_url: str


def _with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    host = f"[{parts.hostname}]" if parts.hostname and ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}:{port}"


def _port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


_DEFAULT_RASA_URL = "http://127.0.0.1:5005"


class RasaConfig(_Section):
    url: str = _DEFAULT_RASA_URL
    actions_url: str = "http://127.0.0.1:5055"
    project_dir: str = "rasa_project"
    models_dir: str = "models"
    keep_models: int = Field(default=3, ge=1, le=100)
    timeout_seconds: float = Field(default=30, gt=0, le=600)
    #: Rasa servers (each with its own action server) that ``debtbot run`` starts, on the ports
    #: of ``url`` and ``actions_url`` and the next ones.
    processes: int = Field(default=1, ge=1, le=16)
    #: Rasa servers run elsewhere (``debtbot run`` starts none): the worker uses these.
    urls: list[str] = Field(default_factory=list)
    #: Their action servers (same order), for the health checks only.
    actions_urls: list[str] = Field(default_factory=list)
    #: With several servers: how long a conversation stays pinned to the server of its last
    #: call when that server is down (it waits meanwhile), before it moves to the next one.
    repin_after_seconds: float = Field(default=180, ge=90, le=86400)
    #: The address the Rasa and action servers that ``debtbot run`` starts listen on; unset: the
    #: host of their URL. In a container, where the URL names the container (http://rasa1:5005),
    #: 0.0.0.0.
    bind_host: str | None = None

    _check_urls = validator("url", "actions_url", allow_reuse=True)(_http_url)
    _check_lists = validator("urls", "actions_urls", each_item=True, allow_reuse=True)(_http_url)

    @validator("processes")
    def _ports_fit(cls, value: int, values: dict[str, Any]) -> int:
        url, actions = values.get("url"), values.get("actions_url")
        if value == 1 or url is None or actions is None:
            return value
        rasa_ports = range(_port(url), _port(url) + value)
        action_ports = range(_port(actions), _port(actions) + value)
        if rasa_ports[-1] > 65535 or action_ports[-1] > 65535:
            raise ValueError(f"{value} servers from the ports of rasa.url and rasa.actions_url go past 65535")
        if set(rasa_ports) & set(action_ports):
            raise ValueError(
                f"the Rasa servers' ports {rasa_ports[0]}-{rasa_ports[-1]} and the action servers' "
                f"{action_ports[0]}-{action_ports[-1]} overlap: move rasa.url or rasa.actions_url apart"
            )
        return value

    @validator("urls")
    def _urls_alone(cls, value: list[str], values: dict[str, Any]) -> list[str]:
        if not value:
            return value
        if len(set(value)) != len(value):
            raise ValueError("a server is listed twice")
        if values.get("processes", 1) != 1:
            raise ValueError(
                "give rasa.processes (servers debtbot run starts here) or rasa.urls (servers run "
                "elsewhere), not both"
            )
        if values.get("url") not in (None, _DEFAULT_RASA_URL, value[0]):
            raise ValueError("rasa.url is the first of rasa.urls: leave rasa.url out or make it the same")
        return value

    @validator("actions_urls")
    def _one_per_server(cls, value: list[str], values: dict[str, Any]) -> list[str]:
        if value and len(value) != len(values.get("urls") or []):
            raise ValueError("one action server per entry of rasa.urls, in the same order")
        return value

    @validator("bind_host")
    def _an_address(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError("must be an IP address to listen on, e.g. 0.0.0.0 (every interface)") from None
        return value

    @validator("repin_after_seconds", always=True)
    def _outlasts_a_call(cls, value: float, values: dict[str, Any]) -> float:
        several = values.get("processes", 1) > 1 or len(values.get("urls") or []) > 1
        timeout = values.get("timeout_seconds")
        if several and timeout is not None and value < 2 * timeout:
            raise ValueError(f"must be at least twice rasa.timeout_seconds ({2 * timeout:g})")
        return value

    @root_validator(skip_on_failure=True)
    def _first_of_the_list(cls, values: dict[str, Any]) -> dict[str, Any]:
        # rasa.url and rasa.actions_url stay the first server's, for the code that needs one.
        if values.get("urls"):
            values["url"] = values["urls"][0]
        if values.get("actions_urls"):
            values["actions_url"] = values["actions_urls"][0]
        return values

    @property
    def started_here(self) -> bool:
        """Whether ``debtbot run`` starts the Rasa and action servers (not with ``rasa.urls``)."""
        return not self.urls

    @property
    def servers(self) -> list[RasaServer]:
        """Every Rasa server the worker uses, in order, each with its action server (with
        ``rasa.urls`` and no ``rasa.actions_urls``: ``rasa.actions_url`` for all, unknown)."""
        if self.urls:
            actions = self.actions_urls or [self.actions_url] * len(self.urls)
            return [RasaServer(url, action) for url, action in zip(self.urls, actions, strict=True)]
        base, actions_base = _port(self.url), _port(self.actions_url)
        if self.processes == 1:
            return [RasaServer(self.url, self.actions_url)]
        return [
            RasaServer(_with_port(self.url, base + n), _with_port(self.actions_url, actions_base + n))
            for n in range(self.processes)
        ]

    @property
    def server_urls(self) -> list[str]:
        """The Rasa servers' URLs (``debtbot reload`` loads the model into each)."""
        return [server.url for server in self.servers]


class WorkerConfig(_Section):
    processes: int = Field(default=1, ge=1, le=64)
    threads: int = Field(default=4, ge=1, le=256)
    #: Job threads that only send replies (their own lane: never behind Rasa-bound drains).
    outbound_threads: int = Field(default=2, ge=1, le=256)
    #: An idle worker is woken by each new job; without one it looks at Redis this often.
    #: At most 10 s: Dramatiq counts a broker silent for a minute as dead.
    idle_poll_seconds: float = Field(default=1, ge=0.01, le=10)
    heartbeat_seconds: float = Field(default=5, gt=0, le=300)
    sweep_seconds: float = Field(default=5, gt=0, le=300)
    retry_min_seconds: float = Field(default=1, gt=0, le=3600)
    retry_max_seconds: float = Field(default=30, gt=0, le=86400)
    max_attempts: int = Field(default=5, ge=1, le=1000)
    lease_seconds: float = Field(default=10, ge=0.5, le=300)
    overdue_seconds: float = Field(default=5, gt=0, le=300)
    max_wait_seconds: float = Field(default=300, gt=0, le=7 * 86400)

    @validator("retry_max_seconds")
    def _max_not_below_min(cls, value: float, values: dict[str, Any]) -> float:
        low = values.get("retry_min_seconds")
        if low is not None and value < low:
            raise ValueError(f"must be at least worker.retry_min_seconds ({low})")
        return value


class DedupeConfig(_Section):
    window_hours: float = Field(default=168, gt=0, le=24 * 365)


_KEYWORD = r"^[A-Z]{2,20}$"


def _words(text: str) -> list[str]:
    return text.split()


class SmsKeywordsConfig(_Section):
    stop: list[str] = Field(
        default_factory=lambda: _words(
            "STOP STOPALL UNSUBSCRIBE CANCEL END QUIT REVOKE OPTOUT ALTO PARAR PARE BAJA"
        ),
        min_items=1,
    )
    start: list[str] = Field(default_factory=lambda: _words("START UNSTOP YES ALTA INICIAR SI"))
    help: list[str] = Field(default_factory=lambda: _words("HELP INFO AYUDA"))
    spanish: list[str] = Field(default_factory=lambda: _words("ALTO PARAR PARE BAJA ALTA INICIAR SI AYUDA"))

    @validator("stop", "start", "help", "spanish", each_item=True)
    def _upper_word(cls, value: str) -> str:
        word = value.strip().upper()
        if not re.match(_KEYWORD, word):
            raise ValueError("keywords are single words of 2-20 letters A-Z")
        return word

    @validator("help")
    def _no_overlap(cls, value: list[str], values: dict[str, Any]) -> list[str]:
        seen = set(values.get("stop", [])) | set(values.get("start", []))
        clash = sorted(seen & set(value) | (set(values.get("stop", [])) & set(values.get("start", []))))
        if clash:
            raise ValueError(f"a keyword can only mean one thing: {', '.join(clash)}")
        return value


class SmsRepliesConfig(_Section):
    """Texts for the keyword replies; {company}, {phone}, {website} and {stop} are filled in."""

    stop: str
    start: str
    help: str

    @validator("stop", "start", "help")
    def _known_fields(cls, value: str) -> str:
        try:
            value.format(company="", phone="", website="", stop="")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"only {{company}}, {{phone}}, {{website}} and {{stop}} can be filled in ({exc})"
            ) from exc
        return value


def _default_sms_replies() -> dict[Literal["en", "es"], SmsRepliesConfig]:
    # The same texts as config.yaml, for a config file that leaves them out.
    return {
        "en": SmsRepliesConfig(
            stop="{company}: you won't get any more texts from us. Reply START to hear from us again.",
            start="{company}: thanks, you'll get our texts again. Reply {stop} at any time to stop.",
            help="{company}: we help with your account. Call {phone} or visit {website}. "
            "Reply {stop} to stop texts.",
        ),
        "es": SmsRepliesConfig(
            stop="{company}: no recibirá más mensajes nuestros. Responda ALTA para volver a recibirlos.",
            start="{company}: gracias, volverá a recibir nuestros mensajes. "
            "Responda ALTO para dejar de recibirlos.",
            help="{company}: le ayudamos con su cuenta. Llame al {phone} o visite {website}. "
            "Responda ALTO para no recibir más mensajes.",
        ),
    }


class SmsConfig(_Section):
    enabled: StrictBool = True
    from_number: str | None = Field(default="+15005550006", regex=r"^\+[1-9]\d{6,14}$")
    messaging_service_sid: str | None = Field(default=None, regex=r"^MG[0-9a-fA-F]{32}$")
    api_base_url: str = "https://api.twilio.com"
    timeout_seconds: float = Field(default=10, gt=0, le=120)
    segments_per_second: float = Field(default=1, gt=0, le=1000)
    max_segments_per_message: int = Field(default=4, ge=1, le=10)
    unreachable_after_failures: int = Field(default=3, ge=1, le=100)
    keyword_replies_by_twilio: StrictBool = False
    keywords: SmsKeywordsConfig = Field(default_factory=SmsKeywordsConfig)
    replies: dict[Literal["en", "es"], SmsRepliesConfig] = Field(default_factory=_default_sms_replies)

    _check_url = validator("api_base_url", allow_reuse=True)(_http_url)

    @validator("replies")
    def _both_languages(cls, value: dict[str, SmsRepliesConfig]) -> dict[str, SmsRepliesConfig]:
        missing = {"en", "es"} - set(value)
        if missing:
            raise ValueError(f"needs texts for every language; missing: {', '.join(sorted(missing))}")
        return value


class TelegramConfig(_Section):
    enabled: StrictBool = True
    api_base_url: str = "https://api.telegram.org"
    bot_username: str | None = Field(default=None, regex=r"^[A-Za-z][A-Za-z0-9_]{3,30}[Bb][Oo][Tt]$")
    link_ttl_hours: float = Field(default=72, gt=0, le=24 * 30)
    timeout_seconds: float = Field(default=10, gt=0, le=120)
    messages_per_second_per_chat: float = Field(default=1, gt=0, le=30)
    messages_per_second: float = Field(default=30, gt=0, le=1000)

    _check_url = validator("api_base_url", allow_reuse=True)(_http_url)


Language = Literal["en", "es"]


def _both_languages(value: dict[str, Any]) -> dict[str, Any]:
    missing = [lang for lang in ("en", "es") if not value.get(lang)]
    if missing:
        raise ValueError(f"needs a text for every language (missing: {', '.join(missing)})")
    return value


def _email_address(value: str) -> str:
    from email.utils import parseaddr

    _, address = parseaddr(value)
    if "@" not in address or address.startswith("@") or address.endswith("@"):
        raise ValueError("must be an email address, optionally with a display name: Name <user@host>")
    return value


class SmtpConfig(_Section):
    """The outgoing mail server. ``host: null`` keeps email sandboxed (development only)."""

    host: str | None = None
    port: int = Field(default=587, ge=1, le=65535)
    #: ``starttls`` (submission, port 587), ``ssl`` (implicit TLS, port 465) or ``none``
    #: (a local relay on loopback; refused in production).
    security: Literal["starttls", "ssl", "none"] = "starttls"
    timeout_seconds: float = Field(default=30, gt=0, le=300)


class ImapConfig(_Section):
    """The mailbox the poller reads replies from."""

    enabled: StrictBool = False
    host: str = "127.0.0.1"
    port: int = Field(default=993, ge=1, le=65535)
    security: Literal["ssl", "starttls", "none"] = "ssl"
    folder: str = Field(default="INBOX", min_length=1)
    #: IDLE is re-issued after this long: servers may drop an IDLE after 29 minutes (RFC 2177).
    idle_seconds: float = Field(default=600, ge=10, le=1500)
    #: How often to look for new mail when the server has no IDLE.
    poll_seconds: float = Field(default=60, ge=1, le=3600)
    #: The IMAP keyword set on every message once it is safely queued.
    processed_keyword: str = Field(default="$DebtbotProcessed", regex=r"^\$?[A-Za-z][A-Za-z0-9_]{0,62}$")
    reconnect_min_seconds: float = Field(default=1, gt=0, le=3600)
    reconnect_max_seconds: float = Field(default=300, gt=0, le=86400)
    timeout_seconds: float = Field(default=60, gt=0, le=600)


def _default_email_subjects() -> dict[str, str]:
    return {"en": "A message from {company}", "es": "Un mensaje de {company}"}


class EmailConfig(_Section):
    enabled: StrictBool = True
    #: Who the bot's mail comes from (the address replies come back to).
    from_address: str = "Northwind <help@northwind.example.com>"
    #: Larger incoming messages are not read: they go to the dead letters for an agent.
    max_message_bytes: int = Field(default=10_000_000, ge=10_000, le=100_000_000)
    #: The most bot replies one address gets in an hour: the last guard against mail loops.
    replies_per_hour_per_address: int = Field(default=10, ge=1, le=1000)
    #: The subject of a message the bot starts ({company} is the company's display name);
    #: replies keep the person's subject as "Re: ...".
    subjects: dict[Language, str] = Field(default_factory=_default_email_subjects)
    smtp: SmtpConfig = Field(default_factory=SmtpConfig)
    imap: ImapConfig = Field(default_factory=ImapConfig)

    _check_from = validator("from_address", allow_reuse=True)(_email_address)
    _check_subjects = validator("subjects", allow_reuse=True)(_both_languages)


class ChannelsConfig(_Section):
    sms: SmsConfig = Field(default_factory=SmsConfig)
    telegram: TelegramConfig = Field(default_factory=TelegramConfig)
    email: EmailConfig = Field(default_factory=EmailConfig)


VerificationField = Literal["date_of_birth", "postal_code", "account_last4"]


class AccountsConfig(_Section):
    verification_field: VerificationField = "date_of_birth"
    languages: list[Literal["en", "es"]] = Field(default_factory=lambda: ["en", "es"], min_items=1)
    default_language: Literal["en", "es"] = "en"

    @validator("default_language")
    def _default_is_spoken(cls, value: str, values: dict[str, Any]) -> str:
        languages = values.get("languages")
        if languages is not None and value not in languages:
            raise ValueError(f"must be one of accounts.languages ({', '.join(languages)})")
        return value


class CompanyConfig(_Section):
    """Who the bot speaks for: said honestly to anyone who asks who is writing."""

    name: str = Field(default="Northwind Recoveries Ltd", min_length=1)
    display_name: str = Field(default="Northwind", min_length=1)
    phone: str = Field(default="+1 800 555 0199", min_length=5)
    website: str = "https://northwind.example.com"
    verify_url: str = "https://northwind.example.com/verify"
    licence: str = ""

    _check_urls = validator("website", "verify_url", allow_reuse=True)(_http_url_with_path)


def _optional_zone(value: str | None) -> str | None:
    return _zone(value) if value is not None else None


def _zone(value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("must be an IANA time zone such as America/New_York") from None
    return value


class ContactHoursConfig(_Section):
    """When proactive messages may arrive, in the debtor's local time."""

    earliest: str = Field(default="08:00", regex=r"^([01]\d|2[0-3]):[0-5]\d$")
    latest: str = Field(default="21:00", regex=r"^([01]\d|2[0-3]):[0-5]\d$")

    @validator("earliest", "latest", pre=True)
    def _unquoted_time(cls, value: object) -> object:
        # YAML 1.1 reads an unquoted 21:00 as the number 1260 (base 60): read it back as a time.
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
            return f"{value // 60:02d}:{value % 60:02d}"
        return value

    @validator("latest")
    def _after_earliest(cls, value: str, values: dict[str, Any]) -> str:
        earliest = values.get("earliest")
        if earliest is not None and value <= earliest:
            raise ValueError(f"must be later than earliest ({earliest})")
        return value


class FrequencyCapConfig(_Section):
    """At most ``max_messages`` proactive messages in any ``window_days`` (on ``channel``, or all)."""

    max_messages: int = Field(ge=1, le=1000)
    window_days: float = Field(gt=0, le=365)
    channel: Literal["sms", "telegram", "email"] | None = None


class CreditorRulesConfig(_Section):
    contact_hours: ContactHoursConfig | None = None
    frequency_caps: list[FrequencyCapConfig] | None = None
    default_timezone: str | None = None

    _check_zone = validator("default_timezone", allow_reuse=True)(_optional_zone)


class ComplianceConfig(_Section):
    """What every conversation must do, whatever the dialogue says."""

    verification_attempts: int = Field(default=3, ge=1, le=10)
    mini_miranda: dict[Language, str] = Field(
        default_factory=lambda: {
            "en": "This is a communication from a debt collector. This is an attempt to collect a debt, "
            "and any information obtained will be used for that purpose.",
            "es": "Esta es una comunicación de un cobrador de deudas. Es un intento de cobrar una deuda, "
            "y cualquier información obtenida se utilizará con ese fin.",
        }
    )

    _check_texts = validator("mini_miranda", allow_reuse=True)(_both_languages)
    contact_hours: ContactHoursConfig = Field(default_factory=lambda: ContactHoursConfig())
    #: A reply to someone who wrote within this many minutes may go at any hour.
    reply_window_minutes: int = Field(default=30, ge=0, le=24 * 60)
    frequency_caps: list[FrequencyCapConfig] = Field(
        default_factory=lambda: [FrequencyCapConfig(max_messages=3, window_days=7)]
    )
    #: The creditor's zone: used only when nothing at all tells the debtor's zone.
    default_timezone: str | None = None
    #: The line a proactive SMS must carry, per language.
    sms_opt_out: dict[Language, str] = Field(
        default_factory=lambda: {
            "en": "Reply STOP to stop texts.",
            "es": "Responda ALTO para no recibir más mensajes.",
        }
    )
    #: Different rules for some creditors (by the account's creditor name), e.g. another
    #: jurisdiction's hours or caps; anything not given is taken from above.
    creditors: dict[str, CreditorRulesConfig] = Field(default_factory=dict)

    _check_opt_out = validator("sms_opt_out", allow_reuse=True)(_both_languages)

    _check_zone = validator("default_timezone", allow_reuse=True)(_optional_zone)


Frequency = Literal["weekly", "fortnightly", "monthly"]


class SettlementConfig(_Section):
    """A one-off settlement for less than the balance; offered once, never below the floor."""

    enabled: StrictBool = True
    floor_percent: Decimal = Field(default=Decimal(70), gt=0, le=100)
    offer_percent: Decimal = Field(default=Decimal(85), gt=0, le=100)

    @validator("offer_percent")
    def _offer_above_floor(cls, value: Decimal, values: dict[str, Any]) -> Decimal:
        floor = values.get("floor_percent")
        if floor is not None and value < floor:
            raise ValueError(f"must be at least plans.settlement.floor_percent ({floor})")
        return value


class PlansConfig(_Section):
    """Payment-plan policy: every plan the bot proposes or accepts stays inside it."""

    min_instalment: Decimal = Field(default=Decimal(10), gt=0)
    max_term_months: int = Field(default=24, ge=1, le=120)
    frequencies: list[Frequency] = Field(
        default_factory=lambda: ["weekly", "fortnightly", "monthly"], min_items=1
    )
    first_payment_within_days: int = Field(default=14, ge=0, le=90)
    down_payment_percent: Decimal = Field(default=Decimal(0), ge=0, lt=100)
    settlement: SettlementConfig = Field(default_factory=SettlementConfig)
    payment_link_template: str = "https://pay.example.com/{account_id}/{plan_id}"
    webhook_url: str | None = None

    @validator("payment_link_template")
    def _template_has_plan(cls, value: str) -> str:
        if "{plan_id}" not in value:
            raise ValueError("must contain {plan_id} (and may contain {account_id}, {amount}, {currency})")
        try:
            value.format(account_id="A", plan_id="P", amount="1", currency="USD")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"only {{account_id}}, {{plan_id}}, {{amount}}, {{currency}} may be used ({exc})"
            ) from exc
        return value

    _check_webhook = validator("webhook_url", allow_reuse=True)(
        lambda value: None if value is None else _http_url_with_path(value)
    )


class Resource(_Section):
    name: str = Field(min_length=1)
    contact: str = Field(min_length=1)


class ResourcesConfig(_Section):
    """Free, independent money-help services the bot points people to, per language."""

    en: list[Resource] = Field(
        default_factory=lambda: [
            Resource(name="National Foundation for Credit Counseling", contact="nfcc.org or 1-800-388-2227"),
            Resource(name="211 (local help with bills, food and housing)", contact="call or text 211"),
        ],
        min_items=1,
    )
    es: list[Resource] = Field(
        default_factory=lambda: [
            Resource(
                name="National Foundation for Credit Counseling (en español)",
                contact="nfcc.org/espanol o 1-800-682-9832",
            ),
            Resource(
                name="211 (ayuda local con facturas, comida y vivienda)",
                contact="llame o envíe un mensaje al 211",
            ),
        ],
        min_items=1,
    )


class CrisisLine(_Section):
    """Where a person in crisis can get help now, as said to them, per language."""

    en: str = Field(min_length=1, max_length=300)
    es: str = Field(min_length=1, max_length=300)


def _default_crisis_lines() -> dict[str, CrisisLine]:
    return {
        "US": CrisisLine(
            en="call or text 988 (the 988 Suicide & Crisis Lifeline), free, any time",
            es="llame o envíe un mensaje al 988 (988 Lifeline; para español marque 988 y luego 2), "
            "gratis, a cualquier hora",
        ),
        "GB": CrisisLine(
            en="call Samaritans free on 116 123, any time",
            es="llame gratis a Samaritans al 116 123, a cualquier hora",
        ),
        "ES": CrisisLine(
            en="call 024, the free suicide-prevention line, any time",
            es="llame al 024, la línea gratuita de atención a la conducta suicida, a cualquier hora",
        ),
        "MX": CrisisLine(
            en="call Línea de la Vida free on 800 911 2000, any time",
            es="llame gratis a la Línea de la Vida al 800 911 2000, a cualquier hora",
        ),
        "default": CrisisLine(
            en="call your local emergency number, or find a free helpline in your country at "
            "findahelpline.com",
            es="llame al número de emergencias de su país, o busque una línea de ayuda gratuita en "
            "findahelpline.com",
        ),
    }


def _default_crisis_reply() -> dict[str, str]:
    return {
        "en": (
            "I'm so sorry you're going through this, and thank you for telling me. You matter, and "
            "you don't have to face this alone. Please talk to someone now: {line}. If you are in "
            "danger right now, call your local emergency number. A person from our team will also "
            "reach out to you personally."
        ),
        "es": (
            "Siento mucho que esté pasando por esto, y gracias por contármelo. Usted importa, y no "
            "tiene que enfrentarse a esto a solas. Por favor, hable con alguien ahora: {line}. Si está "
            "en peligro en este momento, llame al número de emergencias. Una persona de nuestro equipo "
            "también se pondrá en contacto con usted personalmente."
        ),
    }


class CareConfig(_Section):
    """What the bot says and does when someone writes something that shows they are in crisis."""

    #: Per ISO 3166 country code of the account (else of its phone number), plus ``default``.
    crisis_lines: dict[str, CrisisLine] = Field(default_factory=_default_crisis_lines)
    #: The answer to a sign of crisis, per language; ``{line}`` is the crisis line. Nothing
    #: about a debt: it may reach someone who is not the account holder.
    crisis_reply: dict[Language, str] = Field(default_factory=_default_crisis_reply)
    #: For this many hours after a sign of crisis, an address that asked for silence (opt-out,
    #: wrong person) still gets a short answer that a person has its messages, never silence.
    follow_up_hours: float = Field(default=24, ge=0, le=168)

    @validator("crisis_lines")
    def _countries(cls, value: dict[str, CrisisLine]) -> dict[str, CrisisLine]:
        if "default" not in value:
            raise ValueError("needs a 'default' line for countries without their own")
        for code in value:
            if code != "default" and not re.fullmatch(r"[A-Z]{2}", code):
                raise ValueError(
                    f"{code!r}: keys are two-letter ISO 3166 codes in capitals (US, GB...) or 'default'"
                )
        return value

    @validator("crisis_reply")
    def _reply(cls, value: dict[str, str]) -> dict[str, str]:
        for language in ("en", "es"):
            text = value.get(language)
            if not text:
                raise ValueError(f"needs a reply for {language}")
            if "{line}" not in text:
                raise ValueError(f"{language}: must say {{line}} (the crisis line)")
            try:
                text.format(line="x")
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(f"{language}: may use only {{line}} ({exc})") from None
        return value


class OpenerVariant(_Section):
    """One wording of the first message; {first_name} and {company} are filled in."""

    id: str = Field(regex=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    text: str = Field(min_length=1, max_length=600)

    @validator("text")
    def _placeholders(cls, value: str) -> str:
        try:
            value.format(first_name="x", company="x")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"may use only {{first_name}} and {{company}} ({exc})") from None
        return value


def _default_openers() -> dict[str, list[OpenerVariant]]:
    return {
        "en": [
            OpenerVariant(id="warm", text="Hi {first_name}, this is {company}. How are you doing today?"),
            OpenerVariant(
                id="plain",
                text="Hello {first_name}, it's {company} here. I hope you're well. How are things with you?",
            ),
        ],
        "es": [
            OpenerVariant(id="warm", text="Hola, {first_name}. Le escribimos de {company}. ¿Cómo está hoy?"),
            OpenerVariant(
                id="plain",
                text="Hola, {first_name}. Somos {company} y esperamos que esté bien. ¿Qué tal le va?",
            ),
        ],
    }


class OutreachConfig(_Section):
    """Conversations the product starts itself."""

    #: The worker plans a run every ``every_minutes`` (false: only `debtbot outreach run`).
    schedule: StrictBool = False
    every_minutes: float = Field(default=60, ge=1, le=24 * 60)
    #: An account is due again this many days after its last opener.
    contact_every_days: float = Field(default=7, gt=0, le=365)
    #: Channels tried in this order after the person's own preferred one.
    channel_order: list[Literal["sms", "email", "telegram"]] = Field(
        default_factory=lambda: ["sms", "email", "telegram"], min_items=1
    )
    #: The run is split into this many queues, drained in parallel by the workers.
    shards: int = Field(default=16, ge=1, le=1024)
    #: Opener wordings per language; each account keeps the one it was given, and replies,
    #: verifications and plans are counted per wording (`debtbot outreach stats`).
    openers: dict[Language, list[OpenerVariant]] = Field(default_factory=_default_openers)
    #: Wordings for some creditors' accounts (by creditor name), per language, replacing the
    #: ones above for those accounts.
    creditor_openers: dict[str, dict[Language, list[OpenerVariant]]] = Field(default_factory=dict)
    #: Plan reminders this many days before each payment.
    remind_days_before: int = Field(default=3, ge=0, le=30)
    #: No reminder (nor missed-payment message) within this many hours of the plan being
    #: agreed: the confirmation already gave the date.
    first_reminder_after_hours: float = Field(default=24, ge=0, le=24 * 14)

    @validator("openers")
    def _every_language(cls, value: dict[str, list[OpenerVariant]]) -> dict[str, list[OpenerVariant]]:
        for language in ("en", "es"):
            if not value.get(language):
                raise ValueError(f"needs at least one opener for {language}")
        return _unique_ids(value)

    @validator("creditor_openers")
    def _unique_per_creditor(
        cls, value: dict[str, dict[str, list[OpenerVariant]]]
    ) -> dict[str, dict[str, list[OpenerVariant]]]:
        for variants in value.values():
            _unique_ids(variants)
        return value

    def openers_for(self, creditor: str, language: str) -> list[OpenerVariant]:
        """The wordings for an account of ``creditor`` in ``language``."""
        own = self.creditor_openers.get(creditor, {}).get(language)  # type: ignore[call-overload]
        return list(own or self.openers[language])  # type: ignore[index]


def _unique_ids(value: dict[str, list[OpenerVariant]]) -> dict[str, list[OpenerVariant]]:
    for language, variants in value.items():
        ids = [v.id for v in variants]
        if len(set(ids)) != len(ids):
            raise ValueError(f"opener ids must be unique within {language}")
    return value


class AgentHoursConfig(ContactHoursConfig):
    """Agents' working hours: from ``earliest`` to ``latest`` on ``days`` (0 = Monday)."""

    earliest: str = Field(default="09:00", regex=r"^([01]\d|2[0-3]):[0-5]\d$")
    latest: str = Field(default="17:00", regex=r"^([01]\d|2[0-3]):[0-5]\d$")
    days: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4], min_items=1)

    @validator("days", each_item=True)
    def _weekday(cls, value: int) -> int:
        if not 0 <= value <= 6:
            raise ValueError("days are 0 (Monday) to 6 (Sunday)")
        return value


class ConsoleConfig(_Section):
    """The agents' console (bot/console): who may sign in, and how long things may wait."""

    #: A signed-in agent who does nothing for this long is signed out.
    idle_minutes: float = Field(default=30, gt=0, le=24 * 60)
    #: A conversation waiting longer than this for a person is highlighted in the inbox.
    target_minutes: float = Field(default=15, gt=0, le=7 * 24 * 60)
    #: A claimed conversation nobody touches for this long goes back to the queue.
    claim_idle_minutes: float = Field(default=20, gt=0, le=7 * 24 * 60)
    #: When agents work, in ``zone``: what "a person will answer" promises is said in the
    #: debtor's local time from these.
    hours: AgentHoursConfig = Field(default_factory=lambda: AgentHoursConfig())
    #: The agents' time zone (their hours, and the times the console shows them).
    zone: str = "America/New_York"
    #: Failed sign-ins allowed per account and per address within ``sign_in_window_minutes``.
    sign_in_attempts: int = Field(default=5, ge=1, le=100)
    sign_in_window_minutes: float = Field(default=15, gt=0, le=24 * 60)
    #: Development only: an example supervisor created at start-up and shown in the banner.
    example_supervisor: StrictBool = True

    _zone = validator("zone", allow_reuse=True)(_zone)


class RetentionConfig(_Section):
    """Data minimisation: how long what people wrote is kept, and the records the law requires.

    Transcripts and tracker data (conversation histories and Rasa's trackers in Redis, Rasa's
    events and the other analytics rows in SQL) go after ``transcript_days``; opt-outs, disputes,
    plans, payments and the audit stay ``records_years``. ``debtbot retention run`` and a daily run.
    """

    transcript_days: int = Field(default=90, ge=1, le=3650)
    records_years: int = Field(default=7, ge=1, le=100)


class OpsConfig(_Section):
    """The ops pages: what counts as a message the bot did not understand well enough."""

    #: A message whose intent's confidence is under this goes to the NLU inbox and counts as
    #: *low confidence* in the review (above Rasa's own fallback threshold: these are the
    #: messages the bot answered while unsure).
    low_confidence: float = Field(default=0.6, gt=0, le=1)
    #: Where labelled messages go (relative to the configuration's folder): Rasa NLU data that
    #: ``debtbot validate`` checks for duplicates and conflicts before it is trained.
    review_file: str = "rasa_project/data/nlu/review.yml"


class SimulatorConfig(_Section):
    enabled: StrictBool = True


class LoggingConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


@dataclass(frozen=True)
class Secrets:
    """Values only ever read from the environment."""

    redis_url: str | None
    rasa_token: str
    secret_key: str
    twilio_account_sid: str | None
    twilio_auth_token: str | None
    telegram_bot_token: str | None
    telegram_webhook_secret: str | None
    plans_webhook_secret: str | None = None
    smtp_username: str | None = None
    smtp_password: str | None = None
    imap_username: str | None = None
    imap_password: str | None = None
    email_webhook_secret: str = ""
    #: What Rasa sends the action server (``Authorization: Bearer ...``) and the action
    #: server requires on every call but ``/health``.
    actions_token: str = ""
    #: Secrets made up here, not read from the environment (names of the environment
    #: variables they stand for): in development all of them, kept in var/dev-secrets.json;
    #: in production only DEBTBOT_ACTIONS_TOKEN, for this run, when Rasa and the action server
    #: are both started by this machine's supervisor.
    generated: tuple[str, ...] = ()


class Config(_Section):
    """The whole configuration. Build it with :func:`load_config`."""

    environment: Literal["development", "production"] = "development"
    server: ServerConfig = Field(default_factory=ServerConfig)
    redis: RedisConfig = Field(default_factory=RedisConfig)
    rasa: RasaConfig = Field(default_factory=RasaConfig)
    worker: WorkerConfig = Field(default_factory=WorkerConfig)
    dedupe: DedupeConfig = Field(default_factory=DedupeConfig)
    channels: ChannelsConfig = Field(default_factory=ChannelsConfig)
    accounts: AccountsConfig = Field(default_factory=AccountsConfig)
    company: CompanyConfig = Field(default_factory=CompanyConfig)
    compliance: ComplianceConfig = Field(default_factory=ComplianceConfig)
    plans: PlansConfig = Field(default_factory=PlansConfig)
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig)
    care: CareConfig = Field(default_factory=CareConfig)
    outreach: OutreachConfig = Field(default_factory=OutreachConfig)
    console: ConsoleConfig = Field(default_factory=ConsoleConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    ops: OpsConfig = Field(default_factory=OpsConfig)
    simulator: SimulatorConfig = Field(default_factory=SimulatorConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)

    _secrets: Secrets = PrivateAttr()
    _base_dir: Path = PrivateAttr()
    _source: Path = PrivateAttr()

    @property
    def secrets(self) -> Secrets:
        """Secrets from the environment."""
        return self._secrets

    @property
    def base_dir(self) -> Path:
        """The folder relative paths in the file are resolved against."""
        return self._base_dir

    @property
    def source(self) -> Path:
        """The file this configuration was read from."""
        return self._source

    @property
    def production(self) -> bool:
        return self.environment == "production"

    def path(self, relative: str) -> Path:
        """Resolve a path setting against the configuration file's folder."""
        candidate = Path(relative)
        return candidate if candidate.is_absolute() else (self._base_dir / candidate).resolve()

    @property
    def sms_live(self) -> bool:
        return bool(self._secrets.twilio_account_sid and self._secrets.twilio_auth_token)

    @property
    def telegram_live(self) -> bool:
        return bool(self._secrets.telegram_bot_token and self._secrets.telegram_webhook_secret)

    @property
    def email_live(self) -> bool:
        return self.channels.email.smtp.host is not None


def load_config(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read, override from the environment, validate; raise :class:`ConfigError` on any mistake."""
    env = os.environ if env is None else env
    source = Path(path or env.get("DEBTBOT_CONFIG") or DEFAULT_CONFIG_PATH).resolve()
    raw = _read_yaml(source)
    problems = _secret_keys_in_file(raw)
    overrides, override_problems = _env_overrides(env)
    problems += override_problems
    data = _deep_merge(raw, overrides)
    try:
        config = Config.parse_obj(data)
    except ValidationError as exc:
        problems += [_describe(error, data) for error in exc.errors()]
        raise ConfigError(_framed(source, problems)) from None
    if problems:
        raise ConfigError(_framed(source, problems))
    config._base_dir = source.parent
    config._source = source
    secrets, problems = _load_secrets(config, env)
    problems += _check_consistency(config, secrets)
    problems += _exposure_problems(config, secrets)
    if problems:
        raise ConfigError(_framed(source, problems))
    config._secrets = secrets
    return config


def _framed(source: Path, problems: list[str]) -> list[str]:
    return [f"{source.name}: {problem}" for problem in problems]


def _read_yaml(source: Path) -> dict[str, Any]:
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            [f"configuration file {source} not found (set DEBTBOT_CONFIG or run from the project folder)"]
        ) from None
    except OSError as exc:
        raise ConfigError([f"cannot read configuration file {source}: {exc.strerror}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{source.name}: not valid YAML{where}: {problem}"]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError([f"{source.name}: the top level must be a mapping of sections"])
    return data


def _secret_keys_in_file(data: Mapping[str, Any], prefix: str = "") -> list[str]:
    found = []
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        env_name = _SECRET_ENV_FOR_KEY.get(str(key))
        for server in ("smtp", "imap"):
            if prefix.endswith(f"{server}.") and key in ("username", "password", "user"):
                env_name = f"{server.upper()}_{'PASSWORD' if key == 'password' else 'USERNAME'}"
        # rasa.url is the Rasa server's address, not a credential.
        if env_name and dotted != "rasa.url":
            found.append(
                f"{dotted}: secrets are not read from config.yaml; "
                f"set the environment variable {env_name} instead"
            )
        elif isinstance(value, Mapping):
            found += _secret_keys_in_file(value, prefix=f"{dotted}.")
    return found


def _env_overrides(env: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    overrides: dict[str, Any] = {}
    problems: list[str] = []
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX) :].split("__") if p]
        if not parts:
            problems.append(f"{name}: name a setting, e.g. {ENV_PREFIX}SERVER__PORT")
            continue
        try:
            parsed = yaml.safe_load(value) if value != "" else None
        except yaml.YAMLError:
            parsed = value
        node = overrides
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = parsed
    return overrides, problems


def _deep_merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _describe(error: Mapping[str, Any], data: Mapping[str, Any]) -> str:
    loc = tuple(str(part) for part in error["loc"] if part != "__root__")
    dotted = ".".join(loc)
    kind = str(error.get("type", ""))
    if kind == "value_error.extra":
        parent = _model_at(loc[:-1])
        allowed = ", ".join(parent.__fields__) if parent else ""
        return f"{dotted}: unknown setting (allowed here: {allowed})"
    if kind == "value_error.missing":
        return f"{dotted}: required setting is missing"
    message = str(error["msg"])
    if kind == "type_error.dict":
        model = _model_at(loc)
        allowed = ", ".join(model.__fields__) if model else ""
        message = f"must be a section with the settings: {allowed}"
    got = _lookup(data, loc)
    suffix = f" (got {got!r})" if got is not _MISSING else ""
    return f"{dotted}: {message}{suffix}"


_MISSING = object()


def _lookup(data: Any, loc: tuple[str, ...]) -> Any:
    node = data
    for part in loc:
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _model_at(loc: tuple[str, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] = Config
    for part in loc:
        field = model.__fields__.get(part)
        if field is None or not (isinstance(field.type_, type) and issubclass(field.type_, BaseModel)):
            return None
        model = field.type_
    return model


def _load_secrets(config: Config, env: Mapping[str, str]) -> tuple[Secrets, list[str]]:
    problems: list[str] = []
    generated: list[str] = []

    def get(name: str) -> str | None:
        value = env.get(name, "").strip()
        return value or None

    def required(name: str, purpose: str) -> str:
        value = get(name)
        if value:
            return value
        if config.production:
            problems.append(f"{name}: environment variable is required in production ({purpose})")
            return ""
        generated.append(name)
        return _development_secret(config, name)

    redis_url = get("REDIS_URL")
    if redis_url and is_sentinel_url(redis_url):
        try:
            parse_sentinel_url(redis_url)
        except ValueError as exc:
            problems.append(f"REDIS_URL: {exc}")
    elif redis_url and urlsplit(redis_url).scheme not in ("redis", "rediss", "unix"):
        problems.append(
            "REDIS_URL: must start with redis://, rediss://, unix://, redis+sentinel:// or rediss+sentinel://"
        )
    twilio_sid, twilio_token = get("TWILIO_ACCOUNT_SID"), get("TWILIO_AUTH_TOKEN")
    if bool(twilio_sid) != bool(twilio_token):
        problems.append("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN: set both (live SMS) or neither (sandbox)")
    if twilio_sid and not twilio_sid.startswith("AC"):
        problems.append("TWILIO_ACCOUNT_SID: must start with AC")
    tg_token, tg_secret = get("TELEGRAM_BOT_TOKEN"), get("TELEGRAM_WEBHOOK_SECRET")
    if bool(tg_token) != bool(tg_secret):
        problems.append(
            "TELEGRAM_BOT_TOKEN and TELEGRAM_WEBHOOK_SECRET: set both (live Telegram) or neither (sandbox)"
        )
    if tg_secret and not all(c.isalnum() or c in "_-" for c in tg_secret):
        problems.append("TELEGRAM_WEBHOOK_SECRET: only letters, digits, _ and - are allowed (Bot API rule)")
    smtp_user, smtp_password = get("SMTP_USERNAME"), get("SMTP_PASSWORD")
    if bool(smtp_user) != bool(smtp_password):
        problems.append("SMTP_USERNAME and SMTP_PASSWORD: set both (the server wants a login) or neither")
    imap_user, imap_password = get("IMAP_USERNAME"), get("IMAP_PASSWORD")
    if (
        config.channels.email.enabled
        and config.channels.email.imap.enabled
        and not (imap_user and imap_password)
    ):
        problems.append("IMAP_USERNAME and IMAP_PASSWORD: required when channels.email.imap.enabled is true")
    if config.production and not get("EMAIL_WEBHOOK_SECRET") and config.channels.email.enabled:
        problems.append(
            "EMAIL_WEBHOOK_SECRET: environment variable is required in production "
            "(it authenticates POST /webhooks/email)"
        )
    secrets = Secrets(
        redis_url=redis_url,
        rasa_token=required("RASA_AUTH_TOKEN", "it protects the Rasa HTTP API"),
        secret_key=required("DEBTBOT_SECRET_KEY", "it signs sessions and CSRF tokens"),
        # Sandboxed channels still check webhook signatures, with a development secret,
        # so the simulator exercises the same code as the provider would.
        twilio_account_sid=twilio_sid,
        twilio_auth_token=twilio_token or _development_secret(config, "TWILIO_AUTH_TOKEN"),
        telegram_bot_token=tg_token,
        telegram_webhook_secret=tg_secret or _development_secret(config, "TELEGRAM_WEBHOOK_SECRET"),
        plans_webhook_secret=(
            required("PLANS_WEBHOOK_SECRET", "it signs plan.created events (plans.webhook_url is set)")
            if config.plans.webhook_url
            else get("PLANS_WEBHOOK_SECRET")
        ),
        smtp_username=smtp_user,
        smtp_password=smtp_password,
        imap_username=imap_user,
        imap_password=imap_password,
        email_webhook_secret=get("EMAIL_WEBHOOK_SECRET")
        or _development_secret(config, "EMAIL_WEBHOOK_SECRET"),
        actions_token=_actions_token(config, get("DEBTBOT_ACTIONS_TOKEN"), generated),
        generated=tuple(generated),
    )
    return secrets, problems


def _actions_token(config: Config, given: str | None, generated: list[str]) -> str:
    """The action server's token: from the environment, else made up. The supervisor hands
    its own to both children, so one machine needs nothing set; an action server elsewhere
    needs DEBTBOT_ACTIONS_TOKEN set on both sides (refused in production otherwise)."""
    if given:
        return given
    generated.append("DEBTBOT_ACTIONS_TOKEN")
    if config.production:
        # Never written down in production: it lives as long as this supervisor's children.
        return secrets_module.token_urlsafe(32)
    return _development_secret(config, "DEBTBOT_ACTIONS_TOKEN")


#: ``REDIS_URL`` schemes naming a master through Redis Sentinel (``rediss+``: TLS to the data nodes).
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
SENTINEL_URL_FORM = "redis+sentinel://[user:password@]host:26379[,host2:26379...]/SERVICE[/DB]"
DEFAULT_SENTINEL_PORT = 26379
#: What a Sentinel URL's query may set (anything else is refused: a typo would go unnoticed).
_SENTINEL_QUERY = ("sentinel_username", "sentinel_password", "sentinel_ssl", "ssl_ca_certs")


@dataclass(frozen=True)
class SentinelUrl:
    """A parsed ``redis+sentinel://`` / ``rediss+sentinel://`` URL (the format is in
    docs/architecture.md, "Redis: embedded, external, TLS, Sentinel")."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str = ""
    password: str = ""
    #: TLS to the master (``rediss+sentinel``).
    tls: bool = False
    sentinel_username: str = ""
    sentinel_password: str = ""
    #: TLS to the sentinels: ``?sentinel_ssl=``, else as :attr:`tls`.
    sentinel_tls: bool = False
    #: A private CA's certificates (PEM) for every TLS connection: ``?ssl_ca_certs=/path``.
    ca_certs: str = ""


def is_sentinel_url(url: str) -> bool:
    return url.split("://", 1)[0].lower() in SENTINEL_SCHEMES


def parse_sentinel_url(url: str) -> SentinelUrl:
    """Split a Sentinel URL; a :class:`ValueError` says what is wrong (never the password)."""
    from urllib.parse import parse_qsl, unquote

    scheme, _, rest = url.partition("://")
    if scheme.lower() not in SENTINEL_SCHEMES:
        raise ValueError(
            f"a Sentinel URL starts with redis+sentinel:// or rediss+sentinel://: {SENTINEL_URL_FORM}"
        )
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, _, hosts = netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    sentinels = []
    for entry in hosts.split(","):
        entry = entry.strip()
        if not entry:
            continue
        if entry.startswith("["):  # [IPv6]:port
            host, _, port_text = entry[1:].partition("]")
            port_text = port_text.removeprefix(":")
        else:
            host, _, port_text = entry.partition(":")
        if not host:
            raise ValueError(f"sentinel {entry!r} has no host name: {SENTINEL_URL_FORM}")
        if port_text and not (port_text.isdigit() and 0 < int(port_text) < 65536):
            raise ValueError(f"sentinel {host!r} has a bad port {port_text!r} (1-65535)")
        sentinels.append((host, int(port_text) if port_text else DEFAULT_SENTINEL_PORT))
    if not sentinels:
        raise ValueError(f"a Sentinel URL names at least one sentinel host: {SENTINEL_URL_FORM}")
    service, _, db_text = path.rstrip("/").partition("/")
    if not service:
        raise ValueError(f"a Sentinel URL names the master's service after the hosts: {SENTINEL_URL_FORM}")
    if db_text and not db_text.isdigit():
        raise ValueError(f"the database {db_text!r} after the service name must be a number (0, 1, ...)")
    options: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name not in _SENTINEL_QUERY:
            raise ValueError(
                f"unknown option {name!r} in a Sentinel URL (allowed: {', '.join(_SENTINEL_QUERY)})"
            )
        options[name] = value
    tls = scheme.lower() == "rediss+sentinel"
    sentinel_ssl = options.get("sentinel_ssl", "").lower()
    if sentinel_ssl not in ("", "true", "false", "yes", "no", "1", "0"):
        raise ValueError("sentinel_ssl must be true or false")
    return SentinelUrl(
        sentinels=tuple(sentinels),
        service=unquote(service),
        db=int(db_text or 0),
        username=unquote(username),
        password=unquote(password),
        tls=tls,
        sentinel_username=options.get("sentinel_username", ""),
        sentinel_password=options.get("sentinel_password", ""),
        sentinel_tls=sentinel_ssl in ("true", "yes", "1") if sentinel_ssl else tls,
        ca_certs=options.get("ssl_ca_certs", ""),
    )


def redis_url_guards(url: str) -> tuple[list[str], bool, bool]:
    """``REDIS_URL``'s hosts (the sentinels' for a Sentinel URL), whether it carries a password
    and whether it uses TLS, for the production check and ``debtbot check-config``'s lines."""
    if is_sentinel_url(url):
        target = parse_sentinel_url(url)
        return [host for host, _ in target.sentinels], bool(target.password), target.tls
    parts = urlsplit(url)
    return [parts.hostname or ""], bool(parts.password), parts.scheme == "rediss"


def is_loopback(host: str | None) -> bool:
    """``localhost`` or an address in 127.0.0.0/8 or ``::1`` (what only this machine reaches)."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _exposure_problems(config: Config, secrets: Secrets) -> list[str]:
    """Production: no service reachable from another machine without authentication."""
    if not config.production:
        return []
    problems = []
    try:
        hosts, password, tls = redis_url_guards(secrets.redis_url or "unix:")
    except ValueError:
        hosts, password, tls = [], False, False  # a malformed Sentinel URL: reported already
    if secrets.redis_url and not secrets.redis_url.startswith("unix:"):
        remote = [host for host in hosts if not is_loopback(host)]
        if remote and not password and not tls:
            problems.append(
                f"REDIS_URL: {', '.join(remote)} is not this machine and the URL has neither a password "
                "nor TLS; use redis://:PASSWORD@host:port/db or rediss:// (Sentinel: "
                "redis+sentinel://:PASSWORD@host:26379/SERVICE/db or rediss+sentinel://)"
            )
    exposed = {urlsplit(server.actions_url).hostname for server in config.rasa.servers}
    if config.rasa.bind_host is not None:
        exposed.add(config.rasa.bind_host)
    generated_token = "DEBTBOT_ACTIONS_TOKEN" in secrets.generated
    for host in sorted(h or "" for h in exposed if generated_token and not is_loopback(h)):
        problems.append(
            f"rasa.actions_url: the action server on {host} is reachable from other machines; set "
            "DEBTBOT_ACTIONS_TOKEN (the same on the Rasa server and the action server) so it "
            "answers only Rasa"
        )
    return problems


def _development_secret(config: Config, name: str) -> str:
    """A random secret kept in ``var/dev-secrets.json`` so all local processes share it."""
    store = config.path("var/dev-secrets.json")
    store.parent.mkdir(parents=True, exist_ok=True)
    known: dict[str, str] = {}
    if store.exists():
        known = json.loads(store.read_text(encoding="utf-8") or "{}")
    if name not in known:
        known[name] = secrets_module.token_urlsafe(32)
        tmp = store.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(known, handle)
        os.replace(tmp, store)
    return known[name]


def _check_consistency(config: Config, secrets: Secrets) -> list[str]:
    problems = []
    if config.production and config.simulator.enabled:
        problems.append("simulator.enabled: must be false when environment is production")
    if config.production:
        if config.channels.sms.enabled and not secrets.twilio_account_sid:
            problems.append(
                "channels.sms.enabled: SMS cannot be sandboxed in production; set TWILIO_ACCOUNT_SID "
                "and TWILIO_AUTH_TOKEN, or set channels.sms.enabled: false"
            )
        if config.channels.telegram.enabled and not secrets.telegram_bot_token:
            problems.append(
                "channels.telegram.enabled: Telegram cannot be sandboxed in production; set "
                "TELEGRAM_BOT_TOKEN and TELEGRAM_WEBHOOK_SECRET, or set channels.telegram.enabled: false"
            )
        email = config.channels.email
        if email.enabled and not config.email_live:
            problems.append(
                "channels.email.smtp.host: email cannot be sandboxed in production; set the SMTP server, "
                "or set channels.email.enabled: false"
            )
        if email.enabled and config.email_live and email.smtp.security == "none":
            problems.append("channels.email.smtp.security: must be starttls or ssl in production")
        if email.enabled and email.imap.enabled and email.imap.security == "none":
            problems.append("channels.email.imap.security: must be ssl or starttls in production")
    if config.channels.email.imap.reconnect_min_seconds > config.channels.email.imap.reconnect_max_seconds:
        problems.append("channels.email.imap.reconnect_min_seconds: must not exceed reconnect_max_seconds")
    sms = config.channels.sms
    if sms.enabled and not (sms.from_number or sms.messaging_service_sid):
        problems.append(
            "channels.sms.from_number: set a sending number or channels.sms.messaging_service_sid"
        )
    project = config.path(config.rasa.project_dir)
    if not (project / "domain.yml").exists() and not (project / "domain").is_dir():
        problems.append(f"rasa.project_dir: {project} is not a Rasa project (no domain.yml)")
    return problems


def channel_modes(config: Config) -> dict[str, str]:
    """``live``, ``sandbox`` or ``disabled`` per channel, for start-up and /healthz."""
    modes = {}
    for name, enabled, live in (
        ("sms", config.channels.sms.enabled, config.sms_live),
        ("telegram", config.channels.telegram.enabled, config.telegram_live),
        ("email", config.channels.email.enabled, config.email_live),
    ):
        modes[name] = "disabled" if not enabled else ("live" if live else "sandbox")
    return modes
