"""The models people deploy, as recipes: the example recipe with another `build`.

Each is a copy of `model/recipe.py` (same data, features, SEED and split) whose
`build` returns a tree ensemble instead of the logistic regression, so that
`train_bundle` trains, exports and checks it as it does any recipe.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.pipeline import Pipeline

from functions.training.train import DEFAULT_RECIPE, load_recipe

FOREST_TREES = 300
FOREST_LABEL = f"random forest, {FOREST_TREES} trees"
BOOSTING_LABEL = "histogram gradient boosting"


def build_forest(seed: int) -> Pipeline:
    """A random forest of FOREST_TREES fully grown trees."""
    return Pipeline([("classify", RandomForestClassifier(n_estimators=FOREST_TREES, random_state=seed))])


def build_boosting(seed: int) -> Pipeline:
    """Histogram gradient boosting, scikit-learn's defaults: 100 iterations, no early stopping below 10,000 rows."""
    return Pipeline([("classify", HistGradientBoostingClassifier(random_state=seed))])


# The label each model's rows carry in the table, and its build.
BUILDS: dict[str, Callable[[int], Pipeline]] = {FOREST_LABEL: build_forest, BOOSTING_LABEL: build_boosting}


def recipe_with(build: Callable[[int], Pipeline], label: str, *, recipe_name: str = DEFAULT_RECIPE) -> Any:
    """The example recipe with `build` in place of its own; a recipe like any."""
    recipe = load_recipe(recipe_name)
    copy = types.SimpleNamespace(**{name: getattr(recipe, name) for name in dir(recipe) if not name.startswith("_")})
    copy.build = build
    copy.__name__ = f"{recipe_name} ({label})"
    return copy
