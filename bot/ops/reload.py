"""``debtbot reload``: a newly trained model into the running Rasa server(s), without a restart
and without dropping a conversation, checked by a canary conversation and rolled back if the
canary fails.

Rasa 3.6's ``PUT /model`` loads the new model beside the old one and swaps the agent; trackers
live in the shared tracker store (Redis), so a conversation in the middle of a form carries on
under the new model. While a server loads (its event loop is busy for some seconds) the
worker's calls wait or time out and are retried (the inbound queue keeps every message), so
nothing is lost. Each server, in turn: remember its model (``GET /status``), load the new one,
run the canary on it; a failure puts the previous model back on every server already swapped.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bot.config import Config

__all__ = [
    "Canary",
    "ReloadError",
    "ReloadResult",
    "canary_conversation",
    "current_model",
    "load_model",
    "reload",
    "server_urls",
]


class ReloadError(Exception):
    """A server refused the model or could not be reached."""


@dataclass
class ReloadResult:
    """What happened on each server (url -> the model it runs now), and whether it rolled back."""

    ok: bool
    models: dict[str, str] = field(default_factory=dict)
    rolled_back: list[str] = field(default_factory=list)
    message: str = ""


def server_urls(config: Config) -> list[str]:
    """The Rasa servers ``debtbot reload`` loads the model into: every one the worker uses
    (``rasa.url``, the ``rasa.processes`` started by ``debtbot run``, or ``rasa.urls``)."""
    return config.rasa.server_urls


#: A canary: given a server's URL and token, ``None`` when the model answers as it should, else
#: what was wrong.
Canary = Callable[[str, str], "str | None"]


def _client(token: str, timeout: float) -> httpx.Client:
    return httpx.Client(timeout=timeout, headers={"Authorization": f"Bearer {token}"})


def current_model(url: str, token: str, *, timeout: float = 30.0) -> str:
    """The model the server at ``url`` runs (``GET /status``: Rasa gives the archive's name)."""
    with _client(token, timeout) as client:
        try:
            answer = client.get(f"{url.rstrip('/')}/status", params={"token": token})
        except httpx.HTTPError as exc:
            raise ReloadError(f"{url}: unreachable ({type(exc).__name__})") from exc
    if answer.status_code != 200:
        raise ReloadError(f"{url}: /status answered {answer.status_code}")
    return str(answer.json().get("model_file") or "")


def load_model(url: str, token: str, model: str, *, timeout: float = 600.0) -> None:
    """``PUT /model``: the server loads ``model`` (a path on its machine) and swaps to it."""
    with _client(token, timeout) as client:
        try:
            answer = client.put(
                f"{url.rstrip('/')}/model", params={"token": token}, json={"model_file": model}
            )
        except httpx.HTTPError as exc:
            raise ReloadError(f"{url}: could not load {model} ({type(exc).__name__})") from exc
    if answer.status_code not in (200, 204):
        raise ReloadError(f"{url}: refused {model}: {answer.status_code} {answer.text[:300]}")


def canary_conversation(url: str, token: str, *, timeout: float = 60.0) -> str | None:
    """A short conversation under a canary's own id: "hello" must be understood as a greeting
    and answered. ``None`` when it is."""
    sender = f"canary-{uuid.uuid4().hex[:12]}"
    with _client(token, timeout) as client:
        try:
            parsed = client.post(
                f"{url.rstrip('/')}/model/parse", params={"token": token}, json={"text": "hello"}
            )
            said = client.post(
                f"{url.rstrip('/')}/webhooks/debtbot/webhook",
                json={"sender": sender, "message": "hello", "input_channel": "canary",
                      "metadata": {"channel": "canary", "language": "en", "message_id": f"canary:{sender}"},
                      "message_id": f"canary:{sender}"},
            )  # fmt: skip
        except httpx.HTTPError as exc:
            return f"unreachable ({type(exc).__name__})"
    if parsed.status_code != 200:
        return f"/model/parse answered {parsed.status_code}"
    intent = (parsed.json().get("intent") or {}).get("name")
    if intent != "greet":
        return f'"hello" was read as {intent!r}, not greet'
    if said.status_code != 200 or not said.json():
        return f"the conversation got no answer ({said.status_code})"
    return None


def _locate(name: str, folders: Sequence[Path]) -> str:
    """The path of the archive a server reported by name (``/status`` gives no folder)."""
    if Path(name).is_absolute():
        return name
    for folder in folders:
        if (folder / name).is_file():
            return str((folder / name).resolve())
    return ""


def reload(
    urls: Sequence[str],
    token: str,
    model: Path,
    *,
    models_dir: Path | None = None,
    canary: Canary = canary_conversation,
    say: Callable[[str], None] = lambda line: None,
) -> ReloadResult:
    """Load ``model`` on every server in turn, each checked by ``canary``; on any failure the
    servers already swapped go back to their previous model (found by name in ``models_dir``,
    where ``debtbot train`` keeps the last few, or beside ``model``)."""
    target = str(model.resolve())
    folders = [f for f in (models_dir, model.parent) if f is not None]
    previous: dict[str, str] = {}
    result = ReloadResult(ok=False)
    try:
        for url in urls:
            running = current_model(url, token)
            previous[url] = _locate(running, folders)
            if running and not previous[url]:
                raise ReloadError(
                    f"{url}: runs {running}, which is not in {models_dir}: nothing to roll back to"
                )
            say(f"{url}: running {running or 'no model'}; loading {model.name}")
            load_model(url, token, target)
            problem = canary(url, token)
            if problem is not None:
                raise ReloadError(f"{url}: the canary failed on {model.name}: {problem}")
            result.models[url] = target
            say(f"{url}: {model.name} loaded, canary answered")
    except ReloadError as exc:
        result.message = str(exc)
        say(f"{exc}; rolling back")
        for url, old in previous.items():
            if not old:
                continue
            try:
                load_model(url, token, old)
                result.models[url] = old
                result.rolled_back.append(url)
                say(f"{url}: back on {Path(old).name}")
            except ReloadError as again:
                result.message += f"; rollback on {url} failed too: {again}"
        return result
    result.ok = True
    result.message = f"{model.name} loaded on {len(urls)} server(s)"
    return result
