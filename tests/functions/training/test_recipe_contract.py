"""The recipe contract: what it refuses and how it says so; the code, the docs and the example agree with it."""

from __future__ import annotations

import ast
import sys
import types
from pathlib import Path
from typing import Any

import pytest

import model.recipe
from functions.core.errors import RecipeError
from functions.training.recipe_contract import (
    BY_NAME,
    CONTRACT,
    DOCS,
    RecipeContractError,
    check_recipe,
    contract_problems,
    declared,
    with_table,
)
from functions.training.train import load_recipe

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def _recipe(**attributes: Any) -> types.ModuleType:
    """A recipe that meets the contract, changed by `attributes` (a value of `...` removes the name)."""
    module = types.ModuleType("tmp_recipe")
    given = {
        "SEED": 1, "TASK": "classification", "METRIC": "accuracy",
        "load_data": lambda: None, "build": lambda seed: None, **attributes,
    }  # fmt: skip
    for name, value in given.items():
        if value is not ...:
            setattr(module, name, value)
    return module


def _refusal(recipe: types.ModuleType) -> str:
    with pytest.raises(RecipeContractError) as refused:
        check_recipe(recipe, "tmp_recipe")
    return str(refused.value)


@pytest.mark.parametrize("name", ["model.recipe", "model.examples.penguins"])
def test_the_examples_meet_the_contract(name: str) -> None:
    assert contract_problems(load_recipe(name)) == []


def test_a_missing_build_is_named_with_what_it_must_be_and_a_near_name() -> None:
    message = _refusal(_recipe(build=..., biuld=lambda seed: None))

    assert message.startswith("recipe tmp_recipe does not meet the recipe contract")
    assert "  - build: missing; a recipe must set it: function `build(seed)`" in message
    assert "(it sets biuld: a misspelling?)" in message


def test_a_wrong_task_says_what_is_allowed_and_what_was_found() -> None:
    assert '  - TASK: expected one of "classification", "regression"; found \'ranking\' (str)' in _refusal(
        _recipe(TASK="ranking")
    )


def test_a_misspelt_name_gets_the_name_it_resembles() -> None:
    message = _refusal(_recipe(SEGMENT=["species"], OUTLIER_SHAER=0.05))

    assert "  - SEGMENT: not a name Slipway reads; did you mean SEGMENTS?" in message
    assert "  - OUTLIER_SHAER: not a name Slipway reads; did you mean OUTLIER_SHARE?" in message


def test_an_upper_case_name_unlike_any_contract_name_is_the_recipe_own() -> None:
    assert contract_problems(_recipe(DATA_URL="s3://bucket/data.csv", N_TREES=100)) == []


@pytest.mark.parametrize(
    ("attributes", "problem"),
    [
        ({"SEED": "42"}, "SEED: expected an integer, e.g. 42; found '42' (str)"),
        ({"SEED": True}, "SEED: expected an integer, e.g. 42; found True (bool)"),
        ({"CAPTURE_EXCLUDE": "postcode"}, "CAPTURE_EXCLUDE: expected a list of feature names"),
        ({"SEGMENTS": [("age", [30, 50]), 3]}, "SEGMENTS: expected a list of feature names or (name, [edges]) pairs"),
        ({"PARITY_TOLERANCE": "1e-4"}, "PARITY_TOLERANCE: expected a number above 0 and below 1, e.g. 1e-4; found"),
        ({"OUTLIER_SHARE": 0.7}, "OUTLIER_SHARE: must be a number between 0 and 0.5, e.g. 0.01; got 0.7"),
        ({"IMPORTANCE_SHARE": -1}, "IMPORTANCE_SHARE: must be 0 or more; got -1"),
        ({"FEATURES": ["age"]}, "FEATURES: expected a dict of feature name to overrides"),
        ({"FEATURES": {"age": {"requried": True}}}, "which is not a feature field (the fields: type, precision"),
        ({"FEATURES": {"age": {"requried": True}}}, "; did you mean required?"),
        ({"build": lambda: None}, "build: expected a function build(seed); its signature is ()"),
        ({"load_data": "data.csv"}, "load_data: expected a function load_data(); found 'data.csv' (str)"),
        ({"METRIC": "r2"}, "METRIC: 'r2' does not fit a classification task: choose one of"),
        ({"IMPORTANCE_SHARE": 0.1, "IMPORTANCE_THRESHOLD": 1}, "IMPORTANCE_SHARE and IMPORTANCE_THRESHOLD: set one"),
    ],
)
def test_a_wrong_value_names_the_name_the_expectation_and_what_was_found(
    attributes: dict[str, Any], problem: str
) -> None:
    assert problem in _refusal(_recipe(**attributes))


def test_every_problem_is_listed_at_once_one_a_line() -> None:
    problems = contract_problems(_recipe(SEED=None, TASK="ranking", build=..., SEGMENT=[]))

    assert [line.split(":")[0] for line in problems] == ["SEED", "TASK", "build", "SEGMENT"]


def test_an_optional_name_set_to_none_takes_its_default() -> None:
    recipe = _recipe(OUTLIER_SHARE=None)

    assert contract_problems(recipe) == []
    assert declared(_recipe(), "OUTLIER_SHARE") == BY_NAME["OUTLIER_SHARE"].default == 0.01
    assert declared(_recipe(PARITY_TOLERANCE=1e-3), "PARITY_TOLERANCE") == 1e-3


def test_load_recipe_refuses_a_module_that_breaks_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tmp_recipe", _recipe(TASK="ranking"))

    with pytest.raises(RecipeContractError, match="TASK: expected one of"):
        load_recipe("tmp_recipe")


def test_load_recipe_names_a_module_that_does_not_exist() -> None:
    with pytest.raises(RecipeError, match=r"no recipe module 'model\.no_such_recipe': the `recipe` setting names"):
        load_recipe("model.no_such_recipe")


def test_load_recipe_names_a_library_the_recipe_imports_but_lacks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "tmp_recipe_needs_a_library.py").write_text("import no_such_library_for_slipway\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    with pytest.raises(RecipeError, match="imports no_such_library_for_slipway, which is not installed"):
        load_recipe("tmp_recipe_needs_a_library")


def _names_read_from_a_recipe(path: Path) -> set[str]:
    """Every `recipe.NAME`, `getattr(recipe, "NAME"...)` and `declared(recipe, "NAME")` in `path`."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "recipe":
            found.add(node.attr)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "hasattr", "declared")
            and len(node.args) >= 2
            and isinstance(node.args[0], ast.Name)
            and node.args[0].id == "recipe"
            and isinstance(node.args[1], ast.Constant)
        ):
            found.add(node.args[1].value)
    return {name for name in found if not name.startswith("__")}


def test_every_name_the_runtime_reads_from_a_recipe_is_in_the_contract() -> None:
    read = set().union(*(_names_read_from_a_recipe(p) for p in (PROJECT_ROOT / "functions").rglob("*.py")))

    assert {"SEED", "TASK", "METRIC", "build", "load_data", "PARITY_TOLERANCE", "SEGMENTS"} <= read
    assert read <= set(BY_NAME), read - set(BY_NAME)


def test_the_docs_table_is_the_contract() -> None:
    page = DOCS.read_text()

    assert with_table(page) == page, "run `python -m functions.training.recipe_contract`"
    for entry in CONTRACT:
        assert f"| `{entry.name}` | {entry.type} | {entry.default_text} |" in page


def test_the_example_recipe_docstring_names_every_contract_name() -> None:
    doc = model.recipe.__doc__ or ""

    assert [entry.name for entry in CONTRACT if f"`{entry.name}" not in doc] == []


def test_a_stage_without_a_recipe_setting_loads_what_load_recipe_loads_by_default() -> None:
    from functions.training.train import DEFAULT_RECIPE
    from stage.settings import StageSettings

    assert StageSettings.model_fields["recipe"].default == DEFAULT_RECIPE
