"""The agents' console in the browser: ``console_blueprint(parts)`` serves ``/console``.

Server-rendered pages (Jinja, autoescaped: nothing from outside is ever marked safe) and a few
JSON endpoints for the pages' own scripts (``static/inbox.js``, ``static/conversation.js``),
which only ever put outside text into the page with ``textContent``.

- Nothing answers without sign-in (``auth.py``): a page redirects to ``/console/sign-in?next=``,
  a script's request (``/console/api/...``, ``Accept: application/json`` or
  ``text/event-stream``, ``X-Requested-With``) gets 401 JSON. Supervisors' pages answer 403 to
  agents.
- Every ``/console`` response, errors included, carries the security headers below; the CSP
  allows no inline script or style, so data reaches the scripts through ``data-*`` attributes
  and JSON.
- Live updates are short polling (``GET /console/api/inbox``, ``.../history?after=``, every
  second), not server-sent events: the gateway runs under gunicorn's sync workers, where each
  open event stream would hold a whole worker for as long as an agent keeps the page open, and a
  handful of agents would starve the providers' webhooks. A poll is one cheap Redis read.
  Polls say so (``X-Console-Poll: 1``) and do not count as activity for the idle sign-out.
- Every form also works without script (POST, then redirect to the page: the result is shown
  as a message), except the live updates.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from functools import wraps
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import (  # type: ignore[import-untyped]  # ships no type hints
    LoginManager,
    current_user,
    login_user,
    logout_user,
)

from bot.compliance.rules import PAUSE_REASONS
from bot.console.agents import AgentDirectory, AgentError
from bot.console.auth import (
    AuthParts,
    SessionRegistry,
    SignInThrottle,
    User,
    address_hash,
    audit_sign_in,
)
from bot.console.desk import DeskError, HistoryLine, ReplyVerdict, format_moment
from bot.console.errors import ConsoleError
from bot.console.handoff import AlreadyClaimed, Handoff, HandoffStore, Outcome, State
from bot.console.inbox import InboxFilter, InboxItem
from bot.console.plans import PlanPayment
from bot.errors import InvalidRequest, NotFound
from bot.privacy import mask_email
from channels.cleaning import UnsafeJson, loads_json

if TYPE_CHECKING:
    from bot.console.canned import CannedReplies
    from bot.console.desk import Desk
    from bot.console.inbox import Inbox

__all__ = ["SECURITY_HEADERS", "ConsoleParts", "console_blueprint", "error_page"]


class ConsoleParts(AuthParts, Protocol):
    """What the console uses; ``bot.runtime.services.Services`` provides it (config, redis, keys,
    clock, agent_directory from ``AuthParts``, and these)."""

    @property
    def desk(self) -> Desk: ...
    @property
    def inbox(self) -> Inbox: ...
    @property
    def canned(self) -> CannedReplies: ...
    @property
    def handoff(self) -> HandoffStore: ...


CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; media-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}

#: Endpoints that answer without sign-in.
_PUBLIC = {"console.sign_in", "console.set_password", "console.static"}
#: Endpoints every signed-in role may use (the rest of ``/console`` is for agents and supervisors).
_ANY_ROLE = {"console.sign_out"}
#: What a conversation id may look like (``acct-<id>``, ``anon-<channel>.<hash>``).
_CONVERSATION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:~@+-]{0,199}$")
_STREAM_ID = re.compile(r"^[0-9]{1,20}-[0-9]{1,20}$")
MAX_REPLY = 4096
MAX_NOTE = 4000
MAX_FIELD = 500
LANGUAGES = ("en", "es")
CHANNELS = ("sms", "telegram", "email")
OUTCOMES = tuple(outcome.value for outcome in Outcome)
OUTCOME_LABELS = {
    "plan_set_up": "Plan set up",
    "paid": "Paid",
    "debt_advice": "Referred to debt advice",
    "dispute_opened": "Dispute opened",
    "no_contact": "No contact",
    "other": "Other",
}
#: The flags an agent may set and clear (crisis may only be cleared: the desk enforces it).
FLAGS = (*PAUSE_REASONS, "vulnerable")
FREQUENCIES = ("monthly", "fortnightly", "weekly")
CALLBACK_LABELS = {"phone": "Phone call", "video": "Video call"}
#: Titles of the console's error pages.
ERROR_TITLES = {
    400: "That did not work",
    403: "Not allowed",
    404: "Not found",
    409: "Not possible right now",
    413: "Too large",
    429: "Too many attempts",
}

F = TypeVar("F", bound=Callable[..., ResponseReturnValue])


def wants_json() -> bool:
    """The request comes from a script, not a page load."""
    if request.path.startswith("/console/api/"):
        return True
    if request.headers.get("X-Requested-With"):
        return True
    accept = request.accept_mimetypes
    best = accept.best_match(["text/html", "application/json", "text/event-stream"])
    return best in ("application/json", "text/event-stream")


def error_page(status: int, message: str) -> ResponseReturnValue | None:
    """A small HTML page for a console page request that failed (``None`` for anything else: a
    script's request or another part of the app keeps its JSON). The gateway's error handlers
    call it; the security headers are added like on every console response."""
    if not (request.path == "/console" or request.path.startswith("/console/")) or wants_json():
        return None
    title = ERROR_TITLES.get(status, "Something went wrong")
    if status >= 500:
        message = "Something went wrong on our side. Please try again in a moment."
    try:
        me = current_user if current_user and current_user.is_authenticated else None
        page = render_template("console/error.html", title=title, message=message, status=status, me=me)
    except Exception:  # the page itself failed (a broken session, say): the plain JSON answer then
        return None
    return page, status


def safe_next(target: str | None) -> str:
    """``target`` when it is a path inside the console, else the inbox."""
    if not target or len(target) > 2000:
        return "/console/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or "\\" in target or not target.startswith("/console"):
        return "/console/"
    if target.startswith("//"):
        return "/console/"
    return target


def _user() -> User:
    return cast(User, current_user._get_current_object())


@dataclass
class _Zones:
    agents: ZoneInfo

    def time(self, moment: float | datetime | None) -> str:
        if moment is None or moment == "":
            return ""
        if not isinstance(moment, datetime):
            moment = datetime.fromtimestamp(float(moment), timezone.utc)
        return moment.astimezone(self.agents).strftime("%a %-d %b %H:%M")


def _minutes(waited: float) -> str:
    total = int(waited)
    if total < 60:
        return f"{total} min"
    return f"{total // 60} h {total % 60} min"


def verdict_sentence(verdict: Mapping[str, Any]) -> str:
    """The sentence the agent reads for a verdict (``ReplyVerdict.to_json()``)."""
    outcome = verdict.get("outcome")
    if outcome == "sent":
        return "Sent"
    if outcome == "deferred":
        message = f"Deferred until {verdict.get('until_agent', '')}"
        if verdict.get("until_debtor"):
            message += f"; their time: {verdict['until_debtor']}"
        return message
    return f"Blocked: {verdict.get('reason', '')}"


def verdict_json(verdict: ReplyVerdict) -> dict[str, Any]:
    """A ``ReplyVerdict`` for the page, with the sentence the agent reads."""
    data = verdict.to_json()
    return {**data, "message": verdict_sentence(data)}


def _who(by: str) -> str:
    if by.startswith("agent:"):
        return by.removeprefix("agent:")
    return by or ""


def _status_text(line: HistoryLine, zones: _Zones) -> str:
    status = line.status
    if status == "withheld":
        return f"withheld: {line.rule}" if line.rule else "withheld"
    if status == "deferred":
        return f"deferred until {zones.time(line.until)}" if line.until else "deferred"
    if status in ("failed", "undelivered") and line.error:
        return f"{status}: {line.error}"
    return status


def line_json(line: HistoryLine, zones: _Zones) -> dict[str, Any]:
    """One history line, ready to show (the same for the page and its script)."""
    return {
        "id": line.id,
        "direction": line.direction,
        "kind": line.kind,
        "channel": line.channel,
        "time": zones.time(line.at),
        "at": line.at,
        "who": _who(line.by) if line.direction != "in" else "them",
        "text": line.text,
        "status": _status_text(line, zones) if line.direction == "out" else "",
    }


def _day(day: date) -> str:
    """``Mon 16 Mar 2026``."""
    return f"{day:%a} {day.day} {day:%b %Y}"


def payment_row(payment: PlanPayment, country: str | None = None) -> dict[str, Any]:
    """One payment of a plan for the account column: due when, how much, and what became of it."""
    if payment.status == "paid":
        label = f"paid on {_day(payment.paid_on)}" if payment.paid_on else "paid"
    elif payment.status == "missed":
        label = "missed" + (" (they were told)" if payment.told_missed else "")
    elif payment.status == "ended":
        label = "not due: the plan was replaced"
    else:
        label = "due" + (" (reminded)" if payment.reminded else "")
    return {
        "due": _day(payment.due), "due_iso": payment.due.isoformat(), "amount": payment.money(country),
        "status": payment.status, "label": label,
        "paid_on_iso": payment.paid_on.isoformat() if payment.paid_on else "",
    }  # fmt: skip


def _revealed_note(channel: str) -> str:
    what = "number" if channel == "sms" else "address"
    return f"The full {what} is shown for you on this page only; showing it is recorded in the audit."


def _handoff_json(handoff: Handoff, me: str) -> dict[str, Any]:
    shown = handoff.shown
    label = f"agent: {handoff.agent}" if shown == "agent" else shown
    if me in handoff.watchers:
        label += " (you are watching)"
    return {
        "state": handoff.state.value,
        "shown": shown,
        "label": label,
        "agent": handoff.agent,
        "mine": handoff.agent == me,
        "reasons": list(handoff.reasons),
        "watching": me in handoff.watchers,
    }


def item_url(item: InboxItem) -> str:
    """Where an inbox row opens: the conversation, or the page of a set-aside mail."""
    if item.kind == "dead_letter":
        _, channel, entry_id = item.conversation_id.split(":", 2)
        return url_for("console.dead_letter", channel=channel, entry_id=entry_id)
    return url_for("console.conversation", conversation_id=item.conversation_id)


def item_json(item: InboxItem) -> dict[str, Any]:
    """One inbox row."""
    return {
        "conversation_id": item.conversation_id,
        "url": item_url(item),
        "state": item.state,
        "agent": item.agent,
        "reasons": list(item.reasons),
        "priority": item.priority,
        "channel": item.channel,
        "language": item.language,
        "creditor": item.creditor,
        "display_name": item.display_name,
        "waited_minutes": round(item.waited_minutes, 1),
        "waited": _minutes(item.waited_minutes),
        "overdue": item.overdue,
        "verified": item.verified,
        "summary": item.summary,
        "kind": item.kind,
    }


def _text(name: str, limit: int = MAX_FIELD, *, required: bool = True) -> str:
    value = (request.form.get(name) or "").strip()
    if required and not value:
        raise InvalidRequest(f"{name.replace('_', ' ')}: please fill this in")
    if len(value) > limit:
        raise InvalidRequest(f"{name.replace('_', ' ')}: at most {limit} characters")
    return value


def _choice(name: str, allowed: Iterable[str]) -> str:
    value = (request.form.get(name) or "").strip()
    if value not in set(allowed):
        raise InvalidRequest(f"{name.replace('_', ' ')}: choose one of the options")
    return value


def _conversation(conversation_id: str) -> str:
    if not _CONVERSATION_ID.match(conversation_id):
        raise NotFound("no such conversation")
    return conversation_id


def console_blueprint(parts: ConsoleParts) -> Blueprint:
    """The console's pages, its scripts' JSON, sign-in and the security headers."""
    bp = Blueprint(
        "console",
        __name__,
        url_prefix="/console",
        template_folder="templates",
        static_folder="static",
        static_url_path="/static",
    )
    config = parts.config
    zones = _Zones(ZoneInfo(config.console.zone))
    sessions = SessionRegistry(parts.redis, parts.keys, parts.clock, config.console.idle_minutes)
    throttle = SignInThrottle(
        parts.redis,
        parts.keys,
        parts.clock,
        config.secrets.secret_key,
        config.console.sign_in_attempts,
        config.console.sign_in_window_minutes,
    )
    secret = config.secrets.secret_key
    login_manager = LoginManager()
    login_manager.session_protection = None  # our own session ids (auth.SessionRegistry) instead

    def load_user(name: str) -> User | None:
        session_id = str(session.get("sid", ""))
        agent = parts.agent_directory.get(name)
        if agent is None or agent.disabled:
            return None
        # A poll is not the agent doing something: it keeps the page fresh, not the session.
        touch = request.headers.get("X-Console-Poll") != "1"
        if not sessions.valid(agent.name, session_id, touch=touch):
            return None
        return User(agent, session_id)

    login_manager.user_loader(load_user)

    @bp.record_once
    def setup(state: Any) -> None:
        app = state.app
        login_manager.init_app(app, add_context_processor=False)
        app.config.update(
            SESSION_COOKIE_HTTPONLY=True,
            SESSION_COOKIE_SAMESITE="Lax",
            SESSION_COOKIE_SECURE=config.server.public_url.startswith("https"),
            SESSION_COOKIE_NAME="debtbot_session",
            REMEMBER_COOKIE_HTTPONLY=True,
        )

    @bp.after_app_request
    def security_headers(response: Response) -> Response:
        if request.path == "/console" or request.path.startswith("/console/"):
            for name, value in SECURITY_HEADERS.items():
                response.headers[name] = value
        return response

    def unauthorized() -> ResponseReturnValue:
        if wants_json():
            return jsonify({"error": "sign in first", "status": 401}), 401
        target = request.full_path if request.query_string else request.path
        return redirect(url_for("console.sign_in", next=safe_next(target)))

    def forbidden() -> ResponseReturnValue:
        message = "Only a supervisor can do this."
        if wants_json():
            return jsonify({"error": message, "status": 403}), 403
        return render_template("console/forbidden.html", message=message), 403

    @bp.before_request
    def guard() -> ResponseReturnValue | None:
        if request.endpoint in _PUBLIC:
            return None
        if not current_user.is_authenticated:
            if "_user_id" in session:
                session.clear()
            return unauthorized()
        if not _user().works_conversations and request.endpoint not in _ANY_ROLE:
            # Ops people tune the dialogue; they do not answer debtors (their pages: /console/ops).
            if wants_json():
                return jsonify({"error": "Only agents and supervisors can do this.", "status": 403}), 403
            return redirect("/console/ops/")
        return None

    def supervisor_only(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> ResponseReturnValue:
            if not _user().is_supervisor:
                return forbidden()
            return view(*args, **kwargs)

        return cast(F, wrapped)

    @bp.context_processor
    def common() -> dict[str, Any]:
        user = current_user if current_user.is_authenticated else None
        return {"me": user, "zone": config.console.zone}

    def client_address() -> str:
        return request.remote_addr or ""

    # --- sign-in --------------------------------------------------------------------------------

    @bp.route("/sign-in", methods=["GET", "POST"])
    def sign_in() -> ResponseReturnValue:
        target = safe_next(request.values.get("next"))
        if request.method == "GET":
            if current_user.is_authenticated:
                return redirect(target)
            return render_template("console/sign_in.html", next=target, error="", name="")
        name = (request.form.get("name") or "").strip()[:64]
        password = (request.form.get("password") or "")[:1024]
        address = client_address()
        ip_hash = address_hash(secret, address)
        waiting = throttle.check(name, address)
        if waiting is not None:
            audit_sign_in(parts.redis, parts.keys, parts.clock, "console:sign_in_throttled", name, ip_hash)
            minutes = max(1, -(-waiting.retry_after // 60))
            message = (
                f"Too many failed sign-ins. Please wait {minutes} minute{'s' if minutes != 1 else ''} "
                "and try again, or ask a supervisor to send you a set-password link."
            )
            if wants_json():
                response = jsonify({"error": message, "status": 429})
            else:
                response = current_app.make_response(
                    render_template("console/sign_in.html", next=target, error=message, name=name)
                )
            response.status_code = 429
            response.headers["Retry-After"] = str(waiting.retry_after)
            return response
        agent = parts.agent_directory.verify(name, password) if name and password else None
        if agent is None:
            throttle.failed(name, address)
            audit_sign_in(parts.redis, parts.keys, parts.clock, "console:sign_in_failed", name, ip_hash)
            message = "That user name and password do not match. Please try again."
            return render_template("console/sign_in.html", next=target, error=message, name=name), 401
        # A new session: nothing of the signed-out one survives (no fixation), a new id.
        session.clear()
        session_id = sessions.start(agent.name)
        session["sid"] = session_id
        login_user(User(agent, session_id))
        audit_sign_in(
            parts.redis,
            parts.keys,
            parts.clock,
            "console:sign_in",
            agent.name,
            ip_hash,
            role=agent.role.value,
        )
        return redirect(target)

    @bp.post("/sign-out")
    def sign_out() -> ResponseReturnValue:
        user = _user()
        sessions.end(user.name, user.session_id)
        audit_sign_in(
            parts.redis, parts.keys, parts.clock, "console:sign_out", user.name,
            address_hash(secret, client_address()),
        )  # fmt: skip
        logout_user()
        session.clear()
        return redirect(url_for("console.sign_in"))

    @bp.route("/set-password/<token>", methods=["GET", "POST"])
    def set_password(token: str) -> ResponseReturnValue:
        if len(token) > 128:
            abort(404)
        if request.method == "GET":
            return render_template("console/set_password.html", token=token, error="", done=False)
        password = (request.form.get("password") or "")[:1024]
        again = (request.form.get("password_again") or "")[:1024]
        if password != again:
            return render_template(
                "console/set_password.html", token=token, error="The two passwords differ.", done=False
            ), 400
        try:
            agent = parts.agent_directory.redeem_password_token(token, password)
        except (AgentError, NotFound) as exc:
            return render_template("console/set_password.html", token=token, error=str(exc), done=False), 400
        sessions.end_all(agent.name)  # a new password ends the old sessions
        return render_template("console/set_password.html", token="", error="", done=True)

    # --- the inbox ------------------------------------------------------------------------------

    def inbox_filter() -> InboxFilter:
        args = request.args

        def arg(name: str) -> str:
            return (args.get(name) or "").strip()[:64]

        return InboxFilter(
            mine=args.get("mine") == "1",
            unassigned=args.get("unassigned") == "1",
            reason=arg("reason"),
            channel=arg("channel"),
            language=arg("language"),
            creditor=arg("creditor"),
            # Only supervisors see others' claims, so only they filter by who holds what.
            claimed_by=arg("claimed_by") if _user().is_supervisor else "",
        )

    def inbox_items(filters: InboxFilter) -> list[InboxItem]:
        user = _user()
        return parts.inbox.items(user.name, filters, supervisor=user.is_supervisor)

    @bp.get("/")
    def inbox() -> ResponseReturnValue:
        filters = inbox_filter()
        items = [item_json(item) for item in inbox_items(filters)]
        query = urlencode({k: v for k, v in request.args.items() if v})
        user = _user()
        return render_template(
            "console/inbox.html",
            items=items,
            filters=filters,
            facets=parts.inbox.facets(user.name, supervisor=user.is_supervisor),
            query=query,
            target_minutes=config.console.target_minutes,
        )

    @bp.get("/api/inbox")
    def api_inbox() -> ResponseReturnValue:
        items = [item_json(item) for item in inbox_items(inbox_filter())]
        return jsonify({"items": items})

    def callback_rows(revealed: Mapping[tuple[str, str], str] | None = None) -> list[dict[str, Any]]:
        """The callbacks list: when in the agents' zone and in the person's, their own words, how,
        and the number or address to use, masked unless the agent revealed it (``revealed``:
        conversation and channel -> the full address)."""
        rows = []
        for c in parts.inbox.callbacks():
            full = (revealed or {}).get((c.conversation_id, c.channel), "")
            rows.append({
                "conversation_id": c.conversation_id, "display_name": c.display_name,
                "when": zones.time(c.when) if c.when else "",
                "when_theirs": format_moment(c.when, c.zone) if c.when and c.zone else "",
                "when_iso": c.when.isoformat() if c.when else "",
                "when_raw": c.when_raw, "how": c.how, "how_label": CALLBACK_LABELS.get(c.how, c.how),
                "channel": c.channel, "contact": full or c.contact, "revealed": bool(full),
                "asked_at": zones.time(c.asked_at), "by": c.by,
            })  # fmt: skip
        return rows

    @bp.get("/callbacks")
    def callbacks() -> ResponseReturnValue:
        return render_template("console/callbacks.html", callbacks=callback_rows())

    @bp.post("/callbacks/reveal")
    def callbacks_reveal() -> ResponseReturnValue:
        """The full number or address of one callback, for this agent (audited by the desk's
        ``reveal_address``); shown on this answer only, never kept in the session."""
        conversation_id = _conversation(_text("conversation_id", 200))
        channel = _choice("channel", CHANNELS)
        try:
            address = parts.desk.reveal_address(conversation_id, _user().actor, channel)
        except ConsoleError as exc:
            flash(str(exc), "error")
            return redirect(url_for("console.callbacks"))
        flash(_revealed_note(channel), "ok")
        rows = callback_rows({(conversation_id, channel): address})
        return render_template("console/callbacks.html", callbacks=rows)

    # --- a conversation -------------------------------------------------------------------------

    def facts(view: Any) -> dict[str, Any]:
        account = view.account
        return {
            "name": f"{account.first_name} {account.last_name}".strip() if account else "Unknown sender",
            "account_id": account.account_id if account else "",
            "creditor": account.creditor if account else "",
            "balance": f"{Decimal(account.balance):,.2f} {account.currency}" if account else "",
            "timezone": (account.timezone or "") if account else "",
        }

    def canned_options(view: Any) -> list[dict[str, str]]:
        options = []
        for reply in parts.canned.list(view.language or "en"):
            try:
                text = parts.canned.render(
                    reply.text, view.account, _user().name, config.company.display_name
                )
            except ConsoleError:
                continue
            options.append({"id": reply.id, "title": reply.title, "text": text})
        return options

    def flag_rows(view: Any) -> list[dict[str, Any]]:
        flags: Mapping[str, Mapping[str, str]] = view.flags or {}
        rows = []
        for name in (*FLAGS, *sorted(set(flags) - set(FLAGS))):
            on = name in flags
            about = flags.get(name) or {}
            rows.append(
                {
                    "name": name,
                    "label": name.replace("_", " "),
                    "on": on,
                    "since": _since(about.get("at", "")) if on else "",
                    "by": about.get("by", "") if on else "",
                    "detail": about.get("detail", "") if on else "",
                    # crisis is only ever set by the safety screen; a person may clear it
                    "settable": name in FLAGS and name != "crisis",
                    "clearable": on and name in FLAGS,
                }
            )
        return rows

    def _since(value: Any) -> str:
        if isinstance(value, (int, float, datetime)):
            return zones.time(value)
        try:
            return zones.time(float(value))
        except (TypeError, ValueError):
            pass
        try:
            return zones.time(datetime.fromisoformat(str(value)))
        except ValueError:
            return str(value or "")

    def address_rows(view: Any, revealed: Mapping[str, str]) -> list[dict[str, Any]]:
        """Each channel's address, masked unless the agent revealed it (``revealed``)."""
        rows = []
        for channel, address in view.channels.items():
            status: Mapping[str, bool] = view.address_status.get(channel, {})
            marks = [name.replace("_", " ") for name, on in status.items() if on]
            rows.append(
                {
                    "channel": channel,
                    "address": revealed.get(channel) or address,
                    "revealed": channel in revealed,
                    "marks": ", ".join(marks),
                    "opted_out": bool(status.get("opted_out")),
                }
            )
        return rows

    @bp.get("/c/<conversation_id>")
    def conversation(conversation_id: str) -> ResponseReturnValue:
        return conversation_page(conversation_id)

    @bp.post("/c/<conversation_id>/reveal")
    def reveal_address(conversation_id: str) -> ResponseReturnValue:
        """The person's full address on one channel, for this agent (audited by the desk's
        ``reveal_address``): the page again with it shown, this once (never kept in the session)."""
        conversation_id = _conversation(conversation_id)
        channel = _choice("channel", CHANNELS)
        try:
            address = parts.desk.reveal_address(conversation_id, _user().actor, channel)
        except ConsoleError as exc:
            flash(str(exc), "error")
            return redirect(url_for("console.conversation", conversation_id=conversation_id))
        flash(_revealed_note(channel), "ok")
        return conversation_page(conversation_id, revealed={channel: address})

    def conversation_page(
        conversation_id: str, revealed: Mapping[str, str] | None = None
    ) -> ResponseReturnValue:
        conversation_id = _conversation(conversation_id)
        user = _user()
        view = parts.desk.view(conversation_id)
        history = parts.desk.history(conversation_id)
        if view.account is None and not history and view.handoff.state is State.BOT:
            raise NotFound("There is no such conversation (it may have been a mistyped link).")
        lines = [line_json(line, zones) for line in history]
        agents = (
            [a.name for a in parts.agent_directory.list() if not a.disabled] if user.is_supervisor else []
        )
        return render_template(
            "console/conversation.html",
            cid=conversation_id,
            view=view,
            facts=facts(view),
            state=_handoff_json(view.handoff, user.name),
            lines=lines,
            last_id=lines[-1]["id"] if lines else "",
            canned=canned_options(view),
            flags=flag_rows(view),
            outcomes=[(o, OUTCOME_LABELS.get(o, o)) for o in OUTCOMES],
            agents=agents,
            languages=LANGUAGES,
            preferences=view.preferences or {},
            addresses=address_rows(view, revealed or {}),
            plan=plan_panel(conversation_id, view),
            plans=plan_rows(view),
            deferred=[
                {"outbox_id": m.outbox_id, "channel": m.channel, "text": m.text}
                for m in parts.desk.deferred_replies(conversation_id)
            ],
        )

    def plan_rows(view: Any) -> list[dict[str, Any]]:
        """Every plan of the account for its column: current, or ended (replaced by which, when),
        with each of its payments (due when, how much, paid when / missed / due)."""
        country = view.account.country if view.account else None
        return [
            {"plan_id": p.plan_id, "active": p.active, "summary": p.summary or p.kind,
             "payment_link": p.payment_link, "replaced_by": p.replaced_by,
             "replaced_at": _since(p.replaced_at) if p.replaced_at else "",
             "payments": [payment_row(payment, country) for payment in p.payments]}
            for p in view.stored_plans
        ]  # fmt: skip

    def plan_panel(conversation_id: str, view: Any) -> dict[str, Any]:
        """The payment-plan panel: the options, the form (kept from the query string), and the
        plan read back when the agent asked for a preview."""
        if view.account is None or parts.desk.plans is None:
            return {"available": False}
        args = request.args
        form = {
            "instalment": (args.get("instalment") or "").strip()[:20],
            "frequency": (args.get("frequency") or "monthly").strip()[:20],
            "first_due": (args.get("first_due") or "").strip()[:20],
        }
        options: list[dict[str, Any]] = []
        error = ""
        try:
            options = [option.to_json() for option in parts.desk.plan_options(conversation_id)]
        except ConsoleError as exc:
            error = str(exc)
        preview = None
        if args.get("preview") == "1" and form["instalment"] and form["first_due"]:
            try:
                preview = parts.desk.preview_plan(
                    conversation_id, form["instalment"], form["frequency"], form["first_due"]
                ).to_json()
            except ConsoleError as exc:
                error = str(exc)
        if not form["first_due"] and options:
            form["first_due"] = options[0]["first_due"]
        # The person's current plan(s): a plan set up now replaces one of them (a change of plan).
        active = [
            {"plan_id": p.plan_id, "summary": p.summary or p.kind, "schedule": p.schedule,
             "created": _since(p.created_at) if p.created_at else ""}
            for p in view.stored_plans if p.active
        ]  # fmt: skip
        return {
            "available": True, "options": options, "form": form, "preview": preview, "error": error,
            "frequencies": FREQUENCIES, "verified": view.verified, "active": active,
            # One per page load: the same plan posted twice (a double click, a retry) is one plan.
            "request_key": secrets.token_urlsafe(18),
        }  # fmt: skip

    @bp.get("/api/c/<conversation_id>/history")
    def api_history(conversation_id: str) -> ResponseReturnValue:
        conversation_id = _conversation(conversation_id)
        after = request.args.get("after", "")
        if after and not _STREAM_ID.match(after):
            raise InvalidRequest("after: a history entry id such as 1700000000000-0")
        lines = [line_json(line, zones) for line in parts.desk.history(conversation_id, after=after)]
        return jsonify({"lines": lines})

    @bp.get("/api/c/<conversation_id>/state")
    def api_state(conversation_id: str) -> ResponseReturnValue:
        conversation_id = _conversation(conversation_id)
        view = parts.desk.view(conversation_id)
        return jsonify({**_handoff_json(view.handoff, _user().name), "verified": view.verified,
                        "verified_known": view.verified_known})  # fmt: skip

    @bp.post("/api/c/<conversation_id>/reply")
    def api_reply(conversation_id: str) -> ResponseReturnValue:
        conversation_id = _conversation(conversation_id)
        try:
            body = loads_json(request.get_data(cache=True)) if request.is_json else None
        except UnsafeJson as exc:
            raise InvalidRequest(str(exc)) from exc
        if not isinstance(body, dict):
            raise InvalidRequest("send JSON: {text, channel}")
        text = body.get("text")
        channel = body.get("channel") or None
        if not isinstance(text, str) or not text.strip():
            raise InvalidRequest("text: write the reply first")
        if len(text) > MAX_REPLY:
            raise InvalidRequest(f"text: at most {MAX_REPLY} characters")
        if channel is not None and channel not in CHANNELS:
            raise InvalidRequest("channel: sms, telegram or email")
        verdict = parts.desk.reply(conversation_id, _user().actor, text, channel=channel)
        return jsonify(verdict_json(verdict))

    @bp.post("/api/c/<conversation_id>/verify")
    def api_verify(conversation_id: str) -> ResponseReturnValue:
        conversation_id = _conversation(conversation_id)
        return jsonify(verdict_json(parts.desk.ask_verification(conversation_id, _user().actor)))

    @bp.get("/api/segments")
    def api_segments() -> ResponseReturnValue:
        text = request.args.get("text", "")[:MAX_REPLY]
        return jsonify({"segments": parts.desk.segments(text)})

    # The page's forms: act, then back to the conversation with the result as a message.

    def act(conversation_id: str, action: Callable[[str], str | None]) -> ResponseReturnValue:
        conversation_id = _conversation(conversation_id)
        try:
            done = action(conversation_id)
        except AlreadyClaimed as exc:
            flash(f"{exc.by} has already claimed this conversation.", "error")
        except (ConsoleError, InvalidRequest) as exc:
            flash(str(exc), "error")
        else:
            if done:
                flash(done, "ok")
        return redirect(url_for("console.conversation", conversation_id=conversation_id))

    def conversation_action(
        path: str, supervisor: bool = False
    ) -> Callable[[Callable[[str], str | None]], Any]:
        def register(action: Callable[[str], str | None]) -> Any:
            def view(conversation_id: str) -> ResponseReturnValue:
                if supervisor and not _user().is_supervisor:
                    return forbidden()
                return act(conversation_id, action)

            view.__name__ = action.__name__
            bp.add_url_rule(f"/c/<conversation_id>/{path}", endpoint=action.__name__, view_func=view,
                            methods=["POST"])  # fmt: skip
            return action

        return register

    @conversation_action("claim")
    def claim(cid: str) -> str:
        parts.desk.claim(cid, _user().actor)
        return "You have this conversation now: the bot is silent until you hand it back."

    @conversation_action("hand-back")
    def hand_back(cid: str) -> str:
        parts.desk.hand_back(cid, _user().actor)
        return "Handed back to the bot."

    @conversation_action("close")
    def close(cid: str) -> str:
        outcome = _choice("outcome", OUTCOMES)
        waiting = len(parts.desk.deferred_replies(cid))
        parts.desk.close(cid, _user().actor, outcome)
        done = f"Closed: {OUTCOME_LABELS[outcome]}."
        if waiting:
            replies = "reply" if waiting == 1 else "replies"
            done += f" {waiting} deferred {replies} cancelled: nothing more will go."
        return done

    @conversation_action("cancel-deferred")
    def cancel_deferred(cid: str) -> str:
        if parts.desk.cancel_deferred(cid, _user().actor, _text("outbox_id", 100)):
            return "The deferred reply was cancelled: it will not be sent."
        return "That reply is no longer waiting (it went, or was cancelled already)."

    @bp.post("/c/<conversation_id>/plan")
    def create_plan(conversation_id: str) -> ResponseReturnValue:
        conversation_id = _conversation(conversation_id)
        terms = {
            "instalment": _text("instalment", 20, required=False),
            "frequency": _text("frequency", 20, required=False),
            "first_due": _text("first_due", 20, required=False),
        }
        back = (
            url_for("console.conversation", conversation_id=conversation_id)
            + "?"
            + urlencode({"preview": "1", **terms})
        )
        try:
            result = parts.desk.create_plan(
                conversation_id, _user().actor, terms["instalment"], terms["frequency"], terms["first_due"],
                confirmed=request.form.get("confirmed") == "1", request_key=_text("request_key", 100),
                replaces=_text("replaces", 64, required=False) or None,
            )  # fmt: skip
        except AlreadyClaimed as exc:
            flash(f"{exc.by} has already claimed this conversation.", "error")
            return redirect(back + "#plan")
        except (ConsoleError, InvalidRequest) as exc:
            flash(str(exc), "error")
            return redirect(back + "#plan")
        message = verdict_sentence(result.verdict)
        if result.replaced:
            start = (
                "This change was already made (the form was sent twice)" if result.repeated
                else f"Plan changed: the earlier plan ({result.replaced}) has ended. New plan"
            )  # fmt: skip
        elif result.repeated:
            start = "This plan was already set up (the form was sent twice)"
        else:
            start = "Plan set up"
        flash(f"{start}: {result.option.summary} Payment link and schedule to the person: {message}", "ok")
        return redirect(url_for("console.conversation", conversation_id=conversation_id))

    # --- mail set aside ------------------------------------------------------------------------

    def dead_letter_page(channel: str, entry_id: str, *, reveal: bool = False, error: str = "",
                         account_id: str = "", status: int = 200) -> ResponseReturnValue:  # fmt: skip
        letter = parts.inbox.dead_letter(channel, entry_id)
        mail = parts.desk.read_dead_letter(channel, entry_id, _user().actor) if letter else None
        if letter is None or mail is None:
            raise NotFound("That mail is not kept (any more).")
        sender = mail.sender if reveal else (mask_email(mail.sender) if "@" in mail.sender else "")
        return render_template(
            "console/dead_letter.html", channel=channel, entry_id=entry_id, letter=letter, mail=mail,
            sender=sender, revealed=reveal, error=error, account_id=account_id,
            received=zones.time(letter.at), attached=parts.inbox.dead_letter_attached(channel, entry_id),
        ), status  # fmt: skip

    @bp.get("/dead-letters/<channel>/<entry_id>")
    def dead_letter(channel: str, entry_id: str) -> ResponseReturnValue:
        return dead_letter_page(channel, entry_id)

    @bp.post("/dead-letters/<channel>/<entry_id>/reveal")
    def dead_letter_reveal(channel: str, entry_id: str) -> ResponseReturnValue:
        return dead_letter_page(channel, entry_id, reveal=True)

    @bp.post("/dead-letters/<channel>/<entry_id>/attach")
    def dead_letter_attach(channel: str, entry_id: str) -> ResponseReturnValue:
        if parts.inbox.dead_letter(channel, entry_id) is None:
            raise NotFound("That mail is not kept (any more).")
        account_id = (request.form.get("account_id") or "").strip()[:100]
        try:
            if not account_id:
                raise InvalidRequest("account id: please fill this in")
            cid = parts.desk.attach_dead_letter(entry_id, account_id, _user().actor, channel)
        except (ConsoleError, InvalidRequest) as exc:
            return dead_letter_page(channel, entry_id, error=str(exc), account_id=account_id, status=400)
        flash("The mail is now part of this conversation: answer it here.", "ok")
        return redirect(url_for("console.conversation", conversation_id=cid))

    @conversation_action("watch", supervisor=True)
    def watch(cid: str) -> str:
        parts.desk.watch(cid, _user().actor)
        return "You are watching this conversation."

    @conversation_action("unwatch", supervisor=True)
    def unwatch(cid: str) -> str:
        parts.desk.unwatch(cid, _user().actor)
        return "You stopped watching."

    @conversation_action("reassign", supervisor=True)
    def reassign(cid: str) -> str:
        to_agent = _text("to_agent", 64)
        if parts.agent_directory.get(to_agent) is None:
            raise InvalidRequest("to agent: no such agent")
        parts.desk.reassign(cid, to_agent, _user().actor)
        return f"Reassigned to {to_agent}."

    @conversation_action("reply")
    def reply(cid: str) -> str:
        text = _text("text", MAX_REPLY)
        channel = (request.form.get("channel") or "").strip() or None
        if channel is not None and channel not in CHANNELS:
            raise InvalidRequest("channel: sms, telegram or email")
        verdict = parts.desk.reply(cid, _user().actor, text, channel=channel)
        return str(verdict_json(verdict)["message"])

    @conversation_action("verify")
    def verify(cid: str) -> str:
        verdict = parts.desk.ask_verification(cid, _user().actor)
        return "Verification question: " + str(verdict_json(verdict)["message"])

    @conversation_action("verified")
    def check_verification(cid: str) -> str:
        if parts.desk.check_verification(cid, _user().actor):
            return "Their answer matches the account: verified. You may now speak about the debt."
        raise DeskError(
            "Their last message does not match the account: they are not verified. "
            "Say nothing about the debt."
        )

    @conversation_action("note")
    def note(cid: str) -> str:
        parts.desk.add_note(cid, _user().actor, _text("text", MAX_NOTE))
        return "Note added."

    @conversation_action("flag")
    def flag(cid: str) -> str:
        name = _choice("flag", FLAGS)
        on = _choice("on", ("1", "0")) == "1"
        parts.desk.set_flag(cid, _user().actor, name, on, detail=_text("detail", required=False))
        return f"Flag {name.replace('_', ' ')} {'set' if on else 'cleared'}."

    @conversation_action("preference")
    def preference(cid: str) -> str:
        name = _choice("name", ("channel", "language", "contact_window"))
        parts.desk.set_preference(cid, _user().actor, name, _text("value", 200))
        return f"Preference {name.replace('_', ' ')} saved."

    @conversation_action("opt-out")
    def opt_out(cid: str) -> str:
        channel = _choice("channel", CHANNELS)
        parts.desk.opt_out(cid, _user().actor, channel, _text("reason"))
        return f"Opted out on {channel}."

    @conversation_action("opt-in")
    def opt_in(cid: str) -> str:
        channel = _choice("channel", CHANNELS)
        parts.desk.opt_in(cid, _user().actor, channel, _text("reason"))
        return f"Opted back in on {channel}."

    @conversation_action("callback")
    def callback(cid: str) -> str:
        how = _choice("how", ("phone", "video"))
        parts.desk.record_callback(cid, _user().actor, _text("when", 200), how)
        return "Callback recorded."

    @bp.get("/c/<conversation_id>/audit")
    @supervisor_only
    def audit(conversation_id: str) -> ResponseReturnValue:
        conversation_id = _conversation(conversation_id)
        rows = []
        for entry in parts.desk.audit(conversation_id):
            rest = {k: v for k, v in entry.items() if k not in ("at", "kind", "by", "conversation_id", "id")}
            kind = entry.get("kind", "")
            rows.append(
                {
                    "at": _since(entry.get("at", "")),
                    # A hand-off change says which (``handoff: claim``); the desk's own say their action.
                    "kind": f"{kind}: {entry['event']}" if kind == "handoff" and entry.get("event") else kind,
                    "by": entry.get("by", "") or entry.get("actor", ""),
                    "detail": ", ".join(f"{k}={v}" for k, v in sorted(rest.items()) if v),
                }
            )
        return render_template("console/audit.html", cid=conversation_id, rows=rows)

    # --- supervisors: canned replies, agents ----------------------------------------------------

    def canned_page(language: str, error: str = "", status: int = 200) -> ResponseReturnValue:
        replies = parts.canned.list(language)
        return render_template(
            "console/canned.html", language=language, languages=LANGUAGES, replies=replies, error=error,
        ), status  # fmt: skip

    @bp.get("/canned")
    @supervisor_only
    def canned() -> ResponseReturnValue:
        language = request.args.get("language", "en")
        return canned_page(language if language in LANGUAGES else "en")

    @bp.post("/canned")
    @supervisor_only
    def canned_save() -> ResponseReturnValue:
        language = request.form.get("language", "en")
        language = language if language in LANGUAGES else "en"
        try:
            parts.canned.save(
                language, _text("title", 80), _text("text", 1000), _user().actor,
                id=(request.form.get("id") or "").strip()[:64],
            )  # fmt: skip
        except (ConsoleError, InvalidRequest) as exc:
            return canned_page(language, str(exc), 400)
        flash("Saved.", "ok")
        return redirect(url_for("console.canned", language=language))

    @bp.post("/canned/delete")
    @supervisor_only
    def canned_delete() -> ResponseReturnValue:
        language = request.form.get("language", "en")
        language = language if language in LANGUAGES else "en"
        try:
            parts.canned.delete(_text("id", 64), language, _user().actor)
        except (ConsoleError, InvalidRequest) as exc:
            return canned_page(language, str(exc), 400)
        flash("Deleted.", "ok")
        return redirect(url_for("console.canned", language=language))

    def agents_page(
        link: str = "", link_for: str = "", error: str = "", status: int = 200
    ) -> ResponseReturnValue:
        return render_template(
            "console/agents.html", agents=parts.agent_directory.list(), link=link, link_for=link_for,
            error=error,
        ), status  # fmt: skip

    @bp.get("/agents")
    @supervisor_only
    def agents() -> ResponseReturnValue:
        return agents_page()

    @bp.post("/agents/<name>/disable")
    @supervisor_only
    def agent_disable(name: str) -> ResponseReturnValue:
        if name == _user().name:
            return agents_page(error="You cannot disable yourself.", status=400)
        try:
            parts.agent_directory.disable(name, actor=_user().name)
        except NotFound as exc:
            return agents_page(error=str(exc), status=404)
        sessions.end_all(name)
        flash(f"{name} can no longer sign in.", "ok")
        return redirect(url_for("console.agents"))

    @bp.post("/agents/<name>/link")
    @supervisor_only
    def agent_link(name: str) -> ResponseReturnValue:
        directory: AgentDirectory = parts.agent_directory
        try:
            token = directory.issue_password_token(name)
        except NotFound as exc:
            return agents_page(error=str(exc), status=404)
        # Shown once, in this answer only (never stored in the session cookie as a message).
        return agents_page(link=f"{config.server.public_url}/console/set-password/{token}", link_for=name)

    return bp
