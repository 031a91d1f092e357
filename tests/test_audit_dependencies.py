"""The dependency audit (``make lint``) fails on new vulnerabilities, never on accepted ones,
and never claims "clean" when it could not check anything."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import ROOT


def _audit() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "audit_dependencies", ROOT / "scripts" / "audit_dependencies.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


audit = _audit()


def report(*deps: dict[str, object]) -> dict[str, object]:
    return {"dependencies": list(deps), "fixes": []}


def test_findings_and_skipped_packages_are_read_from_pip_audit_json() -> None:
    found, skipped, total = audit.findings(
        report(
            {"name": "aiohttp", "version": "3.9.5", "vulns": [
                {"id": "PYSEC-1", "aliases": ["CVE-1", "GHSA-1"], "fix_versions": ["3.10.11"]}]},
            {"name": "redis", "version": "4.6.0", "vulns": []},
            {"name": "ours", "skip_reason": "Dependency not found on PyPI and could not be audited"},
        )
    )  # fmt: skip
    assert [(f.package, f.vuln_id, f.aliases, f.fixed_in) for f in found] == [
        ("aiohttp", "PYSEC-1", ("CVE-1", "GHSA-1"), ("3.10.11",))
    ]
    assert len(skipped) == 1 and total == 3


def test_an_ignore_line_needs_a_reason(tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_text("# comment\nGHSA-1  aiohttp  Rasa 3.6 pins aiohttp<3.10; no aiohttp server here\n\n")
    assert audit.read_ignores(good) == {
        "GHSA-1": "aiohttp: Rasa 3.6 pins aiohttp<3.10; no aiohttp server here"
    }
    bad = tmp_path / "bad.txt"
    bad.write_text("GHSA-1 aiohttp\n")
    with pytest.raises(SystemExit, match="reason is required"):
        audit.read_ignores(bad)


def test_the_shipped_ignore_file_is_well_formed() -> None:
    audit.read_ignores()


def test_an_audit_that_checked_nothing_says_not_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(audit.REQUIRED_ENV, raising=False)
    assert audit._not_run("offline") == 0
    assert "NOT RUN" in capsys.readouterr().out
    monkeypatch.setenv(audit.REQUIRED_ENV, "1")
    assert audit._not_run("offline") == 2
