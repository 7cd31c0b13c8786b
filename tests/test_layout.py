"""The package layout's import rules: imports point inward, and the pure core stays pure."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FORBIDDEN: dict[str, set[str]] = {
    "hub": {"actors", "meters_sim", "simfield", "sdk", "cli", "zmq", "pykka", "simpy", "sqlite3"},
    "simfield": {"actors", "meters_sim", "cli", "sdk", "pykka", "simpy", "sqlite3"},
    "actors": {"meters_sim", "cli"},
    "meters_sim": {"actors", "cli", "pykka", "zmq"},
    "sdk": {"actors", "meters_sim", "simfield", "cli", "pykka", "simpy", "sqlite3"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_imports_nothing_that_lies_further_out(package: str) -> None:
    offences = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for name in sorted(_imports(path) & FORBIDDEN[package])
    ]
    assert offences == []


def test_the_rule_sees_a_forbidden_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import zmq\nfrom actors.live import LiveHub\nfrom . import sibling\n")
    assert _imports(module) == {"zmq", "actors"}


DATA_MODULES = {"hub/reference/catalogue_data.py", "hub/reference/service_params.py"}
"""Modules that are mostly tables (their headers say so), exempt from the size rule."""
MAX_MODULE_LINES = 650
"""About 600 lines: past this a module in hub/ has more than one job."""


def test_no_module_of_the_pure_core_is_over_about_600_lines_unless_it_is_data() -> None:
    big = {
        str(path.relative_to(ROOT)): n
        for path in sorted((ROOT / "hub").rglob("*.py"))
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert {k: v for k, v in big.items() if k not in DATA_MODULES} == {}
