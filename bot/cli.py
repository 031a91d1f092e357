"""The ``debtbot`` command: run everything, run one worker, train, import accounts, manage agents."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import cast

import click

from bot.config import Config, load_config
from bot.errors import BotError, ConfigError
from bot.privacy import setup_logging


def _load(config_path: str | None) -> Config:
    try:
        return load_config(config_path)
    except ConfigError as exc:
        click.echo("configuration error (nothing was started):", err=True)
        for problem in exc.problems:
            click.echo(f"  {problem}", err=True)
        sys.exit(2)


config_option = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), default=None,
    help="configuration file (default: $DEBTBOT_CONFIG or ./config.yaml)",
)  # fmt: skip


@click.group()
def main() -> None:
    """debtbot: the omnichannel debt-recovery messaging bot."""


#: ``debtbot run --role`` (bot.runtime.launch.ROLES; not imported here, to keep the CLI quick).
RUN_ROLES = ("all", "gateway", "worker", "dialogue")


@main.command()
@config_option
@click.option(
    "--role", type=click.Choice(RUN_ROLES), default="all", show_default=True,
    help="what to start: everything (with an embedded Redis when REDIS_URL is unset), or one part "
    "on the shared Redis (REDIS_URL): the gateway, the worker(s), or one Rasa server with its "
    "action server (dialogue)",
)  # fmt: skip
@click.option(
    "--server", type=click.IntRange(min=1), default=None,
    help="with --role dialogue: which Rasa server, 1 for the first of rasa.urls and rasa.actions_urls",
)  # fmt: skip
@click.option(
    "--health", is_flag=True,
    help="start nothing: exit 0 when this role's processes here answer, 1 otherwise (the containers' "
    "health check)",
)  # fmt: skip
def run(config_path: str | None, role: str, server: int | None, health: bool) -> None:
    """Start every process (Redis, Rasa, actions, worker, gateway), or one role's; Ctrl-C stops them all."""
    from bot.runtime.launch import RunRole, check_role, role_health
    from bot.runtime.run import run_role

    config = _load(config_path)
    chosen = cast(RunRole, role)
    try:
        check_role(config, chosen, server)
    except ConfigError as exc:
        click.echo("configuration error (nothing was started):", err=True)
        for problem in exc.problems:
            click.echo(f"  {problem}", err=True)
        sys.exit(2)
    if health:
        problems = role_health(config, chosen, server)
        for problem in problems:
            click.echo(problem, err=True)
        sys.exit(1 if problems else 0)
    setup_logging(config.logging.level)
    try:
        code = run_role(config, chosen, server)
    except BotError as exc:
        click.echo(f"debtbot: {exc}", err=True)
        sys.exit(1)
    sys.exit(code)


@main.command()
@config_option
def worker(config_path: str | None) -> None:
    """Run one worker process (``debtbot run`` starts these for you)."""
    from bot.runtime.worker import run_worker

    config = _load(config_path)
    setup_logging(config.logging.level)
    run_worker(config)


@main.command()
@config_option
@click.option("--print-path", is_flag=True, help="print only the model's path (for scripts)")
def train(config_path: str | None, print_path: bool) -> None:
    """Train the Rasa model if the training data changed since the last one."""
    from bot.runtime.model import ensure_model

    config = _load(config_path)
    setup_logging(config.logging.level)
    try:
        model, trained = ensure_model(
            config.path(config.rasa.project_dir),
            config.path(config.rasa.models_dir),
            keep=config.rasa.keep_models,
        )
    except BotError as exc:
        click.echo(f"debtbot: {exc}", err=True)
        sys.exit(1)
    click.echo(str(model) if print_path else f"{'trained' if trained else 'up to date'}: {model}")


@main.group()
def accounts() -> None:
    """Placement data."""


@accounts.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@config_option
def import_accounts(csv_file: Path, config_path: str | None) -> None:
    """Load accounts from a CSV file; bad rows are reported by line number, good rows load."""
    import redis

    from bot.store.accounts import AccountStore, read_import_file
    from bot.store.connection import Keys, connect

    config = _load(config_path)
    try:
        text = read_import_file(csv_file)
    except UnicodeDecodeError:
        click.echo(f"{csv_file}: not UTF-8 text; save the file as CSV UTF-8", err=True)
        sys.exit(2)
    store = AccountStore(connect(config), Keys(config.redis.key_prefix))
    try:
        report = store.import_csv(
            text,
            languages=config.accounts.languages,
            default_language=config.accounts.default_language,
            verification_field=config.accounts.verification_field,
        )
    except redis.RedisError as exc:
        click.echo(f"Redis is unreachable ({exc}); is `debtbot run` running, or REDIS_URL set?", err=True)
        sys.exit(1)
    for error in report.errors:
        click.echo(f"{csv_file.name}: {error}", err=True)
    click.echo(
        f"{report.loaded} account(s) loaded ({report.created} new, {report.updated} updated, "
        f"{report.unchanged} unchanged); {len(report.errors)} row(s) rejected"
    )
    sys.exit(1 if report.errors else 0)


@main.group()
def agents() -> None:
    """The people who sign in to the agent console."""


def _agent_directory(config: Config):  # type: ignore[no-untyped-def]
    from bot.clock import Clock
    from bot.console.agents import AgentDirectory
    from bot.store.connection import Keys, connect

    return AgentDirectory(connect(config), Keys(config.redis.key_prefix), Clock())


def _agents_fail(exc: Exception) -> None:
    import redis

    if isinstance(exc, redis.RedisError):
        click.echo(f"Redis is unreachable ({exc}); is `debtbot run` running, or REDIS_URL set?", err=True)
    else:
        click.echo(f"debtbot: {exc}", err=True)
    sys.exit(1)


@agents.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["agent", "supervisor", "ops"]), default="agent", show_default=True,
              help="what the person may do in the console")  # fmt: skip
@click.option("--link", is_flag=True,
              help="print a one-time set-password link (24 h) instead of asking the password")  # fmt: skip
@config_option
def agents_add(name: str, role: str, link: bool, config_path: str | None) -> None:
    """Add an agent called NAME, asking for the password (typed twice, hidden) or with --link.

    NAME is 2 to 32 characters of a-z, 0-9, '.', '_' and '-'. The password is never given on the
    command line; with --link the agent sets it through the one-time link printed."""
    import redis

    from bot.console.agents import PASSWORD_TOKEN_TTL, AgentError, Role, check_name, check_password

    config = _load(config_path)
    try:
        name = check_name(name)
        password = None
        if not link:
            password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
            check_password(name, password)
        directory = _agent_directory(config)
        agent = directory.add(name, Role(role), password)
        token = directory.issue_password_token(agent.name, PASSWORD_TOKEN_TTL) if link else ""
    except (AgentError, BotError, redis.RedisError) as exc:
        _agents_fail(exc)
        return
    click.echo(f"agent {agent.name} added ({agent.role.value})")
    if link:
        url = f"{config.server.public_url}/console/set-password/{token}"
        click.echo(f"set-password link (works once, within 24 h): {url}")


@agents.command("list")
@config_option
def agents_list(config_path: str | None) -> None:
    """List the agents: name, role, whether disabled, whether a password is set."""
    import redis

    config = _load(config_path)
    try:
        everyone = _agent_directory(config).list()
    except redis.RedisError as exc:
        _agents_fail(exc)
        return
    click.echo(f"{'name':<32}  {'role':<10}  {'disabled':<8}  password")
    for agent in everyone:
        click.echo(
            f"{agent.name:<32}  {agent.role.value:<10}  {'yes' if agent.disabled else 'no':<8}  "
            f"{'set' if agent.password_set else 'not set'}"
        )


@agents.command("disable")
@click.argument("name")
@config_option
def agents_disable(name: str, config_path: str | None) -> None:
    """Disable agent NAME: they can no longer sign in (the account is kept)."""
    import redis

    config = _load(config_path)
    try:
        _agent_directory(config).disable(name)
    except (BotError, redis.RedisError) as exc:
        _agents_fail(exc)
        return
    click.echo(f"agent {name.strip().lower()} disabled")


@main.command("open")
@click.argument("account_id")
@click.option("--channel", default="sms", show_default=True, help="the channel to open the conversation on")
@config_option
def open_conversation(account_id: str, channel: str, config_path: str | None) -> None:
    """Send the outreach opener to one account (the worker delivers it)."""
    from bot.outreach.openers import send_opener
    from bot.runtime.services import build_services
    from dialogue.rasa_client import RasaError

    config = _load(config_path)
    try:
        messages = send_opener(build_services(config), account_id, channel)
    except (BotError, RasaError) as exc:
        click.echo(f"debtbot: {exc}", err=True)
        sys.exit(1)
    click.echo(f"opener queued for {account_id} on {channel} ({len(messages)} message(s))")


@main.group()
def telegram() -> None:
    """The Telegram bot: register the webhook, or poll for development."""


def _live_telegram(config: Config):  # type: ignore[no-untyped-def]
    from bot.runtime.services import build_services
    from channels.telegram import TelegramChannel

    if not config.telegram_live:
        click.echo("debtbot: set TELEGRAM_BOT_TOKEN and TELEGRAM_WEBHOOK_SECRET first", err=True)
        sys.exit(2)
    services = build_services(config)
    channel = services.channels.get("telegram")
    if not isinstance(channel, TelegramChannel):
        click.echo("debtbot: channels.telegram.enabled is false", err=True)
        sys.exit(2)
    return services, channel


@telegram.command("set-webhook")
@config_option
def telegram_set_webhook(config_path: str | None) -> None:
    """Point Telegram at <server.public_url>/webhooks/telegram, with the secret token."""
    from channels.base import ChannelError

    config = _load(config_path)
    _, channel = _live_telegram(config)
    url = f"{config.server.public_url}/webhooks/telegram"
    try:
        channel.set_webhook(url, config.secrets.telegram_webhook_secret or "")
    except ChannelError as exc:
        click.echo(f"debtbot: Telegram refused: {exc}", err=True)
        sys.exit(1)
    click.echo(f"webhook set: {url}")


@telegram.command("poll")
@config_option
@click.option("--once", is_flag=True, help="fetch one batch and stop (for scripts and tests)")
def telegram_poll(config_path: str | None, once: bool) -> None:
    """Fetch updates by long polling (development without a public URL). Each update takes
    the same path as a webhook: de-duplicated, stored, answered by the worker."""
    from bot.telegram.poller import poll

    config = _load(config_path)
    services, channel = _live_telegram(config)
    poll(services, channel, once=once, echo=click.echo)


@main.group()
def email() -> None:
    """Email: read the mailbox, list the mail set aside."""


@email.command("poll")
@config_option
@click.option("--once", is_flag=True, help="read the mailbox once and stop (for scripts and tests)")
def email_poll(config_path: str | None, once: bool) -> None:
    """Read the IMAP mailbox (channels.email.imap): each new message takes the same path as
    the email webhook. Workers do this themselves; this is for trying the settings out."""
    import threading

    from bot.email.mailbox import mailbox_poller
    from bot.runtime.services import build_services

    config = _load(config_path)
    setup_logging(config.logging.level)
    try:
        poller = mailbox_poller(build_services(config))
    except BotError as exc:
        click.echo(f"debtbot: {exc}", err=True)
        sys.exit(2)
    if once:
        click.echo(f"{poller.check_once()} message(s) handed over")
        return
    poller.run(threading.Event())


@email.command("dead-letters")
@config_option
@click.option("--limit", default=20, show_default=True, help="how many, newest first")
def email_dead_letters(config_path: str | None, limit: int) -> None:
    """Mail that could not be read and was set aside for a person."""
    from datetime import datetime, timezone

    from bot.runtime.services import build_services

    config = _load(config_path)
    letters = build_services(config).dead_letters.list("email", limit)
    for letter in letters:
        when = datetime.fromtimestamp(letter.at, timezone.utc).isoformat(timespec="seconds")
        cut = " (truncated)" if letter.truncated else ""
        click.echo(f"{letter.entry_id}  {when}  {letter.reason}  {letter.size} bytes{cut}  {letter.detail}")
    if not letters:
        click.echo("no email set aside")


@main.group()
def outreach() -> None:
    """Conversations the product starts itself."""


@outreach.command("run")
@config_option
def outreach_run(config_path: str | None) -> None:
    """Plan an outreach run now: every account is queued for a worker to decide (due? which
    channel? what does the compliance gate say?). Workers must be running to send."""
    from bot.runtime.services import build_services

    config = _load(config_path)
    setup_logging(config.logging.level)
    report = build_services(config).outreach.plan_run()
    click.echo(f"outreach run {report.run_id}: {report.queued} account(s) queued in {report.seconds:.1f}s")


@outreach.command("stats")
@config_option
def outreach_stats(config_path: str | None) -> None:
    """Replies, verifications and plans per opener wording (to choose the best one)."""
    from bot.runtime.services import build_services

    config = _load(config_path)
    rows = build_services(config).opener_stats.table(config)
    click.echo(
        f"{'language':<9}{'variant':<12}{'sent':>7}{'replied':>9}{'verified':>10}{'plan':>7}{'plan rate':>11}"
    )
    for row in rows:
        rate = "-" if row["plan_rate"] is None else f"{row['plan_rate']:.1%}"
        click.echo(f"{row['language']!s:<9}{row['variant']!s:<12}{row['sent']!s:>7}{row['replied']!s:>9}"
                   f"{row['verified']!s:>10}{row['plan']!s:>7}{rate:>11}")  # fmt: skip


@main.group()
def payments() -> None:
    """Plan payments reported by the creditor."""


@payments.command("import")
@config_option
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False))
def payments_import(config_path: str | None, csv_file: str) -> None:
    """Record paid instalments from a CSV with columns plan_id, due_date, paid_on (ISO dates).
    Bad rows are named by line and skipped; the rest are recorded."""
    from bot.outreach.payments import PlanPayments
    from bot.runtime.services import build_services

    config = _load(config_path)
    services = build_services(config)
    try:
        report = PlanPayments(services.redis, services.keys, services.clock).import_csv(
            Path(csv_file).read_text(encoding="utf-8")
        )
    except BotError as exc:
        click.echo(f"{csv_file}: {exc}", err=True)
        sys.exit(2)
    for error in report.errors:
        click.echo(f"{csv_file}: {error}", err=True)
    click.echo(f"{report.recorded} payment(s) recorded, {len(report.errors)} row(s) skipped")
    sys.exit(1 if report.errors else 0)


@main.group()
def retention() -> None:
    """Data minimisation: transcripts and trackers past `retention.transcript_days` go; the
    records the law requires (opt-outs, disputes, plans, payments, the audit) stay for
    `retention.records_years`. The worker runs it daily; this runs it now."""


@retention.command("run")
@config_option
def retention_run(config_path: str | None) -> None:
    """Bring the product's latest events into the analytics store, then delete what is past its time."""
    from bot.runtime.services import build_services

    config = _load(config_path)
    services = build_services(config)
    from bot.ops.analytics.conversations import summarise
    from bot.ops.analytics.ingest import Ingester
    from bot.ops.analytics.retention import run_retention
    from bot.ops.progress import bar

    with bar("retention", 3) as progress:
        ingested = Ingester(services.redis, services.keys, services.analytics).run_once()
        progress.update(1)
        # The conversations' summaries count what is about to go (retention keeps them longer).
        summarised = summarise(services.analytics, low_confidence=config.ops.low_confidence)
        progress.update(1)
        report = run_retention(services.analytics, services.redis, services.keys, services.clock.now(),
                               config.retention.transcript_days, config.retention.records_years)  # fmt: skip
        progress.update(1)
    services.redis.set(services.keys.retention_last_run, repr(services.clock.timestamp()))
    click.echo(
        f"{ingested} event(s) brought into the analytics store, {summarised} conversation(s) summarised"
    )
    for line in report.lines():
        click.echo(line)


@main.command("export-story")
@config_option
@click.argument("conversation_id")
@click.option("--name", default=None, help="The story's name (default: conversation_<hash>).")
def export_story_command(config_path: str | None, conversation_id: str, name: str | None) -> None:
    """Save a real conversation as a Rasa test story in the project's tests/ folder, with the
    person's details replaced by consistent placeholders: a bug seen in production becomes a
    regression test that `rasa test` (and `debtbot test`) runs."""
    from bot.ops.stories import StoryError, export_story
    from bot.runtime.services import build_services

    config = _load(config_path)
    services = build_services(config)
    try:
        path = export_story(services.rasa, conversation_id, services.accounts,
                            config.path(config.rasa.project_dir) / "tests", name=name)  # fmt: skip
    except StoryError as exc:
        click.echo(f"{conversation_id}: {exc}", err=True)
        sys.exit(1)
    click.echo(str(path))


@main.command("validate")
@config_option
@click.option(
    "--min-examples",
    type=int,
    default=10,
    show_default=True,
    help="Examples every intent needs in each language.",
)
@click.option("--no-rasa", is_flag=True, help="Only our own checks (skip `rasa data validate`).")
def validate_dialogue(config_path: str | None, min_examples: int, no_rasa: bool) -> None:
    """Check the dialogue's data before training: `rasa data validate` plus our own checks (every
    response in English and Spanish, email variants, nothing about the debt reachable before
    verification, examples per intent and language, no example under two intents, consistent
    thresholds). Exit 1 on any problem, each named with its file and what to fix."""
    from bot.ops.validate import main as validate

    config = _load(config_path)
    argv = ["--project", str(config.path(config.rasa.project_dir)), "--min-examples", str(min_examples)]
    # What ops labelled in the console's NLU inbox (ops.review_file), wherever it is configured.
    argv += ["--review-file", str(config.path(config.ops.review_file))]
    sys.exit(validate([*argv, *(["--no-rasa"] if no_rasa else [])]))


@main.command("test", context_settings={"ignore_unknown_options": True})
@config_option
@click.argument("options", nargs=-1, type=click.UNPROCESSED)
def test_dialogue(config_path: str | None, options: tuple[str, ...]) -> None:
    """Test the dialogue: the test stories, the held-out NLU sets (per-intent F1) and the safety
    checks (crisis recall, opt-out precision), as one table compared with the last saved result;
    exit 1 on a regression beyond the tolerance. Options: those of `python -m bot.ops.quality`
    (--tolerance, --no-stories, --csv, --save/--no-save, --results, --model)."""
    from bot.ops.quality import main as quality
    from bot.runtime.model import ensure_model

    config = _load(config_path)
    chosen = list(options)
    if "--model" not in chosen:
        model, _ = ensure_model(config.path(config.rasa.project_dir), config.path(config.rasa.models_dir),
                                keep=config.rasa.keep_models)  # fmt: skip
        chosen = ["--model", str(model), *chosen]
    if "--project" not in chosen:
        chosen = ["--project", str(config.path(config.rasa.project_dir)), *chosen]
    if "--results" not in chosen:
        chosen = ["--results", str(config.path("var/quality/last.json")), *chosen]
    sys.exit(quality(chosen))


@main.command("reload")
@config_option
@click.option(
    "--model",
    "model_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="The model archive (default: the newest, trained first if the data changed).",
)
def reload_model(config_path: str | None, model_path: str | None) -> None:
    """Put a new model into the running Rasa server without a restart: load it (PUT /model),
    run a canary conversation, and roll back if the canary fails."""
    from pathlib import Path

    from bot.ops.reload import reload, server_urls
    from bot.runtime.model import ensure_model

    config = _load(config_path)
    if model_path is None:
        model, _ = ensure_model(config.path(config.rasa.project_dir), config.path(config.rasa.models_dir),
                                keep=config.rasa.keep_models)  # fmt: skip
    else:
        model = Path(model_path)
    if not model.is_file():
        click.echo(f"no such model: {model}", err=True)
        sys.exit(2)
    result = reload(
        server_urls(config), config.secrets.rasa_token, model, models_dir=config.path(config.rasa.models_dir),
        say=lambda line: click.echo(line, err=True),
    )  # fmt: skip
    click.echo(result.message)
    sys.exit(0 if result.ok else 1)


@main.command("check-config")
@config_option
def check_config(config_path: str | None) -> None:
    """Validate the configuration and say which channels are live or sandboxed."""
    from bot.config import channel_modes

    config = _load(config_path)
    click.echo(f"{config.source}: OK ({config.environment})")
    for name, mode in channel_modes(config).items():
        click.echo(f"  {name}: {mode}")
    for line in _exposure(config):
        click.echo(f"  {line}")


def _exposure(config: Config) -> list[str]:
    """Where Rasa, the action server and Redis listen and what guards each (no secret shown)."""
    from urllib.parse import urlsplit

    from bot.config import is_loopback, redis_url_guards
    from bot.store.connection import REDIS_PASSWORD_FILE, redis_display_url

    def where(host: str | None) -> str:
        return "loopback" if is_loopback(host) else f"{host}, reachable from other machines"

    token = "generated" if "DEBTBOT_ACTIONS_TOKEN" in config.secrets.generated else "DEBTBOT_ACTIONS_TOKEN"
    lines = []
    for server in config.rasa.servers:
        lines += [
            f"rasa: {server.url} ({where(urlsplit(server.url).hostname)}; API token)",
            f"actions: {server.actions_url} ({where(urlsplit(server.actions_url).hostname)}; token: {token})",
        ]
    external = config.secrets.redis_url
    if external:
        _, password, tls = redis_url_guards(external)
        guard = ", ".join(g for g, on in (("password", password), ("TLS", tls)) if on)
        lines.append(f"redis: external {redis_display_url(external)} ({guard or 'no password, no TLS'})")
    else:
        host = config.redis.embedded_host
        lines.append(
            f"redis: embedded {host}:{config.redis.embedded_port} ({where(host)}; password in "
            f"{REDIS_PASSWORD_FILE})"
        )
    return lines


if __name__ == "__main__":
    main()
