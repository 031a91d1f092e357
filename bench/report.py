"""The README's performance table, from ``bench/results/latest.json`` (written by ``bench.e2e``).

``python -m bench.report`` rewrites what lies between ``<!-- bench:start -->`` and
``<!-- bench:end -->`` in README.md; ``--check`` only says whether it is up to date (exit 1
if not). ``bench.e2e`` prints the same table at the end of a run.
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
START = "<!-- bench:start -->"
END = "<!-- bench:end -->"
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
    settings = results.get("settings", {})
    lines.append(
        f"Measured {str(results.get('when', '?'))[:16].replace('T', ' ')} UTC by `{COMMAND}` on "
        f"{machine.get('cpus', '?')} CPUs (load {' '.join(f'{v:.2f}' for v in load)} before the run): "
        f"{settings.get('debtors', '?')} debtors x {settings.get('turns', '?')} turns closed loop, "
        f"model {results.get('model', '?')}" + (" (a `--quick` run)" if settings.get("quick") else "") + "."
    )
    return "\n".join(lines)


def replace_between_markers(text: str, table: str) -> str:
    """``text`` with everything between the markers replaced by ``table``."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"the markers {START} and {END} are not in the README (in that order)")
    return text[: start + len(START)] + "\n" + table + "\n" + text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=LATEST)
    parser.add_argument("--readme", type=Path, default=README)
    parser.add_argument("--check", action="store_true", help="exit 1 if the README's table is not up to date")
    args = parser.parse_args(argv)
    results = json.loads(args.results.read_text(encoding="utf-8"))
    text = args.readme.read_text(encoding="utf-8")
    try:
        updated = replace_between_markers(text, render_table(results))
    except ValueError as exc:
        print(f"{args.readme}: {exc}", file=sys.stderr)
        return 1
    if args.check:
        if updated != text:
            print(f"{args.readme}: the performance table is not {args.results}'s; run python -m bench.report")
            return 1
        return 0
    if updated != text:
        args.readme.write_text(updated, encoding="utf-8")
    print(f"{args.readme}: performance table from {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
