"""A small synchronous client for the Rasa server's HTTP API, as the worker uses it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx


class RasaError(Exception):
    """Root of the Rasa client's errors."""


class RasaUnavailable(RasaError):
    """Rasa (or the action server behind it) cannot answer now; try again later."""


class RasaRejected(RasaError):
    """Rasa refused the request itself (bad token, bad body): retrying will not help."""


class RasaActionFailed(RasaError):
    """A custom action failed while the action server was up; Rasa kept nothing of the turn.

    It may work next time (a crash mid-request) or never (a bug): callers retry a few times,
    then hand the message to a person."""

    def __init__(self, message: str, actions: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.actions = actions


@dataclass(frozen=True)
class BotReply:
    """One message the bot wants to say."""

    text: str
    buttons: tuple[tuple[str, str], ...] = ()
    custom: Mapping[str, Any] = field(default_factory=dict)


class RasaClient:
    """Talks to ``rasa run --enable-api`` with its auth token.

    Messages go through the ``debtbot`` input channel (``dialogue.rasa_connector``), which
    keeps metadata and reports failures as 503 so callers can retry.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        timeout: float = 30.0,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._token = token
        self._client = httpx.Client(
            timeout=timeout, headers={"Authorization": f"Bearer {token}"}, transport=transport
        )

    def close(self) -> None:
        """Release the connection pool."""
        self._client.close()

    def _conversation_request(
        self, conversation_id: str, method: str, path: str, **kwargs: Any
    ) -> httpx.Response:
        """A call about one conversation (``dialogue.rasa_pool.RasaPool`` picks its server here)."""
        return self._request(method, path, **kwargs)

    def _request(self, method: str, path: str, *, base: str | None = None, **kwargs: Any) -> httpx.Response:
        try:
            answer = self._client.request(method, f"{base or self._base}{path}", **kwargs)
        except httpx.HTTPError as exc:
            raise RasaUnavailable(f"Rasa server unreachable: {type(exc).__name__}") from exc
        if answer.status_code == 500 and _error_of(answer) == "action_failed":
            actions = tuple(str(a) for a in answer.json().get("actions") or ())
            raise RasaActionFailed(f"custom action(s) failed: {', '.join(actions) or '?'}", actions)
        # 409: no model loaded yet (the server is starting); 5xx: Rasa or its actions down.
        if answer.status_code == 409 or answer.status_code >= 500:
            raise RasaUnavailable(f"Rasa server answered {answer.status_code}")
        if answer.status_code >= 400:
            raise RasaRejected(f"Rasa server refused the request: {answer.status_code} {answer.text[:200]}")
        return answer

    def send_message(
        self,
        conversation_id: str,
        text: str,
        *,
        channel: str,
        metadata: Mapping[str, Any],
        message_id: str | None = None,
    ) -> list[BotReply]:
        """Hand one user message to the dialogue and return what the bot says back.

        With ``message_id`` (stable across retries, e.g. ``sms:<MessageSid>``) the dialogue
        handles the message once: a repeat returns the answers it got the first time.
        Raises :class:`RasaUnavailable` (wait and retry), :class:`RasaActionFailed` (retry a
        few times) or :class:`RasaRejected` (do not retry).
        """
        body: dict[str, Any] = {
            "sender": conversation_id,
            "message": text,
            "input_channel": channel,
            "metadata": dict(metadata) | ({"message_id": message_id} if message_id else {}),
        }
        if message_id:
            body["message_id"] = message_id
        answer = self._conversation_request(conversation_id, "POST", "/webhooks/debtbot/webhook", json=body)
        return [_reply(item) for item in answer.json()]

    def trigger_intent(
        self, conversation_id: str, intent: str, *, entities: Mapping[str, Any] | None = None
    ) -> list[BotReply]:
        """Start or steer a conversation from our side (outreach openers)."""
        answer = self._conversation_request(
            conversation_id,
            "POST",
            f"/conversations/{conversation_id}/trigger_intent",
            params={"token": self._token, "output_channel": "collector"},
            json={"name": intent, "entities": dict(entities or {})},
        )
        return [_reply(item) for item in answer.json().get("messages", [])]

    def append_events(self, conversation_id: str, events: list[Mapping[str, Any]]) -> None:
        """Add events to the conversation's tracker (``pause``, ``resume``, an agent's words as
        a ``bot`` event), so Rasa's own history shows what happened outside it."""
        self._conversation_request(
            conversation_id,
            "POST",
            f"/conversations/{conversation_id}/tracker/events",
            params={"token": self._token, "include_events": "NONE"},
            json=[dict(event) for event in events],
        )

    def tracker(self, conversation_id: str) -> dict[str, Any]:
        """The conversation's tracker (slots and the last events)."""
        answer = self._conversation_request(
            conversation_id, "GET", f"/conversations/{conversation_id}/tracker",
            params={"token": self._token, "include_events": "AFTER_RESTART"},
        )  # fmt: skip
        result: dict[str, Any] = answer.json()
        return result

    def status(self) -> dict[str, Any]:
        """The server's status (``/status``), which says which model is loaded."""
        answer = self._request("GET", "/status", params={"token": self._token})
        result: dict[str, Any] = answer.json()
        return result


def _error_of(answer: httpx.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return ""
    return str(body.get("error") or "") if isinstance(body, dict) else ""


def _reply(item: Mapping[str, Any]) -> BotReply:
    buttons = tuple((str(b.get("title", "")), str(b.get("payload", ""))) for b in item.get("buttons") or [])
    custom = item.get("custom") or {}
    return BotReply(text=str(item.get("text") or ""), buttons=buttons, custom=custom)
