"""One-click unsubscribe for email (RFC 8058): a link in every email and its header.

``GET /unsubscribe/<token>`` only shows a page with a button: link scanners and mail
clients fetch links on their own, and a fetch must never unsubscribe anyone. ``POST`` (the
mail client's one-click request, or the button) opts the address out.
"""

from __future__ import annotations

import logging

from flask import Blueprint, render_template, request
from flask.typing import ResponseReturnValue

from bot.email.unsubscribe import UnsubscribeLinks
from bot.errors import NotFound
from bot.store.addresses import AddressBook

logger = logging.getLogger(__name__)


_TEXTS = {
    "en": {
        "title": "Stop emails",
        "ask": "Press the button to stop emails from {company} to this address.",
        "button": "Stop emails",
        "done": "Done: {company} will not email this address any more.",
        "other": "You can still reach us at {phone}.",
    },
    "es": {
        "title": "Dejar de recibir correos",
        "ask": "Pulse el botón para dejar de recibir correos de {company} en esta dirección.",
        "button": "No quiero más correos",
        "done": "Hecho: {company} no enviará más correos a esta dirección.",
        "other": "Puede seguir contactándonos en el {phone}.",
    },
}


def unsubscribe_blueprint(
    links: UnsubscribeLinks, addresses: AddressBook, company: str, phone: str
) -> Blueprint:
    """``GET`` (a page) and ``POST`` (the unsubscribe) on ``/unsubscribe/<token>``."""
    bp = Blueprint("unsubscribe", __name__)

    def record_for(token: str) -> dict[str, str]:
        record = links.lookup(token) if len(token) <= 64 else None
        if record is None:
            raise NotFound("this unsubscribe link is not known (it may have expired)")
        return record

    def page(record: dict[str, str], token: str, done: bool) -> str:
        texts = _TEXTS.get(record.get("language", "en"), _TEXTS["en"])
        fill = {"company": company, "phone": phone}
        return render_template(
            "unsubscribe.html",
            language=record.get("language", "en"),
            title=texts["title"],
            message=texts["done" if done else "ask"].format(**fill),
            other=texts["other"].format(**fill),
            button=texts["button"],
            done=done,
            action=f"/unsubscribe/{token}",
        )

    @bp.get("/unsubscribe/<token>")
    def show(token: str) -> ResponseReturnValue:
        return page(record_for(token), token, done=False)

    @bp.post("/unsubscribe/<token>")
    def unsubscribe(token: str) -> ResponseReturnValue:
        record = record_for(token)
        newly = addresses.opt_out(
            record["channel"],
            record["address"],
            record.get("account_id") or None,
            by_message="unsubscribe-link",
        )
        # The mail client's one-click POST carries "List-Unsubscribe=One-Click"; the page's
        # button posts the same field. Either way the answer is a short page.
        one_click = request.form.get("List-Unsubscribe") == "One-Click"
        logger.info(
            "unsubscribe link used (%s): %s address %s",
            "one-click" if one_click else "page",
            record["channel"],
            "opted out" if newly else "was already opted out",
        )
        return page(record, token, done=True)

    return bp
