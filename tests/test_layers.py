"""The import contracts (.importlinter) hold, so `make test` fails on a cycle or a layer broken.

`make lint` runs the same contracts (lint-imports); here they are part of the test suite too, and
two small checks keep the contracts themselves honest: every package of ``bot`` has a place in
the layers, and the no-cycle rule does catch a cycle.
"""

from __future__ import annotations

import configparser
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import ROOT

CONTRACTS = ROOT / ".importlinter"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(cwd: Path, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(config), "--no-cache", "--no-logo"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_import_contracts_are_kept() -> None:
    result = lint_imports(ROOT, CONTRACTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_every_package_and_module_of_bot_has_a_layer() -> None:
    contracts = configparser.ConfigParser()
    contracts.read(CONTRACTS)
    layers = contracts["importlinter:contract:layers"]["layers"]
    named = {name.strip() for line in layers.split("\n") for name in line.split("|") if name.strip()}
    children = {
        f"bot.{path.stem if path.suffix == '.py' else path.name}"
        for path in (ROOT / "bot").iterdir()
        if (path.suffix == ".py" and path.stem != "__init__") or (path / "__init__.py").exists()
    }
    assert children - named == set(), "a new part of bot needs its place in .importlinter's layers"


def test_the_no_cycle_contract_catches_a_cycle(tmp_path: Path) -> None:
    package = tmp_path / "cyclic"
    (package / "a").mkdir(parents=True)
    (package / "b").mkdir()
    (package / "__init__.py").write_text("")
    (package / "a" / "__init__.py").write_text("from cyclic.b import thing\n")
    (package / "b" / "__init__.py").write_text("thing = 1\n\n\ndef later() -> None:\n    import cyclic.a\n")
    # Only the cycle contract, on a throwaway package: an import inside a function counts too.
    config = tmp_path / ".importlinter"
    config.write_text(
        textwrap.dedent(
            """\
            [importlinter]
            root_packages =
                cyclic

            [importlinter:contract:acyclic]
            name = no import cycle
            type = acyclic_siblings
            ancestors =
                cyclic
            """
        )
    )
    result = lint_imports(tmp_path, config)
    assert result.returncode != 0, result.stdout
    assert "BROKEN" in result.stdout
