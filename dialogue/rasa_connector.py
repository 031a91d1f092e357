"""The Rasa input channel the worker talks to (loaded by the Rasa server from credentials.yml).

It differs from Rasa's stock REST channel so that every message gets exactly one answer:
- it requires the same token as Rasa's HTTP API (the stock channel is open to anyone);
- it answers 503 when the action server is down, instead of letting Rasa skip the custom
  actions and answer as if nothing happened, so the worker keeps the message and retries (the
  action server's health is asked before a message, but a healthy answer is trusted for a few
  seconds and forgotten at any action failure: :class:`ActionsHealth`);
- a custom action that fails in the middle of a turn (Rasa logs "Bot will continue, but the
  actions events are lost" and carries on) aborts the turn before the tracker is saved
  (:func:`install_turn_guard`): nothing of it is kept, and the worker is told to retry (503
  when the action server is down, 500 ``action_failed`` when it is up, which the worker
  counts towards giving the message to a person);
- it is idempotent per message: ``message_id`` becomes Rasa's message id, and a message the
  tracker already holds is not handled again: the answers it got then are returned;
- it answers 503 when handling fails otherwise, instead of 200 with whatever was collected.

Why abort rather than roll back: Rasa saves the tracker once, at the end of a turn
(``MessageProcessor.handle_message``), so refusing that save leaves the stored conversation
exactly as it was before the user message; the retry then runs the whole turn again on a clean
tracker. The actions that record something (plans, disputes) do it once per message id, so
the steps that had succeeded before the failure are not repeated in effect.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from rasa.core.actions.action import ActionExecutionRejection, RemoteAction
from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from rasa.core.processor import MessageProcessor
from rasa.core.tracker_store import FailSafeTrackerStore
from rasa.shared.core.events import BotUttered, Event, UserUttered
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

logger = logging.getLogger(__name__)

#: Where the action server answers health checks (from the environment set by the launcher).
ACTIONS_URL_ENV = "DEBTBOT_ACTIONS_URL"

#: How long (seconds) a healthy answer from the action server is trusted, unless an action fails.
HEALTH_INTERVAL = 3.0


class _Failures:
    """How many custom actions have failed in this process (any turn): a healthy answer given
    before the latest failure is not trusted any more."""

    count = 0


class TurnFailed(Exception):
    """A custom action failed during this turn: the turn is abandoned, its tracker not saved."""

    def __init__(self, actions: Iterable[str]) -> None:
        self.actions = tuple(actions)
        super().__init__(f"custom action(s) failed: {', '.join(self.actions)}")


class TrackerStoreFailed(Exception):
    """The tracker store could not be read or written during this turn."""


@dataclass
class _Turn:
    """One message being handled through this channel: the custom actions that failed in it."""

    failed: list[str] = field(default_factory=list)


#: The turn being handled in this task (``None`` outside our channel: Rasa's own API routes,
#: e.g. ``trigger_intent``, keep Rasa's behaviour).
_TURN: ContextVar[_Turn | None] = ContextVar("debtbot_turn", default=None)


def install_turn_guard() -> None:
    """Make a failed custom action abort the turn it happens in, instead of being skipped.

    Three small wrappers, active only while our channel handles a message:
    ``RemoteAction.run`` notes a failure (every way Rasa calls the action server goes through
    it, including form validation and custom slot mappings, whose failures Rasa swallows);
    ``MessageProcessor._run_action`` raises :class:`TurnFailed` right after the action that
    failed, so no later action of the turn runs on the incomplete state; and
    ``MessageProcessor.save_tracker`` refuses to save a failed turn (the catch-all). Also, the
    tracker store's errors fail the turn (503, retried) instead of Rasa's silent fallback.
    Idempotent; Rasa 3.6's internals (the versions are pinned).
    """
    if getattr(MessageProcessor, "_debtbot_turn_guard", False):
        return
    run_remote = RemoteAction.run
    run_action = MessageProcessor._run_action
    save_tracker = MessageProcessor.save_tracker

    async def noted_run(self: RemoteAction, *args: Any, **kwargs: Any) -> list[Event]:
        try:
            return await run_remote(self, *args, **kwargs)  # type: ignore[no-any-return]
        except ActionExecutionRejection:
            raise  # a form rejecting its slot: part of the dialogue, not a failure
        except Exception:
            _Failures.count += 1
            turn = _TURN.get()
            if turn is not None:
                turn.failed.append(self.name())
            raise

    async def guarded_run_action(self: MessageProcessor, *args: Any, **kwargs: Any) -> bool:
        result = await run_action(self, *args, **kwargs)
        turn = _TURN.get()
        if turn is not None and turn.failed:
            raise TurnFailed(turn.failed)
        return result  # type: ignore[no-any-return]

    async def guarded_save(self: MessageProcessor, tracker: Any) -> None:
        turn = _TURN.get()
        if turn is not None and turn.failed:
            raise TurnFailed(turn.failed)
        await save_tracker(self, tracker)

    def strict(fallback: Callable[[FailSafeTrackerStore, Exception], None]) -> Any:
        def on_error(self: FailSafeTrackerStore, error: Exception) -> None:
            if _TURN.get() is not None:
                # Rasa would fall back to an in-memory store (the turn then vanishes at the
                # next restart) or start the conversation afresh: fail the turn instead.
                raise TrackerStoreFailed(f"tracker store: {type(error).__name__}") from error
            fallback(self, error)

        return on_error

    FailSafeTrackerStore.on_tracker_store_error = strict(FailSafeTrackerStore.on_tracker_store_error)
    FailSafeTrackerStore.on_tracker_store_retrieve_error = strict(
        FailSafeTrackerStore.on_tracker_store_retrieve_error
    )
    RemoteAction.run = noted_run
    MessageProcessor._run_action = guarded_run_action
    MessageProcessor.save_tracker = guarded_save
    MessageProcessor._debtbot_turn_guard = True


def earlier_answers(events: Iterable[Event], message_id: str) -> list[BotUttered] | None:
    """What the bot said after the user message ``message_id`` (up to the next user message),
    or ``None`` when the tracker holds no such message (it was never handled)."""
    answers: list[BotUttered] | None = None
    for event in events:
        if isinstance(event, UserUttered):
            if answers is not None:
                break
            if event.message_id == message_id:
                answers = []
        elif answers is not None and isinstance(event, BotUttered):
            answers.append(event)
    return answers


class _ChannelCollector(CollectingOutputChannel):
    """Collects the replies under the person's channel name, so responses in the domain can
    have channel variants (``channel: email`` gets the longer wording)."""

    def __init__(self, channel: str) -> None:
        super().__init__()
        self._channel = channel

    def name(self) -> str:
        return self._channel


async def _http_health(url: str) -> bool:
    """``GET <url>/health`` answers 200 within 3 seconds."""
    try:
        timeout = aiohttp.ClientTimeout(total=3)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(f"{url}/health") as answer,
        ):
            return answer.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


class ActionsHealth:
    """Whether the action server is up, without asking it before every message.

    A healthy answer is trusted for ``interval`` seconds (monotonic ``clock``), and not at all
    once a custom action has failed since it was asked (:func:`install_turn_guard` counts the
    failures), so the next message asks again at once. An unhealthy answer is never kept: each
    message asks until the server answers. Concurrent callers share one request. Within the
    interval a server that has just died is caught by the turn guard: its action fails, the
    turn is abandoned and :meth:`check` (never cached) decides between 503 and 500.
    """

    def __init__(
        self,
        url: str,
        *,
        interval: float = HEALTH_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        probe: Callable[[str], Awaitable[bool]] = _http_health,
    ) -> None:
        self._url = url
        self._interval = interval
        self._clock = clock
        self._probe = probe
        self._trusted: tuple[int, float] | None = None  # (failure count, until) of a healthy answer
        self._asking: tuple[int, asyncio.Task[bool]] | None = None  # (failure count, request)

    async def up(self) -> bool:
        """Up, from a recent healthy answer if there is one, else from asking now."""
        if not self._url:
            return True
        trusted = self._trusted
        if trusted is not None and trusted[0] == _Failures.count and self._clock() < trusted[1]:
            return True
        return await self.check()

    async def check(self) -> bool:
        """Up, from an answer asked after the latest action failure (shared with concurrent
        callers); a healthy answer is then trusted for the interval."""
        if not self._url:
            return True
        failures = _Failures.count
        asking = self._asking
        if (
            asking is None
            or asking[0] != failures  # asked before the latest failure: ask again
            or asking[1].done()  # e.g. cancelled before it started (its loop shut down)
            or asking[1].get_loop() is not asyncio.get_running_loop()
        ):
            asking = (failures, asyncio.ensure_future(self._ask(failures)))
            self._asking = asking
        # shielded: a caller that goes away (its request cancelled) does not cancel the others'.
        return await asyncio.shield(asking[1])

    async def _ask(self, failures: int) -> bool:
        asked_at = self._clock()
        try:
            healthy = await self._probe(self._url)
        finally:
            if self._asking is not None and self._asking[1] is asyncio.current_task():
                self._asking = None
        if healthy and failures == _Failures.count:
            self._trusted = (failures, asked_at + self._interval)
        elif not healthy:
            self._trusted = None
        return healthy


class DebtbotInput(InputChannel):
    """``POST /webhooks/debtbot/webhook`` with ``{sender, message, input_channel, metadata}``."""

    @classmethod
    def name(cls) -> str:
        return "debtbot"

    def __init__(
        self, token: str, actions_url: str | None = None, *, health: ActionsHealth | None = None
    ) -> None:
        if not token:
            raise ValueError("the debtbot channel needs a token (RASA_AUTH_TOKEN)")
        self._token = token
        actions_url = (actions_url or os.environ.get(ACTIONS_URL_ENV, "")).rstrip("/")
        self._health = health or ActionsHealth(actions_url)
        # The channel is built in the Rasa server process at start-up: arm the guard there.
        install_turn_guard()

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> DebtbotInput:
        credentials = credentials or {}
        return cls(token=str(credentials.get("token", "")), actions_url=credentials.get("actions_url"))

    def _authorised(self, request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        given = header[len("Bearer ") :] if header.startswith("Bearer ") else ""
        return hmac.compare_digest(given.encode(), self._token.encode())

    @staticmethod
    async def _replay(
        request: Request, sender: str, message_id: str, collector: CollectingOutputChannel
    ) -> bool:
        """Collect the answers a message already handled got then; ``False`` if it was not."""
        agent = getattr(request.app.ctx, "agent", None)
        store = getattr(agent, "tracker_store", None)
        if store is None:
            return False
        tracker = await store.retrieve_full_tracker(sender)
        answers = earlier_answers(tracker.events if tracker is not None else (), message_id)
        if answers is None:
            return False
        for answer in answers:
            await collector.send_response(sender, answer.message())
        return True

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = Blueprint("debtbot_webhook", __name__)

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            if not self._authorised(request):
                return response.json({"error": "missing or wrong bearer token"}, status=401)
            body = request.json if isinstance(request.json, dict) else {}
            sender = body.get("sender")
            text = body.get("message")
            if not isinstance(sender, str) or not sender or not isinstance(text, str):
                return response.json({"error": "sender and message are required strings"}, status=400)
            message_id = body.get("message_id")
            if message_id is not None and (not isinstance(message_id, str) or not message_id):
                return response.json({"error": "message_id must be a non-empty string"}, status=400)
            input_channel = str(body.get("input_channel") or self.name())
            collector = _ChannelCollector(input_channel)
            turn = _Turn()
            token = _TURN.set(turn)
            try:
                return await self._handle(request, on_new_message, collector, sender, text, message_id,
                                          input_channel, body.get("metadata") or {})  # fmt: skip
            finally:
                _TURN.reset(token)

        return webhook

    async def _handle(
        self,
        request: Request,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
        collector: CollectingOutputChannel,
        sender: str,
        text: str,
        message_id: str | None,
        input_channel: str,
        metadata: dict[str, Any],
    ) -> HTTPResponse:
        try:
            # A retry of a message Rasa already handled (the worker died before moving on):
            # the same answers again, and the dialogue does not hear it twice. Read before
            # taking Rasa's conversation lock (it is not re-entrant); the worker sends one
            # conversation's messages one at a time, and the actions that record something
            # are idempotent per message id besides.
            if message_id and await self._replay(request, sender, message_id, collector):
                logger.info("debtbot channel: message %s was already handled; earlier answers returned",
                            message_id)  # fmt: skip
                return response.json(collector.messages)
            if not await self._health.up():
                return response.json({"error": "action server unavailable"}, status=503)
            await on_new_message(
                UserMessage(
                    text, collector, sender, input_channel=input_channel, message_id=message_id,
                    metadata=metadata,
                )
            )  # fmt: skip
        except TurnFailed as exc:
            # Nothing of the turn was saved. A dead action server is an outage (wait); a live
            # one whose action failed may fail again: the worker counts those.
            up = await self._health.check()
            logger.error("debtbot channel: %s in conversation %s; turn abandoned (action server %s)",
                         exc, sender, "up" if up else "down")  # fmt: skip
            if not up:
                return response.json({"error": "action server unavailable"}, status=503)
            return response.json({"error": "action_failed", "actions": list(exc.actions)}, status=500)
        except Exception as exc:
            logger.exception("debtbot channel: handling a message failed")
            return response.json({"error": f"handling failed: {type(exc).__name__}"}, status=503)
        return response.json(collector.messages)
