"""The layers: each imports only those below it, and the domain never imports Textual.

import-linter checks both transitively (pyproject.toml); the AST checks here say
which line broke a rule, without running it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOMAIN_LAYERS = ["anyreach", "listen", "audio", "monitor"]
FORBIDDEN = ("textual", "rich", "tui.app")


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


@pytest.mark.parametrize("layer", DOMAIN_LAYERS)
def test_domain_layer_does_not_import_textual(layer: str) -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in sorted((ROOT / "tui" / layer).rglob("*.py"))
        for line, name in _imports(path)
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN)
    ]
    assert not offenders, "\n".join(offenders)


def test_core_imports_nothing_of_tui() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in sorted((ROOT / "tui" / "core").rglob("*.py"))
        for line, name in _imports(path)
        if name == "tui" or (name.startswith("tui.") and not name.startswith("tui.core"))
    ]
    assert not offenders, "\n".join(offenders)


def test_the_layers_contract_is_declared() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    assert config["unmatched_ignore_imports_alerting"] == "error"
    (layers,) = [c for c in config["contracts"] if c["type"] == "layers"]
    assert layers["layers"] == [
        "tui.commands",
        "tui.app",
        "tui.config",
        "tui.monitor",
        "tui.anyreach | tui.listen | tui.audio | tui.demo",
        "tui.core",
    ]


def test_import_linter_contract_holds() -> None:
    """The layers and the no-Textual rule, checked transitively by import-linter."""
    result = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports"))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_checker_catches_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom textual.app import App\n")
    assert (2, "textual.app") in _imports(bad)
