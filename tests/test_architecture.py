"""The import rules of docs/architecture.md, checked on every module, function-level imports included.

A Lambda package holds `functions/` alone, so runtime code imports no other project
package; the CDK app (infra/) and the CLI (slipway/) share the stage model (stage/)
and never import each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("functions", "stage", "infra", "slipway", "model", "benchmarks")
# What each project package may import of the others (itself always).
ALLOWED = {
    "functions": set(),
    "model": set(),
    # The stage model writes each function's environment with that function's own configuration model.
    "stage": {"functions.core", "functions.inference.config", "functions.monitor.config", "functions.retrain.config"},
    "infra": {"functions", "stage"},
    "slipway": {"functions", "stage", "model"},
    "benchmarks": {"functions", "stage", "infra", "slipway", "model"},
}


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every absolute import in `path` (module level or inside functions) as (line, dotted module)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def _violations(package: str) -> list[str]:
    allowed = ALLOWED[package]
    problems = []
    for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
        for line, module in _imports(path):
            top = module.split(".")[0]
            if top not in PACKAGES or top == package:
                continue
            if not any(module == rule or module.startswith(rule + ".") for rule in allowed):
                problems.append(f"{path.relative_to(PROJECT_ROOT)}:{line} imports {module}")
    return problems


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_only_what_the_architecture_allows(package: str) -> None:
    assert _violations(package) == []


def test_the_rules_catch_a_forbidden_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from slipway.cli import main\n    import infra.stack\n")
    assert _imports(module) == [(2, "slipway.cli"), (3, "infra.stack")]


def test_the_cdk_entry_point_imports_infra_and_stage_only() -> None:
    tops = {module.split(".")[0] for _, module in _imports(PROJECT_ROOT / "app.py")}
    assert tops & set(PACKAGES) <= {"infra", "stage"}
