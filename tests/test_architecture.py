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
    "stage": {
        "functions.core",
        "functions.inference.config",
        "functions.monitor.config",
        "functions.retrain.config",
        "functions.rollout.config",
    },
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


def _module_graph() -> dict[str, set[str]]:
    """Project module -> the project modules it imports (function-level imports included)."""
    modules = {}
    for package in PACKAGES:
        for path in (PROJECT_ROOT / package).rglob("*.py"):
            parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for _, imported in _imports(path):
            # An import names a module, or (from a.b import c) something defined in module a.b.
            parent = imported.rsplit(".", 1)[0]
            targets |= {imported} if imported in modules else {parent} & set(modules)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # from a.b import c, where c is itself a module a.b.c.
                targets |= {f"{node.module}.{alias.name}" for alias in node.names} & set(modules)
        graph[name] = targets - {name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_module_imports_itself_back_through_others() -> None:
    graph = _module_graph()
    assert {"slipway.local.async_jobs", "stage.environments"} <= graph["slipway.local.stack"]
    cycle = _cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])


def test_a_cycle_is_found() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
