"""Under CI nothing is skipped quietly: a skip (a missing tool or any other reason) fails the run
and says why; outside CI a skip stays a skip."""

from __future__ import annotations

import pytest

#: The conftest of the small sessions below: the suite's own hooks, nothing else.
CONFTEST = "from tests.conftest import pytest_make_collect_report, pytest_runtest_makereport\n"

SKIPPING = """
import pytest


@pytest.fixture
def chromium():
    pytest.skip("Debian's chromium is not installed")


def test_browser(chromium):
    pass


def test_skips_itself():
    pytest.skip("not today")


@pytest.mark.skip(reason="marked")
def test_marked():
    pass


def test_runs():
    pass
"""


def test_under_ci_every_skip_fails_the_run_naming_the_reason(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_skipping=SKIPPING)
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret != 0
    outcomes = result.parseoutcomes()
    assert outcomes.get("skipped", 0) == 0 and outcomes.get("passed") == 1
    assert outcomes.get("failed", 0) + outcomes.get("errors", outcomes.get("error", 0)) == 3
    result.stdout.fnmatch_lines(["*skipped under CI=true*Debian's chromium is not installed*"])
    result.stdout.fnmatch_lines(["*skipped under CI=true*not today*"])


def test_under_ci_a_module_that_skips_itself_fails_the_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        test_module="import pytest\npytest.skip('no spec folder', allow_module_level=True)\n"
        "def test_never():\n    pass\n"
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*skipped under CI=true*no spec folder*"])


def test_outside_ci_a_skip_is_still_a_skip(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_skipping=SKIPPING)
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == 0
    result.assert_outcomes(passed=1, skipped=3)
