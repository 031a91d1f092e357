"""Payment plans from the console (``DeskPlans``, part of ``bot.console.desk.Desk``): the options
the policy offers, a plan previewed from the agent's terms, and a plan set up or changed (once per
request, in the person's language, through the agents' reply path).
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, cast
from zoneinfo import ZoneInfo

import redis

from bot.console.desk_base import DeskError, _decoded
from bot.console.desk_replies import DeskReplies
from bot.console.handoff import Actor
from bot.console.plans import (
    PlanOption,
    PlanResult,
    StoredPlan,
    plan_changed_text,
    plan_created_text,
    policy_for,
)
from bot.outreach.payments import is_replaced
from bot.store.accounts import Account
from dialogue.backend import BackendError
from dialogue.plans import Frequency, Plan, PlanError, PlanOutsidePolicy, build_plan, plan_options

#: A plan request's key (from the form): a double click or a retried POST makes one plan.
_REQUEST_KEY = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
#: How long a plan request's result is kept (a retried POST gets it back, not a second plan).
PLAN_REQUEST_TTL = 7 * 24 * 3600
#: How long one request may take before another attempt with its key may go ahead.
PLAN_LOCK_SECONDS = 60
#: Plan ids (``RedisDialogueBackend.create_plan``: 16 hex digits; any short token is read).
_PLAN_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _amount(value: str | Decimal) -> Decimal:
    """An amount the agent typed ("40", "40.50", "$1,040.50")."""
    if isinstance(value, Decimal):
        return value
    cleaned = re.sub(r"[\s,$€£]", "", str(value))
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        raise DeskError(f"the instalment: an amount such as 40.50, not {str(value)[:40]!r}") from None
    if not amount.is_finite() or amount <= 0:
        raise DeskError("the instalment must be more than zero")
    return amount


class DeskPlans(DeskReplies):
    """Payment plans: options, preview, set up and change."""

    def plan_options(self, conversation_id: str) -> list[PlanOption]:
        """The plans the policy offers this account today (in the person's zone), described in
        words: the same options the dialogue lists."""
        self._check(conversation_id)
        account, policy, today = self._plan_terms(conversation_id)
        try:
            options = plan_options(account.balance, account.currency, policy, today)
        except PlanError as exc:
            raise DeskError(f"no plan can be offered on this account: {exc}") from exc
        return [PlanOption.of(plan, account.country) for plan in options]

    def preview_plan(
        self, conversation_id: str, instalment: str | Decimal, frequency: str, first_due: str | date
    ) -> PlanOption:
        """The plan for these terms, read back (nothing is stored). Outside the policy: a
        ``DeskError`` saying which rule, in words."""
        self._check(conversation_id)
        account, _, _ = self._plan_terms(conversation_id)
        plan = self._build_plan(conversation_id, instalment, frequency, first_due)
        return PlanOption.of(plan, account.country)

    def active_plans(self, conversation_id: str) -> list[StoredPlan]:
        """The account's plans that are still the person's: not replaced by another (what
        reminders go by, ``bot.outreach.payments.is_replaced``), oldest first."""
        self._check(conversation_id)
        return [plan for plan in self._stored_plans(self._account(conversation_id)) if plan.active]

    def create_plan(
        self,
        conversation_id: str,
        agent: Actor,
        instalment: str | Decimal,
        frequency: str,
        first_due: str | date,
        *,
        confirmed: bool,
        request_key: str,
        replaces: str | None = None,
    ) -> PlanResult:
        """Set up the plan the person agreed to (``confirmed``: the agent ticked that they did),
        once per ``request_key`` (the form's: a double click or a retried POST gets the first
        result back, ``repeated``), then tell the person the plan and the payment link in their
        language through the agents' reply path (the gate decides; the verdict is in the
        result). Stored, announced (``plan.created``) and linked exactly as the bot does it.
        Nothing about the debt before verification.

        ``replaces``: a change of plan. The new plan replaces that one (one of the account's
        active plans, else ``DeskError``), which ends: ``replaced_by`` / ``replaced_at`` in its
        state, the creditor's ``plan.replaced``, no more reminders for it; the person is told the
        earlier plan ended. The writes go intent, act, result, so a crash between any two leaves
        the person exactly one plan to be reminded of, and the retry with the same
        ``request_key`` finishes the change (no second plan, no second message):

        1. the old plan's state records the change started (``replacing`` = the request's key,
           ``replacing_after`` = how many plans the account has), atomically, once: a second
           change of the same plan is refused while this one is fresh;
        2. the new plan is stored (once per request, as any plan): from here reminders skip the
           old plan (``is_replaced``: the account has more plans than when the change started);
        3. the old plan is marked replaced and ``plan.replaced`` announced (once);
        4. the person is told (a fixed outbox id), the history and audit written, and the
           request's result kept."""
        self._check(conversation_id)
        if not isinstance(request_key, str) or not _REQUEST_KEY.match(request_key):
            raise DeskError("this form is out of date: preview the plan again, then set it up")
        if replaces is not None and (not isinstance(replaces, str) or not _PLAN_ID.match(replaces)):
            raise DeskError("the plan to change is not one of this account's plans")
        marker = self.keys.console("plans", "request", request_key)
        done = self.redis.get(marker)
        if done is not None:
            return PlanResult.from_json(json.loads(done), repeated=True)
        if not confirmed:
            raise DeskError(
                "Tick \u201cthe person agreed to this schedule\u201d first: a plan is only set up with "
                "their agreement."
            )
        account, _, _ = self._plan_terms(conversation_id)
        if not self._is_verified(conversation_id):
            raise DeskError(
                "The person is not verified: nothing about the debt may be said yet. Ask the "
                "verification question first, check the answer, then mark them verified."
            )
        if replaces is not None:
            self._check_replaceable(account.account_id, replaces, request_key)
        plan = self._build_plan(conversation_id, instalment, frequency, first_due)
        facts = self._facts(conversation_id)
        addresses = self._addresses(conversation_id, account)
        channel = self._current_channel(conversation_id, facts.state, addresses)
        if not channel:
            raise DeskError("the person has no address to send the plan and its payment link to")
        # One attempt at a time per request; the steps below are idempotent (the backend's
        # once-marker, a fixed outbox id, a once history event), so a crashed attempt is
        # finished by the next one with the same key.
        lock = f"{marker}:lock"
        if not self.redis.set(lock, agent.id, nx=True, ex=PLAN_LOCK_SECONDS):
            raise DeskError(
                "This plan is being set up already (a second click?): reload the page in a moment."
            )
        try:
            self._hold(conversation_id, agent)
            assert self.plans is not None  # _plan_terms checked it
            if replaces is not None:
                self._start_replacing(account.account_id, replaces, request_key)
            created = self.plans.create_plan(
                account.account_id, conversation_id, plan, kind="plan", channel=channel,
                message_id=f"console:{request_key}",
            )  # fmt: skip
            if replaces is not None:
                try:
                    self.plans.replace_plan(replaces, created.plan_id, at=self.clock.now())
                except BackendError as exc:
                    raise DeskError(f"The plan could not be changed: {exc}") from exc
            words = plan_changed_text if replaces is not None else plan_created_text
            text = words(plan, created.payment_link, facts.language, channel, account.country)
            outbox_id = "agent:" + hashlib.sha256(f"plan:{request_key}".encode()).hexdigest()[:32]
            verdict = self._send(
                conversation_id, text, channel, facts, by=self._by(agent), kind="agent", verified=True,
                who=agent, outbox_id=outbox_id,
            )  # fmt: skip
            option = PlanOption.of(plan, account.country)
            self.conversation_history.event(
                conversation_id, "plan_created", by=self._by(agent), text=option.summary, once=request_key,
                detail={"plan_id": created.plan_id, "frequency": option.frequency,
                        "instalment": str(option.instalment), "first_due": option.first_due.isoformat(),
                        "count": option.count, "message": verdict.outcome,
                        **({"replaces": replaces} if replaces is not None else {})},
            )  # fmt: skip
            if replaces is not None:
                self.conversation_history.event(
                    conversation_id, "plan_replaced", by=self._by(agent), once=request_key,
                    text=f"Plan {replaces} ended: replaced by plan {created.plan_id}",
                    detail={"plan_id": replaces, "replaced_by": created.plan_id},
                )  # fmt: skip
            self._audit(
                agent, "plan", conversation_id, plan_id=created.plan_id, frequency=option.frequency,
                count=str(option.count), outcome=verdict.outcome, rule=verdict.rule,
                outbox_id=verdict.outbox_id,
            )  # fmt: skip
            if replaces is not None:
                self._audit(agent, "plan_replaced", conversation_id, plan_id=replaces,
                            replaced_by=created.plan_id)  # fmt: skip
            self._touch(conversation_id, agent)
            result = PlanResult(
                created.plan_id, created.payment_link, option, verdict.to_json(), replaced=replaces or ""
            )
            self.redis.set(marker, json.dumps(result.to_json()), ex=PLAN_REQUEST_TTL)
            return result
        finally:
            self.redis.delete(lock)

    def _check_replaceable(self, account_id: str, plan_id: str, request_key: str) -> None:
        """``plan_id`` is one of the account's plans and still active, or this request's own
        change of it (a retry finishing what a crashed attempt started)."""
        plans_key = self.keys.account_plans(account_id)
        ids = [raw.decode() for raw in self.redis.lrange(plans_key, 0, -1)]
        if plan_id not in ids or not self.redis.exists(self.keys.plan(plan_id)):
            raise DeskError("The plan to change is not one of this account's plans: reload the page.")
        state = _decoded(self.redis.hgetall(self._plan_state_key(plan_id)))
        if state.get("replacing") == request_key:
            return
        if is_replaced(state, len(ids)):
            raise DeskError(
                "That plan was changed already (it has been replaced): reload the page to see the "
                "person's current plan."
            )

    def _start_replacing(self, account_id: str, plan_id: str, request_key: str) -> None:
        """Record, on the old plan, that this request is changing it (before the new plan is
        stored): once, atomically; a fresh change by another request is refused, a stale one
        (its new plan never stored) taken over."""
        state_key = self._plan_state_key(plan_id)
        plans_key = self.keys.account_plans(account_id)
        with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(state_key, plans_key)
                    # Watched, the pipeline answers at once (typed as a pipeline).
                    state = _decoded(cast("dict[bytes, bytes]", pipe.hgetall(state_key)))
                    count = cast("int", pipe.llen(plans_key))
                    if state.get("replacing") == request_key:
                        pipe.unwatch()
                        return
                    if is_replaced(state, count):
                        raise DeskError(
                            "That plan was changed already (it has been replaced): reload the page "
                            "to see the person's current plan."
                        )
                    now = self.clock.timestamp()
                    try:
                        started = float(state.get("replacing_at", ""))
                    except ValueError:
                        started = None
                    if state.get("replacing") and started is not None and now - started < PLAN_LOCK_SECONDS:
                        raise DeskError(
                            "That plan is being changed right now (another agent, or another tab): "
                            "reload the page in a minute."
                        )
                    pipe.multi()
                    pipe.hset(state_key, mapping={
                        "replacing": request_key, "replacing_after": str(count), "replacing_at": repr(now),
                    })  # fmt: skip
                    pipe.execute()
                    return
                except redis.WatchError:
                    continue

    def _plan_terms(self, conversation_id: str) -> tuple[Account, Any, date]:
        """The account, its plan policy, and today in the person's zone."""
        account = self._account(conversation_id)
        if account is None:
            raise DeskError("this conversation has no account: plans are set up on accounts")
        if self.plans is None:
            raise DeskError("payment plans cannot be set up from the console here (no plan store)")
        policy = policy_for(self.plans.settings(), account.country)
        today = self.clock.now().astimezone(ZoneInfo(self._zone(account))).date()
        return account, policy, today

    def _build_plan(
        self, conversation_id: str, instalment: str | Decimal, frequency: str, first_due: str | date
    ) -> Plan:
        account, policy, today = self._plan_terms(conversation_id)
        amount = _amount(instalment)
        try:
            how_often = Frequency(str(frequency).strip().lower())
        except ValueError:
            raise DeskError(f"how often: one of {', '.join(f.value for f in policy.frequencies)}") from None
        if isinstance(first_due, date):
            day = first_due
        else:
            try:
                day = date.fromisoformat(str(first_due).strip())
            except ValueError:
                raise DeskError("the first payment date: a date such as 2026-03-16") from None
        try:
            return build_plan(account.balance, account.currency, amount, how_often, day, policy, today)
        except PlanOutsidePolicy as exc:
            raise DeskError(f"Outside the plan policy: {exc}.") from exc
        except PlanError as exc:
            raise DeskError(f"Not a plan: {exc}.") from exc
