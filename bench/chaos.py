"""``make chaos``: the whole product under load while its processes are killed.

A soak, not a test: ``debtbot run`` (embedded Redis, Rasa, the action server, the worker, the
gunicorn gateway) with SMS live against the local Twilio stand-in, all on loopback. Debtors
write signed SMS at a steady rate, each conversation in order (hello, how they are, the date
of birth, a plan, yes, a few more turns), while, at random moments drawn from a fixed seed,
one process of every kind is killed with SIGKILL and the supervisor (or gunicorn's master)
starts it again. Like Twilio, the sender retries a webhook that failed (a 5xx or no answer).

Printed at the end: accepted, answered, lost (accepted, never answered), duplicated (the same
outbox id given to Twilio twice, or a second plan from one conversation), out of order (a
reply to a later message before the reply to an earlier one), the 5xx answers, and the worst
wait from acceptance to the first reply. The run fails (exit 1) unless nothing was lost,
duplicated or out of order and the worst wait after the last restart is under a minute.

Run: ``make chaos`` (1,000 messages, 100 conversations, 3 per second, 10 kills) or
``python -m bench.chaos --messages 200 --conversations 20 --kills 4`` (what CI runs).
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import psutil
import yaml
from twilio.request_validator import RequestValidator

from bot.config import load_config
from bot.conversations.render import outbox_id
from bot.store.connection import connect

ROOT = Path(__file__).resolve().parent.parent
TWILIO_SID = "AC" + "7" * 32
TWILIO_TOKEN = "chaos-twilio-token"  # noqa: S105 - the local stand-in's, not a secret
SECRETS = {"RASA_AUTH_TOKEN": "chaos-rasa-token", "DEBTBOT_SECRET_KEY": "chaos-secret-key",
           "EMAIL_WEBHOOK_SECRET": "chaos-email-secret"}  # fmt: skip
#: What each debtor writes, in order; every message gets at least one answer.
SCRIPT = [
    "hi",
    "good thanks",
    "{dob}",
    "2",
    "I can do 50 a month",
    "1",
    "thanks",
    "what do I owe?",
    "ok",
    "bye",
]
#: The processes killed, by a piece of their command line.
KINDS = {
    "worker": "bot.cli worker",
    "rasa": "dialogue.rasa_server",
    "actions": "bot.runtime.action_server",
    "gateway-worker": "gunicorn",  # a gunicorn worker, never its master
    "redis": "redis-server",
}


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Sent:
    sid: str
    phone: str
    index: int  # position in its conversation
    accepted_at: float | None = None
    attempts: int = 0


@dataclass
class Tally:
    messages: list[Sent] = field(default_factory=list)
    server_errors: int = 0
    refused: int = 0  # gave up after the retries a provider would make
    kills: list[tuple[float, str, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def accounts_csv(path: Path, count: int) -> dict[str, date]:
    """``count`` debtors in New York, each with a date of birth; returns phone -> birth date."""
    people: dict[str, date] = {}
    lines = ["account_id,first_name,last_name,phone,email,telegram,balance,currency,creditor,timezone,"
             "postal_code,country,language,date_of_birth,account_last4"]  # fmt: skip
    for n in range(count):
        phone = f"+1202555{n:04d}"
        born = date(1960, 1, 1) + timedelta(days=137 * n)
        people[phone] = born
        lines.append(f"CHAOS-{n:04d},Sam,Rivera{n},{phone},,,{800 + n}.00,USD,Capitol Mobile,"
                     f"America/New_York,20002,US,en,{born.isoformat()},{n % 10000:04d}")  # fmt: skip
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return people


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def find_victim(root: int, kind: str) -> psutil.Process | None:
    needle = KINDS[kind]
    for proc in descendants(root):
        try:
            line = " ".join(proc.cmdline())
            if needle not in line:
                continue
            if kind == "gateway-worker" and not any(
                needle in " ".join(parent.cmdline()) for parent in [proc.parent()] if parent
            ):
                continue  # the master's parent is the supervisor, not gunicorn
            return proc
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--conversations", type=int, default=100)
    parser.add_argument("--rate", type=float, default=3.0, help="messages per second offered")
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument(
        "--settle", type=float, default=180.0, help="seconds to wait for answers after the last kill"
    )
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)  # noqa: S311 - a reproducible schedule, not a secret

    sys.path.insert(0, str(ROOT))
    from tests.fakes.twilio_api import FakeTwilio  # the stand-in checked against Twilio's spec

    with tempfile.TemporaryDirectory(prefix="debtbot-chaos-") as scratch:
        folder = Path(scratch)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        people = accounts_csv(folder / "accounts.csv", args.conversations)
        twilio = FakeTwilio(auth_token=TWILIO_TOKEN).start()
        settings = {
            "server": {"port": port, "public_url": base, "workers": 2, "threads": 4},
            "rasa": {"project_dir": str(ROOT / "rasa_project"), "models_dir": str(ROOT / "models"),
                     "url": f"http://127.0.0.1:{free_port()}", "actions_url": f"http://127.0.0.1:{free_port()}"},
            "redis": {"embedded_port": free_port(), "data_dir": str(folder / "redis")},
            "channels": {"sms": {"api_base_url": twilio.base_url, "segments_per_second": 100}},
            "logging": {"level": "WARNING"},
        }  # fmt: skip
        config_path = folder / "config.yaml"
        config_path.write_text(yaml.safe_dump(settings), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"} | SECRETS | {
            "TWILIO_ACCOUNT_SID": TWILIO_SID, "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
            "DEBTBOT_CONFIG": str(config_path)}  # fmt: skip
        log = (folder / "run.log").open("w")
        run = subprocess.Popen([sys.executable, "-m", "bot.cli", "run", "--config", str(config_path)],
                               cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        tally = Tally()
        try:
            if not _wait(lambda: _healthy(base), 300):
                print(
                    "the product did not become healthy; its output:\n"
                    + (folder / "run.log").read_text()[-4000:]
                )
                return 1
            imported = subprocess.run([sys.executable, "-m", "bot.cli", "accounts", "import",
                                       str(folder / "accounts.csv"), "--config", str(config_path)],
                                      env=env, capture_output=True, text=True, check=False)  # fmt: skip
            if imported.returncode != 0:
                print("could not import the accounts:", imported.stderr[-2000:])
                return 1
            config = load_config(config_path, env)
            started = time.time()
            duration = args.messages / args.rate
            moments = sorted(rng.uniform(0.1 * duration, 0.9 * duration) for _ in range(args.kills))
            kinds = [list(KINDS)[n % len(KINDS)] for n in range(args.kills)]
            rng.shuffle(kinds)
            plan = list(zip(moments, kinds, strict=True))
            killer = threading.Thread(target=_kill, args=(base, run.pid, plan, started, tally), daemon=True)
            killer.start()
            _send_all(base, people, args, tally, started)
            killer.join()
            last_restart = started + max([at for at, _, _ in tally.kills], default=0.0)
            deadline = time.monotonic() + args.settle
            while time.monotonic() < deadline and _unanswered(tally, twilio):
                time.sleep(1)
            time.sleep(3)  # a late duplicate would show up now
            return _report(tally, twilio, config, started, last_restart, args)
        finally:
            run.send_signal(signal.SIGINT)
            try:
                run.wait(60)
            except subprocess.TimeoutExpired:
                run.kill()
            twilio.close()
            log.close()


def _wait(predicate: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.5)
    return False


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


def _kill(base: str, root: int, plan: list[tuple[float, str]], started: float, tally: Tally) -> None:
    """Kill at each planned moment; record when the product is whole again (``/healthz`` 200)."""
    for moment, kind in plan:
        time.sleep(max(0.0, started + moment - time.time()))
        victim = find_victim(root, kind)
        if victim is None:
            print(f"  {time.time() - started:6.1f}s  no {kind} process to kill")
            continue
        try:
            victim.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            continue
        at = time.time() - started
        time.sleep(2)  # let the health check notice
        _wait(lambda: _healthy(base), 300)
        back = time.time() - started
        tally.kills.append((back, kind, victim.pid))
        print(f"  {at:6.1f}s  killed {kind} (pid {victim.pid}); healthy again at {back:.1f}s")


def _send_all(
    base: str, people: dict[str, date], args: argparse.Namespace, tally: Tally, started: float
) -> None:
    """Round-robin over the conversations, one message each per round, at ``args.rate``."""
    phones = list(people)
    validator = RequestValidator(TWILIO_TOKEN)
    url = f"{base}/webhooks/sms"
    with httpx.Client(timeout=15) as client:
        for n in range(args.messages):
            phone = phones[n % len(phones)]
            index = n // len(phones)
            text = SCRIPT[index % len(SCRIPT)].format(dob=people[phone].strftime("%d %B %Y"))
            sent = Sent(sid=f"SM{n:032x}", phone=phone, index=index)
            tally.messages.append(sent)
            form = {"MessageSid": sent.sid, "AccountSid": TWILIO_SID, "From": phone, "To": "+15005550006",
                    "Body": text, "NumMedia": "0"}  # fmt: skip
            headers = {"X-Twilio-Signature": validator.compute_signature(url, form),
                       "Content-Type": "application/x-www-form-urlencoded"}  # fmt: skip
            threading.Thread(target=_deliver, args=(client, url, urlencode(form), headers, sent, tally),
                             daemon=True).start()  # fmt: skip
            time.sleep(max(0.0, started + (n + 1) / args.rate - time.time()))
        time.sleep(1)


def _deliver(
    client: httpx.Client, url: str, body: str, headers: dict[str, str], sent: Sent, tally: Tally
) -> None:
    """Post like Twilio: a 5xx or no answer is tried again, a few times, with backoff."""
    for attempt in range(8):
        sent.attempts = attempt + 1
        try:
            answer = client.post(url, content=body, headers=headers)
        except httpx.HTTPError:
            time.sleep(min(2**attempt, 15))
            continue
        if answer.status_code < 500:
            if answer.status_code == 200:
                sent.accepted_at = time.time()  # compared with Twilio's date_created
            return
        with tally.lock:
            tally.server_errors += 1
        time.sleep(min(2**attempt, 15))
    with tally.lock:
        tally.refused += 1


@dataclass(frozen=True)
class Reply:
    order: int  # position among everything Twilio was given
    created: float  # Twilio's date_created, seconds since the epoch


def _replies(twilio: object) -> dict[str, list[Reply]]:
    """Outbox id -> every message Twilio was given with it (more than one is a duplicate)."""
    found: dict[str, list[Reply]] = defaultdict(list)
    for order, message in enumerate(twilio.messages):  # type: ignore[attr-defined]
        outbox = parse_qs(urlsplit(message.status_callback or "").query).get("o", [""])[0]
        found[outbox].append(Reply(order, message.date_created.timestamp()))
    return found


def _first_reply(sent: Sent, replies: dict[str, list[Reply]]) -> Reply | None:
    """The first message sent in answer to ``sent`` (its outbox ids are derived from its sid)."""
    found = [r for i in range(4) for r in replies.get(outbox_id(f"sms:{sent.sid}", i), [])]
    return min(found, key=lambda r: r.order) if found else None


def _unanswered(tally: Tally, twilio: object) -> int:
    replies = _replies(twilio)
    return sum(1 for s in tally.messages if s.accepted_at is not None and _first_reply(s, replies) is None)


def _report(tally: Tally, twilio: object, config: object, started: float, last_restart: float,
            args: argparse.Namespace) -> int:  # fmt: skip
    replies = _replies(twilio)
    accepted = [s for s in tally.messages if s.accepted_at is not None]
    answered = [s for s in accepted if _first_reply(s, replies) is not None]
    lost = len(accepted) - len(answered)
    duplicated = sum(len(v) - 1 for v in replies.values() if len(v) > 1)
    by_phone: dict[str, list[tuple[int, int]]] = defaultdict(list)
    worst = worst_after_restart = 0.0
    for s in answered:
        first = _first_reply(s, replies)
        assert first is not None and s.accepted_at is not None
        by_phone[s.phone].append((s.index, first.order))
        worst = max(worst, first.created - s.accepted_at)
        worst_after_restart = max(worst_after_restart, first.created - max(s.accepted_at, last_restart))
    out_of_order = 0
    for pairs in by_phone.values():
        ordered = [order for _, order in sorted(pairs)]
        out_of_order += sum(1 for a, b in itertools.pairwise(ordered) if b < a)
    client = connect(config)  # type: ignore[arg-type]
    plans = Counter({phone: int(client.llen(f"debtbot:account:CHAOS-{n:04d}:plans"))
                     for n, phone in enumerate(sorted({s.phone for s in tally.messages}))})  # fmt: skip
    second_plans = sum(count - 1 for count in plans.values() if count > 1)
    print()
    print(
        f"messages offered     {len(tally.messages)} over {args.conversations} conversations at {args.rate}/s"
    )
    print(f"kills                {len(tally.kills)}: " + ", ".join(k for _, k, _ in tally.kills))
    print(
        f"accepted             {len(accepted)} (5xx answers {tally.server_errors}, given up {tally.refused})"
    )
    print(f"answered             {len(answered)}")
    print(f"lost                 {lost}")
    print(f"duplicated           {duplicated} sends, {second_plans} second plans")
    print(f"out of order         {out_of_order}")
    print(f"plans made           {sum(1 for c in plans.values() if c)} of {len(plans)} conversations")
    print(f"worst wait           {worst:.1f}s; {worst_after_restart:.1f}s counted from the last recovery")
    print(f"elapsed              {time.time() - started:.0f}s")
    ok = (
        lost == 0 and duplicated == 0 and second_plans == 0 and out_of_order == 0 and worst_after_restart < 60
    )
    print("result               " + ("ok" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
