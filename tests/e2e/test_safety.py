"""Safety first, on the real stack (worker, Rasa server, action server, Redis), on every
channel: a sign of crisis gets the crisis line of the person's country and a person, in every
state (before verification, inside the payment-plan form, after an opt-out), collection stops,
and a later message is answered. Stop-like words that do not mean "stop messaging me" are not
an opt-out; words that do mean it opt out with one confirmation."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import pytest

from channels.email import sign
from channels.telegram import SECRET_HEADER
from tests.conftest import wait_for
from tests.e2e.conftest import Product

pytestmark = pytest.mark.e2e

#: Words that would tell someone else there is a debt.
DEBT_WORDS = ("debt", "owe", "balance", "outstanding", "deuda", "debe", "saldo", "pendiente", "$", "€")


@dataclass
class Person:
    """Someone writing to the product on one channel, from one address."""

    product: Product
    channel: str
    address: str
    handle: str = ""  # Telegram username
    seen: int = 0
    _update: int = field(default_factory=lambda: int(uuid.uuid4().int % 1_000_000_000))

    def received(self) -> list[str]:
        entries = self.product.services.outbox.read(channel=self.channel, recipient=self.address)
        return [entry.text for entry in entries]

    def say(self, text: str) -> list[str]:
        """Write ``text``; return what the product sent back once it has handled it."""
        answer = {"sms": self._sms, "telegram": self._telegram, "email": self._email}[self.channel](text)
        assert answer == 200, f"{self.channel} webhook answered {answer}"
        services = self.product.services
        wait_for(lambda: not services.inbound.pending_keys() and not services.outbound.pending_keys(),
                 timeout=90, what=f"{text!r} handled")  # fmt: skip
        time.sleep(0.3)
        texts = self.received()
        new, self.seen = texts[self.seen :], len(texts)
        return new

    def _sms(self, text: str) -> int:
        return self.product.sms(self.address, text, "SM" + uuid.uuid4().hex)

    def _telegram(self, text: str) -> int:
        self._update += 1
        sender = {"id": int(self.address), "is_bot": False, "first_name": "X", "username": self.handle}
        update = {"update_id": self._update, "message": {
            "message_id": self._update, "date": int(time.time()), "text": text, "from": sender,
            "chat": {"id": int(self.address), "type": "private", "first_name": "X"}}}  # fmt: skip
        secret = self.product.config.secrets.telegram_webhook_secret or ""
        return self.product.client.post("/webhooks/telegram", json=update,
                                        headers={SECRET_HEADER: secret}).status_code  # fmt: skip

    def _email(self, text: str) -> int:
        mail = EmailMessage()
        mail["From"] = self.address
        mail["To"] = "help@northwind.example.com"
        mail["Subject"] = "Hello"
        mail["Message-ID"] = make_msgid(domain="mail.example.org")
        mail.set_content(text)
        body = bytes(mail)
        signature = sign(self.product.config.secrets.email_webhook_secret, body)
        return self.product.client.post("/webhooks/email", data=body, content_type="message/rfc822",
                                        headers={"X-Debtbot-Signature": signature}).status_code  # fmt: skip


def _joined(texts: list[str]) -> str:
    return "\n".join(texts)


def assert_crisis_answered(
    product: Product, account_id: str, texts: list[str], line: str, creditor: str
) -> None:
    """The crisis answer, and everything the product does with it."""
    said = _joined(texts)
    assert line in said, said
    assert creditor.lower() not in said.lower() and not any(word in said.lower() for word in DEBT_WORDS), said
    services = product.services
    reasons = [(f[b"reason"], f[b"account_id"]) for _, f in services.redis.xrange(services.keys.agent_queue)]
    assert (b"crisis", account_id.encode()) in reasons
    assert services.redis.hexists(services.keys.account_state(account_id), "pause:crisis")


def assert_outreach_sends_nothing(product: Product, person: Person, account_id: str) -> None:
    """Days later, when the account would be due again, outreach sends it nothing."""
    services = product.services
    before = len(person.received())
    product.clock.advance(timedelta(days=8))  # past contact_every_days and any reply window
    services.outreach_handler().contact_many([account_id])
    time.sleep(0.5)
    assert not services.outbound.pending_keys() and len(person.received()) == before
    rules = [f[b"rule"] for _, f in services.redis.xrange(services.keys.audit)
             if f.get(b"account_id") == account_id.encode() and f.get(b"kind") == b"opener"]  # fmt: skip
    assert rules and rules[-1] == b"pause:crisis"


CASES: dict[str, dict[str, Any]] = {
    # channel: (the person before verification, inside the plan form, after an opt-out)
    "sms": {
        "before": ("ACC-1004", "+17135550166", "", "me quiero morir", "988", "Gulf Coast"),
        "form": ("ACC-1002", "+12025550143", "", "i dont want to be alive anymore", "988", "Capitol"),
        "form_dob": "2 November 1979",
        "opt_out": ("ACC-1011", "+15125550108", "", "I'm going to end it all", "988", "Darnell"),
        "stop_words": "please stop texting me",
    },
    "telegram": {
        "before": ("ACC-1010", "7010", "jorge_rmz_cdmx", "ya no quiero vivir", "800 911 2000", "Jorge"),
        "form": ("ACC-1008", "7008", "lucia_fdz", "estarian todos mejor sin mi", "024", "Fernández"),
        "form_dob": "27 de febrero de 1990",
        "opt_out": ("ACC-1005", "7005", "emchen_sf", "i want to kill myself", "988", "Emily"),
        "stop_words": "please stop messaging me",
    },
    "email": {
        "before": ("ACC-1009", "priya.sharma@example.co.uk", "", "I want to die", "116 123", "Priya"),
        "form": (
            "ACC-1007",
            "tobrien@example.net",
            "",
            "nobody would miss me if i was gone",
            "988",
            "O'Brien",
        ),
        "form_dob": "19 April 1996",
        "opt_out": ("ACC-1003", "aisha.bello@example.org", "", "i have the pills ready", "988", "Aisha"),
        "stop_words": "please stop emailing me",
    },
}


def _creditor(product: Product, account_id: str) -> str:
    account = product.services.accounts.get(account_id)
    assert account is not None
    return account.creditor


@pytest.mark.parametrize("channel", ["sms", "telegram", "email"])
def test_a_crisis_gets_the_crisis_line_and_a_person_in_every_state_on_every_channel(
    product: Product, channel: str
) -> None:
    case = CASES[channel]

    # Before verification, right after hello.
    account_id, address, handle, words, line, _ = case["before"]
    person = Person(product, channel, address, handle)
    assert person.say("hi")
    answer = person.say(words)
    assert_crisis_answered(product, account_id, answer, line, _creditor(product, account_id))
    assert person.say("thank you"), "a later message is answered"
    assert_outreach_sends_nothing(product, person, account_id)

    # Inside the payment-plan form, after verification.
    account_id, address, handle, words, line, _ = case["form"]
    person = Person(product, channel, address, handle)
    person.say("hi")
    person.say("good thanks")
    assert any("confirm" in t.lower() or "confirmado" in t.lower() for t in person.say(case["form_dob"]))
    asked = _joined(
        person.say("I'd like a payment plan" if account_id != "ACC-1008" else "quiero un plan de pagos")
    )
    assert asked  # the form asks what they could pay, or offers plans that fit
    answer = person.say(words)
    assert_crisis_answered(product, account_id, answer, line, _creditor(product, account_id))
    later = person.say("ok")
    assert later and "Here are some plans" not in _joined(later), (
        "the form is over; nothing pushes for payment"
    )
    assert_outreach_sends_nothing(product, person, account_id)

    # After an opt-out in words.
    account_id, address, handle, words, line, _ = case["opt_out"]
    person = Person(product, channel, address, handle)
    person.say("hi")
    [confirmation] = person.say(case["stop_words"])
    assert "won't send you any more messages" in confirmation or "won't get any more" in confirmation
    answer = person.say(words)
    assert_crisis_answered(product, account_id, answer, line, _creditor(product, account_id))
    [follow_up] = person.say("thanks")
    assert "A person from our team has your messages" in follow_up
    assert_outreach_sends_nothing(product, person, account_id)


@pytest.mark.parametrize(
    "words",
    [
        "can you stop the late fees",
        "please stop adding interest",
        "here is my card 4111-1111-1111-1111, take 50",
        "can you take the payment from 4111-1111-1111-1111 now?",
        "me quiero morir",
        "I'm going to end it all",
    ],
)
def test_words_that_are_not_an_opt_out_get_an_answer_and_the_next_message_too(
    product: Product, words: str
) -> None:
    person = Person(product, "sms", "+12025550143")  # James, ACC-1002
    person.say("hi")
    answer = person.say(words)
    assert answer, f"{words!r} got no answer"
    said = _joined(answer)
    assert (
        "We won't send you any more messages" not in said and "I'm so sorry to have bothered you" not in said
    )
    assert "Glad to hear it" not in said
    status = product.services.addresses.status("sms", person.address)
    assert status.silenced_because is None
    if "4111" in words:
        assert "never send card numbers" in said and "4111" not in said
    assert person.say("hello again"), "the next message is answered"


@pytest.mark.parametrize(
    ("address", "words", "confirmation"),
    [
        ("+12025550143", "please stop texting me", "We won't send you any more messages"),
        ("+17135550166", "no me escriban más", "No le enviaremos más mensajes"),
    ],
)
def test_a_real_opt_out_in_words_gets_one_confirmation_then_silence(
    product: Product, address: str, words: str, confirmation: str
) -> None:
    person = Person(product, "sms", address)
    person.say("hi")
    [answer] = person.say(words)
    assert confirmation in answer
    assert person.say("hello?") == []
    assert product.services.addresses.status("sms", address).opted_out_at is not None


def test_a_wrong_number_gets_one_closing_message_with_no_name_and_no_debt(product: Product) -> None:
    person = Person(product, "sms", "+16175550150")  # Tom, ACC-1007
    opened = person.say("hi")
    assert opened
    [closing] = person.say("you have the wrong number, I'm not Tom")
    assert "sorry" in closing.lower() and "Tom" not in closing
    assert not any(word in closing.lower() for word in DEBT_WORDS)
    assert product.services.addresses.status("sms", person.address).wrong_party_at is not None
    assert person.say("ok bye") == []


def test_hardship_before_verification_is_care_and_a_person_only(product: Product) -> None:
    person = Person(product, "sms", "+14155550132")  # Emily, ACC-1005
    person.say("hi")
    said = _joined(person.say("I lost my job last month and I can't afford anything"))
    assert "sorry" in said.lower() and "person from our team" in said
    for hint in ("options", "token payments", "pause things", "this account", "spread it"):
        assert hint not in said, f"{hint!r} before verification tells a stranger there is a debt"
    reasons = [f[b"reason"] for _, f in product.services.redis.xrange(product.services.keys.agent_queue)]
    assert b"hardship" in reasons
