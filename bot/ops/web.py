"""The ops pages of the console: ``ops_blueprint(parts)`` serves ``/console/ops``.

Signed in through the console (``bot.console``: the same sessions, CSRF and security headers, which
apply to every ``/console`` path); open to the ``ops`` role and to supervisors. Each concern adds its
own views to the blueprint (``register(bp, parts)``):

- ``review_web``: conversation review (filters, one conversation turn by turn, tags, *Save as test
  story*).
- ``nlu_web``: the NLU inbox (what the bot did not understand, grouped; labelling into the review file).
- ``funnel_web``: the funnel, the opener wordings (A/B/n) and where the bot loses people, with charts,
  tables and CSV.

The gateway does not import this package (it sits below ``bot.ops``): the runtime builds the blueprint
and hands it to ``create_app(..., blueprints=[...])``.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user  # type: ignore[import-untyped]  # ships no type hints

from bot.console.web import safe_next, wants_json
from bot.ops import funnel_web, nlu_web, review_web
from bot.ops.web_common import OpsParts, ops_user

__all__ = ["ops_blueprint"]


def _forbidden() -> ResponseReturnValue:
    message = "Only ops people and supervisors can see this."
    if wants_json():
        return jsonify({"error": message, "status": 403}), 403
    return render_template("console/forbidden.html", message=message), 403


def ops_blueprint(parts: OpsParts) -> Blueprint:
    """The ops pages; every view needs a signed-in ``ops`` person or supervisor."""
    bp = Blueprint("ops", __name__, url_prefix="/console/ops", template_folder="templates")

    @bp.before_request
    def guard() -> ResponseReturnValue | None:
        if not current_user.is_authenticated:
            if wants_json():
                return jsonify({"error": "sign in first", "status": 401}), 401
            target = request.full_path if request.query_string else request.path
            return redirect(url_for("console.sign_in", next=safe_next(target)))
        if not ops_user().is_ops:
            return _forbidden()
        return None

    @bp.context_processor
    def common() -> dict[str, object]:
        # The console's base template shows who is signed in and in which zone times are.
        me = ops_user() if current_user.is_authenticated else None
        return {"me": me, "zone": parts.config.console.zone}

    @bp.route("/")
    def home() -> ResponseReturnValue:
        return render_template("ops/home.html")

    review_web.register(bp, parts)
    nlu_web.register(bp, parts)
    funnel_web.register(bp, parts)
    return bp
