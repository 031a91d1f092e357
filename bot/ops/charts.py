"""The ops pages' charts, drawn on the server with matplotlib as SVG (``bytes``).

- :func:`funnel_chart`: each stage's count, a bar per group.
- :func:`opener_chart`: each wording's rates with their Wilson 95% intervals as error bars.
- :func:`weekly_chart`: the plan rate (plans created of those contacted) week by week.

How they are drawn, and why:

- ``matplotlib.figure.Figure`` directly, never ``pyplot``: pyplot keeps global state (the current
  figure) and the gateway answers many requests at once on threads.
- matplotlib's settings (``rcParams``) are global too, so each chart is drawn inside one lock with
  its own settings (``rc_context``) and the rest of the process is not touched.
- Deterministic: the same numbers give the same bytes (``svg.hashsalt`` fixes the ids matplotlib
  derives, ``metadata={"Date": None}`` leaves the date out), so a chart can be compared in tests
  and cached.
- Text stays text (``svg.fonttype: none``): smaller, and readable by a screen reader.
- Every chart has a ``<title>`` and a ``<desc>`` with its numbers (the page shows them in a table
  beside it too), and ``role="img"``.
- No ``style`` attribute and no ``<style>`` element: matplotlib writes its styling as inline CSS,
  which the console's Content-Security-Policy (``style-src 'self'``) would refuse if the browser
  applies it to the image; each declaration becomes the equivalent SVG presentation attribute.
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Sequence
from html import escape
from typing import Any

import matplotlib  # type: ignore[import-untyped]  # matplotlib 3.5 ships no type hints
from matplotlib.figure import Figure  # type: ignore[import-untyped]
from matplotlib.ticker import PercentFormatter  # type: ignore[import-untyped]

from bot.ops.funnel import METRICS, STAGES, FunnelRow, OpenerReport

# No display anywhere (a server): should anything in the process reach for pyplot, it gets Agg.
matplotlib.use("Agg")

__all__ = ["funnel_chart", "opener_chart", "weekly_chart"]

#: matplotlib's settings for every chart (applied only while one is drawn).
_SETTINGS = {
    "svg.hashsalt": "debtbot-ops-charts",
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.size": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
#: Colours told apart by people with the common colour-vision deficiencies (Okabe and Ito).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
#: At most this many groups are drawn (the table beside the chart has them all).
MAX_SERIES = 8

_LOCK = threading.Lock()


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


# --- SVG without inline CSS ---------------------------------------------------------------------

_STYLE_ATTRIBUTE = re.compile(r' style="([^"]*)"')
_STYLE_ELEMENT = re.compile(r"\s*<style[^>]*>(.*?)</style>", re.S)
_FONT = re.compile(r"^(?:(?P<style>italic|oblique|normal)\s+)?(?:(?P<weight>bold|normal|\d{3})\s+)?"
                   r"(?P<size>[\d.]+px)\s+(?P<family>.+)$")  # fmt: skip


def _declarations(css: str) -> list[tuple[str, str]]:
    pairs = []
    for declaration in css.split(";"):
        name, _, value = declaration.partition(":")
        name, value = name.strip(), value.strip()
        if not name or not value:
            continue
        if name == "font":
            # The shorthand has no presentation attribute of its own: spell it out.
            match = _FONT.match(value)
            if match is None:
                continue
            if match["style"]:
                pairs.append(("font-style", match["style"]))
            if match["weight"]:
                pairs.append(("font-weight", match["weight"]))
            pairs.append(("font-size", match["size"]))
            pairs.append(("font-family", match["family"].replace("'", "").replace('"', "")))
        else:
            pairs.append((name, value))
    return pairs


def _attributes(css: str) -> str:
    return "".join(f' {name}="{escape(value, quote=True)}"' for name, value in _declarations(css))


def _without_css(svg: str) -> str:
    """The same drawing with presentation attributes instead of ``style`` attributes, and the
    ``<style>`` element's rule (``*{...}``: inherited defaults) moved onto the root element."""
    inherited = ""
    element = _STYLE_ELEMENT.search(svg)
    if element is not None:
        rules = re.findall(r"\*\s*\{([^}]*)\}", element.group(1))
        inherited = "".join(_attributes(rule) for rule in rules)
        svg = svg[: element.start()] + svg[element.end() :]
        svg = re.sub(r"\s*<defs>\s*</defs>", "", svg)
    svg = _STYLE_ATTRIBUTE.sub(lambda match: _attributes(match.group(1)), svg)
    return svg.replace("<svg ", f"<svg{inherited} ", 1)


def _accessible(svg: str, title: str, description: str) -> str:
    """``role="img"``, labelled by its ``<title>`` and described by a ``<desc>`` after it."""
    svg = svg.replace("<svg ", '<svg role="img" aria-labelledby="chart-title chart-desc" ', 1)
    titled = f"<title>{escape(title)}</title>"
    if titled in svg:
        return svg.replace(
            titled, f'<title id="chart-title">{escape(title)}</title>\n <desc id="chart-desc">'
            f"{escape(description)}</desc>", 1,
        )  # fmt: skip
    raise AssertionError("matplotlib wrote no <title>")


def _render(draw: Any, title: str, description: str, size: tuple[float, float]) -> bytes:
    """Draw with ``draw(figure)`` and return the SVG."""
    with _LOCK, matplotlib.rc_context(_SETTINGS):
        figure = Figure(figsize=size, dpi=72)
        draw(figure)
        figure.tight_layout()
        out = io.BytesIO()
        figure.savefig(out, format="svg", metadata={"Date": None, "Title": title, "Creator": None})
    svg = out.getvalue().decode()
    return _accessible(_without_css(svg), title, description).encode()


def _empty(axes: Any, message: str) -> None:
    axes.text(0.5, 0.5, message, ha="center", va="center", transform=axes.transAxes)
    axes.set_xticks([])
    axes.set_yticks([])


# --- the charts ---------------------------------------------------------------------------------


def funnel_chart(rows: Sequence[FunnelRow], *, title: str = "Funnel") -> bytes:
    """Each stage's count, one bar per group (the first :data:`MAX_SERIES` groups)."""
    shown = list(rows[:MAX_SERIES])
    labels = [label for _, label in STAGES]
    lines = []
    for row in shown:
        counts = ", ".join(
            f"{stage.label} {stage.count}" + (f" ({_percent(stage.of_start)})" if index else "")
            for index, stage in enumerate(row.stages)
        )
        lines.append(f"{row.label}: {counts}.")
    if len(rows) > len(shown):
        lines.append(f"{len(rows) - len(shown)} more groups are in the table only.")
    description = " ".join(lines) or "No conversations in this range."

    def draw(figure: Any) -> None:
        axes = figure.subplots()
        if not shown:
            _empty(axes, "No conversations in this range")
            return
        width = 0.8 / len(shown)
        for index, row in enumerate(shown):
            counts = [(stage.count if (stage := row.stage(name)) is not None else 0) for name, _ in STAGES]
            positions = [x - 0.4 + width * (index + 0.5) for x in range(len(STAGES))]
            axes.bar(positions, counts, width=width, label=row.label, color=PALETTE[index % len(PALETTE)])
        axes.set_xticks(range(len(STAGES)))
        axes.set_xticklabels(labels, rotation=20, ha="right")
        axes.set_ylabel("Conversations")
        axes.set_title(title)
        axes.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))

    return _render(draw, title, description, (8, 4.2))


def opener_chart(report: OpenerReport, *, title: str = "Opener wordings") -> bytes:
    """Each wording's rates (replied, verified, plan created) with their 95% intervals."""
    rows = list(report.rows)
    lines = []
    for row in rows:
        parts = ", ".join(
            f"{label} {_percent(row.rates[metric].rate)} (95% interval {_percent(row.rates[metric].low)} to "
            f"{_percent(row.rates[metric].high)})"
            for metric, label in METRICS
        )
        lines.append(f"{row.wording}, {row.contacted} contacted: {parts}.")
    description = " ".join(lines) or "No conversation began with an opener in this range."

    def draw(figure: Any) -> None:
        axes = figure.subplots()
        if not rows:
            _empty(axes, "No openers in this range")
            return
        width = 0.8 / len(METRICS)
        for index, (metric, label) in enumerate(METRICS):
            rates = [row.rates[metric] for row in rows]
            values = [rate.rate or 0.0 for rate in rates]
            errors = [[v - r.low for v, r in zip(values, rates, strict=True)],
                      [r.high - v for v, r in zip(values, rates, strict=True)]]  # fmt: skip
            positions = [x - 0.4 + width * (index + 0.5) for x in range(len(rows))]
            axes.bar(positions, values, width=width, yerr=errors, capsize=3, label=label,
                     color=PALETTE[index], error_kw={"elinewidth": 1})  # fmt: skip
        axes.set_xticks(range(len(rows)))
        axes.set_xticklabels([row.wording for row in rows], rotation=20, ha="right")
        axes.set_ylim(0, 1)
        axes.yaxis.set_major_formatter(PercentFormatter(1.0))
        axes.set_ylabel("Share of contacted (95% interval)")
        axes.set_title(title)
        axes.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))

    return _render(draw, title, description, (8, 4.2))


def weekly_chart(rows: Sequence[FunnelRow], *, title: str = "Plan rate by week") -> bytes:
    """Plans created of conversations contacted, per ISO week (rows grouped by ``week``, opener
    rows only; one line per combination of the other dimensions)."""
    series: dict[str, dict[str, float | None]] = {}
    for row in rows:
        group = dict(row.group)
        if row.origin != "opener" or "week" not in group:
            continue
        name = ", ".join(value for key, value in row.group if key != "week") or "All"
        stage = row.stage("plan_created")
        series.setdefault(name, {})[group["week"]] = stage.of_start if stage is not None else None
    weeks = sorted({week for points in series.values() for week in points})
    names = sorted(series)[:MAX_SERIES]
    lines = [
        f"{name}: " + ", ".join(f"{week} {_percent(series[name].get(week))}" for week in weeks) + "."
        for name in names
    ]
    description = " ".join(lines) or "No conversation began with an opener in this range."

    def draw(figure: Any) -> None:
        axes = figure.subplots()
        if not weeks:
            _empty(axes, "No openers in this range")
            return
        for index, name in enumerate(names):
            values = [series[name].get(week) for week in weeks]
            axes.plot(range(len(weeks)), [float("nan") if v is None else v for v in values], marker="o",
                      label=name, color=PALETTE[index % len(PALETTE)])  # fmt: skip
        axes.set_xticks(range(len(weeks)))
        axes.set_xticklabels(weeks, rotation=20, ha="right")
        axes.set_ylim(0, max(0.05, *(v or 0.0 for name in names for v in series[name].values())) * 1.15)
        axes.yaxis.set_major_formatter(PercentFormatter(1.0))
        axes.set_ylabel("Plans created of contacted")
        axes.set_title(title)
        axes.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))

    return _render(draw, title, description, (8, 3.6))
