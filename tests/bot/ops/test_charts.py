"""The charts are valid SVG, titled and described for screen readers, free of inline CSS (the
console's CSP), the same bytes for the same numbers (from any thread), and fast."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.ops.charts import funnel_chart, opener_chart, weekly_chart
from bot.ops.funnel import compare_openers, funnel
from tests.bot.ops.test_funnel import T0, arm, conversation, scripted

SVG = "{http://www.w3.org/2000/svg}"
NY = ZoneInfo("America/New_York")


def weekly_facts() -> list:  # type: ignore[type-arg]
    return arm(0, "en:warm", 20, replied=10, plan_created=4) + [
        conversation(100 + n, started_at=T0 + timedelta(days=7), contacted_at=T0 + timedelta(days=7),
                     plan_created_at=T0 + timedelta(days=7, hours=1) if n < 5 else None)
        for n in range(10)
    ]  # fmt: skip


CHARTS: dict[str, Callable[[], bytes]] = {
    "funnel": lambda: funnel_chart(funnel(scripted(), ["opener"], zone=NY), title="Funnel by opener"),
    "openers": lambda: opener_chart(
        compare_openers(
            arm(0, "en:warm", 40, replied=30, plan_created=9) + arm(100, "en:plain", 40, replied=12)
        ),
        title="Opener wordings",
    ),
    "weekly": lambda: weekly_chart(funnel(weekly_facts(), ["week"], zone=NY), title="Plan rate by week"),
}


def parse(svg: bytes) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314  # our own output


@pytest.mark.parametrize("name", sorted(CHARTS))
def test_each_chart_is_valid_svg_with_a_title_and_a_description_of_its_numbers(name: str) -> None:
    root = parse(CHARTS[name]())
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title is not None and desc is not None
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    assert title.text and desc.text and any(ch.isdigit() for ch in desc.text)


def test_the_descriptions_carry_the_charts_numbers() -> None:
    assert "es:warm (started by us): Contacted 10, Replied 6 (60.0%)" in CHARTS["funnel"]().decode()
    assert (
        "en:warm, 40 contacted: replied 75.0% (95% interval 59.8% to 85.8%)" in CHARTS["openers"]().decode()
    )
    assert "All: 2026-W10 20.0%, 2026-W11 50.0%." in CHARTS["weekly"]().decode()


@pytest.mark.parametrize("name", sorted(CHARTS))
def test_charts_have_no_inline_css_for_the_consoles_content_security_policy(name: str) -> None:
    svg = CHARTS[name]()
    root = parse(svg)
    assert all(element.get("style") is None for element in root.iter())
    assert root.find(f".//{SVG}style") is None
    # The styling is still there, as presentation attributes.
    assert b'fill="#0072b2"' in svg or b'stroke="#0072b2"' in svg
    assert b"font-size=" in svg


@pytest.mark.parametrize("name", sorted(CHARTS))
def test_the_same_numbers_give_the_same_bytes_from_any_thread(name: str) -> None:
    first = CHARTS[name]()
    with ThreadPoolExecutor(max_workers=4) as pool:
        others = list(pool.map(lambda _: CHARTS[name](), range(4)))
    assert all(other == first for other in others)
    assert b"<dc:date>" not in first


def test_a_chart_of_nothing_says_so() -> None:
    for svg in (funnel_chart([]), opener_chart(compare_openers([])), weekly_chart([])):
        desc = parse(svg).find(f"{SVG}desc")
        assert desc is not None and desc.text and desc.text.startswith("No conversation")


def test_names_from_outside_are_escaped_in_the_svg() -> None:
    rows = funnel([conversation(1, creditor='<script>alert("x")</script> & Co')], ["creditor"], zone=NY)
    svg = funnel_chart(rows, title="Funnel <by> creditor")
    root = parse(svg)
    assert b"<script>" not in svg and root.find(f".//{SVG}script") is None
    assert '<script>alert("x")</script> & Co' in (root.find(f"{SVG}desc").text or "")  # type: ignore[union-attr]


@pytest.mark.parametrize("name", sorted(CHARTS))
def test_each_chart_is_drawn_in_under_three_tenths_of_a_second(name: str) -> None:
    CHARTS[name]()  # fonts and caches warmed up once per process
    best = min(_timed(CHARTS[name]) for _ in range(3))
    assert best < 0.3


def _timed(draw: Callable[[], bytes]) -> float:
    started = time.perf_counter()
    draw()
    return time.perf_counter() - started
