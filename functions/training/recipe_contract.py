"""The recipe contract: every name Slipway reads from a recipe module, with its type, default and meaning.

`load_recipe` checks a module against it before anything is trained (`slipway check` runs
that check alone), and training reads each optional name through `declared`, so a name
read anywhere is listed here. The table of docs/models.md ("The recipe") is rendered from
`CONTRACT` (`python -m functions.training.recipe_contract` rewrites it), and tests hold
that table and `model/recipe.py`'s docstring to the same list.
"""

from __future__ import annotations

import difflib
import inspect
import math
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from functions.core.errors import RecipeError
from functions.core.features import Feature
from functions.core.quality import METRICS
from functions.training.importance import importance_rule
from functions.training.metrics import check_metric
from functions.training.outliers import DEFAULT_OUTLIER_SHARE, outlier_share

TASKS = ("classification", "regression")
DEFAULT_PARITY_TOLERANCE = 1e-4
# The fields a FEATURES entry may override: every field of a feature but its name.
FEATURE_FIELDS = tuple(name for name in Feature.model_fields if name != "name")
# An UPPER_CASE name this close to a contract name is taken for a misspelling of it.
_TYPO_CUTOFF = 0.8


class RecipeContractError(RecipeError):
    """A recipe module breaks the recipe contract; the message lists every problem, one a line."""

    def __init__(self, recipe: str, problems: list[str]) -> None:
        self.recipe = recipe
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"recipe {recipe} does not meet the recipe contract (docs/models.md, 'The recipe'):\n{lines}")


@dataclass(frozen=True)
class RecipeName:
    """One name a recipe sets: its type as a reader writes it, its default (None: required) and its meaning."""

    name: str
    type: str
    meaning: str
    check: Callable[[Any], None]  # raises ValueError naming what is expected
    default: object = None
    default_text: str = "required"

    @property
    def required(self) -> bool:
        return self.default_text == "required"


def _expect(ok: bool, expected: str, value: object) -> None:
    if not ok:
        raise ValueError(f"expected {expected}; found {_found(value)}")


def _found(value: object) -> str:
    text = repr(value)
    return f"{text[:80]}{'...' if len(text) > 80 else ''} ({type(value).__name__})"


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _list_of(value: object) -> list[Any] | None:
    """`value` as a list when it is a list or tuple (a string is not a list of names)."""
    return list(value) if isinstance(value, list | tuple) else None


def _seed(value: object) -> None:
    _expect(isinstance(value, int) and not isinstance(value, bool), "an integer, e.g. 42", value)


def _task(value: object) -> None:
    _expect(value in TASKS, 'one of "classification", "regression"', value)


def _metric(value: object) -> None:
    _expect(isinstance(value, str) and value in METRICS, f"one of {', '.join(sorted(METRICS))}", value)


def _function(signature: str, argument_count: int) -> Callable[[Any], None]:
    def check(value: object) -> None:
        _expect(callable(value), f"a function {signature}", value)
        try:
            inspect.signature(value).bind(*range(argument_count))  # type: ignore[arg-type]
        except TypeError:
            raise ValueError(f"expected a function {signature}; its signature is {inspect.signature(value)}") from None  # type: ignore[arg-type]
        except ValueError:  # a builtin without a signature: it is called and judged then
            pass

    return check


def _features(value: object) -> None:
    _expect(
        isinstance(value, Mapping) and all(isinstance(k, str) and isinstance(v, Mapping) for k, v in value.items()),
        'a dict of feature name to overrides, e.g. {"age": {"required": True}}',
        value,
    )
    assert isinstance(value, Mapping)
    for feature, overrides in value.items():
        for field in overrides:
            if field not in FEATURE_FIELDS:
                hint = _did_you_mean(field, FEATURE_FIELDS)
                raise ValueError(
                    f"{feature!r} overrides {field!r}, which is not a feature field (the fields: "
                    f"{', '.join(FEATURE_FIELDS)}){hint}"
                )


def _names(value: object) -> None:
    names = _list_of(value)
    every_name = names is not None and all(isinstance(n, str) for n in names)
    _expect(every_name, 'a list of feature names, e.g. ["postcode"]', value)


def _segments(value: object) -> None:
    entries = _list_of(value)
    _expect(
        entries is not None and all(isinstance(e, str) or _is_pair(e) for e in entries),
        'a list of feature names or (name, [edges]) pairs, e.g. ["sex", ("age", [30, 50])]',
        value,
    )


def _is_pair(entry: object) -> bool:
    pair = _list_of(entry)
    return pair is not None and len(pair) == 2 and isinstance(pair[0], str)


def _outlier_share(value: object) -> None:
    outlier_share(value)


def _importance_share(value: object) -> None:
    importance_rule(share=value)


def _importance_threshold(value: object) -> None:
    importance_rule(threshold=value)


def _parity_tolerance(value: object) -> None:
    _expect(_is_number(value) and 0 < value < 1, "a number above 0 and below 1, e.g. 1e-4", value)  # type: ignore[operator]


CONTRACT: tuple[RecipeName, ...] = (
    RecipeName(
        name="SEED",
        type="int",
        meaning="Every source of randomness (the holdout split, the estimator) derives from it.",
        check=_seed,
    ),
    RecipeName(
        name="TASK",
        type='"classification" or "regression"',
        meaning="What the model predicts: a label or a number.",
        check=_task,
    ),
    RecipeName(
        name="METRIC",
        type="str",
        meaning="The holdout metric the retrain gate compares; one that fits TASK.",
        check=_metric,
    ),
    RecipeName(
        name="load_data",
        type="function `load_data()`",
        meaning="The training table and its target: a DataFrame (or a dict of named columns) and a Series or array.",
        check=_function("load_data()", 0),
    ),
    RecipeName(
        name="build",
        type="function `build(seed)`",
        meaning="An unfitted scikit-learn estimator (a Pipeline, say) whose every step exports to ONNX.",
        check=_function("build(seed)", 1),
    ),
    RecipeName(
        name="FEATURES",
        type="dict of feature name to overrides",
        meaning=f"Overrides of the feature spec derived from the data; the fields: {', '.join(FEATURE_FIELDS)}.",
        check=_features,
        default_text="none: all derived",
    ),
    RecipeName(
        name="CAPTURE_EXCLUDE",
        type="list of feature names",
        meaning="Features whose values capture, logs and drift reports never hold (still validated and scored).",
        check=_names,
        default_text="none",
    ),
    RecipeName(
        name="SEGMENTS",
        type="list of feature names or (name, [edges]) pairs",
        meaning="Features the monitor compares the model across (per-segment figures and gaps); each is captured.",
        check=_segments,
        default_text="none",
    ),
    RecipeName(
        name="OUTLIER_SHARE",
        type="number in (0, 0.5)",
        meaning="The share of training rows the outlier detector's threshold flags.",
        check=_outlier_share,
        default=DEFAULT_OUTLIER_SHARE,
        default_text=f"{DEFAULT_OUTLIER_SHARE:g}",
    ),
    RecipeName(
        name="IMPORTANCE_SHARE",
        type="number, 0 or more",
        meaning="A feature is unimportant below this share of METRIC's scale (set this or IMPORTANCE_THRESHOLD).",
        check=_importance_share,
        default_text="0.001 of a score's range, 0.01 of an error",
    ),
    RecipeName(
        name="IMPORTANCE_THRESHOLD",
        type="number, 0 or more",
        meaning="The same threshold in METRIC's units instead of a share.",
        check=_importance_threshold,
        default_text="none",
    ),
    RecipeName(
        name="PARITY_TOLERANCE",
        type="number in (0, 1)",
        meaning="How far the ONNX graph's probabilities (or relative values) may stray from scikit-learn's on the "
        "holdout rows.",
        check=_parity_tolerance,
        default=DEFAULT_PARITY_TOLERANCE,
        default_text=f"{DEFAULT_PARITY_TOLERANCE:g}",
    ),
)
BY_NAME = {entry.name: entry for entry in CONTRACT}


def declared(recipe: object, name: str) -> Any:
    """The value `recipe` sets for the contract's `name`, or the contract's default when it sets none."""
    return getattr(recipe, name, BY_NAME[name].default)


def contract_problems(recipe: object) -> list[str]:
    """Every way `recipe` breaks the contract, one line each (empty when it meets it); nothing is called or trained."""
    problems = []
    for entry in CONTRACT:
        if not hasattr(recipe, entry.name):
            if entry.required:
                problems.append(f"{entry.name}: missing; {_required(entry)}{_near(recipe, entry.name)}")
            continue
        value = getattr(recipe, entry.name)
        if value is None and not entry.required:
            continue
        try:
            entry.check(value)
        except ValueError as exc:
            problems.append(f"{entry.name}: {_without_prefix(str(exc), entry.name)}")
    problems += _across(recipe, problems)
    problems += [
        f"{name}: not a name Slipway reads{_did_you_mean(name, BY_NAME)}"
        for name in _public_names(recipe)
        if name.isupper() and name not in BY_NAME and _did_you_mean(name, BY_NAME)
    ]
    return problems


def check_recipe(recipe: object, name: str) -> None:
    """Refuse `recipe` (named `name`) with every problem at once when it breaks the contract."""
    problems = contract_problems(recipe)
    if problems:
        raise RecipeContractError(name, problems)


def _required(entry: RecipeName) -> str:
    return f"a recipe must set it: {entry.type}, {entry.meaning[0].lower()}{entry.meaning[1:].rstrip('.')}"


def _near(recipe: object, name: str) -> str:
    """' (it sets biuld: a misspelling?)' when the recipe sets a name close to the missing one."""
    close = difflib.get_close_matches(name, [n for n in _public_names(recipe) if n not in BY_NAME], 1, _TYPO_CUTOFF)
    return f" (it sets {close[0]}: a misspelling?)" if close else ""


def _did_you_mean(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), 1, _TYPO_CUTOFF)
    return f"; did you mean {close[0]}?" if close else ""


def _public_names(recipe: object) -> list[str]:
    return [name for name in dir(recipe) if not name.startswith("_")]


def _without_prefix(message: str, name: str) -> str:
    """A checker's message without its own 'recipe NAME ' lead, since the problem line starts with the name."""
    return re.sub(rf"^(recipe (sets )?)?{name} ", "", message)


def _across(recipe: object, problems: list[str]) -> list[str]:
    """The rules between names: METRIC fits TASK; one of IMPORTANCE_SHARE and IMPORTANCE_THRESHOLD."""
    found = []
    judged = {line.split(":", 1)[0] for line in problems}
    if not {"TASK", "METRIC"} & judged and hasattr(recipe, "TASK") and hasattr(recipe, "METRIC"):
        try:
            check_metric(recipe.METRIC, recipe.TASK)
        except ValueError as exc:
            found.append(f"METRIC: {_without_prefix(str(exc), 'METRIC')}")
    if declared(recipe, "IMPORTANCE_SHARE") is not None and declared(recipe, "IMPORTANCE_THRESHOLD") is not None:
        found.append("IMPORTANCE_SHARE and IMPORTANCE_THRESHOLD: set one (a share of METRIC's scale, or its units)")
    return found


# docs/models.md's table, between these lines.
DOCS = Path(__file__).resolve().parents[2] / "docs" / "models.md"
TABLE_START = "<!-- python -m functions.training.recipe_contract: from here -->"
TABLE_END = "<!-- python -m functions.training.recipe_contract: to here -->"


def contract_table() -> str:
    """The contract as a markdown table: name, type, default, meaning."""
    rows = ["| name | type | default | meaning |", "|---|---|---|---|"]
    for entry in CONTRACT:
        rows.append(f"| `{entry.name}` | {entry.type} | {entry.default_text} | {entry.meaning} |")
    return "\n".join(rows)


def with_table(page: str) -> str:
    """`page` with the text between the table's markers replaced by the current table."""
    head, found, rest = page.partition(TABLE_START)
    _, ended, tail = rest.partition(TABLE_END)
    if not (found and ended):
        raise ValueError(f"{DOCS.name} lacks the lines {TABLE_START} and {TABLE_END}")
    return f"{head}{TABLE_START}\n{contract_table()}\n{TABLE_END}{tail}"


if __name__ == "__main__":
    DOCS.write_text(with_table(DOCS.read_text()))
    print(f"wrote the recipe contract's table into {DOCS}", file=sys.stderr)
