"""How fast the gateway answers a signed SMS webhook, against a baseline in the same run.

Twilio wants its webhook answered quickly; ours verifies the signature, de-duplicates, checks
for STOP, appends to a Redis stream and schedules a job, then answers empty TwiML. The
baseline is the same Flask app answering a route that does nothing, so the ratio says what
our work costs, whatever the machine. Run: ``make bench``.
"""

from __future__ import annotations

import statistics
import time
from urllib.parse import urlencode

from flask import Flask
from twilio.request_validator import RequestValidator

from bench.redis_server import bench_config_file, temporary_redis
from bot.config import load_config
from bot.gateway.app import create_app
from bot.runtime.services import build_services

ROUNDS = 2000


def _timings(call: object, rounds: int) -> list[float]:
    samples = []
    for n in range(rounds):
        started = time.perf_counter()
        call(n)  # type: ignore[operator]
        samples.append(time.perf_counter() - started)
    return samples


def _summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.99)] * 1000


def main() -> None:
    with temporary_redis() as (client, url, folder):
        path = bench_config_file(folder)
        config = load_config(path, {"REDIS_URL": url, "RASA_AUTH_TOKEN": "b", "DEBTBOT_SECRET_KEY": "b"})
        app: Flask = create_app(config, build_services(config, client))
        app.add_url_rule("/bench-baseline", "bench_baseline", lambda: ("", 200), methods=["POST"])
        http = app.test_client()
        token = config.secrets.twilio_auth_token or ""
        validator = RequestValidator(token)

        def webhook(n: int) -> None:
            form = {"MessageSid": f"SM{n:032x}", "From": f"+1202555{n % 10000:04d}", "To": "+15005550006",
                    "Body": "I can do 50 a month"}  # fmt: skip
            signature = validator.compute_signature("https://bot.example.com/webhooks/sms", form)
            headers = {"X-Twilio-Signature": signature}
            answer = http.post("/webhooks/sms", data=urlencode(form), headers=headers,
                               content_type="application/x-www-form-urlencoded")  # fmt: skip
            assert answer.status_code == 200, answer.get_data(as_text=True)

        def baseline(n: int) -> None:
            form = {"MessageSid": f"SM{n:032x}", "Body": "I can do 50 a month"}
            http.post(
                "/bench-baseline", data=urlencode(form), content_type="application/x-www-form-urlencoded"
            )

        _timings(webhook, 200)  # warm up both paths
        _timings(baseline, 200)
        client.flushdb()
        ours = _timings(webhook, ROUNDS)
        base = _timings(baseline, ROUNDS)
    ours_median, ours_p99 = _summary(ours)
    base_median, base_p99 = _summary(base)
    print(f"signed SMS webhook, {ROUNDS} requests in process (Flask test client, real Redis):")
    print(f"  ours      median {ours_median:.2f} ms, p99 {ours_p99:.2f} ms")
    print(f"  baseline  median {base_median:.2f} ms, p99 {base_p99:.2f} ms (same app, empty route)")
    print(f"  ratio     median {ours_median / base_median:.1f}x the baseline")


if __name__ == "__main__":
    main()
