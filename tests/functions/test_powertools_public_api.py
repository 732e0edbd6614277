"""The runtime code uses Powertools through its public API only, and never rewrites a function's annotations.

Private attributes (`app._routes`, the `_route_args` context key) and annotations patched at
run time change meaning without notice on a Powertools upgrade, and nothing would fail until a
request did.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
# The names Powertools' resolvers and routers go by in the runtime code (app, router, predict_router, ...).
RESOLVER_NAMES = ("app", "router", "resolver")


def _is_resolver(node: ast.expr) -> bool:
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
    return name in RESOLVER_NAMES or name.endswith(("_app", "_router", "_resolver"))


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _annotations_target(node: ast.expr) -> bool:
    """`f.__annotations__` or `f.__annotations__[...]` as an assignment target."""
    if isinstance(node, ast.Subscript):
        node = node.value
    return isinstance(node, ast.Attribute) and node.attr == "__annotations__"


def violations(source: str, filename: str = "<source>") -> list[str]:
    """Each private Powertools access or run-time annotation patch in `source`, as `line: what`."""
    found = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Attribute) and _private(node.attr) and _is_resolver(node.value):
            found.append(f"{node.lineno}: private attribute {node.attr}")
        elif isinstance(node, ast.keyword) and node.arg and _private(node.arg) and "route_args" in node.arg:
            found.append(f"{node.lineno}: private context key {node.arg}")
        elif isinstance(node, ast.Constant) and node.value == "_route_args":
            found.append(f"{node.lineno}: private context key _route_args")
        elif _patches_annotations(node):
            found.append(f"{getattr(node, 'lineno', 0)}: __annotations__ assigned")
    return found


def _patches_annotations(node: ast.AST) -> bool:
    """An assignment to a function's `__annotations__` (or an item of it), or `setattr` of it."""
    if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return any(_annotations_target(target) for target in targets)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setattr":
        return any(isinstance(arg, ast.Constant) and arg.value == "__annotations__" for arg in node.args)
    return False


@pytest.mark.parametrize("path", sorted(FUNCTIONS.rglob("*.py")), ids=lambda path: str(path.relative_to(FUNCTIONS)))
def test_runtime_code_uses_only_public_powertools_and_real_annotations(path: Path) -> None:
    text = path.read_text()
    assert "_route_args" not in text, f"{path.name} names Powertools' private _route_args"
    assert violations(text, str(path)) == []


@pytest.mark.parametrize(
    "source",
    [
        "app.append_context(_route_args={**app.context.get('_route_args', {}), 'request': 1})",
        "router._routes.clear()",
        "predict_router._exception_handlers[KeyError] = f",
        "app._enable_validation = False",
        "submit.__annotations__['request'] = Model",
        "route.__annotations__ = {'request': Model}",
        "setattr(submit, '__annotations__', {})",
    ],
)
def test_the_check_catches_private_access_and_annotation_patching(source: str) -> None:
    assert violations(source)


def test_the_check_lets_public_use_and_own_private_names_pass() -> None:
    source = (
        "app.include_router(router)\n"
        "app.append_context(config=config)\n"
        "self._store = store\n"
        "live_model._refresh_seconds\n"
        "annotations = route.__annotations__\n"
    )
    assert violations(source) == []
