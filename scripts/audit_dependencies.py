"""Known vulnerabilities in the locked dependencies (``make lint``).

Exports the exact versions from ``uv.lock`` (``uv export --frozen``, nothing re-resolved) and
runs a pinned ``pip-audit`` on them with ``--no-deps --disable-pip`` (no virtual environment,
no install) against PyPI's vulnerability data. Then:

- a vulnerability listed in ``scripts/audit-ignore.txt`` (with its reason) is reported but
  does not fail; any other one fails, with the version that fixes it;
- when the vulnerability service cannot be reached (offline, or a machine whose package
  index is a mirror without PyPI's JSON API) pip-audit would say "No known vulnerabilities
  found" while checking nothing: this script says NOT RUN instead, and fails only when
  ``DEBTBOT_AUDIT_REQUIRED=1`` (set it where the service is reachable, e.g. a nightly job).

Exit codes: 0 clean (or not run and not required), 1 vulnerabilities, 2 the audit could not run
and was required.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

PIP_AUDIT = "pip-audit==2.10.1"
ROOT = Path(__file__).resolve().parent.parent
IGNORE_FILE = ROOT / "scripts" / "audit-ignore.txt"
REQUIRED_ENV = "DEBTBOT_AUDIT_REQUIRED"


@dataclass(frozen=True)
class Finding:
    package: str
    version: str
    vuln_id: str
    aliases: tuple[str, ...]
    fixed_in: tuple[str, ...]


def read_ignores(path: Path = IGNORE_FILE) -> dict[str, str]:
    """``ID  package  reason...`` per line (``#`` comments); a line without a reason is an error."""
    ignores: dict[str, str] = {}
    if not path.exists():
        return ignores
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split(None, 2)
        if len(parts) < 3:
            raise SystemExit(f"{path.name}:{number}: write 'ID package reason' (the reason is required)")
        ignores[parts[0]] = f"{parts[1]}: {parts[2]}"
    return ignores


def findings(report: dict[str, object]) -> tuple[list[Finding], list[str], int]:
    """(vulnerabilities, packages not audited, packages in the report) from pip-audit's JSON."""
    found: list[Finding] = []
    skipped: list[str] = []
    dependencies = report.get("dependencies", [])
    assert isinstance(dependencies, list)
    for dep in dependencies:
        if dep.get("skip_reason"):
            skipped.append(f"{dep['name']}: {dep['skip_reason']}")
            continue
        for vuln in dep.get("vulns", []):
            found.append(
                Finding(
                    dep["name"],
                    dep.get("version", "?"),
                    vuln["id"],
                    tuple(vuln.get("aliases", [])),
                    tuple(vuln.get("fix_versions", [])),
                )
            )
    return found, skipped, len(dependencies)


def _not_run(why: str) -> int:
    required = os.environ.get(REQUIRED_ENV) == "1"
    print(f"dependency audit NOT RUN: {why}")
    if not required:
        print(f"  (not failing: set {REQUIRED_ENV}=1 where the vulnerability service is reachable)")
    return 2 if required else 0


def main() -> int:
    ignores = read_ignores()
    uv = [sys.executable, "-m", "uv"]
    with tempfile.TemporaryDirectory(prefix="debtbot-audit-") as scratch:
        requirements = Path(scratch) / "requirements.txt"
        report_path = Path(scratch) / "report.json"
        subprocess.run(
            [*uv, "export", "--frozen", "--format", "requirements-txt", "--no-emit-project",
             "--no-hashes", "--quiet", "-o", str(requirements)],
            cwd=ROOT, check=True,
        )  # fmt: skip
        # Hashes are left out: the lock has wheels without hashes for platforms we do not use, and
        # pip-audit wants all or none. Nothing is installed, so hashes would protect nothing here.
        audit = subprocess.run(
            [*uv, "tool", "run", "--quiet", "--from", PIP_AUDIT, "pip-audit", "-r", str(requirements),
             "--no-deps", "--disable-pip", "--vulnerability-service", "pypi", "--progress-spinner", "off",
             "--format", "json", "--output", str(report_path)],
            cwd=ROOT, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if not report_path.exists():
            last = (audit.stderr.strip().splitlines() or ["no output"])[-1]
            return _not_run(f"pip-audit did not run ({last})")
        report = json.loads(report_path.read_text(encoding="utf-8"))
    found, skipped, total = findings(report)
    if total and len(skipped) == total:
        return _not_run(
            f"the vulnerability service answered for none of the {total} locked packages "
            "(PyPI's JSON API is unreachable from this machine)"
        )
    for line in skipped:
        print(f"not audited: {line}")
    failing = [f for f in found if not ({f.vuln_id, *f.aliases} & ignores.keys())]
    for f in found:
        fix = f"fixed in {', '.join(f.fixed_in)}" if f.fixed_in else "no fix released"
        known = next((ignores[i] for i in (f.vuln_id, *f.aliases) if i in ignores), None)
        status = f"ignored ({known})" if known else "FAILS"
        print(f"{f.package} {f.version}: {f.vuln_id} {'/'.join(f.aliases)} {fix}: {status}")
    stale = set(ignores) - {i for f in found for i in (f.vuln_id, *f.aliases)}
    for vuln_id in sorted(stale):
        print(f"{IGNORE_FILE.name}: {vuln_id} no longer applies; remove it")
    audited = total - len(skipped)
    print(
        f"dependency audit: {audited} packages audited, {len(found)} known vulnerabilities, "
        f"{len(failing)} not accepted in {IGNORE_FILE.name}"
    )
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
