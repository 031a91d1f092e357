"""Webhook acceptance over HTTP: signed Twilio SMS webhooks per second the real gateway accepts.

A benchmark, not a test. The gateway as ``debtbot run`` starts it (gunicorn, ``server.workers``
processes x ``server.threads`` threads) on its embedded Redis, no worker running (accepting is
the gateway's whole job: verify the signature, de-duplicate, check for STOP, append to the
conversation's queue and schedule a job, answer empty TwiML). Client processes on the same machine
keep connections open and post pre-signed webhooks, each with its own MessageSid, from many
numbers, for ``--seconds``. Baseline in the same run: the same gunicorn settings serving a WSGI
app that answers an empty 200 (``bench/empty_wsgi.py``), so the ratio says what our work costs on
this machine. Issue 18's target: at least 1,000 accepted per second.

Writes ``bench/results/webhooks.json`` (``python -m bench.report`` puts the line in the README).
Run: ``python -m bench.webhook_http`` (``make bench`` runs it).
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import threading
import time
from contextlib import nullcontext
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psutil
from twilio.request_validator import RequestValidator

from bench import profile as profiling
from bench.e2e import SECRETS, TWILIO_SID, TWILIO_TOKEN, Stack, TwilioRecorder, free_port, say, sms_form
from bench.report import RESULTS
from bot.runtime.supervisor import ManagedProcess, ProcessSpec

OUTPUT = RESULTS / "webhooks.json"
TARGET = 1000.0


def _bodies(public_url: str, count: int, seed: int) -> list[tuple[bytes, str]]:
    """``count`` signed SMS webhooks (body, signature), each its own MessageSid, 500 numbers."""
    validator = RequestValidator(TWILIO_TOKEN)
    out = []
    for n in range(count):
        sender, sid = f"+1202555{n % 500:04d}", f"SM{seed:04d}{n:028d}"
        form = sms_form(sender, "hello, can we talk about my account", sid)
        out.append((urlencode(form).encode(), validator.compute_signature(public_url, form)))
    return out


def _client(host: str, port: int, path: str, public_url: str, per_client: int, seed: int, threads: int,
            seconds: float, ready: Any, go: Any, results: Any) -> None:  # fmt: skip
    """One client process: signs its webhooks, says it is ready, waits for the start, then posts
    on ``threads`` kept-alive connections until the time is up."""
    bodies = _bodies(public_url, per_client, seed)
    ready.put(seed)
    start_at = go.get()
    counts = {"ok": 0, "bad": 0}
    lock = threading.Lock()
    shares = [bodies[i::threads] for i in range(threads)]

    def run(share: list[tuple[bytes, str]]) -> None:
        ok = bad = 0
        connection = http.client.HTTPConnection(host, port, timeout=30)
        while time.time() < start_at:
            time.sleep(0.001)
        deadline = start_at + seconds
        for body, signature in share:
            if time.time() >= deadline:
                break
            headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature}
            try:
                connection.request("POST", path, body=body, headers=headers)
                answer = connection.getresponse()
                answer.read()
                if answer.status == 200:
                    ok += 1
                else:
                    bad += 1
            except (OSError, http.client.HTTPException):
                bad += 1
                connection.close()
                connection = http.client.HTTPConnection(host, port, timeout=30)
        with lock:
            counts["ok"] += ok
            counts["bad"] += bad

    workers = [threading.Thread(target=run, args=(share,)) for share in shares]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    results.put(counts)


def load(host: str, port: int, path: str, public_url: str, *, clients: int, threads: int,
         seconds: float, per_client: int) -> dict[str, Any]:  # fmt: skip
    """Every client at once for ``seconds``; accepted (200) and refused per second."""
    queue: Any = multiprocessing.Queue()
    ready: Any = multiprocessing.Queue()
    go: Any = multiprocessing.Queue()
    processes = [
        multiprocessing.Process(
            target=_client,
            args=(host, port, path, public_url, per_client, seed, threads, seconds, ready, go, queue),
        )
        for seed in range(clients)
    ]
    for process in processes:
        process.start()
    for _ in processes:  # every client has signed its webhooks (that is not timed)
        ready.get(timeout=300)
    start_at = time.time() + 0.2
    for _ in processes:
        go.put(start_at)
    counts = [queue.get(timeout=seconds + 120) for _ in processes]
    for process in processes:
        process.join()
    ok, bad = sum(c["ok"] for c in counts), sum(c["bad"] for c in counts)
    return {"accepted": ok, "refused": bad, "seconds": seconds, "per_s": round(ok / seconds, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--threads", type=int, default=8, help="connections per client process")
    parser.add_argument("--profile", type=Path, help="py-spy the gateway's processes; profiles here")
    args = parser.parse_args(argv)
    os.environ.pop("REDIS_URL", None)
    os.environ.update(SECRETS | {"TWILIO_ACCOUNT_SID": TWILIO_SID, "TWILIO_AUTH_TOKEN": TWILIO_TOKEN})
    scratch = Path(tempfile.mkdtemp(prefix="debtbot-bench-webhooks-"))
    recorder = TwilioRecorder().start()
    log = (scratch / "processes.log").open("w", encoding="utf-8")
    per_client = int(args.seconds * 4000)  # more than one client process can send
    when = datetime.now(timezone.utc).replace(microsecond=0)
    result: dict[str, Any] = {
        "when": when.isoformat(),
        "command": "python -m bench.webhook_http",
        "machine": {"cpus": os.cpu_count(), "load_before": [round(v, 2) for v in os.getloadavg()]},
        "settings": {"seconds": args.seconds, "clients": args.clients, "threads": args.threads},
    }
    stack = Stack(scratch / "stack", recorder, Path("unused-model"), log)
    server = stack.config.server
    try:
        gateway = [p for p in stack.processes if p.spec.name in ("redis", "gateway")]
        for process in gateway:
            stack._start(process)
        result["gateway"] = {"workers": server.workers, "threads": server.threads}
        say(f"our gateway: {args.clients} clients x {args.threads} connections, {args.seconds:g} s")
        shape: dict[str, Any] = {"clients": args.clients, "threads": args.threads}
        shape |= {"seconds": args.seconds, "per_client": per_client}
        gateway_pid = next(p.pid for p in gateway if p.spec.name == "gateway")
        children = psutil.Process(gateway_pid).children()
        spied = [(f"gateway.{n}", child.pid) for n, child in enumerate(children, 1)]
        spies = (
            nullcontext()
            if args.profile is None
            else profiling.recording(args.profile, "webhooks", spied, gil=True)
        )
        with spies:
            url = f"{server.public_url}/webhooks/sms"
            ours = load("127.0.0.1", server.port, "/webhooks/sms", url, **shape)
        if args.profile:
            say(f"profiles: {profiling.summarise(args.profile)}")
        result["ours"] = ours
        say(f"our gateway: {ours['per_s']} accepted/s ({ours['refused']} refused)")
        for process in reversed(gateway):
            process.stop()
        port = free_port()
        spec = next(p.spec for p in gateway if p.spec.name == "gateway")
        argv = list(spec.argv)
        argv[argv.index("--bind") + 1] = f"127.0.0.1:{port}"
        argv[-1] = "bench.empty_wsgi:app"
        root = Path(__file__).resolve().parent.parent
        empty = ManagedProcess(ProcessSpec(name="empty", argv=argv, env=spec.env, cwd=root), log)
        empty.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                probe = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                probe.request("GET", "/")
                probe.getresponse().read()
                break
            except OSError:
                time.sleep(0.2)
        try:
            say("baseline: the same gunicorn answering an empty 200")
            base = load("127.0.0.1", port, "/webhooks/sms", f"http://127.0.0.1:{port}/webhooks/sms", **shape)
        finally:
            empty.stop()
        result["baseline"] = base
        result["ratio_to_baseline"] = round(ours["per_s"] / base["per_s"], 2) if base["per_s"] else None
        result["target_per_s"] = TARGET
        say(f"baseline: {base['per_s']}/s; ours {result['ratio_to_baseline']}x the baseline")
    finally:
        for process in reversed(stack.processes):
            process.stop()
        recorder.close()
        log.close()
        shutil.rmtree(scratch, ignore_errors=True)
    result["machine"]["load_after"] = [round(v, 2) for v in os.getloadavg()]
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    say(f"results in {OUTPUT}")
    return 0 if ours["refused"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
