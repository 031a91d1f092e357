"""Several Rasa servers (``rasa.processes`` / ``rasa.urls``), each conversation on one at a time.

Why pin: Rasa 3.6 runs a conversation's turns one at a time through its lock store, but the
Redis lock store issues its tickets by a read-modify-write that is not atomic between servers:
two servers on one conversation at once could both run a turn on the same tracker, and the
second save would overwrite the first. So every call about a conversation goes to one server.

Which one: rendezvous (highest random weight) hashing of the conversation id over the servers'
URLs (:func:`ranking`). Each of N servers gets about 1/N of the conversations, an id always
ranks the servers the same way, and adding a server moves only the conversations that now rank
it first (about 1/(N+1)), none between the others.

When a server is down: trackers live in the shared tracker store (Redis, endpoints.yml), so any
server can carry on a conversation whose turns are over. What must never happen is a second
server starting a turn while the first may still be running one. Hence the pin
(:class:`RedisPins`, shared by every worker and the gateway): before each call the conversation
is pinned to the server the call goes to, for ``repin_after`` seconds from the call's start.
While pinned, every call goes to that server only; when it is down, the conversation waits
(:class:`~dialogue.rasa_client.RasaUnavailable`, which the worker turns into ``RetryLater``: the
message stays queued). Once the pin lapses the conversation goes to the first server of its
ranking that is up, which is safe because no turn can outlast the pin: the Rasa server the
product starts (``dialogue/rasa_server.py``) cancels a request's handling after its response
timeout (60 s; Sanic cancels it sooner when the caller hangs up), and Rasa saves the tracker
only at the end of a turn, so 60 s after a call started nothing of it can still be running
(``rasa.repin_after_seconds``: 180 s by default, at least 90). A conversation whose last call
is older than that (idle) is not pinned, and goes straight to the first server that is up.

Which servers are up is each process's own view: a server that failed a call (unreachable,
timed out, 5xx, 409 while it loads its model) is down until ``GET /status`` answers again,
asked at most every ``probe_every`` seconds and only when a conversation wants that server.
The views need not agree between processes: the pin, taken atomically in Redis, decides.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import redis

from dialogue.rasa_client import RasaClient, RasaError, RasaUnavailable

__all__ = ["MemoryPins", "Pins", "RasaPool", "RedisPins", "ranking", "server_for"]


def _weight(server: str, conversation_id: str) -> int:
    digest = hashlib.blake2b(f"{server}\n{conversation_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def ranking(servers: Sequence[str], conversation_id: str) -> list[str]:
    """The servers in the order ``conversation_id`` prefers them (rendezvous hashing)."""
    return sorted(servers, key=lambda server: (_weight(server, conversation_id), server), reverse=True)


def server_for(servers: Sequence[str], conversation_id: str) -> str:
    """The conversation's own server, when every server is up."""
    return ranking(servers, conversation_id)[0]


class Pins(Protocol):
    """Which server each conversation is on, for a while (shared by every process)."""

    def pin(self, conversation_id: str, usable: Sequence[str], seconds: float) -> tuple[str | None, bool]:
        """Atomically: if the conversation is pinned, its server, re-pinned for ``seconds`` when it
        is in ``usable`` (then ``(server, True)``, else ``(server, False)``: wait for it); if not
        pinned, pinned to ``usable[0]`` for ``seconds`` (``(usable[0], True)``), or ``(None,
        False)`` when nothing is usable."""
        ...


class MemoryPins:
    """:class:`Pins` inside one process (tests; one process using several servers alone)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._pins: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def pin(self, conversation_id: str, usable: Sequence[str], seconds: float) -> tuple[str | None, bool]:
        with self._lock:
            now = self._clock()
            if len(self._pins) > 10_000:
                self._pins = {cid: pin for cid, pin in self._pins.items() if pin[1] > now}
            current = self._pins.get(conversation_id)
            if current is not None and current[1] > now:
                server = current[0]
                if server not in usable:
                    return server, False
            elif not usable:
                return None, False
            else:
                server = usable[0]
            self._pins[conversation_id] = (server, now + seconds)
            return server, True

    def pinned(self, conversation_id: str) -> str | None:
        """The server the conversation is pinned to now, if any."""
        current = self._pins.get(conversation_id)
        return current[0] if current is not None and current[1] > self._clock() else None


_PIN = """
local current = redis.call('GET', KEYS[1])
if current then
  for i = 2, #ARGV do
    if ARGV[i] == current then
      redis.call('PEXPIRE', KEYS[1], ARGV[1])
      return {current, 1}
    end
  end
  return {current, 0}
end
if #ARGV < 2 then
  return {false, 0}
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[1])
return {ARGV[2], 1}
"""


class RedisPins:
    """:class:`Pins` in Redis: ``<prefix>:rasa-pin:<hash of the conversation id>`` holds the
    server's URL and expires with the pin (key names carry no phone number or address)."""

    def __init__(self, client: redis.Redis[bytes], prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._script = client.register_script(_PIN)

    def key(self, conversation_id: str) -> str:
        return f"{self._prefix}:rasa-pin:{hashlib.sha256(conversation_id.encode()).hexdigest()[:32]}"

    def pin(self, conversation_id: str, usable: Sequence[str], seconds: float) -> tuple[str | None, bool]:
        try:
            server, ok = self._script(
                keys=[self.key(conversation_id)], args=[max(1, math.ceil(seconds * 1000)), *usable]
            )
        except redis.RedisError as exc:
            raise RasaUnavailable(f"cannot tell which Rasa server has the conversation: {exc}") from exc
        name = server.decode() if isinstance(server, bytes) else server
        return (str(name) if name else None), bool(ok)


@dataclass
class _Health:
    down: bool = False
    #: When the last failed call or ``/status`` probe said it was down (the pool's clock).
    checked_at: float = -math.inf


class RasaPool(RasaClient):
    """A :class:`~dialogue.rasa_client.RasaClient` over several Rasa servers: every call about a
    conversation goes to the server it is pinned to (see the module's docstring). One HTTP client
    (a connection pool per server) is shared by every server and thread."""

    def __init__(
        self,
        urls: Sequence[str],
        token: str,
        timeout: float = 30.0,
        *,
        pins: Pins | None = None,
        repin_after: float = 180.0,
        probe_every: float = 5.0,
        probe_timeout: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not urls:
            raise ValueError("a Rasa pool needs at least one server")
        self.urls = tuple(url.rstrip("/") for url in urls)
        if len(set(self.urls)) != len(self.urls):
            raise ValueError("a Rasa server is listed twice")
        super().__init__(self.urls[0], token, timeout, transport=transport)
        self._clock = clock
        self._pins = pins if pins is not None else MemoryPins(clock)
        self.repin_after = repin_after
        self._probe_every = probe_every
        self._probe_timeout = probe_timeout
        self._health = {url: _Health() for url in self.urls}

    # Which server

    def server_for(self, conversation_id: str) -> str:
        """The conversation's own server (where it goes while every server is up)."""
        return server_for(self.urls, conversation_id)

    def is_up(self, url: str) -> bool:
        """This process's view of ``url``: up, or down and its ``/status`` answers again (asked at
        most every ``probe_every`` seconds)."""
        health = self._health[url]
        if not health.down:
            return True
        now = self._clock()
        if now - health.checked_at < self._probe_every:
            return False
        health.checked_at = now
        try:
            answer = self._client.get(
                f"{url}/status", params={"token": self._token}, timeout=self._probe_timeout
            )
        except httpx.HTTPError:
            return False
        if answer.status_code != 200:
            return False
        health.down = False
        return True

    def _route(self, conversation_id: str) -> str:
        order = ranking(self.urls, conversation_id)
        usable = [url for url in order if self.is_up(url)]
        server, ok = self._pins.pin(conversation_id, usable, self.repin_after)
        if server is None:
            raise RasaUnavailable(f"no Rasa server answers ({len(self.urls)} known)")
        if not ok:
            raise RasaUnavailable(
                f"Rasa server {server} is down and may still hold this conversation's last turn: "
                f"it waits for it (at most {self.repin_after:g}s after its last call began)"
            )
        return server

    def _conversation_request(
        self, conversation_id: str, method: str, path: str, **kwargs: Any
    ) -> httpx.Response:
        server = self._route(conversation_id)
        try:
            answer = self._request(method, path, base=server, **kwargs)
        except RasaUnavailable:
            self._failed(server)
            raise
        except RasaError:
            self._answered(server)
            raise
        self._answered(server)
        return answer

    def _failed(self, url: str) -> None:
        health = self._health[url]
        health.down = True
        health.checked_at = self._clock()

    def _answered(self, url: str) -> None:
        self._health[url].down = False

    # Every server

    def status(self) -> dict[str, Any]:
        """Every server's ``/status`` (``{"servers": {url: status or {"error": ...}}}``), with
        ``model_file`` when they all run the same model. Raises RasaUnavailable when none answers."""
        servers: dict[str, Mapping[str, Any]] = {}
        for url in self.urls:
            try:
                answer = self._request("GET", "/status", base=url, params={"token": self._token})
                servers[url] = answer.json()
            except RasaError as exc:
                servers[url] = {"error": str(exc)}
        if all("error" in status for status in servers.values()):
            raise RasaUnavailable(f"no Rasa server answers ({len(self.urls)} known)")
        models = {str(status.get("model_file") or "") for status in servers.values() if "error" not in status}
        return {"servers": servers, "model_file": models.pop() if len(models) == 1 else ""}
