"""``make bench``: the whole product against Rasa alone and Rasa's own Twilio connector (issue 18).

A benchmark, not a test. One run, on this machine, with the same trained model
(``debtbot train --print-path``) and the same scripted conversations for every system:
debtors (generated accounts, each with a date of birth) write what a real debtor would, one
message after the other (hello, how they are, their date of birth, an offer, yes, thanks).
Replies are timed where they arrive: at a local Twilio stand-in (SMS), or in the HTTP answer
for Rasa's REST channel. The product's SMS pacing is raised to its maximum so it does not
dominate. The systems:

- ``ours``: the product as ``debtbot run`` starts it (Redis, Rasa, the action server, the
  worker, the gunicorn gateway; bot/runtime/launch.py's process specs), fed signed Twilio
  webhooks over HTTP, replies sent by the worker to the stand-in;
- ``rasa_rest``: the Rasa server the product starts (``dialogue.rasa_server``, with our changes
  to Rasa) and the same action server, model, endpoints and Redis, through Rasa's REST channel
  with the metadata our worker sends (closed loop from this process);
- ``rasa_rest_stock``: the same through stock Rasa (``rasa run``, none of our changes);
- ``rasa_twilio``: stock Rasa through its own ``twilio`` channel, its REST calls redirected to
  the stand-in and the same metadata added (``bench/rasa_twilio.py``);
- ``ours_rasa2``: the product with ``rasa.processes: 2`` (throughput only; "not available"
  when the configuration or ``debtbot run`` does not support it).

Measured for each: throughput (messages per second, closed loop: each debtor sends its next
message once every reply to the previous one arrived, ``--debtors`` at once); reply latency
at ``--rate`` messages per second offered (open loop, p50/p95 of the first reply); CPU seconds
per message (the system's processes, from /proc through psutil, over the throughput phase);
each process's resident memory. Rasa alone and its Twilio connector run before the worker and
gateway start, so nothing else of ours competes with them (stock Rasa runs, and is stopped,
before the others).

Writes ``bench/results/<UTC time>.json`` and ``bench/results/latest.json`` (with the machine's
CPU count and load) and prints the table ``python -m bench.report`` puts in the README.
Run: ``make bench`` (about 10 minutes on 2 cores) or ``python -m bench.e2e --quick``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs, urlencode

import httpx
import psutil
import yaml
from twilio.request_validator import RequestValidator

from bench import profile as profiling
from bench.report import LATEST, RESULTS, render_table
from bot.config import Config, RasaConfig, load_config
from bot.ops.analytics.store import AnalyticsStore, database_url
from bot.runtime.launch import actions_ready, child_env, process_specs
from bot.runtime.supervisor import ManagedProcess, ProcessSpec
from bot.store.accounts import AccountStore
from bot.store.connection import Keys, connect

ROOT = Path(__file__).resolve().parent.parent
TWILIO_SID = "AC" + "8" * 32
TWILIO_TOKEN = "bench-twilio-token"  # noqa: S105 - the local stand-in's, not a secret
SECRETS = {
    "RASA_AUTH_TOKEN": "bench-rasa-token",
    "DEBTBOT_SECRET_KEY": "bench-secret-key",
    "EMAIL_WEBHOOK_SECRET": "bench-email-secret",
}
OUR_NUMBER = "+15005550006"
#: What each debtor writes, in order (the flow of tests/e2e/test_export_story.py, then thanks).
SCRIPT = ("hello", "good thanks", "{dob}", "I can do 50 a month", "yes", "thanks")
#: One area code per group of debtors, so every phone number is different.
AREAS = (
    "202",
    "212",
    "213",
    "305",
    "312",
    "404",
    "415",
    "503",
    "617",
    "702",
    "713",
    "818",
    "206",
    "303",
    "602",
    "919",
)
#: Longest wait for the replies to one message.
TURN_TIMEOUT = 120.0
#: After the first reply, how long without another before a calibration turn is complete.
QUIET = 1.5


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port(count: int = 1) -> int:
    """A free port of 127.0.0.1 with the ``count - 1`` ports after it free too."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port + count > 65535:
            continue
        if all(_port_free(port + n) for n in range(1, count)):
            return port
    raise RuntimeError(f"no {count} free consecutive ports")


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# --- debtors ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Debtor:
    account_id: str
    phone: str
    born: date

    def text(self, turn: int) -> str:
        return SCRIPT[turn].format(dob=f"{self.born.day} {self.born:%B %Y}")


def make_debtors(group: int, count: int) -> list[Debtor]:
    """``count`` made-up debtors of one group (its own area code and account ids)."""
    born = date(1961, 3, 5)
    return [
        Debtor(
            f"BENCH{group:02d}-{n:04d}", f"+1{AREAS[group]}555{n:04d}", born + timedelta(days=173 * n + group)
        )
        for n in range(count)
    ]


def accounts_csv(debtors: Sequence[Debtor]) -> str:
    lines = [
        "account_id,first_name,last_name,phone,email,telegram,balance,currency,creditor,timezone,"
        "postal_code,country,language,date_of_birth,account_last4"
    ]
    for n, debtor in enumerate(debtors):
        lines.append(
            f"{debtor.account_id},Sam,Rivera{n},{debtor.phone},,,{400 + n % 500}.00,USD,"
            f"Capitol Mobile,America/New_York,20002,US,en,{debtor.born.isoformat()},{n % 10000:04d}"
        )
    return "\n".join(lines) + "\n"


# --- the Twilio stand-in ----------------------------------------------------------------------


def sms_form(sender: str, body: str, sid: str | None = None) -> dict[str, str]:
    """An inbound SMS as Twilio posts it to a webhook (a new MessageSid unless given)."""
    return {
        "MessageSid": sid or "SM" + secrets.token_hex(16),
        "AccountSid": TWILIO_SID,
        "From": sender,
        "To": OUR_NUMBER,
        "Body": body,
        "NumMedia": "0",
    }


@dataclass(frozen=True)
class _Answer:
    status: int
    body: Any
    delay: float = 0.0


class TwilioRecorder:
    """The smallest Twilio Messages API that satisfies twilio-python: it answers 201 and notes
    when each message arrived, per recipient. (tests/fakes/twilio_api.py checks every request
    against Twilio's OpenAPI file: right for tests, too much CPU on this machine for a benchmark.)
    """

    def __init__(self) -> None:
        from tests.fakes.http_stand_in import StandIn

        recorder = self

        class _Server(StandIn):
            name = "bench-twilio"

            def _serve(self, method: str, target: str, headers: dict[str, str], body: bytes) -> _Answer:
                return recorder._serve(method, target, body)

        self._server = _Server()
        self._lock = threading.Lock()
        self._arrived: dict[str, list[tuple[float, str]]] = {}
        self._conditions: dict[str, threading.Condition] = {}

    def start(self) -> TwilioRecorder:
        self._server.start()
        return self

    def close(self) -> None:
        self._server.close()

    @property
    def base_url(self) -> str:
        return self._server.base_url

    def _condition(self, phone: str) -> threading.Condition:
        with self._lock:
            if phone not in self._conditions:
                self._conditions[phone] = threading.Condition()
                self._arrived[phone] = []
            return self._conditions[phone]

    def _serve(self, method: str, target: str, body: bytes) -> _Answer:
        now = time.perf_counter()
        if method != "POST" or not target.split("?")[0].endswith("/Messages.json"):
            return _Answer(404, {"code": 20404, "message": "not found", "status": 404})
        form = {
            key: values[0] for key, values in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()
        }
        to, text = form.get("To", ""), form.get("Body", "")
        condition = self._condition(to)
        with condition:
            self._arrived[to].append((now, text))
            condition.notify_all()
        sid = "SM" + secrets.token_hex(16)
        stamp = format_datetime(datetime.now(timezone.utc))
        account = target.split("/Accounts/")[-1].split("/")[0]
        return _Answer(
            201,
            {
                "sid": sid,
                "account_sid": account,
                "to": to,
                "from": form.get("From"),
                "body": text,
                "status": "queued",
                "direction": "outbound-api",
                "num_segments": "1",
                "num_media": "0",
                "date_created": stamp,
                "date_updated": stamp,
                "date_sent": None,
                "error_code": None,
                "error_message": None,
                "price": None,
                "api_version": "2010-04-01",
                "messaging_service_sid": form.get("MessagingServiceSid"),
                "uri": f"/2010-04-01/Accounts/{account}/Messages/{sid}.json",
            },
        )

    def arrived(self, phone: str) -> list[tuple[float, str]]:
        condition = self._condition(phone)
        with condition:
            return list(self._arrived[phone])

    def wait(self, phone: str, count: int, deadline: float) -> list[tuple[float, str]]:
        """Every arrival for ``phone`` once there are ``count`` (or at ``deadline``, perf_counter)."""
        condition = self._condition(phone)
        with condition:
            while len(self._arrived[phone]) < count:
                left = deadline - time.perf_counter()
                if left <= 0:
                    break
                condition.wait(left)
            return list(self._arrived[phone])

    def wait_quiet(self, phone: str, after: int, deadline: float) -> list[tuple[float, str]]:
        """The arrivals once at least one came after the first ``after`` and none for ``QUIET``."""
        seen = self.wait(phone, after + 1, deadline)
        while len(seen) > after:
            more = self.wait(phone, len(seen) + 1, min(deadline, time.perf_counter() + QUIET))
            if len(more) == len(seen):
                break
            seen = more
        return seen


# --- the systems ------------------------------------------------------------------------------


@dataclass
class Turn:
    """One message and its replies (``perf_counter`` moments)."""

    sent: float
    first: float | None = None
    last: float | None = None
    texts: list[str] = field(default_factory=list)
    ok: bool = False
    waited: float = 0.0  # open loop: how long it waited for the previous turn beyond its slot

    @property
    def first_ms(self) -> float | None:
        return None if self.first is None else (self.first - self.sent) * 1000

    @property
    def reply_ms(self) -> float | None:
        """Until the debtor has every reply (for REST, the answer; else the last SMS)."""
        return None if self.last is None else (self.last - self.sent) * 1000


class Target:
    """Something a debtor writes to; ``say`` blocks until the replies are in."""

    name = "?"

    def say(self, debtor: Debtor, turn: int, expected: int | None) -> Turn:
        raise NotImplementedError


class RasaRest(Target):
    """Rasa's REST channel, with the metadata our worker sends."""

    name = "rasa_rest"

    def __init__(self, rasa_url: str, http: httpx.Client) -> None:
        self._url = f"{rasa_url}/webhooks/rest/webhook"
        self._http = http

    def say(self, debtor: Debtor, turn: int, expected: int | None) -> Turn:
        sid = "SM" + secrets.token_hex(16)
        metadata = {
            "channel": "sms",
            "account_id": debtor.account_id,
            "language": "en",
            "external_id": sid,
            "address": debtor.phone,
            "screen": {"concerns": [], "distress": False},
        }
        body = {"sender": f"acct-{debtor.account_id}", "message": debtor.text(turn), "metadata": metadata}
        result = Turn(sent=time.perf_counter())
        try:
            answer = self._http.post(self._url, json=body)
        except httpx.HTTPError:
            return result
        now = time.perf_counter()
        if answer.status_code == 200:
            result.texts = [str(m.get("text") or "") for m in answer.json()]
            result.ok = bool(result.texts)
            result.first = result.last = now if result.texts else None
        return result


class RasaTwilio(Target):
    """Rasa's own Twilio connector: it sends the replies before answering the webhook."""

    name = "rasa_twilio"

    def __init__(self, rasa_url: str, recorder: TwilioRecorder, http: httpx.Client) -> None:
        self._url = f"{rasa_url}/webhooks/twilio/webhook"
        self._recorder = recorder
        self._http = http

    def say(self, debtor: Debtor, turn: int, expected: int | None) -> Turn:
        form = sms_form(debtor.phone, debtor.text(turn))
        before = len(self._recorder.arrived(debtor.phone))
        result = Turn(sent=time.perf_counter())
        try:
            answer = self._http.post(self._url, data=form)
        except httpx.HTTPError:
            return result
        replies = self._recorder.arrived(debtor.phone)[before:]
        if answer.status_code < 300 and replies:
            result.first, result.last = replies[0][0], replies[-1][0]
            result.texts = [text for _, text in replies]
            result.ok = True
        return result


class Product(Target):
    """Our gateway, fed signed Twilio webhooks; the worker's replies arrive at the stand-in."""

    name = "ours"

    def __init__(self, config: Config, recorder: TwilioRecorder, http: httpx.Client) -> None:
        self._config = config
        self._public = f"{config.server.public_url}/webhooks/sms"
        self._url = f"{config.server.internal_url}/webhooks/sms"
        self._recorder = recorder
        self._http = http
        self._validator = RequestValidator(TWILIO_TOKEN)

    def say(self, debtor: Debtor, turn: int, expected: int | None) -> Turn:
        form = sms_form(debtor.phone, debtor.text(turn))
        headers = {
            "X-Twilio-Signature": self._validator.compute_signature(self._public, form),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        before = len(self._recorder.arrived(debtor.phone))
        result = Turn(sent=time.perf_counter())
        deadline = result.sent + TURN_TIMEOUT
        try:
            answer = self._http.post(self._url, content=urlencode(form), headers=headers)
        except httpx.HTTPError:
            return result
        if answer.status_code != 200:
            return result
        if expected is None:  # calibrating: every reply, however many
            seen = self._recorder.wait_quiet(debtor.phone, before, deadline)
        else:
            seen = self._recorder.wait(debtor.phone, before + expected, deadline)
        replies = seen[before:]
        if replies:
            result.first, result.last = replies[0][0], replies[-1][0]
            result.texts = [text for _, text in replies]
        result.ok = bool(replies) and (expected is None or len(replies) >= expected)
        return result

    def reply_waits_ms(self, debtors: Sequence[Debtor]) -> list[float]:
        """For every reply to ``debtors``: from the moment the worker queued it (its line in the
        conversation's history) to its arrival at the stand-in: the outbound queue's wait plus
        the send (pairs taken in order per conversation)."""
        client, keys = connect(self._config), Keys(self._config.redis.key_prefix)
        offset = time.time() - time.perf_counter()  # the recorder's moments are perf_counter
        waits = []
        for debtor in debtors:
            queued = []
            for _, fields in client.xrange(keys.conversation_history(f"acct-{debtor.account_id}")):
                entry = json.loads(fields[b"entry"])
                if entry.get("direction") == "out":
                    queued.append(float(entry["at"]))
            arrived = [moment + offset for moment, _ in self._recorder.arrived(debtor.phone)]
            waits += [1000 * (a - q) for q, a in zip(queued, arrived, strict=False)]
        return waits


# --- measuring --------------------------------------------------------------------------------


def percentile(values: Sequence[float], share: float) -> float | None:
    """Nearest rank."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def _converse(
    target: Target, debtor: Debtor, turns: int, expected: Sequence[int] | None, into: list[Turn]
) -> None:
    for turn in range(turns):
        result = target.say(debtor, turn, expected[turn] if expected else None)
        into.append(result)
        if not result.ok:
            return


def calibrate(target: Target, debtors: Sequence[Debtor], turns: int) -> list[list[Turn]]:
    """Whole conversations one after the other (the first warms the model up); the last one
    says how many replies each message gets."""
    conversations: list[list[Turn]] = []
    for debtor in debtors:
        turns_of: list[Turn] = []
        _converse(target, debtor, turns, None, turns_of)
        conversations.append(turns_of)
    return conversations


class Processes:
    """The processes of a system, by name, with their children (a gunicorn master's workers)."""

    def __init__(self, roots: dict[str, int]) -> None:
        self._roots = dict(roots)

    def add(self, name: str, pid: int | None) -> None:
        if pid is not None:
            self._roots[name] = pid

    def each(self) -> Iterator[tuple[str, psutil.Process]]:
        for name, pid in self._roots.items():
            try:
                root = psutil.Process(pid)
                yield name, root
                for n, child in enumerate(root.children(recursive=True), start=1):
                    yield f"{name}.{n}", child
            except psutil.NoSuchProcess:
                continue

    def cpu(self) -> dict[str, float]:
        found: dict[str, float] = {}
        for name, process in self.each():
            try:
                times = process.cpu_times()
                found[name] = times.user + times.system
            except psutil.NoSuchProcess:
                continue
        return found

    def python(self) -> list[tuple[str, int]]:
        """(name, pid) of each Python process (what py-spy can read)."""
        found: list[tuple[str, int]] = []
        for name, process in self.each():
            try:
                if "python" in " ".join(process.cmdline()[:1]).lower() or "rasa" in process.name():
                    found.append((name, process.pid))
            except psutil.NoSuchProcess:
                continue
        return found

    def rss_mb(self) -> dict[str, float]:
        found: dict[str, float] = {}
        for name, process in self.each():
            try:
                found[name] = round(process.memory_info().rss / 2**20, 1)
            except psutil.NoSuchProcess:
                continue
        return found


def _own_cpu() -> float:
    times = psutil.Process().cpu_times()
    return float(times.user + times.system)


def closed_loop(
    target: Target,
    debtors: Sequence[Debtor],
    turns: int,
    expected: Sequence[int] | None,
    processes: Processes,
    profile: Path | None = None,
    name: str = "",
) -> dict[str, Any]:
    """Every debtor at once, each sending its next message when the replies are in (with
    ``profile``, py-spy records each Python process meanwhile: bench/profile.py)."""
    per_debtor: list[list[Turn]] = [[] for _ in debtors]
    threads = [
        threading.Thread(target=_converse, args=(target, d, turns, expected, per_debtor[n]), daemon=True)
        for n, d in enumerate(debtors)
    ]
    spies = profiling.recording(profile, name, processes.python()) if profile else nullcontext()
    with spies:
        cpu_before, own_before = processes.cpu(), _own_cpu()
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - started
    cpu_after, own_after = processes.cpu(), _own_cpu()
    done = [t for turns_of in per_debtor for t in turns_of if t.ok]
    failed = len(debtors) * turns - len(done)
    by_process = {name: round(cpu_after[name] - cpu_before.get(name, 0.0), 2) for name in cpu_after}
    total = sum(by_process.values())
    under_load = [t.reply_ms for t in done if t.reply_ms is not None]
    return {
        "throughput": {
            "messages": len(done),
            "failed": failed,
            "seconds": round(seconds, 2),
            "msgs_per_s": round(len(done) / seconds, 2) if seconds > 0 else None,
            "reply_p50_ms_under_load": _rounded(percentile(under_load, 0.5)),
        },
        "cpu": {
            "seconds": round(total, 2),
            "per_message_ms": round(1000 * total / len(done), 1) if done else None,
            "by_process": by_process,
            "bench_process_seconds": round(own_after - own_before, 2),
        },
    }


def open_loop(
    target: Target, debtors: Sequence[Debtor], turns: int, expected: Sequence[int] | None, rate: float
) -> dict[str, Any]:
    """Messages at ``rate`` per second, whatever the replies, round-robin over the debtors (a
    debtor's next message waits for the replies to its previous one: counted as late)."""
    total = len(debtors) * turns
    finished = [[threading.Event() for _ in range(turns)] for _ in debtors]
    failed = [threading.Event() for _ in debtors]
    results: list[Turn | None] = [None] * total
    started = time.perf_counter()

    def one(n: int) -> None:
        index, turn = n % len(debtors), n // len(debtors)
        slot = started + n / rate
        if turn > 0:
            finished[index][turn - 1].wait(TURN_TIMEOUT)
        if failed[index].is_set():
            finished[index][turn].set()
            return
        waited = max(0.0, time.perf_counter() - slot)
        result = target.say(debtors[index], turn, expected[turn] if expected else None)
        result.waited = waited
        results[n] = result
        if not result.ok:
            failed[index].set()
        finished[index][turn].set()

    threads = []
    for n in range(total):
        time.sleep(max(0.0, started + n / rate - time.perf_counter()))
        thread = threading.Thread(target=one, args=(n,), daemon=True)
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    done = [r for r in results if r is not None and r.ok]
    firsts = [r.first_ms for r in done if r.first_ms is not None]
    replies = [r.reply_ms for r in done if r.reply_ms is not None]
    return {
        "offered_per_s": rate,
        "messages": len(done),
        "failed": total - len(done),
        "late": sum(1 for r in done if r.waited > 0.05),
        "p50_ms": _rounded(percentile(replies, 0.5)),
        "p95_ms": _rounded(percentile(replies, 0.95)),
        "first_reply_p50_ms": _rounded(percentile(firsts, 0.5)),
        "first_reply_p95_ms": _rounded(percentile(firsts, 0.95)),
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def measure(
    target: Target,
    groups: dict[str, list[Debtor]],
    args: argparse.Namespace,
    processes: Processes,
    *,
    latency: bool = True,
) -> dict[str, Any]:
    """Calibrate (and warm up), then the closed loop, then the open loop."""
    say(f"{target.name}: calibrating on {len(groups['calibration'])} conversation(s)")
    conversations = calibrate(target, groups["calibration"], args.turns)
    last = conversations[-1]
    if len(last) < args.turns or not all(t.ok for t in last):
        raise RuntimeError(f"{target.name}: the calibration conversation failed: {[t.texts for t in last]}")
    expected = [len(t.texts) for t in last]
    say(f"{target.name}: replies per message {expected}; closed loop, {len(groups['load'])} debtors")
    result: dict[str, Any] = {
        "available": True,
        "replies_per_message": expected,
        "calibration": [t.texts for t in last],
    }
    result |= closed_loop(target, groups["load"], args.turns, expected, processes, args.profile, target.name)
    say(
        f"{target.name}: {result['throughput']['msgs_per_s']} msgs/s "
        f"({result['throughput']['failed']} failed), CPU {result['cpu']['per_message_ms']} ms/message"
    )
    if latency:
        say(f"{target.name}: open loop at {args.rate}/s, {len(groups['latency'])} debtors")
        result["latency"] = open_loop(target, groups["latency"], args.turns, expected, args.rate)
        latency_of = result["latency"]
        say(f"{target.name}: all replies in at p50 {latency_of['p50_ms']} ms, p95 {latency_of['p95_ms']} ms")
    near = groups.get("near_saturation")
    if near and isinstance(target, Product) and result["throughput"]["msgs_per_s"]:
        rate = round(0.8 * result["throughput"]["msgs_per_s"], 1)
        say(f"{target.name}: open loop at 80% of saturation, {rate}/s, {len(near)} debtors")
        phase = open_loop(target, near, args.turns, expected, rate)
        waits = target.reply_waits_ms(near)
        phase["reply_queue_wait_ms"] = {
            "replies": len(waits),
            "p50": _rounded(percentile(waits, 0.5)),
            "p95": _rounded(percentile(waits, 0.95)),
            "max": _rounded(max(waits) if waits else None),
            "over_100_ms": sum(1 for w in waits if w > 100),
        }
        result["near_saturation"] = phase
        say(f"{target.name}: replies queued to arrival p50/p95/max {phase['reply_queue_wait_ms']}")
    result["rss_mb"] = processes.rss_mb()
    return result


# --- the processes ----------------------------------------------------------------------------


def _rasa_ports(specs: Sequence[ProcessSpec]) -> list[int]:
    return [int(s.argv[list(s.argv).index("--port") + 1]) for s in specs if "dialogue.rasa_server" in s.argv]


class Stack:
    """The product's processes, from ``debtbot run``'s own specs, started in two steps: Redis,
    Rasa and the action server(s) first, then the worker(s) and the gateway."""

    def __init__(
        self,
        folder: Path,
        recorder: TwilioRecorder,
        model: Path,
        log: IO[str],
        *,
        rasa_processes: int = 1,
        twilio_accounts: dict[str, str] | None = None,
    ) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        port = free_port()
        rasa: dict[str, Any] = {
            "project_dir": str(ROOT / "rasa_project"),
            "models_dir": str(ROOT / "models"),
            "url": f"http://127.0.0.1:{free_port(rasa_processes)}",
            "actions_url": f"http://127.0.0.1:{free_port(rasa_processes)}",
        }
        if rasa_processes > 1:
            rasa["processes"] = rasa_processes
        settings = {
            "server": {"port": port, "public_url": f"http://127.0.0.1:{port}"},
            "rasa": rasa,
            "redis": {"embedded_port": free_port(), "data_dir": str(folder / "redis")},
            "channels": {"sms": {"api_base_url": recorder.base_url, "segments_per_second": 1000}},
            "logging": {"level": "WARNING"},
        }
        path = folder / "config.yaml"
        path.write_text(yaml.safe_dump(settings), encoding="utf-8")
        self.config = load_config(path, dict(os.environ))
        credentials = folder / "credentials.yml"
        credentials.write_text(_credentials(folder, recorder, twilio_accounts or {}), encoding="utf-8")
        specs = process_specs(self.config, model)
        for spec in specs:
            argv = list(spec.argv)
            if "dialogue.rasa_server" in argv and "--credentials" in argv:
                argv[argv.index("--credentials") + 1] = str(credentials)
                spec.argv = argv
        self.rasa_ports = _rasa_ports(specs)
        self.processes = [ManagedProcess(spec, log) for spec in specs]
        self._log = log
        self._folder, self._recorder, self._model = folder, recorder, model
        self._twilio_accounts = twilio_accounts or {}

    def stock_rasa(self) -> tuple[ManagedProcess, int]:
        """Rasa as ``rasa run`` starts it (none of our changes), on the same endpoints (Redis,
        the action server) except the event broker (Rasa's own SQL broker into the analytics
        store, as the product had it before ``dialogue/event_broker.py``), with only Rasa's REST
        channel and its Twilio connector; started."""
        port = free_port()
        project = self.config.path(self.config.rasa.project_dir)
        endpoints = yaml.safe_load((project / "endpoints.yml").read_text(encoding="utf-8"))
        endpoints["event_broker"] = {"type": "SQL", "url": "${DEBTBOT_EVENTS_URL}"}
        stock_endpoints = self._folder / "endpoints-stock.yml"
        stock_endpoints.write_text(yaml.safe_dump(endpoints), encoding="utf-8")
        credentials = self._folder / "credentials-stock.yml"
        text = _credentials(self._folder, self._recorder, self._twilio_accounts, ours=False)
        credentials.write_text(text, encoding="utf-8")
        token = self.config.secrets.rasa_token  # a throw-away token of this run, on loopback
        spec = ProcessSpec(
            name="rasa-stock",
            argv=[str(Path(sys.executable).parent / "rasa"), "run", "--model", str(self._model),
                  "--endpoints", str(stock_endpoints), "--credentials", str(credentials),
                  "--enable-api", "--auth-token", token, "--interface", "127.0.0.1", "--port", str(port)],
            env=child_env(self.config),
            cwd=self.config.base_dir,
            stop_timeout=15,
        )  # fmt: skip
        process = ManagedProcess(spec, self._log)
        process.start()
        url = f"http://127.0.0.1:{port}/status"
        _wait(lambda: _http_ok(url, {"token": token}), 300, "stock Rasa", process)
        return process, port

    def _start(self, process: ManagedProcess) -> None:
        process.start()
        spec = process.spec
        if spec.ready is not None:
            _wait(spec.ready, spec.ready_timeout, spec.name, process)

    def start_dialogue(self) -> None:
        """Redis, the Rasa server(s), the action server(s); the accounts imported."""
        with AnalyticsStore(database_url(self.config)) as store:  # Rasa's event broker writes there
            store.migrate()
        for process in self.processes:
            if process.spec.name.startswith(("worker", "gateway")):
                continue
            self._start(process)
        token = self.config.secrets.rasa_token
        for port in self.rasa_ports:
            url = f"http://127.0.0.1:{port}/status"
            _wait(lambda url=url: _http_ok(url, {"token": token}), 300, f"Rasa on port {port}", None)  # type: ignore[misc]
        _wait(lambda: actions_ready(self.config), 60, "the action server", None)

    def start_product(self) -> None:
        for process in self.processes:
            if process.spec.name.startswith(("worker", "gateway")):
                self._start(process)
        url = f"{self.config.server.internal_url}/healthz"
        _wait(lambda: _http_ok(url), 120, "the gateway's /healthz", None)

    def import_accounts(self, debtors: Sequence[Debtor]) -> None:
        accounts = self.config.accounts
        report = AccountStore(connect(self.config), Keys(self.config.redis.key_prefix)).import_csv(
            accounts_csv(debtors),
            languages=accounts.languages,
            default_language=accounts.default_language,
            verification_field=accounts.verification_field,
        )
        if report.errors:
            raise RuntimeError(f"could not import the accounts: {report.errors[:3]}")

    def pids(self, *prefixes: str) -> Processes:
        return Processes(
            {
                p.spec.name: p.pid
                for p in self.processes
                if p.pid is not None and p.alive() and p.spec.name.startswith(prefixes or ("",))
            }
        )

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


def _credentials(
    folder: Path, recorder: TwilioRecorder, twilio_accounts: dict[str, str], *, ours: bool = True
) -> str:
    """Rasa's REST channel and its Twilio connector, after the project's credentials (our
    channel) with ``ours``."""
    accounts = folder / "twilio-accounts.json"
    accounts.write_text(json.dumps(twilio_accounts), encoding="utf-8")
    project = (ROOT / "rasa_project" / "credentials.yml").read_text(encoding="utf-8") if ours else ""
    # Appended as text: Rasa fills in ${...} only in plain scalars, which a YAML dump may quote.
    return (
        project.rstrip()
        + "\n\n"
        + yaml.safe_dump(
            {
                "rest": None,
                "bench.rasa_twilio.StandInTwilioInput": {
                    "account_sid": TWILIO_SID,
                    "auth_token": TWILIO_TOKEN,
                    "twilio_number": OUR_NUMBER,
                    "api_base_url": recorder.base_url,
                    "accounts_file": str(accounts),
                },
            }
        )
    )


def _http_ok(url: str, params: dict[str, str] | None = None) -> bool:
    try:
        return httpx.get(url, params=params, timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


def _wait(check: Callable[[], bool], timeout: float, what: str, process: ManagedProcess | None) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if process is not None and not process.alive():
            raise RuntimeError(f"{what} exited during start-up (see the log)")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {timeout:.0f}s (see the log)")
        time.sleep(0.3)


@contextmanager
def running(stack: Stack) -> Iterator[Stack]:
    try:
        yield stack
    finally:
        say("stopping the processes")
        stack.stop()


# --- the run ----------------------------------------------------------------------------------


def trained_model() -> Path:
    printed = subprocess.run(
        [sys.executable, "-m", "bot.cli", "train", "--print-path"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return Path([line for line in printed.stdout.splitlines() if line.strip()][-1].strip())


def scale_out_missing(stack: Stack | None = None) -> str | None:
    """Why the 1-vs-2 Rasa comparison cannot run here, or ``None`` when it can."""
    if "processes" not in RasaConfig.__fields__:
        return "rasa.processes is not in the configuration yet"
    if stack is not None and len(stack.rasa_ports) < 2:
        return "debtbot run starts one Rasa server with rasa.processes: 2 (bot/runtime/launch.py)"
    return None


def groups_for(first_group: int, args: argparse.Namespace) -> dict[str, list[Debtor]]:
    return {
        "calibration": make_debtors(first_group, args.calibration),
        "load": make_debtors(first_group + 1, args.debtors),
        "latency": make_debtors(first_group + 2, args.latency_debtors),
    }


#: The debtors of the product's run at 80% of its saturation (their own area code).
NEAR_SATURATION_GROUP = 15


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: few debtors")
    parser.add_argument("--debtors", type=int, help="closed loop: debtors at once (50; quick 8)")
    parser.add_argument("--latency-debtors", type=int, help="open loop: debtors (15; quick 5)")
    parser.add_argument(
        "--turns", type=int, default=len(SCRIPT), help=f"messages per debtor (at most {len(SCRIPT)})"
    )
    parser.add_argument("--rate", type=float, default=3.0, help="open loop: messages per second offered")
    parser.add_argument(
        "--no-stock", action="store_true", help="skip stock Rasa (its REST channel and Twilio connector)"
    )
    parser.add_argument("--no-scale-out", action="store_true", help="skip the run with 2 Rasa processes")
    parser.add_argument("--keep", type=Path, help="keep the logs and configuration in this folder")
    parser.add_argument(
        "--profile", type=Path, help="py-spy each process in the closed loop; profiles and summary.md here"
    )
    args = parser.parse_args(argv)
    args.debtors = args.debtors or (8 if args.quick else 50)
    args.latency_debtors = args.latency_debtors or (5 if args.quick else 15)
    args.turns = max(1, min(args.turns, len(SCRIPT)))
    args.calibration = 2

    sys.path.insert(0, str(ROOT))
    os.environ.pop("REDIS_URL", None)  # the stacks' own embedded Redis, never another
    os.environ.update(SECRETS | {"TWILIO_ACCOUNT_SID": TWILIO_SID, "TWILIO_AUTH_TOKEN": TWILIO_TOKEN})
    started = time.monotonic()
    when = datetime.now(timezone.utc).replace(microsecond=0)
    model = trained_model()
    results: dict[str, Any] = {
        "when": when.isoformat(),
        "command": "python -m bench.e2e" + (" --quick" if args.quick else ""),
        "model": model.name,
        "machine": {"cpus": os.cpu_count(), "load_before": [round(v, 2) for v in os.getloadavg()]},
        "settings": {
            "quick": args.quick,
            "debtors": args.debtors,
            "latency_debtors": args.latency_debtors,
            "turns": args.turns,
            "rate": args.rate,
            "script": list(SCRIPT[: args.turns]),
            "sms_segments_per_second": 1000,
        },
        "systems": {},
    }
    systems: dict[str, Any] = results["systems"]
    scratch = Path(tempfile.mkdtemp(prefix="debtbot-bench-e2e-"))
    recorder = TwilioRecorder().start()
    log = (scratch / "processes.log").open("w", encoding="utf-8")
    http = httpx.Client(
        timeout=TURN_TIMEOUT, limits=httpx.Limits(max_connections=400, max_keepalive_connections=100)
    )
    say(f"model {model.name}; logs in {scratch / 'processes.log'}")
    code = 0
    try:
        rest, stock, twilio, ours = (groups_for(first, args) for first in (0, 3, 6, 9))
        ours["near_saturation"] = make_debtors(NEAR_SATURATION_GROUP, 4 * args.debtors // 5 or 4)
        phones = {d.phone: d.account_id for group in twilio.values() for d in group}
        stack = Stack(scratch / "one-rasa", recorder, model, log, twilio_accounts=phones)
        with running(stack):
            say("starting Redis, Rasa and the action server")
            stack.start_dialogue()
            everyone = [d for g in (rest, stock, twilio, ours) for group in g.values() for d in group]
            stack.import_accounts(everyone)
            if args.no_stock:
                systems["rasa_rest_stock"] = {"available": False, "why": "skipped (--no-stock)"}
                systems["rasa_twilio"] = {"available": False, "why": "skipped (--no-stock)"}
            else:
                say("starting stock Rasa (rasa run) on the same endpoints")
                stock_rasa, stock_port = stack.stock_rasa()
                try:
                    stock_url = f"http://127.0.0.1:{stock_port}"
                    measured = stack.pids("redis", "actions")
                    measured.add("rasa-stock", stock_rasa.pid)
                    target: Target = RasaRest(stock_url, http)
                    target.name = "rasa_rest_stock"
                    systems["rasa_rest_stock"] = measure(target, stock, args, measured)
                    systems["rasa_twilio"] = measure(
                        RasaTwilio(stock_url, recorder, http), twilio, args, measured
                    )
                finally:
                    stock_rasa.stop()
            dialogue = stack.pids("redis", "rasa", "actions")
            rasa_url = f"http://127.0.0.1:{stack.rasa_ports[0]}"
            systems["rasa_rest"] = measure(RasaRest(rasa_url, http), rest, args, dialogue)
            say("starting the worker and the gateway")
            stack.start_product()
            systems["ours"] = measure(Product(stack.config, recorder, http), ours, args, stack.pids())
        missing = "skipped (--no-scale-out)" if args.no_scale_out else scale_out_missing()
        if missing is None:
            two = Stack(scratch / "two-rasa", recorder, model, log, rasa_processes=2)
            missing = scale_out_missing(two)
            if missing is None:
                with running(two):
                    say("the product with rasa.processes: 2")
                    two.start_dialogue()
                    scaled = groups_for(12, args)
                    two.import_accounts([d for group in scaled.values() for d in group])
                    two.start_product()
                    product = Product(two.config, recorder, http)
                    product.name = "ours_rasa2"
                    systems["ours_rasa2"] = measure(product, scaled, args, two.pids(), latency=False)
        if missing is not None:
            systems["ours_rasa2"] = {"available": False, "why": missing}
            say(f"2 Rasa processes: not available ({missing})")
    except Exception as exc:  # a partial result is still worth writing down
        say(f"FAILED: {exc!r} (the processes' output: {scratch / 'processes.log'})")
        results["error"] = repr(exc)
        code = 1
    finally:
        http.close()
        recorder.close()
        log.close()
    results["machine"]["load_after"] = [round(v, 2) for v in os.getloadavg()]
    results["seconds"] = round(time.monotonic() - started)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{when.strftime('%Y-%m-%dT%H-%M-%SZ')}.json"
    text = json.dumps(results, indent=2, ensure_ascii=False) + "\n"
    path.write_text(text, encoding="utf-8")
    if code == 0:
        LATEST.write_text(text, encoding="utf-8")
    print()
    print(render_table(results))
    print()
    say(
        f"results in {path}"
        + (f" and {LATEST}" if code == 0 else " (latest.json unchanged)")
        + f"; {results['seconds']} s"
    )
    if args.profile:
        say(f"profiles: {profiling.summarise(args.profile)}")
    if args.keep:
        shutil.copytree(scratch, args.keep, dirs_exist_ok=True)
    shutil.rmtree(scratch, ignore_errors=True)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
