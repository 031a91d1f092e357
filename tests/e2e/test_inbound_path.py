"""The inbound path end to end, on real Redis and a real trained Rasa model and server:
signed webhook -> de-duplicate -> durable stream -> worker -> Rasa -> render -> sandbox outbox."""

from __future__ import annotations

import pytest

from tests.conftest import wait_for
from tests.e2e.conftest import Product, RasaStack

pytestmark = pytest.mark.e2e

# Known accounts are greeted by first name (set by the custom session-start action).
GREETING_EN = "Hi James, thanks for getting in touch. How are you doing today?"
GREETING_ES = "¡Hola, Maria! Gracias por escribir. ¿Cómo está hoy?"
BOT_EN = "I'm an automated assistant for Northwind Recoveries Ltd. If you'd rather talk to a person at any point, just say so."
WELCOME_EN = "You're welcome."

JAMES = "+12025550143"  # ACC-1002, English
MARIA = "+13055550191"  # ACC-1001, Spanish


def test_simulated_sms_from_an_imported_account_is_answered_in_the_outbox(product: Product) -> None:
    page = product.client.get("/simulator").get_data(as_text=True)
    token = page.split('name="csrf-token" content="')[1].split('"')[0]
    answer = product.client.post(
        "/simulator/send",
        json={"account_id": "ACC-1002", "channel": "sms", "text": "hello"},
        headers={"X-CSRFToken": token},
    )
    assert answer.status_code == 202
    replies = wait_for(lambda: product.replies(JAMES), timeout=60, what="a reply in the outbox")
    assert [r.text for r in replies] == [GREETING_EN]
    assert replies[0].conversation_id == "acct-ACC-1002"


def test_the_account_language_chooses_the_reply_language(product: Product) -> None:
    assert product.sms(MARIA, "buenas tardes", "SM" + "e" * 32) == 200
    replies = wait_for(lambda: product.replies(MARIA), timeout=60, what="a Spanish reply")
    assert [r.text for r in replies] == [GREETING_ES]


def test_messages_sent_while_rasa_is_down_are_all_answered_in_order_when_it_is_back(
    product: Product, rasa_stack: RasaStack
) -> None:
    rasa_stack.stop_rasa()
    for n, text in enumerate(["hello", "are you a bot?", "thank you"]):
        assert product.sms(JAMES, text, f"SM{n:032d}") == 200
    # The worker keeps trying; nothing is answered and nothing is dropped meanwhile.
    wait_for(lambda: product.services.inbound.waiting_failures(_key(JAMES)) >= 3, timeout=30, what="retries")
    assert product.replies(JAMES) == []
    assert len(product.services.inbound.unhandled(_key(JAMES))) == 3
    rasa_stack.start_rasa()
    replies = wait_for(
        lambda: len(product.replies(JAMES)) >= 3 and product.replies(JAMES), timeout=90, what="three replies"
    )
    assert [r.text for r in replies] == [GREETING_EN, BOT_EN, WELCOME_EN]
    assert product.services.inbound.unhandled(_key(JAMES)) == []


def test_messages_sent_while_no_worker_runs_are_answered_when_one_starts(product: Product) -> None:
    product.stop_worker()
    assert product.sms(JAMES, "hi", "SM" + "w" * 32) == 200
    assert product.replies(JAMES) == []
    product.start_worker()
    replies = wait_for(lambda: product.replies(JAMES), timeout=60, what="a reply after the worker started")
    assert [r.text for r in replies] == [GREETING_EN]


def test_duplicate_webhook_delivery_produces_one_reply(product: Product) -> None:
    sid = "SM" + "d" * 32
    assert product.sms(JAMES, "hello", sid) == 200
    assert product.sms(JAMES, "hello", sid) == 200  # Twilio retried the same message
    wait_for(lambda: product.replies(JAMES), timeout=60, what="the reply")
    assert product.sms(JAMES, "hello", sid) == 200  # and once more after the reply went out
    product.services.jobs.sweep()
    wait_for(lambda: not product.services.inbound.pending_keys(), timeout=10, what="queues to empty")
    assert [r.text for r in product.replies(JAMES)] == [GREETING_EN]


def _key(phone: str) -> str:
    from bot.store.addresses import address_key

    return address_key("sms", phone)


def test_a_message_sent_while_the_action_server_is_down_waits_for_it(
    product: Product, rasa_stack: RasaStack
) -> None:
    rasa_stack.actions.stop()
    try:
        # A new conversation needs the custom session-start action (it sets the language);
        # Rasa alone would skip it and answer in the wrong language.
        assert product.sms(MARIA, "hello", "SM" + "a" * 32) == 200
        wait_for(
            lambda: product.services.inbound.waiting_failures(_key(MARIA)) >= 2, timeout=30, what="retries"
        )
        assert product.replies(MARIA) == []
    finally:
        rasa_stack.actions.start()
    replies = wait_for(lambda: product.replies(MARIA), timeout=60, what="the reply once actions are back")
    assert [r.text for r in replies] == [GREETING_ES]  # the session-start action set the language


def test_an_english_account_writing_in_spanish_is_answered_in_spanish(product: Product) -> None:
    assert product.sms(JAMES, "hola buenas tardes, cómo están?", "SM" + "f" * 32) == 200
    replies = wait_for(lambda: product.replies(JAMES), timeout=60, what="a reply")
    assert [r.text for r in replies] == ["¡Hola, James! Gracias por escribir. ¿Cómo está hoy?"]


def test_after_stop_in_words_one_confirmation_then_silence_and_an_agent_reads_the_rest(
    product: Product,
) -> None:
    assert product.sms(JAMES, "please stop texting me", "SM" + "s" * 32) == 200
    replies = wait_for(lambda: product.replies(JAMES), timeout=60, what="the confirmation")
    assert [r.text for r in replies] == [
        "Understood. We won't send you any more messages on this channel. "
        "If you change your mind, write to us and a person from our team will answer."
    ]
    assert product.sms(JAMES, "hello? I want to pay", "SM" + "t" * 32) == 200
    flags = product.services.keys.conversation_flags("acct-ACC-1002")
    wait_for(
        lambda: product.services.redis.hexists(flags, "wrote_after_opted_out"), timeout=30, what="a flag"
    )
    product.services.jobs.sweep()
    wait_for(lambda: not product.services.inbound.pending_keys(), timeout=10, what="queues to empty")
    assert len(product.replies(JAMES)) == 1  # nothing after the one confirmation
