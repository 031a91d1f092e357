"""After a Sentinel failover, restart the Rasa servers with the new master's address.

Our own processes (worker, gateway, action servers) reach Redis through a Sentinel client
(``bot.store.connection.redis_client``) that follows a failover by itself. Rasa's tracker
store, lock store and our event broker inside the Rasa server take one host and port
(``DEBTBOT_REDIS_HOST`` / ``_PORT``, resolved through Sentinel when ``debtbot run`` starts):
after a failover they would keep writing to the old master (refused once it is a replica).
:class:`MasterWatch` asks the sentinels every few seconds which master they name; when it is
another one, the supervisor sets the new address in every process's environment and restarts
the Rasa servers (they load their model again: a minute or so without dialogue, during which
the queues keep every message and retry).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import redis

from bot.config import Config, is_sentinel_url
from bot.runtime.supervisor import Supervisor
from bot.store.connection import master_address, redis_url, sentinel_target

#: How often the sentinels are asked (s).
CHECK_SECONDS = 3.0
#: How long one sentinel may take to answer the watcher (s): it runs in the supervisor's loop.
SENTINEL_TIMEOUT = 1.0
#: The module the Rasa servers run (``bot/runtime/launch.py`` rasa_spec).
RASA_SERVER_MODULE = "dialogue.rasa_server"

Locate = Callable[[], tuple[str, int]]


class MasterWatch:
    """Compares the master the sentinels name with the one the Rasa servers were given."""

    def __init__(self, supervisor: Supervisor, locate: Locate, current: tuple[str, int]) -> None:
        self.supervisor = supervisor
        self.locate = locate
        self.current = current
        self._unreachable = False

    def rasa_servers(self) -> Sequence[str]:
        return [p.spec.name for p in self.supervisor.processes if RASA_SERVER_MODULE in p.spec.argv]

    def check(self) -> None:
        """One look: restart the Rasa servers if the master moved."""
        try:
            found = self.locate()
        except redis.RedisError as exc:
            if not self._unreachable:  # said once, not every few seconds
                self.supervisor.say(f"redis: no sentinel names the master now ({exc}); still using "
                                    f"{self.current[0]}:{self.current[1]}")  # fmt: skip
            self._unreachable = True
            return
        self._unreachable = False
        if found == self.current:
            return
        old, self.current = self.current, found
        self.supervisor.restart(
            self.rasa_servers(),
            f"the Redis master moved from {old[0]}:{old[1]} to {found[0]}:{found[1]} (Sentinel failover)",
            env={"DEBTBOT_REDIS_HOST": found[0], "DEBTBOT_REDIS_PORT": str(found[1])},
        )


def watch_redis_master(
    config: Config, supervisor: Supervisor, every: float = CHECK_SECONDS
) -> MasterWatch | None:
    """With a Sentinel ``REDIS_URL``: a :class:`MasterWatch` that ``supervisor.watch`` runs
    every ``every`` seconds, starting from the address the processes were given. ``None``
    otherwise (one server: nothing to follow)."""
    url = redis_url(config)
    if not is_sentinel_url(url):
        return None
    target = sentinel_target(url)
    current = _given_address(supervisor)
    watch = MasterWatch(supervisor, lambda: master_address(target, SENTINEL_TIMEOUT), current)
    supervisor.every(every, watch.check)
    return watch


def _given_address(supervisor: Supervisor) -> tuple[str, int]:
    for process in supervisor.processes:
        env = process.spec.env
        if "DEBTBOT_REDIS_HOST" in env:
            return env["DEBTBOT_REDIS_HOST"], int(env.get("DEBTBOT_REDIS_PORT") or 6379)
    return "", 0
