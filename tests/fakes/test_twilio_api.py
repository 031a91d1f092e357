"""The Twilio stand-in: it accepts what Twilio's OpenAPI file allows, refuses and records the rest,
answers like Twilio, and injects the failures retry tests need."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import requests

from tests.fakes.twilio_api import ACCOUNT_SID, AUTH_TOKEN, spec_missing_reason

_MISSING = spec_missing_reason()
if _MISSING is not None:
    pytest.skip(_MISSING, allow_module_level=True)

from twilio.base.exceptions import TwilioRestException  # noqa: E402
from twilio.rest import Client  # noqa: E402

from channels.sms import _RebasedHttpClient  # noqa: E402
from tests.fakes.twilio_api import FakeTwilio, TwilioSpec, mask  # noqa: E402

FROM = "+15005550006"
JAMES = "+12025550143"
MARIA = "+12025550178"
SERVICE = "MG" + "1" * 32
CALLBACK = "https://bot.example.com/webhooks/sms/status?o=o1"
MESSAGES = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"


def _client(fake: FakeTwilio, timeout: float = 5.0, account_sid: str = ACCOUNT_SID) -> Client:
    return Client(account_sid, AUTH_TOKEN, http_client=_RebasedHttpClient(fake.base_url, timeout))


def _post(
    fake: FakeTwilio, form: dict[str, str], path: str = MESSAGES, sid: str = ACCOUNT_SID
) -> requests.Response:
    return requests.post(fake.base_url + path, data=form, auth=(sid, AUTH_TOKEN), timeout=5)


# --- accepted ------------------------------------------------------------------------------


def test_a_valid_message_is_created_recorded_and_answered_like_twilio(fake_twilio: FakeTwilio) -> None:
    created = _client(fake_twilio).messages.create(
        to=JAMES, from_=FROM, body="Hi James", status_callback=CALLBACK
    )
    assert fake_twilio.invalid_requests == []
    assert created.sid.startswith("SM") and len(created.sid) == 34
    assert (created.to, created.from_, created.body, created.status) == (JAMES, FROM, "Hi James", "queued")
    assert created.num_segments == "1" and created.messaging_service_sid is None
    assert created.account_sid == ACCOUNT_SID and created.date_created is not None
    [message] = fake_twilio.messages
    assert (message.sid, message.to, message.status_callback) == (created.sid, JAMES, CALLBACK)
    [request] = fake_twilio.requests
    assert (request.method, request.path, request.status, request.operation_id) == (
        "POST",
        MESSAGES,
        201,
        "CreateMessage",
    )
    assert request.form == {"To": [JAMES], "From": [FROM], "Body": ["Hi James"], "StatusCallback": [CALLBACK]}


def test_the_created_message_matches_the_specs_message_schema(fake_twilio: FakeTwilio) -> None:
    _client(fake_twilio).messages.create(to=JAMES, from_=FROM, body="Ünïcode 👍 " * 10)
    [message] = fake_twilio.messages
    assert message.num_segments == 2  # UCS-2: 110 UTF-16 units
    schema = {"$ref": "#/components/schemas/api.v2010.account.message"}
    assert list(fake_twilio.spec.validator(schema).iter_errors(dict(message.resource))) == []


def test_a_messaging_service_may_stand_in_for_the_sender(fake_twilio: FakeTwilio) -> None:
    created = _client(fake_twilio).messages.create(to=JAMES, messaging_service_sid=SERVICE, body="Hi")
    assert fake_twilio.invalid_requests == []
    assert created.messaging_service_sid == SERVICE and created.from_ is None
    assert fake_twilio.requests[0].form["MessagingServiceSid"] == [SERVICE]


def test_typed_and_repeated_fields_are_checked_after_coercion(fake_twilio: FakeTwilio) -> None:
    _client(fake_twilio).messages.create(
        to=JAMES, from_=FROM, body="Hi", provide_feedback=True, attempt=2, max_price=0.05,
        persistent_action=["mailto:a@example.com", "geo:37.8,-122.4"],
    )  # fmt: skip
    assert fake_twilio.invalid_requests == []


# --- refused -------------------------------------------------------------------------------


def test_a_missing_required_field_is_refused_and_recorded(fake_twilio: FakeTwilio) -> None:
    answer = _post(fake_twilio, {"From": FROM, "Body": "Hi"})
    assert answer.status_code == 400
    assert answer.json()["code"] == 20001 and "'To' is required" in answer.json()["message"]
    [invalid] = fake_twilio.invalid_requests
    assert invalid.errors == ("form field 'To' is required",) and fake_twilio.messages == []


def test_a_form_field_the_spec_does_not_define_is_refused(fake_twilio: FakeTwilio) -> None:
    answer = _post(fake_twilio, {"To": JAMES, "From": FROM, "Body": "Hi", "Priority": "high"})
    assert answer.status_code == 400
    [invalid] = fake_twilio.invalid_requests
    assert invalid.errors == ("form field 'Priority' is not defined for CreateMessage",)


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("Attempt", "twice", "is not of type 'integer'"),
        ("ProvideFeedback", "yes", "is not of type 'boolean'"),
        ("StatusCallback", "/relative/path", "is not a 'uri'"),
        ("StatusCallback", "https://under_score.example.com/x", "is not a 'uri'"),
        ("ContentRetention", "forever", "is not one of ['retain', 'discard']"),
        ("MessagingServiceSid", "MG" + "z" * 32, "does not match"),
        ("SendAt", "next tuesday", "is not a 'date-time'"),
    ],
)
def test_a_value_of_the_wrong_type_format_or_pattern_is_refused(
    fake_twilio: FakeTwilio, field: str, value: str, expected: str
) -> None:
    assert _post(fake_twilio, {"To": JAMES, "From": FROM, "Body": "Hi", field: value}).status_code == 400
    [invalid] = fake_twilio.invalid_requests
    assert len(invalid.errors) == 1 and invalid.errors[0].startswith(f"form field {field!r}: ")
    assert expected in invalid.errors[0]


def test_a_single_valued_field_given_twice_is_refused(fake_twilio: FakeTwilio) -> None:
    answer = requests.post(
        fake_twilio.base_url + MESSAGES, data=[("To", JAMES), ("To", MARIA), ("From", FROM), ("Body", "Hi")],
        auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5,
    )  # fmt: skip
    assert answer.status_code == 400
    assert fake_twilio.invalid_requests[0].errors == ("form field 'To' is given 2 times but is not an array",)


def test_a_bad_account_sid_is_refused(fake_twilio: FakeTwilio) -> None:
    with pytest.raises(TwilioRestException) as refused:
        _client(fake_twilio, account_sid="AC123").messages.create(to=JAMES, from_=FROM, body="Hi")
    assert refused.value.status == 400
    [invalid] = fake_twilio.invalid_requests
    assert any(
        error.startswith("path parameter 'AccountSid': 'AC123' does not match") for error in invalid.errors
    )


def test_basic_auth_must_be_there_and_name_the_account_in_the_path(fake_twilio: FakeTwilio) -> None:
    form = {"To": JAMES, "From": FROM, "Body": "Hi"}
    assert requests.post(fake_twilio.base_url + MESSAGES, data=form, timeout=5).status_code == 401
    assert _post(fake_twilio, form, sid="AC" + "f" * 32).status_code == 401
    assert [r.status for r in fake_twilio.invalid_requests] == [401, 401]
    assert "Authorization header is missing" in fake_twilio.invalid_requests[0].errors[0]
    assert "is not the AccountSid in the path" in fake_twilio.invalid_requests[1].errors[0]


def test_a_configured_auth_token_must_match() -> None:
    with FakeTwilio(auth_token="right") as fake:
        with pytest.raises(TwilioRestException) as refused:
            _client(fake).messages.create(to=JAMES, from_=FROM, body="Hi")
        assert refused.value.status == 401 and refused.value.code == 20003
        assert fake.invalid_requests[0].errors == ("the basic auth password is not the auth token",)


def test_an_unknown_path_or_method_is_a_404_and_recorded(fake_twilio: FakeTwilio) -> None:
    auth = (ACCOUNT_SID, AUTH_TOKEN)
    assert (
        requests.get(
            f"{fake_twilio.base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Texts.json", auth=auth, timeout=5
        ).status_code
        == 404
    )
    assert requests.put(fake_twilio.base_url + MESSAGES, auth=auth, timeout=5).status_code == 404
    assert [r.status for r in fake_twilio.invalid_requests] == [404, 404]
    assert "is not an operation of Twilio's API description" in fake_twilio.invalid_requests[1].errors[0]


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"To": JAMES, "Body": "Hi"}, 21603),  # neither From nor MessagingServiceSid
        ({"To": JAMES, "From": FROM}, 21602),  # nothing to send
        ({"To": "Alice", "From": FROM, "Body": "Hi"}, 21211),  # a sender ID is no recipient
        ({"To": JAMES, "From": FROM, "Body": "x" * 1601}, 21617),
    ],
)
def test_twilios_rules_beyond_the_spec_are_enforced(
    fake_twilio: FakeTwilio, form: dict[str, str], code: int
) -> None:
    answer = _post(fake_twilio, form)
    assert (answer.status_code, answer.json()["code"]) == (400, code)
    assert len(fake_twilio.invalid_requests) == 1 and fake_twilio.messages == []


# --- fault injection -----------------------------------------------------------------------


def test_fail_next_answers_with_a_twilio_error_then_recovers(fake_twilio: FakeTwilio) -> None:
    client = _client(fake_twilio)
    fake_twilio.fail_next(429)
    with pytest.raises(TwilioRestException) as refused:
        client.messages.create(to=JAMES, from_=FROM, body="Hi")
    assert (refused.value.status, refused.value.code) == (429, 20429)
    client.messages.create(to=JAMES, from_=FROM, body="Hi")
    assert len(fake_twilio.messages) == 1 and fake_twilio.invalid_requests == []
    assert [r.status for r in fake_twilio.requests] == [429, 201]


def test_fail_next_carries_a_given_code_and_counts(fake_twilio: FakeTwilio) -> None:
    client = _client(fake_twilio)
    fake_twilio.fail_next(400, count=2, code=21211, message="Invalid 'To' Phone Number")
    for _ in range(2):
        with pytest.raises(TwilioRestException) as refused:
            client.messages.create(to=JAMES, from_=FROM, body="Hi")
        assert (refused.value.status, refused.value.code) == (400, 21211)
        assert "Invalid 'To' Phone Number" in refused.value.msg
    client.messages.create(to=JAMES, from_=FROM, body="Hi")
    assert len(fake_twilio.messages) == 1


def test_a_stall_times_the_client_out_yet_the_message_is_created(fake_twilio: FakeTwilio) -> None:
    fake_twilio.stall_next(3.0)
    with pytest.raises(requests.exceptions.Timeout):
        _client(fake_twilio, timeout=0.3).messages.create(to=JAMES, from_=FROM, body="Hi")
    assert len(fake_twilio.messages) == 1
    # The retry's look-up sees it while the first answer is still held back.
    [found] = _client(fake_twilio).messages.list(to=JAMES, limit=20)
    assert found.sid == fake_twilio.messages[0].sid


def test_a_stall_without_creating_leaves_nothing_behind(fake_twilio: FakeTwilio) -> None:
    fake_twilio.stall_next(3.0, then_create=False)
    with pytest.raises(requests.exceptions.Timeout):
        _client(fake_twilio, timeout=0.3).messages.create(to=JAMES, from_=FROM, body="Hi")
    assert fake_twilio.messages == []
    _client(fake_twilio).messages.create(to=JAMES, from_=FROM, body="Hi")
    assert len(fake_twilio.messages) == 1 and fake_twilio.invalid_requests == []


# --- reading back --------------------------------------------------------------------------


def test_listing_filters_by_recipient_and_sender_newest_first(fake_twilio: FakeTwilio) -> None:
    client = _client(fake_twilio)
    for to, text in [(JAMES, "one"), (MARIA, "two"), (JAMES, "three")]:
        client.messages.create(to=to, from_=FROM, body=text)
    assert [m.body for m in client.messages.list(to=JAMES, from_=FROM)] == ["three", "one"]
    assert [m.body for m in client.messages.list(to=MARIA)] == ["two"]
    assert client.messages.list(from_="+15005550001") == []
    assert fake_twilio.invalid_requests == []
    assert fake_twilio.requests[-1].query == {"From": "+15005550001"}


def test_listing_filters_by_date_sent(fake_twilio: FakeTwilio) -> None:
    client = _client(fake_twilio)
    client.messages.create(to=JAMES, from_=FROM, body="now")
    now = datetime.now(timezone.utc)
    assert len(client.messages.list(date_sent_after=now - timedelta(minutes=1))) == 1
    assert client.messages.list(date_sent_after=now + timedelta(minutes=1)) == []
    assert client.messages.list(date_sent_before=now - timedelta(minutes=1)) == []
    day = fake_twilio.messages[0].date_created.strftime("%Y-%m-%d")
    assert len(client.messages.list(date_sent=day)) == 1
    assert fake_twilio.invalid_requests == []


def test_listing_pages_through_many_messages(fake_twilio: FakeTwilio) -> None:
    client = _client(fake_twilio)
    for number in range(7):
        client.messages.create(to=JAMES, from_=FROM, body=f"m{number}")
    assert [m.body for m in client.messages.list(to=JAMES, page_size=3)] == [
        f"m{n}" for n in range(6, -1, -1)
    ]
    assert [m.body for m in client.messages.list(to=JAMES, limit=2)] == ["m6", "m5"]
    assert fake_twilio.invalid_requests == []


def test_a_message_is_fetched_by_sid_and_an_unknown_sid_is_a_valid_404(fake_twilio: FakeTwilio) -> None:
    client = _client(fake_twilio)
    created = client.messages.create(to=JAMES, from_=FROM, body="Hi")
    assert client.messages(created.sid).fetch().body == "Hi"
    with pytest.raises(TwilioRestException) as missing:
        client.messages("SM" + "0" * 32).fetch()
    assert (missing.value.status, missing.value.code) == (404, 20404)
    assert fake_twilio.invalid_requests == []


# --- the spec on its own ------------------------------------------------------------------


def test_reprs_leave_phone_numbers_and_texts_out(fake_twilio: FakeTwilio) -> None:
    _client(fake_twilio).messages.create(to=JAMES, from_=FROM, body="Your balance is $1,234.56")
    shown = repr(fake_twilio.requests) + repr(fake_twilio.messages)
    assert JAMES not in shown and FROM not in shown and "balance" not in shown and AUTH_TOKEN not in shown
    assert "+12...43" in shown


def test_the_spec_is_loaded_once_per_process() -> None:
    assert TwilioSpec.load() is TwilioSpec.load()


def test_validate_lists_every_problem_and_masks_phone_numbers() -> None:
    spec = TwilioSpec.load()
    assert spec.validate("POST", MESSAGES, form={"To": JAMES, "Body": "Hi"}, authorization=None) == [
        "no HTTP basic auth (the Authorization header is missing)"
    ]
    errors = spec.validate("GET", MESSAGES, query={"To": "4915112345678", "PageSize": "0", "Sort": "asc"})
    assert "query parameter 'PageSize': 0 is less than the minimum of 1" in errors
    assert "query parameter 'Sort' is not defined for ListMessage" in errors
    assert "query parameter 'To': '491...78' is not a 'phone-number'" in errors
    assert not any("4915112345678" in error for error in errors)
    assert mask(f"to {JAMES}, {FROM}") == "to +12...43, +15...06"


def test_operations_are_found_by_their_most_literal_template() -> None:
    spec = TwilioSpec.load()
    local = spec.match("GET", f"/2010-04-01/Accounts/{ACCOUNT_SID}/IncomingPhoneNumbers/Local.json")
    fetch = spec.match("GET", f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/SM{'a' * 32}.json")
    assert local is not None and local[0].operation_id == "ListIncomingPhoneNumberLocal"
    assert (
        fetch is not None and fetch[0].operation_id == "FetchMessage" and fetch[1]["Sid"] == "SM" + "a" * 32
    )
    assert spec.match("PATCH", MESSAGES) is None
