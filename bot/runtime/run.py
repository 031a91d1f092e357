"""``debtbot run``: train if needed, start everything, say where to look, stop cleanly."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from pathlib import Path

import redis

from bot.clock import Clock
from bot.config import Config, channel_modes
from bot.console.agents import AgentDirectory, AgentError, Role
from bot.ops.analytics.store import AnalyticsError, AnalyticsStore, database_url
from bot.runtime.launch import (
    RunRole,
    actions_ready,
    busy_ports,
    check_role,
    dialogue_ready,
    dialogue_server,
    process_specs,
    rasa_ready,
    role_busy_ports,
    role_specs,
)
from bot.runtime.model import ensure_model, model_path
from bot.runtime.redis_watch import watch_redis_master
from bot.runtime.supervisor import Supervisor, SupervisorError, install_signal_handlers
from bot.store.accounts import AccountStore, read_import_file
from bot.store.connection import REDIS_PASSWORD_FILE, Keys, connect, redis_display_url, redis_url

EXAMPLE_ACCOUNTS = "examples/accounts.csv"
#: Development only: the console's example supervisor, and where its made-up password is kept.
EXAMPLE_SUPERVISOR = "supervisor"
EXAMPLE_SUPERVISOR_FILE = "var/example-supervisor.json"

_WHY = {
    "sms": "TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN not set",
    "telegram": "TELEGRAM_BOT_TOKEN / TELEGRAM_WEBHOOK_SECRET not set",
    "email": "channels.email.smtp.host not set",
}


def run_all(config: Config) -> int:
    """Run until Ctrl-C; return the exit code."""
    busy = busy_ports(config)
    if busy:
        raise SupervisorError("cannot start:\n  " + "\n  ".join(busy))
    started = time.monotonic()
    model, trained = ensure_model(
        config.path(config.rasa.project_dir),
        config.path(config.rasa.models_dir),
        keep=config.rasa.keep_models,
    )
    # The analytics store's tables before Rasa's event broker writes into them.
    try:
        with AnalyticsStore(database_url(config)) as store:
            store.migrate()
    except AnalyticsError as exc:
        raise SupervisorError(f"cannot start: the analytics store: {exc}") from exc
    supervisor = Supervisor(process_specs(config, model))
    # Behind Sentinel: Rasa's stores take the master's address, so a failover restarts them.
    watch_redis_master(config, supervisor)
    supervisor.say(f"model {model.name} ({'trained now' if trained else 'unchanged, reused'})")
    supervisor.say("channels: " + ", ".join(f"{name} {mode}" for name, mode in channel_modes(config).items()))

    def until_ready() -> None:
        example = None
        if not config.production:
            _seed_example_accounts(config, supervisor)
            example = _example_supervisor(config, supervisor)
        count = len(config.rasa.servers)
        supervisor.say(
            "processes started; waiting for the Rasa server to load its model"
            if count == 1
            else f"processes started; waiting for the {count} Rasa servers to load their model"
        )
        if supervisor.wait_all_ready(
            {"rasa": lambda: rasa_ready(config), "actions": lambda: actions_ready(config)}, 300
        ):
            _banner(config, supervisor, time.monotonic() - started, example)

    return _supervise(supervisor, until_ready)


def _supervise(supervisor: Supervisor, until_ready: Callable[[], None]) -> int:
    """Start every process, ``until_ready`` (the waits and the banner), then watch them until
    a stop; 1 when the supervisor gave up, else 0. The processes are stopped in any case."""
    install_signal_handlers(supervisor)
    code = 0
    try:
        supervisor.start()
        until_ready()
        supervisor.watch()
    except SupervisorError as exc:
        supervisor.say(str(exc))
        code = 1
    finally:
        supervisor.stop()
        supervisor.say("all processes stopped")
    return code


def run_role(config: Config, role: RunRole, server: int | None = None) -> int:
    """``debtbot run --role``: one part only, on the shared Redis (a container each,
    ``deploy/compose.yaml``); the same supervisor (restarts) and banner lines for what it
    started. ``all``: :func:`run_all`. Raises ``ConfigError`` for what the role cannot run with."""
    check_role(config, role, server)
    if role == "all":
        return run_all(config)
    busy = role_busy_ports(config, role, server)
    if busy:
        raise SupervisorError("cannot start:\n  " + "\n  ".join(busy))
    started = time.monotonic()
    model = trained_model(config) if role == "dialogue" else None
    _migrate_once(config)
    supervisor = Supervisor(role_specs(config, model, role, server))
    if role == "dialogue":
        watch_redis_master(config, supervisor)
    if model is not None:
        supervisor.say(f"model {model.name} (trained before start: none is trained with --role)")
    if role == "gateway":
        supervisor.say("channels: " + ", ".join(f"{n} {mode}" for n, mode in channel_modes(config).items()))

    def until_ready() -> None:
        ready = True
        if role == "dialogue":
            number, chosen = dialogue_server(config, server)
            supervisor.say(f"processes started; waiting for Rasa server {number} to load its model")
            ready = supervisor.wait_all_ready({"dialogue": lambda: dialogue_ready(config, chosen)}, 300)
        if ready:
            _role_banner(config, supervisor, role, server, time.monotonic() - started)

    return _supervise(supervisor, until_ready)


def trained_model(config: Config) -> Path:
    """The model for the current training data, which must exist: a container trains it when
    its image is built (``debtbot train``), never at start."""
    project = config.path(config.rasa.project_dir)
    model = model_path(project, config.path(config.rasa.models_dir))
    if not model.exists():
        raise SupervisorError(
            f"cannot start: no trained model for the current training data ({model}): run "
            "`debtbot train` first (the container image does it when it is built); --role dialogue "
            "never trains"
        )
    return model


def _migrate_once(config: Config) -> None:
    """The analytics store's tables, migrated by one process of the deployment at a time (a
    Redis lock: the containers of every role start together)."""
    client = connect(config)
    try:
        lock = client.lock(f"{config.redis.key_prefix}:analytics-migrate", timeout=300, blocking_timeout=300)
        with lock, AnalyticsStore(database_url(config)) as store:
            store.migrate()
    except (AnalyticsError, redis.RedisError) as exc:
        raise SupervisorError(f"cannot start: the analytics store: {exc}") from exc


def _role_banner(
    config: Config, supervisor: Supervisor, role: RunRole, server: int | None, seconds: float
) -> None:
    """What one role started, where (the gateway's are :func:`_banner`'s)."""
    if role == "gateway":
        _banner(config, supervisor, seconds)
        return
    lines = [f"debtbot {role} is running ({config.environment}, ready in {seconds:.0f}s):"]
    if role == "worker":
        worker = config.worker
        lines.append(f"  worker     {worker.processes} process(es), {worker.threads} conversation "
                     f"threads and {worker.outbound_threads} reply threads each")  # fmt: skip
        lines += _rasa_lines(config)
    else:
        number, chosen = dialogue_server(config, server)
        bind = config.rasa.bind_host
        where = f", listening on {bind}" if bind else ""
        lines.append(f"  rasa{number:<6} {chosen.url}  (token auth{where})")
        lines.append(f"  actions{number:<3} {chosen.actions_url}  (token auth{where})")
    lines.append(f"  redis      external, {redis_display_url(config.secrets.redis_url or '')}")
    lines.append("Ctrl-C (or SIGTERM) stops them.")
    for line in lines:
        supervisor.say(line)


def _seed_example_accounts(config: Config, supervisor: Supervisor) -> None:
    """In development, an empty database gets the example debtors so the simulator has someone."""
    path = config.path(EXAMPLE_ACCOUNTS)
    store = AccountStore(connect(config), Keys(config.redis.key_prefix))
    try:
        if store.ids() or not path.exists():
            return
        report = store.import_csv(
            read_import_file(path),
            languages=config.accounts.languages,
            default_language=config.accounts.default_language,
            verification_field=config.accounts.verification_field,
        )
    except redis.RedisError as exc:
        supervisor.say(f"could not load example accounts: {exc}")
        return
    supervisor.say(f"no accounts yet: loaded {report.loaded} example accounts from {EXAMPLE_ACCOUNTS}")


def _example_supervisor(config: Config, supervisor: Supervisor) -> tuple[str, str] | None:
    """In development, an example supervisor to sign in to the console with (its password made
    up once and kept in var/, 0600, so the banner can show it); never in production."""
    if config.production or not config.console.example_supervisor:
        return None
    path = config.path(EXAMPLE_SUPERVISOR_FILE)
    directory = AgentDirectory(connect(config), Keys(config.redis.key_prefix), Clock())
    try:
        known = json.loads(path.read_text()) if path.exists() else {}
        password = str(known.get("password") or secrets.token_urlsafe(12))
        if directory.get(EXAMPLE_SUPERVISOR) is None:
            directory.add(EXAMPLE_SUPERVISOR, Role.SUPERVISOR, password)
        elif not known:
            directory.set_password(EXAMPLE_SUPERVISOR, password, actor="debtbot run (development)")
        if not known:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(json.dumps({"name": EXAMPLE_SUPERVISOR, "password": password}))
    except (redis.RedisError, OSError, ValueError, AgentError) as exc:
        supervisor.say(f"could not make the example supervisor: {exc}")
        return None
    return EXAMPLE_SUPERVISOR, password


def _rasa_lines(config: Config) -> list[str]:
    """The banner's Rasa and action servers: one line each, or one per server."""
    rasa = config.rasa
    where = "" if rasa.started_here else ", run elsewhere"
    servers = rasa.servers
    if len(servers) == 1:
        return [
            f"  rasa       {servers[0].url}  (token auth{where})",
            f"  actions    {servers[0].actions_url}  (token auth{where})",
        ]
    lines = [f"  rasa       {len(servers)} servers, each conversation pinned to one{where}:"]
    for n, server in enumerate(servers, start=1):
        actions = f", actions {server.actions_url}" if rasa.started_here or rasa.actions_urls else ""
        lines.append(f"    rasa{n:<6} {server.url}{actions}  (token auth)")
    return lines


def _banner(
    config: Config, supervisor: Supervisor, seconds: float, example: tuple[str, str] | None = None
) -> None:
    """Where to look: the gateway, the console (how to create the first supervisor, and in
    development the example supervisor's sign-in, never in production), the other parts."""
    server = config.server
    redis_line = (
        f"external, {redis_display_url(config.secrets.redis_url)}"
        if config.secrets.redis_url
        else f"embedded, {redis_display_url(redis_url(config))} (password in {REDIS_PASSWORD_FILE}), "
        f"data in {config.redis.data_dir} (AOF on)"
    )
    lines = [
        f"debtbot is running ({config.environment}, ready in {seconds:.0f}s):",
        f"  gateway    {server.internal_url}  (public URL {server.public_url})",
        f"  health     {server.internal_url}/healthz",
    ]
    lines.append(f"  console    {server.internal_url}/console/  (the first supervisor: "
                 "debtbot agents add NAME --role supervisor)")  # fmt: skip
    if example is not None and not config.production:
        lines.append(f"             (sign in as {example[0]} / {example[1]}: "
                     "an example supervisor, development only)")  # fmt: skip
    if config.simulator.enabled and not config.production:
        lines.append(f"  simulator  {server.internal_url}/simulator  (development only)")
    lines += _rasa_lines(config)
    lines.append(f"  redis      {redis_line}")
    for name, mode in channel_modes(config).items():
        why = (
            f" ({_WHY[name]}: replies go to {server.internal_url}/simulator/outbox)"
            if mode == "sandbox"
            else ""
        )
        lines.append(f"  {name:<10} {mode}{why}")
    lines.append("Press Ctrl-C to stop everything.")
    for line in lines:
        supervisor.say(line)
