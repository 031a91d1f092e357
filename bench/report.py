"""The README's performance table, from ``bench/results/latest.json`` (written by ``bench.e2e``)
and ``bench/results/webhooks.json`` (``bench.webhook_http``), and docs/scaling.md's cost table.

``python -m bench.report`` rewrites what lies between ``<!-- bench:start -->`` and
``<!-- bench:end -->`` in README.md, and between ``<!-- costs:start -->`` and
``<!-- costs:end -->`` in docs/scaling.md; ``--check`` only says whether they are up to date
(exit 1 if not). ``bench.e2e`` prints the same table at the end of a run.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
LATEST = RESULTS / "latest.json"
README = ROOT / "README.md"
SCALING = ROOT / "docs" / "scaling.md"
WEBHOOKS = RESULTS / "webhooks.json"
START = "<!-- bench:start -->"
END = "<!-- bench:end -->"
COSTS_START = "<!-- costs:start -->"
COSTS_END = "<!-- costs:end -->"
#: The price the cost table assumes for one vCPU for one hour (USD; on-demand x86 cloud
#: instances are about 0.04-0.05 in 2026). Memory is a standing cost, listed as resident size.
VCPU_HOUR_USD = 0.05
#: The product's processes by tier (a gunicorn master and its workers are "gateway", ...).
TIERS = (
    ("gateway", "gateway (gunicorn: signature, de-duplication, queue)"),
    ("worker", "worker (the inbound and outbound steps, the gate, sending)"),
    ("rasa", "Rasa server (NLU, policies, tracker)"),
    ("actions", "action server (custom actions)"),
    ("redis", "Redis (queues, state, trackers, events)"),
)
COMMAND = "make bench"

#: The systems in table order, with their row titles.
ROWS = (
    ("ours", "the product (default config)"),
    ("ours_rasa2", "the product, `rasa.processes: 2`"),
    ("rasa_rest", "Rasa alone (REST channel, same metadata; the Rasa server the product starts)"),
    ("rasa_rest_stock", "stock Rasa alone (`rasa run`, REST channel, same metadata)"),
    ("rasa_twilio", "stock Rasa's own Twilio connector"),
)
#: Issue 18's targets: (ratio, at least) or (added ms, at most).
TARGETS = {
    "throughput_ours_over_rasa_rest": 0.95,
    "throughput_ours_over_rasa_rest_stock": 2.5,
    "throughput_ours_over_rasa_twilio": 1.5,
    "throughput_rasa2_over_rasa1": 1.6,
    "added_p50_ms_over_rasa_rest": 20.0,
    "added_p95_ms_over_rasa_rest": 40.0,
}


def _number(value: object, fmt: str, unit: str = "") -> str:
    return "-" if not isinstance(value, int | float) else f"{value:{fmt}}{unit}"


def _ratio(top: object, bottom: object) -> float | None:
    if isinstance(top, int | float) and isinstance(bottom, int | float) and bottom:
        return float(top) / float(bottom)
    return None


def ratios(systems: Mapping[str, Any]) -> dict[str, float | None]:
    """The figures issue 18's targets are about, from the systems' results."""

    def get(name: str, *path: str) -> object:
        value: object = systems.get(name) or {}
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        return value

    ours_p50, rest_p50 = get("ours", "latency", "p50_ms"), get("rasa_rest", "latency", "p50_ms")
    ours_p95, rest_p95 = get("ours", "latency", "p95_ms"), get("rasa_rest", "latency", "p95_ms")
    both = all(isinstance(v, int | float) for v in (ours_p50, rest_p50, ours_p95, rest_p95))
    throughput = "throughput", "msgs_per_s"
    return {
        "throughput_ours_over_rasa_rest": _ratio(get("ours", *throughput), get("rasa_rest", *throughput)),
        "throughput_ours_over_rasa_rest_stock": _ratio(
            get("ours", *throughput), get("rasa_rest_stock", *throughput)
        ),
        "throughput_ours_over_rasa_twilio": _ratio(get("ours", *throughput), get("rasa_twilio", *throughput)),
        "throughput_rasa2_over_rasa1": _ratio(get("ours_rasa2", *throughput), get("ours", *throughput)),
        "added_p50_ms_over_rasa_rest": float(ours_p50) - float(rest_p50) if both else None,  # type: ignore[arg-type]
        "added_p95_ms_over_rasa_rest": float(ours_p95) - float(rest_p95) if both else None,  # type: ignore[arg-type]
    }


def render_table(results: Mapping[str, Any]) -> str:
    """Markdown: one row per system, then the ratios, the machine and the command."""
    systems: Mapping[str, Any] = results.get("systems", {})
    rate = results.get("settings", {}).get("rate", 3)
    lines = [
        f"| | msgs/s | reply p50 / p95 at {rate:g} msgs/s offered | CPU per message | memory (RSS, total) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for key, title in ROWS:
        system = systems.get(key)
        if not system:
            continue
        if not system.get("available", True):
            lines.append(f"| {title} | not available: {system.get('why', '?')} | | | |")
            continue
        throughput, latency = system.get("throughput") or {}, system.get("latency") or {}
        cpu, memory = system.get("cpu") or {}, system.get("rss_mb") or {}
        p50 = _number(latency.get("p50_ms"), ".0f")
        p95 = _number(latency.get("p95_ms"), ".0f", " ms")
        lines.append(
            f"| {title} | {_number(throughput.get('msgs_per_s'), '.1f')} | "
            + (f"{p50} / {p95}" if latency else "not measured")
            + f" | {_number(cpu.get('per_message_ms'), '.0f', ' ms')} | "
            + f"{_number(sum(memory.values()) if memory else None, '.0f', ' MB')} |"
        )
    found = ratios(systems)
    words = {
        "throughput_ours_over_rasa_rest": "throughput {:.2f}x Rasa alone",
        "throughput_ours_over_rasa_rest_stock": "{:.2f}x stock Rasa alone",
        "throughput_ours_over_rasa_twilio": "{:.2f}x Rasa's Twilio connector",
        "throughput_rasa2_over_rasa1": "2 Rasa processes {:.2f}x one",
        "added_p50_ms_over_rasa_rest": "reply time added to Rasa alone {:+.0f} ms at p50",
        "added_p95_ms_over_rasa_rest": "{:+.0f} ms at p95",
    }
    parts = []
    for key, template in words.items():
        value = found[key]
        if value is None:
            continue
        bound = TARGETS[key]
        goal = f"<= {bound:g}" if key.startswith("added") else f">= {bound:g}"
        parts.append(template.format(value) + f" (target {goal})")
    machine = results.get("machine", {})
    load = machine.get("load_before") or []
    lines.append("")
    if parts:
        lines.append("Ratios: " + "; ".join(parts) + ".")
    near = (systems.get("ours") or {}).get("near_saturation") or {}
    waits = near.get("reply_queue_wait_ms") or {}
    if waits:
        lines.append(
            f"Replies at 80% of the product's saturation ({near.get('offered_per_s')} msgs/s offered): from "
            f"queued to arrived at the provider p50 {_number(waits.get('p50'), '.0f')} / p95 "
            f"{_number(waits.get('p95'), '.0f')} / max {_number(waits.get('max'), '.0f', ' ms')}, "
            f"{waits.get('over_100_ms', '?')} of {waits.get('replies', '?')} over 100 ms (target: none)."
        )
    settings = results.get("settings", {})
    lines.append(
        f"Measured {str(results.get('when', '?'))[:16].replace('T', ' ')} UTC by `{COMMAND}` on "
        f"{machine.get('cpus', '?')} CPUs (load {' '.join(f'{v:.2f}' for v in load)} before the run): "
        f"{settings.get('debtors', '?')} debtors x {settings.get('turns', '?')} turns closed loop, "
        f"model {results.get('model', '?')}" + (" (a `--quick` run)" if settings.get("quick") else "") + "."
    )
    return "\n".join(lines)


def render_webhooks(webhooks: Mapping[str, Any] | None) -> str:
    """One line: signed webhooks accepted per second over HTTP, against the same gunicorn's empty
    route in the same run."""
    if not webhooks or "ours" not in webhooks:
        return "Webhook acceptance over HTTP: not measured (`python -m bench.webhook_http`)."
    ours, base = webhooks["ours"], webhooks.get("baseline") or {}
    gateway, load = webhooks.get("gateway") or {}, (webhooks.get("machine") or {}).get("load_before") or []
    when, loads = str(webhooks.get("when", "?"))[:16].replace("T", " "), " ".join(f"{v:.2f}" for v in load)
    shape = f"{gateway.get('workers', '?')} workers x {gateway.get('threads', '?')} threads"
    return (
        f"Webhook acceptance over HTTP (`python -m bench.webhook_http`, {when} UTC, load {loads}): "
        f"{ours['per_s']:.0f} signed SMS webhooks accepted per second "
        f"(target >= {webhooks.get('target_per_s', 1000):g}), {ours.get('refused', 0)} refused; "
        f"the same gunicorn ({shape}) answering an empty route: {_number(base.get('per_s'), '.0f')}/s."
    )


def tier_costs(results: Mapping[str, Any], system: str = "ours") -> list[dict[str, Any]]:
    """Per tier of ``system``: CPU-seconds per 1,000 messages, resident memory, vCPU cost per
    1,000 messages, and the messages per second one process of the tier could carry on one core."""
    measured = (results.get("systems") or {}).get(system) or {}
    cpu = (measured.get("cpu") or {}).get("by_process") or {}
    rss = measured.get("rss_mb") or {}
    messages = ((measured.get("throughput") or {}).get("messages")) or 0
    rows = []
    for tier, title in TIERS:
        names = [name for name in cpu if name.rstrip("0123456789.").rstrip(".") == tier]
        seconds = sum(cpu[name] for name in names)
        memory = sum(rss.get(name, 0.0) for name in rss if name.rstrip("0123456789.").rstrip(".") == tier)
        per_thousand = 1000 * seconds / messages if messages else None
        rows.append({
            "tier": tier, "title": title, "cpu_s_per_1000": per_thousand, "rss_mb": memory,
            "usd_per_1000": per_thousand / 3600 * VCPU_HOUR_USD if per_thousand is not None else None,
            "msgs_per_s_per_core": 1000 / per_thousand if per_thousand else None,
        })  # fmt: skip
    return rows


def render_costs(results: Mapping[str, Any]) -> str:
    """docs/scaling.md's table: what each tier costs per 1,000 messages and carries per core."""
    rows = tier_costs(results)
    lines = [
        "| tier | CPU-seconds per 1,000 messages | vCPU cost per 1,000 messages "
        "| messages/s one core carries | resident memory (all its processes) |",
        "| --- | --- | --- | --- | --- |",
    ]
    total_cpu = sum(r["cpu_s_per_1000"] or 0 for r in rows)
    for row in rows:
        cost = _number(row["usd_per_1000"], ".5f", " USD")
        lines.append(
            f"| {row['title']} | {_number(row['cpu_s_per_1000'], '.1f')} | {cost} "
            f"| {_number(row['msgs_per_s_per_core'], '.0f')} | {_number(row['rss_mb'], '.0f', ' MB')} |"
        )
    lines.append(
        f"| **all** | {total_cpu:.1f} | {total_cpu / 3600 * VCPU_HOUR_USD:.5f} USD "
        f"| {1000 / total_cpu if total_cpu else 0:.0f} | {sum(r['rss_mb'] for r in rows):.0f} MB |"
    )
    lines.append("")
    when, cpus = (
        str(results.get("when", "?"))[:16].replace("T", " "),
        (results.get("machine") or {}).get("cpus"),
    )
    lines.append(
        f"From `{COMMAND}` ({when} UTC, the product's closed-loop run on {cpus or '?'} CPUs); "
        f"vCPU at {VCPU_HOUR_USD} USD an hour."
    )
    return "\n".join(lines)


def replace_between_markers(text: str, table: str, start_marker: str = START, end_marker: str = END) -> str:
    """``text`` with everything between the markers replaced by ``table``."""
    start, end = text.find(start_marker), text.find(end_marker)
    if start < 0 or end < start:
        raise ValueError(f"the markers {start_marker} and {end_marker} are not there (in that order)")
    return text[: start + len(start_marker)] + "\n" + table + "\n" + text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=LATEST)
    parser.add_argument("--readme", type=Path, default=README)
    parser.add_argument("--scaling", type=Path, default=SCALING)
    parser.add_argument("--webhooks", type=Path, default=WEBHOOKS)
    parser.add_argument("--check", action="store_true", help="exit 1 if the README's table is not up to date")
    args = parser.parse_args(argv)
    results = json.loads(args.results.read_text(encoding="utf-8"))
    webhooks = json.loads(args.webhooks.read_text(encoding="utf-8")) if args.webhooks.exists() else None
    table = render_table(results) + "\n" + render_webhooks(webhooks)
    stale = 0
    targets = (
        (args.readme, table, (START, END)),
        (args.scaling, render_costs(results), (COSTS_START, COSTS_END)),
    )
    for path, content, markers in targets:
        text = path.read_text(encoding="utf-8")
        try:
            updated = replace_between_markers(text, content, *markers)
        except ValueError as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            return 1
        if args.check:
            if updated != text:
                print(f"{path}: not {args.results}'s figures; run python -m bench.report")
                stale += 1
            continue
        if updated != text:
            path.write_text(updated, encoding="utf-8")
        print(f"{path}: figures from {args.results}")
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
