"""A local stand-in of Twilio's REST API that checks every request against Twilio's own OpenAPI file.

``TwilioSpec`` validates one request (path, query, form body, basic auth) against
``twilio_api_v2010.json``. ``FakeTwilio`` serves the API on 127.0.0.1: it answers the Messages
resource with bodies shaped like the spec's examples, records every request, and keeps the ones
Twilio would refuse in ``invalid_requests`` (tests assert that stays empty). ``fail_next`` and
``stall_next`` inject errors and slow answers for retry tests.
"""

from __future__ import annotations

import base64
import binascii
import copy
import email.utils
import json
import re
import secrets
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from datetime import time as day_start
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import jsonschema  # type: ignore[import-untyped]

from channels.sms_text import segments
from tests.fakes.http_stand_in import StandIn

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Twilio's OpenAPI description, shared read-only next to the repository (never copied into it).
SPEC_PATH = REPO_ROOT.parent / "shared" / "specs" / "twilio_api_v2010.json"

#: Credentials that pass the stand-in's checks (any AC + 32 hex digits does).
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "fake-twilio-auth-token"

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


def spec_missing_reason(path: Path = SPEC_PATH) -> str | None:
    """Why the stand-in cannot run (the spec file is absent), or ``None`` when it can."""
    if path.is_file():
        return None
    return f"Twilio's OpenAPI description is not available at {path} (the shared specs folder is absent)"


# --- privacy -----------------------------------------------------------------------------

_PHONE_LIKE = re.compile(r"(?<![0-9A-Za-z])\+?\d[\d ]{4,}\d(?![0-9A-Za-z])")


def mask(text: str) -> str:
    """``text`` with anything that looks like a phone number shortened to ``+49...78``."""
    return _PHONE_LIKE.sub(lambda match: f"{match.group()[:3]}...{match.group()[-2:]}", text)


# --- formats -------------------------------------------------------------------------------

_E164 = re.compile(r"\+[1-9]\d{1,14}")
_CHANNEL_ADDRESS = re.compile(r"[a-z][a-z0-9-]*:\S+")  # whatsapp:+1555..., messenger:1234
_SHORT_CODE = re.compile(r"\d{3,8}")
_ALPHANUMERIC_SENDER = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}")
_API_KEY_SID = re.compile(r"SK[0-9a-fA-F]{32}")


def parse_when(text: str) -> tuple[datetime, bool] | None:
    """An ISO 8601 date or date-time, or an RFC 2822 date, as (UTC-aware moment, date only?)."""
    text = text.strip()
    try:
        return datetime.combine(date.fromisoformat(text), day_start(), timezone.utc), True
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)), False


def _is_phone_number(value: object) -> bool:
    if not isinstance(value, str):
        return True
    return any(
        pattern.fullmatch(value) for pattern in (_E164, _CHANNEL_ADDRESS, _SHORT_CODE, _ALPHANUMERIC_SENDER)
    )


def _is_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        parts = urlsplit(value)
        hostname = parts.hostname
    except ValueError:
        return False
    # Twilio: "URL must contain a valid hostname and underscores are not allowed".
    return parts.scheme in ("http", "https") and bool(hostname) and "_" not in (hostname or "")


def _is_date_time(value: object) -> bool:
    return not isinstance(value, str) or parse_when(value) is not None


def _is_date(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _in_range(bits: int) -> Callable[[object], bool]:
    def check(value: object) -> bool:
        return not isinstance(value, int) or -(2 ** (bits - 1)) <= value < 2 ** (bits - 1)

    return check


def _is_country_code(value: object) -> bool:
    return not isinstance(value, str) or re.fullmatch(r"[A-Z]{2}", value) is not None


#: The formats Twilio's file uses that say something about a request; others are not checked.
FORMAT_CHECKER = jsonschema.FormatChecker(formats=())
for _name, _check in {
    "phone-number": _is_phone_number,
    "uri": _is_uri,
    "date-time": _is_date_time,
    "date": _is_date,
    "int32": _in_range(32),
    "int64": _in_range(64),
    "iso-country-code": _is_country_code,
}.items():
    FORMAT_CHECKER.checks(_name)(_check)


# --- the spec ------------------------------------------------------------------------------

_SCHEMA_NOISE = {
    "description",
    "example",
    "examples",
    "title",
    "readOnly",
    "writeOnly",
    "deprecated",
    "externalDocs",
    "xml",
    "discriminator",
    "nullable",
}
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@dataclass(frozen=True)
class Operation:
    """One operation of the spec: ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``."""

    method: str
    template: str
    operation_id: str
    definition: Mapping[str, Any]

    def example(self, status: str) -> dict[str, Any] | None:
        """The first JSON example the spec gives for the ``status`` response, if any."""
        content = self.definition.get("responses", {}).get(status, {}).get("content", {})
        examples = content.get("application/json", {}).get("examples", {})
        for example in examples.values():
            value = example.get("value") if isinstance(example, dict) else None
            if isinstance(value, dict):
                return copy.deepcopy(value)
        return None

    def success_status(self) -> int:
        """The first 2xx status the spec lists for this operation (200 when there is none)."""
        codes = sorted(code for code in self.definition.get("responses", {}) if code.startswith("2"))
        return int(codes[0]) if codes else 200


@dataclass(frozen=True)
class _Field:
    """A parameter or form field with its JSON Schema validator."""

    name: str
    required: bool
    is_array: bool
    scalar_type: str | None
    validator: Any


@dataclass(frozen=True)
class _Compiled:
    path: dict[str, _Field]
    query: dict[str, _Field]
    body: dict[str, _Field] | None
    body_required: tuple[str, ...]
    secured: bool


@dataclass(frozen=True)
class _Route:
    template: str
    regex: re.Pattern[str]
    names: tuple[str, ...]


@dataclass(frozen=True)
class CheckResult:
    """What ``TwilioSpec.check`` found: the operation (``None``: not in the spec) and the problems."""

    operation: Operation | None
    path_params: Mapping[str, str]
    form: Mapping[str, list[str]]
    errors: tuple[str, ...]
    auth_errors: tuple[str, ...]

    @property
    def all_errors(self) -> list[str]:
        return [*self.auth_errors, *self.errors]

    @property
    def ok(self) -> bool:
        return self.operation is not None and not self.errors and not self.auth_errors


def basic_auth(authorization: str | None) -> tuple[str, str] | None:
    """(username, password) from an ``Authorization: Basic ...`` header, or ``None``."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else None


def _as_lists(values: Mapping[str, Sequence[str]] | None) -> dict[str, list[str]]:
    return {key: [value] if isinstance(value, str) else list(value) for key, value in (values or {}).items()}


def _coerce(value: str, scalar_type: str | None) -> object:
    """A form or query string as the JSON type the schema declares (left as is when it does not fit)."""
    if scalar_type == "integer" and re.fullmatch(r"[+-]?\d+", value):
        return int(value)
    if scalar_type == "number" and re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", value):
        return float(value)
    if scalar_type == "boolean" and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


class TwilioSpec:
    """Twilio's OpenAPI 3.0 description, able to say whether a request is one Twilio accepts."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document
        self._routes = self._build_routes(document)
        self._compiled: dict[tuple[str, str], _Compiled] = {}
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: Path = SPEC_PATH) -> TwilioSpec:
        """The spec at ``path``, parsed once per process."""
        key = path.resolve()
        with _LOAD_LOCK:
            if key not in _LOADED:
                _LOADED[key] = cls(json.loads(key.read_text(encoding="utf-8")))
            return _LOADED[key]

    @staticmethod
    def _build_routes(document: Mapping[str, Any]) -> list[_Route]:
        routes = []
        for template in document.get("paths", {}):
            pieces = re.split(r"\{([^}]+)\}", template)
            regex = "".join(re.escape(piece) if i % 2 == 0 else "([^/]+)" for i, piece in enumerate(pieces))
            routes.append(_Route(template, re.compile(regex), tuple(pieces[1::2])))
        # The most literal template first: ".../IncomingPhoneNumbers/Local.json" before ".../{Sid}.json".
        routes.sort(key=lambda route: (len(route.names), -len(route.template)))
        return routes

    # -- lookup ---------------------------------------------------------------------------

    def match(self, method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
        """The operation for ``method`` on ``path`` and the path parameters, or ``None``."""
        method = method.lower()
        for route in self._routes:
            found = route.regex.fullmatch(path)
            if found is None:
                continue
            definition = self.document["paths"][route.template].get(method)
            if not isinstance(definition, dict):
                continue
            operation = Operation(
                method.upper(), route.template, str(definition.get("operationId", "")), definition
            )
            return operation, {
                name: unquote(value) for name, value in zip(route.names, found.groups(), strict=True)
            }
        return None

    def operation(self, operation_id: str) -> Operation:
        """The operation called ``operation_id`` (e.g. ``CreateMessage``)."""
        for template, item in self.document.get("paths", {}).items():
            for method, definition in item.items():
                if method in _METHODS and definition.get("operationId") == operation_id:
                    return Operation(method.upper(), template, operation_id, definition)
        raise KeyError(operation_id)

    # -- schemas --------------------------------------------------------------------------

    def resolve(self, ref: str) -> Any:
        """The node a local ``$ref`` (``#/components/schemas/...``) points at."""
        if not ref.startswith("#/"):
            raise ValueError(f"only local $refs are supported, not {ref!r}")
        node: Any = self.document
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def json_schema(self, schema: Any, _seen: tuple[str, ...] = ()) -> dict[str, Any]:
        """An OpenAPI 3.0 schema as plain JSON Schema (draft 7), ``$ref``s inlined."""
        if not isinstance(schema, dict):
            return {}
        if "$ref" in schema:
            ref = str(schema["$ref"])
            return {} if ref in _seen else self.json_schema(self.resolve(ref), (*_seen, ref))
        out: dict[str, Any] = {}
        for key, value in schema.items():
            if key in _SCHEMA_NOISE or key.startswith("x-"):
                continue
            if key == "properties" and isinstance(value, dict):
                out[key] = {name: self.json_schema(sub, _seen) for name, sub in value.items()}
            elif key in ("items", "not", "additionalProperties") and isinstance(value, dict):
                out[key] = self.json_schema(value, _seen)
            elif key in ("allOf", "anyOf", "oneOf") and isinstance(value, list):
                out[key] = [self.json_schema(sub, _seen) for sub in value]
            else:
                out[key] = copy.deepcopy(value)
        for flag, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            # OpenAPI 3.0's boolean form becomes draft 7's number.
            if isinstance(out.get(flag), bool) and out.pop(flag) and bound in out:
                out[flag] = out.pop(bound)
        extension = schema.get("x-twilio")
        if isinstance(extension, dict) and extension.get("ignoreFormat"):
            out.pop("format", None)
        if schema.get("nullable"):
            if isinstance(out.get("type"), str):
                out["type"] = [out["type"], "null"]
            if isinstance(out.get("enum"), list) and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
        return out

    def validator(self, schema: Any) -> Any:
        """A jsonschema validator for an OpenAPI schema, with the formats Twilio uses."""
        return jsonschema.Draft7Validator(self.json_schema(schema), format_checker=FORMAT_CHECKER)

    def _field(self, name: str, schema: Any, required: bool) -> _Field:
        converted = self.json_schema(schema)
        declared = converted.get("type")
        is_array = declared == "array" or (isinstance(declared, list) and "array" in declared)
        item = converted.get("items", {}) if is_array else converted
        item_type = item.get("type") if isinstance(item, dict) else None
        if isinstance(item_type, list):
            item_type = next((kind for kind in item_type if kind != "null"), None)
        validator = jsonschema.Draft7Validator(converted, format_checker=FORMAT_CHECKER)
        return _Field(name, required, is_array, item_type if isinstance(item_type, str) else None, validator)

    def _compile(self, operation: Operation) -> _Compiled:
        key = (operation.method, operation.template)
        with self._lock:
            if key in self._compiled:
                return self._compiled[key]
        item = self.document["paths"][operation.template]
        parameters: dict[tuple[str, str], Any] = {}
        for raw in [*item.get("parameters", []), *operation.definition.get("parameters", [])]:
            parameter = self.resolve(raw["$ref"]) if "$ref" in raw else raw
            parameters[(parameter["in"], parameter["name"])] = parameter
        fields: dict[str, dict[str, _Field]] = {"path": {}, "query": {}}
        for (where, name), parameter in parameters.items():
            if where in fields:
                required = bool(parameter.get("required")) or where == "path"
                fields[where][name] = self._field(name, parameter.get("schema", {}), required)
        body: dict[str, _Field] | None = None
        body_required: tuple[str, ...] = ()
        request_body = operation.definition.get("requestBody")
        if isinstance(request_body, dict):
            if "$ref" in request_body:
                request_body = self.resolve(request_body["$ref"])
            schema = request_body.get("content", {}).get(FORM_CONTENT_TYPE, {}).get("schema", {})
            schema = self.resolve(schema["$ref"]) if "$ref" in schema else schema
            body_required = tuple(schema.get("required", []))
            body = {
                name: self._field(name, sub, name in body_required)
                for name, sub in schema.get("properties", {}).items()
            }
        security = operation.definition.get("security", self.document.get("security", []))
        compiled = _Compiled(fields["path"], fields["query"], body, body_required, bool(security))
        with self._lock:
            self._compiled[key] = compiled
        return compiled

    # -- checking -------------------------------------------------------------------------

    @staticmethod
    def _check_field(spec: _Field, values: list[str], where: str) -> list[str]:
        if not spec.is_array and len(values) > 1:
            return [f"{where} {spec.name!r} is given {len(values)} times but is not an array"]
        coerced = [_coerce(value, spec.scalar_type) for value in values]
        instance: object = coerced if spec.is_array else coerced[0]
        problems = []
        for error in sorted(spec.validator.iter_errors(instance), key=lambda e: list(e.absolute_path)):
            index = "".join(f"[{step}]" for step in error.absolute_path)
            problems.append(f"{where} {spec.name!r}{index}: {error.message}")
        return problems

    def _check_fields(
        self, fields: Mapping[str, _Field], given: Mapping[str, list[str]], where: str, what: str
    ) -> list[str]:
        problems = [
            f"{where} {name!r} is required"
            for name, spec in fields.items()
            if spec.required and name not in given
        ]
        for name, values in given.items():
            if name not in fields:
                problems.append(f"{where} {name!r} is not defined for {what}")
            else:
                problems.extend(self._check_field(fields[name], values, where))
        return problems

    def _check_auth(self, authorization: str | None, path_params: Mapping[str, str]) -> list[str]:
        if not authorization:
            return ["no HTTP basic auth (the Authorization header is missing)"]
        credentials = basic_auth(authorization)
        if credentials is None:
            return ["the Authorization header is not well-formed HTTP basic auth"]
        username, password = credentials
        if not username or not password:
            return ["HTTP basic auth needs 'AccountSid:AuthToken' (or an API key and its secret)"]
        account = path_params.get("AccountSid")
        if account is not None and username != account and not _API_KEY_SID.fullmatch(username):
            return [f"the basic auth username {username!r} is not the AccountSid in the path ({account!r})"]
        return []

    def check(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Sequence[str]] | None = None,
        form: Mapping[str, Sequence[str]] | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
        authorization: str | None = None,
    ) -> CheckResult:
        """Check a request against the spec. ``body`` (raw bytes) is parsed by ``content_type``;
        ``form`` is for an already parsed form."""
        parsed_form = _as_lists(form)
        media_type = (content_type or "").split(";")[0].strip().lower()
        errors: list[str] = []
        if body:
            if media_type != FORM_CONTENT_TYPE:
                errors.append(f"the body is {media_type or 'untyped'!r}, not {FORM_CONTENT_TYPE}")
            else:
                try:
                    parsed_form = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
                except (UnicodeDecodeError, ValueError) as exc:
                    errors.append(f"the form body does not parse: {exc}")
        found = self.match(method, path)
        if found is None:
            problem = f"{method.upper()} {path} is not an operation of Twilio's API description"
            return CheckResult(None, {}, parsed_form, (mask(problem),), ())
        operation, path_params = found
        compiled = self._compile(operation)
        what = operation.operation_id or f"{operation.method} {operation.template}"
        errors += self._check_fields(
            compiled.path, {k: [v] for k, v in path_params.items()}, "path parameter", what
        )
        errors += self._check_fields(compiled.query, _as_lists(query), "query parameter", what)
        if compiled.body is None:
            if parsed_form:
                errors.append(
                    f"{what} takes no request body, yet form fields were sent: {sorted(parsed_form)}"
                )
        else:
            errors += self._check_fields(compiled.body, parsed_form, "form field", what)
        auth_errors = self._check_auth(authorization, path_params) if compiled.secured else []
        return CheckResult(
            operation,
            path_params,
            parsed_form,
            tuple(mask(error) for error in errors),
            tuple(mask(error) for error in auth_errors),
        )

    def validate(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Sequence[str]] | None = None,
        form: Mapping[str, Sequence[str]] | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
        authorization: str | None = None,
    ) -> list[str]:
        """Everything wrong with a request, in words (empty: Twilio's spec accepts it)."""
        result = self.check(
            method,
            path,
            query=query,
            form=form,
            body=body,
            content_type=content_type,
            authorization=authorization,
        )
        return result.all_errors


_LOADED: dict[Path, TwilioSpec] = {}
_LOAD_LOCK = threading.Lock()


# --- the server ----------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class RecordedRequest:
    """One request the stand-in received, with its answer's status and what was wrong with it."""

    method: str
    path: str
    query: Mapping[str, str]
    form: Mapping[str, list[str]]
    headers: Mapping[str, str]
    status: int
    errors: tuple[str, ...] = ()
    operation_id: str | None = None

    @property
    def valid(self) -> bool:
        return not self.errors

    def __repr__(self) -> str:
        # Field names only: values carry phone numbers and message texts, headers the auth token.
        return (
            f"RecordedRequest({self.method} {mask(self.path)} -> {self.status}, "
            f"operation={self.operation_id!r}, fields={sorted(self.form)}, errors={list(self.errors)!r})"
        )


@dataclass(frozen=True, repr=False)
class FakeMessage:
    """A message the stand-in created; ``resource`` is the JSON Twilio's API serves for it."""

    sid: str
    account_sid: str
    to: str
    from_: str | None
    messaging_service_sid: str | None
    body: str
    status: str
    num_segments: int
    status_callback: str | None
    date_created: datetime
    resource: Mapping[str, Any]

    @classmethod
    def from_resource(cls, resource: Mapping[str, Any], status_callback: str | None) -> FakeMessage:
        return cls(
            sid=str(resource["sid"]),
            account_sid=str(resource["account_sid"]),
            to=str(resource["to"]),
            from_=resource.get("from"),
            messaging_service_sid=resource.get("messaging_service_sid"),
            body=str(resource.get("body") or ""),
            status=str(resource["status"]),
            num_segments=int(resource.get("num_segments") or 0),
            status_callback=status_callback,
            date_created=email.utils.parsedate_to_datetime(str(resource["date_created"])),
            resource=copy.deepcopy(dict(resource)),
        )

    def __repr__(self) -> str:
        # No full phone numbers nor texts in test output.
        return (
            f"FakeMessage(sid={self.sid!r}, to={mask(self.to)!r}, status={self.status!r}, "
            f"segments={self.num_segments}, body=<{len(self.body)} characters>)"
        )


@dataclass(frozen=True)
class _Fault:
    status: int = 0
    code: int | None = None
    message: str = ""
    stall: float = 0.0
    then_create: bool = True


@dataclass(frozen=True)
class _Reply:
    status: int
    body: dict[str, Any] | None
    delay: float = 0.0


_DEFAULT_CODES = {401: 20003, 404: 20404, 429: 20429, 500: 20500, 503: 20503}


def _error(status: int, code: int | None = None, message: str = "") -> _Reply:
    """A Twilio-style JSON error."""
    code = code or _DEFAULT_CODES.get(status, 20001)
    return _Reply(
        status,
        {
            "code": code,
            "message": message or HTTPStatus(status).phrase,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
    )


def _first(form: Mapping[str, list[str]], name: str) -> str | None:
    values = form.get(name)
    return values[0] if values else None


def _create_rules(form: Mapping[str, list[str]]) -> list[tuple[int, str]]:
    """Rules Twilio enforces on a new message beyond what its spec says (code, message)."""
    problems = []
    to = _first(form, "To")
    if to is not None and not (_E164.fullmatch(to) or _CHANNEL_ADDRESS.fullmatch(to)):
        problems.append((21211, f"Invalid 'To' Phone Number: {mask(to)}"))
    if not _first(form, "From") and not _first(form, "MessagingServiceSid"):
        problems.append(
            (21603, "A 'From' or a 'MessagingServiceSid' parameter is required to send a message")
        )
    if not (_first(form, "Body") or form.get("MediaUrl") or _first(form, "ContentSid")):
        problems.append((21602, "Message body is required (Body, MediaUrl or ContentSid)"))
    if len(_first(form, "Body") or "") > 1600:
        problems.append((21617, "The concatenated message body exceeds the 1600 character limit"))
    return problems


def _sent_at(message: Mapping[str, Any]) -> datetime | None:
    stamp = message.get("date_sent") or message.get("date_created")
    return email.utils.parsedate_to_datetime(stamp) if isinstance(stamp, str) else None


def _date_filter(message: Mapping[str, Any], name: str, value: str) -> bool:
    """Twilio's ``DateSent`` (that day), ``DateSent>`` (on or after), ``DateSent<`` (on or before)."""
    when, sent = parse_when(value), _sent_at(message)
    if when is None or sent is None:
        return False
    moment, date_only = when
    if name == "DateSent":
        return sent.astimezone(timezone.utc).date() == moment.date()
    if name == "DateSent>":
        return sent >= moment
    return sent < moment + timedelta(days=1) if date_only else sent <= moment


class FakeTwilio(StandIn):
    """Twilio's REST API on 127.0.0.1, checking every request against Twilio's OpenAPI file.

    Point the Twilio client at ``base_url``. ``auth_token``, when given, must be the basic auth
    password too. Invalid requests are answered 400 (401 for auth, 404 for unknown paths) and
    kept in ``invalid_requests``.
    """

    name = "fake-twilio"
    poll_interval = 0.05

    def __init__(self, spec: TwilioSpec | None = None, *, auth_token: str | None = None) -> None:
        super().__init__()
        self.spec = spec or TwilioSpec.load()
        self.auth_token = auth_token
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._messages: list[dict[str, Any]] = []  # Twilio's JSON resources
        self._callbacks: dict[str, str | None] = {}  # message sid -> StatusCallback
        self._faults: deque[_Fault] = deque()
        create = self.spec.operation("CreateMessage")
        self._message_example = create.example(str(create.success_status())) or {}

    # -- what happened --------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def invalid_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [request for request in self._requests if request.errors]

    @property
    def messages(self) -> list[FakeMessage]:
        """The messages created so far (and not deleted), oldest first."""
        with self._lock:
            return [
                FakeMessage.from_resource(message, self._callbacks.get(message["sid"]))
                for message in self._messages
            ]

    # -- fault injection ------------------------------------------------------------------

    def fail_next(self, status: int, count: int = 1, *, code: int | None = None, message: str = "") -> None:
        """Answer the next ``count`` valid message creations with ``status`` and a Twilio error."""
        with self._lock:
            self._faults.extend([_Fault(status=status, code=code, message=message)] * count)

    def stall_next(self, seconds: float, count: int = 1, *, then_create: bool = True) -> None:
        """Hold the answer to the next ``count`` valid message creations for ``seconds``.

        With ``then_create`` the message is created at once (as when a real request times out
        after reaching Twilio) and answered 201 after the stall; without it nothing is created
        and the answer is a 503.
        """
        with self._lock:
            self._faults.extend([_Fault(stall=seconds, then_create=then_create)] * count)

    # -- serving --------------------------------------------------------------------------

    def _serve(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> _Reply:
        parts = urlsplit(target)
        query = parse_qs(parts.query, keep_blank_values=True)
        lowered = {key.lower(): value for key, value in headers.items()}
        try:
            result = self.spec.check(
                method,
                parts.path,
                query=query,
                body=body,
                content_type=lowered.get("content-type"),
                authorization=lowered.get("authorization"),
            )
            reply, problems = self._answer(method, parts.path, query, result, lowered.get("authorization"))
        except Exception as exc:  # a bug of the stand-in: make the test fail, loudly
            result = CheckResult(None, {}, {}, (), ())
            reply, problems = (
                _error(500, 20500, f"FakeTwilio failed: {exc!r}"),
                [f"FakeTwilio failed: {exc!r}"],
            )
        recorded = RecordedRequest(
            method=method.upper(),
            path=parts.path,
            query={key: values[0] for key, values in query.items()},
            form={key: list(values) for key, values in result.form.items()},
            headers=dict(headers),
            status=reply.status,
            errors=tuple(problems),
            operation_id=result.operation.operation_id if result.operation else None,
        )
        with self._lock:
            self._requests.append(recorded)
        return reply

    def _answer(
        self,
        method: str,
        path: str,
        query: Mapping[str, list[str]],
        result: CheckResult,
        authorization: str | None,
    ) -> tuple[_Reply, list[str]]:
        if result.operation is None:
            return _error(404, 20404, f"The requested resource {path} was not found"), list(result.errors)
        auth_errors = list(result.auth_errors)
        credentials = basic_auth(authorization)
        if (
            not auth_errors
            and self.auth_token is not None
            and credentials
            and credentials[1] != self.auth_token
        ):
            auth_errors.append("the basic auth password is not the auth token")
        if auth_errors:
            return _error(401, 20003, "Authentication Error - " + "; ".join(auth_errors)), auth_errors
        if result.errors:
            return _error(400, 20001, "Invalid request: " + "; ".join(result.errors)), list(result.errors)
        handler = {
            "CreateMessage": self._create,
            "ListMessage": self._list,
            "FetchMessage": self._fetch,
            "UpdateMessage": self._update,
            "DeleteMessage": self._delete,
        }.get(result.operation.operation_id)
        if handler is None:
            status = result.operation.success_status()
            return _Reply(status, None if status == 204 else {}), []
        return handler(path, query, result)

    def _create(
        self, path: str, query: Mapping[str, list[str]], result: CheckResult
    ) -> tuple[_Reply, list[str]]:
        rules = _create_rules(result.form)
        if rules:
            texts = [text for _, text in rules]
            return _error(400, rules[0][0], "; ".join(texts)), texts
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
            if fault is not None and fault.status:
                return _error(fault.status, fault.code, fault.message), []
            if fault is not None and not fault.then_create:
                return _Reply(503, _error(503).body, delay=fault.stall), []
            message = self._new_message(result.path_params["AccountSid"], result.form)
            self._messages.append(message)
            self._callbacks[message["sid"]] = _first(result.form, "StatusCallback")
        return _Reply(201, copy.deepcopy(message), delay=fault.stall if fault else 0.0), []

    def _new_message(self, account_sid: str, form: Mapping[str, list[str]]) -> dict[str, Any]:
        """A message resource shaped like the spec's example, filled from the request."""
        example = self._message_example
        media = form.get("MediaUrl", [])
        sid = ("MM" if media else "SM") + secrets.token_hex(16)
        text = json.dumps(example)
        for old, new in ((example.get("sid"), sid), (example.get("account_sid"), account_sid)):
            if isinstance(old, str) and old:
                text = text.replace(old, new)
        message: dict[str, Any] = json.loads(text)
        stamp = email.utils.format_datetime(datetime.now(timezone.utc).replace(microsecond=0))
        body = _first(form, "Body") or ""
        message.update(
            {
                "sid": sid,
                "account_sid": account_sid,
                "to": _first(form, "To"),
                "from": _first(form, "From"),
                "messaging_service_sid": _first(form, "MessagingServiceSid"),
                "body": body,
                "status": "queued",
                "direction": "outbound-api",
                "num_segments": str(segments(body)),
                "num_media": str(len(media)),
                "date_created": stamp,
                "date_updated": stamp,
                "date_sent": stamp,
                "error_code": None,
                "error_message": None,
                "price": None,
                "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json",
            }
        )
        return message

    def _find(self, result: CheckResult) -> dict[str, Any] | None:
        sid, account = result.path_params.get("Sid"), result.path_params.get("AccountSid")
        for message in self._messages:
            if message["sid"] == sid and message["account_sid"] == account:
                return message
        return None

    def _not_found(self, path: str) -> tuple[_Reply, list[str]]:
        return _error(404, 20404, f"The requested resource {path} was not found"), []

    def _fetch(
        self, path: str, query: Mapping[str, list[str]], result: CheckResult
    ) -> tuple[_Reply, list[str]]:
        with self._lock:
            message = self._find(result)
            return (_Reply(200, copy.deepcopy(message)), []) if message else self._not_found(path)

    def _update(
        self, path: str, query: Mapping[str, list[str]], result: CheckResult
    ) -> tuple[_Reply, list[str]]:
        with self._lock:
            message = self._find(result)
            if message is None:
                return self._not_found(path)
            if "Body" in result.form:
                message["body"] = _first(result.form, "Body")
            if "Status" in result.form:
                message["status"] = _first(result.form, "Status")
            message["date_updated"] = email.utils.format_datetime(
                datetime.now(timezone.utc).replace(microsecond=0)
            )
            return _Reply(200, copy.deepcopy(message)), []

    def _delete(
        self, path: str, query: Mapping[str, list[str]], result: CheckResult
    ) -> tuple[_Reply, list[str]]:
        with self._lock:
            message = self._find(result)
            if message is None:
                return self._not_found(path)
            self._messages.remove(message)
            return _Reply(204, None), []

    def _list(
        self, path: str, query: Mapping[str, list[str]], result: CheckResult
    ) -> tuple[_Reply, list[str]]:
        filters = {
            name: values[0] for name, values in query.items() if name not in ("Page", "PageSize", "PageToken")
        }
        account = result.path_params["AccountSid"]
        with self._lock:
            found = [
                copy.deepcopy(message)
                for message in reversed(self._messages)  # newest first, as Twilio lists them
                if message["account_sid"] == account
                and message.get("to") == filters.get("To", message.get("to"))
                and message.get("from") == filters.get("From", message.get("from"))
                and all(
                    _date_filter(message, name, value)
                    for name, value in filters.items()
                    if name.startswith("DateSent")
                )
            ]
        page_size = int(query.get("PageSize", ["50"])[0])
        page = int(query.get("Page", ["0"])[0])
        start = page * page_size
        chunk = found[start : start + page_size]

        def page_uri(number: int, token: str | None = None) -> str:
            params: dict[str, str | int] = {**filters, "PageSize": page_size, "Page": number}
            if token:
                params["PageToken"] = token
            return f"{path}?{urlencode(params)}"

        more = start + page_size < len(found)
        return (
            _Reply(
                200,
                {
                    "messages": chunk,
                    "page": page,
                    "page_size": page_size,
                    "start": start,
                    "end": start + max(len(chunk) - 1, 0),
                    "uri": page_uri(page),
                    "first_page_uri": page_uri(0),
                    "next_page_uri": page_uri(page + 1, "PA" + chunk[-1]["sid"]) if more and chunk else None,
                    "previous_page_uri": page_uri(page - 1) if page > 0 else None,
                },
            ),
            [],
        )
