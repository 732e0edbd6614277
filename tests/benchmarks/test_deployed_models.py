"""The deployed models' recipes: the example recipe with another build, exportable before any fitting."""

from __future__ import annotations

from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

from benchmarks.deployed_models import BUILDS, FOREST_TREES, build_boosting, build_forest, recipe_with
from functions.training.export import check_exportable
from functions.training.train import load_recipe


def test_a_recipe_copy_keeps_the_example_but_its_build() -> None:
    example = load_recipe()
    recipe = recipe_with(build_forest, "forest")

    assert recipe.build is build_forest
    assert (recipe.SEED, recipe.TASK, recipe.METRIC, recipe.FEATURES) == (
        example.SEED,
        example.TASK,
        example.METRIC,
        example.FEATURES,
    )
    assert recipe.load_data is example.load_data
    assert recipe.__name__ == "model.recipe (forest)"
    assert example.build is not build_forest


def test_the_builds_are_seeded_tree_ensembles_that_export() -> None:
    forest = build_forest(7)[-1]
    boosting = build_boosting(7)[-1]
    assert isinstance(forest, RandomForestClassifier) and forest.n_estimators == FOREST_TREES == 300
    assert isinstance(boosting, HistGradientBoostingClassifier)
    assert forest.random_state == boosting.random_state == 7
    for build in BUILDS.values():
        check_exportable(build(0))
