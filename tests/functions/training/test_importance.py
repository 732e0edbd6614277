"""Which features earn their place: permutation importance on the holdout, and the metric without the weak ones."""

from __future__ import annotations

import types
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from functions.core.features import Feature, FeatureSpec, FeatureType
from functions.training import importance
from functions.training.importance import DEFAULT_SHARES, REPEATS, ImportanceRule, held_constant, importance_rule
from functions.training.train import Bundle, train_bundle

ROWS = 600


def recipe_module(name: str, **attributes: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    for key, value in attributes.items():
        setattr(module, key, value)
    return module


def _by_name(seed: int) -> Pipeline:
    """Columns selected by name, as a recipe writes it: held-constant columns must still be found."""
    return Pipeline(
        [
            ("columns", ColumnTransformer([("numbers", StandardScaler(), ["signal", "weak", "noise"])])),
            ("classify", LogisticRegression(random_state=seed)),
        ]
    )


def _classification_recipe(name: str, **attributes: Any) -> types.ModuleType:
    """`signal` decides the class, `weak` nudges it, `noise` is independent of it."""
    rng = np.random.default_rng(7)
    signal, weak, noise = (np.round(rng.normal(0, 1, ROWS), 3) for _ in range(3))
    target = np.where(signal + 0.3 * weak + rng.normal(0, 0.3, ROWS) > 0, "yes", "no")
    columns = {"signal": signal, "weak": weak, "noise": noise}
    settings: dict[str, Any] = {"SEED": 5, "TASK": "classification", "METRIC": "roc_auc", "build": _by_name}
    return recipe_module(name, load_data=lambda: (columns, target), **{**settings, **attributes})


def _regression_recipe(name: str, **attributes: Any) -> types.ModuleType:
    rng = np.random.default_rng(11)
    size, noise = np.round(rng.normal(10, 2, ROWS), 2), np.round(rng.normal(0, 1, ROWS), 2)
    target = 3.0 * size + rng.normal(0, 0.5, ROWS)
    build = lambda seed: Pipeline([("scale", StandardScaler()), ("fit", LinearRegression())])  # noqa: E731
    settings: dict[str, Any] = {"SEED": 2, "TASK": "regression", "METRIC": "rmse", "build": build}
    return recipe_module(name, load_data=lambda: ({"size": size, "noise": noise}, target), **{**settings, **attributes})


@pytest.fixture(scope="module")
def classified() -> Bundle:
    return train_bundle(_classification_recipe("tmp_importance_classes"))


# What is measured


def test_the_report_names_every_feature_in_spec_order_with_the_recipe_metric(classified: Bundle) -> None:
    report = classified.manifest.feature_report
    assert report is not None

    assert [f.name for f in report.features] == ["signal", "weak", "noise"]
    assert (report.metric, report.threshold, report.repeats, report.rows) == (
        "roc_auc", DEFAULT_SHARES["bounded"], REPEATS, ROWS // 5,
    )  # fmt: skip
    assert (report.threshold_share, report.threshold_scale) == (DEFAULT_SHARES["bounded"], 1.0)  # of the range 1
    assert report.holdout_metric == classified.manifest.metrics["roc_auc"]  # the same rows, the same formula
    assert sorted(f.rank for f in report.features) == [1, 2, 3]


def test_an_informative_feature_is_important_and_noise_is_not(classified: Bundle) -> None:
    report = classified.manifest.feature_report
    assert report is not None
    features = report.by_name()

    assert features["signal"].rank == 1 and features["signal"].important
    assert features["signal"].importance > 0.1 > features["signal"].std
    assert features["weak"].rank == 2 and features["weak"].important
    assert features["noise"].rank == 3 and not features["noise"].important
    assert abs(features["noise"].importance) < DEFAULT_SHARES["bounded"] * 5


def test_the_metric_without_the_noise_is_close_to_the_full_metric(classified: Bundle) -> None:
    report = classified.manifest.feature_report
    assert report is not None and report.without_unimportant is not None

    assert report.without_unimportant.features == ("noise",)
    assert report.without_unimportant.error is None
    assert report.without_unimportant.metric == pytest.approx(report.holdout_metric, abs=0.005)


def test_the_report_is_the_same_for_the_same_data_and_seed(classified: Bundle) -> None:
    again = train_bundle(_classification_recipe("tmp_importance_classes"))

    assert again.manifest.feature_report == classified.manifest.feature_report
    assert again.manifest.to_json() == classified.manifest.to_json()


def test_the_report_does_not_enter_the_version(classified: Bundle) -> None:
    without = classified.manifest.model_copy(update={"feature_report": None})

    assert without.content_version(classified.onnx_bytes) == classified.version
    assert b"feature_report" in classified.manifest.to_json()


# Lower-is-better metrics


def test_a_lower_is_better_metric_counts_its_rise_as_importance() -> None:
    trained = train_bundle(_regression_recipe("tmp_importance_rmse", IMPORTANCE_THRESHOLD=0.05))
    report = trained.manifest.feature_report
    assert report is not None
    features = report.by_name()

    assert report.holdout_metric == trained.manifest.metrics["rmse"]
    assert features["size"].importance > 3.0  # shuffling size makes rmse several units worse
    assert features["size"].important and features["size"].rank == 1
    assert not features["noise"].important
    assert report.without_unimportant is not None and report.without_unimportant.features == ("noise",)
    assert report.without_unimportant.metric == pytest.approx(report.holdout_metric, rel=0.05)


# The threshold


def _dollars_recipe(name: str, **attributes: Any) -> types.ModuleType:
    """House prices in dollars, by MAE: three ordinal grades (OrdinalEncoder with explicit categories, the other
    columns passed through), a gradient-boosted regressor; `area` and `grade` set the price, `noise` does not."""
    rng = np.random.default_rng(3)
    grades = ["fair", "good", "excellent"]
    grade = rng.choice(grades, ROWS)
    area, noise = np.round(rng.normal(120, 30, ROWS), 1), np.round(rng.normal(0, 1, ROWS), 2)
    price = 2_000 * area + 40_000 * np.array([grades.index(g) for g in grade]) + rng.normal(0, 15_000, ROWS)
    encode = OrdinalEncoder(categories=[grades], handle_unknown="use_encoded_value", unknown_value=-1)
    build = lambda seed: Pipeline([  # noqa: E731
        ("columns", ColumnTransformer([("grade", encode, ["grade"])], remainder="passthrough")),
        ("fit", HistGradientBoostingRegressor(max_iter=50, random_state=seed)),
    ])  # fmt: skip
    columns = {"grade": grade.astype(object), "area": area, "noise": noise}
    settings: dict[str, Any] = {"SEED": 4, "TASK": "regression", "METRIC": "mae", "build": build}
    return recipe_module(name, load_data=lambda: (columns, np.round(price, 2)), **{**settings, **attributes})


def test_an_error_in_dollars_gets_a_threshold_of_dollars_a_share_of_the_models_error() -> None:
    report = train_bundle(_dollars_recipe("tmp_importance_dollars")).manifest.feature_report
    assert report is not None
    features = report.by_name()

    assert report.holdout_metric > 5_000  # the model's mean absolute error, in dollars
    assert report.threshold == pytest.approx(DEFAULT_SHARES["error"] * report.holdout_metric)
    assert (report.threshold_share, report.threshold_scale) == (DEFAULT_SHARES["error"], report.holdout_metric)
    assert features["area"].important and features["grade"].important
    assert not features["noise"].important  # shuffling noise moves the error by less than 1 % of it


def test_a_share_of_the_scale_can_be_chosen_and_an_absolute_threshold_still_set() -> None:
    assert importance_rule() == ImportanceRule()
    assert importance_rule(share=0.05).threshold("mae", 200.0) == (10.0, 0.05, 200.0)
    assert importance_rule(share=0.05).threshold("accuracy", 0.9) == (0.05, 0.05, 1.0)
    assert importance_rule().threshold("rmse", -0.0) == (0.0, DEFAULT_SHARES["error"], 0.0)
    assert importance_rule(threshold=2).threshold("mae", 200.0) == (2.0, None, None)
    with pytest.raises(ValueError, match="sets both IMPORTANCE_THRESHOLD and IMPORTANCE_SHARE: set one"):
        importance_rule(threshold=2, share=0.1)
    with pytest.raises(ValueError, match=r"recipe IMPORTANCE_SHARE must be 0 or more; got -0\.1"):
        importance_rule(share=-0.1)


def test_no_feature_below_the_threshold_means_no_refit() -> None:
    built: list[int] = []

    def build(seed: int) -> Pipeline:
        built.append(seed)
        return Pipeline([("scale", StandardScaler()), ("classify", LogisticRegression(random_state=seed))])

    informative = _classification_recipe("tmp_importance_none", build=build)
    columns, target = informative.load_data()
    informative.load_data = lambda: ({"signal": columns["signal"], "weak": columns["weak"]}, target)

    report = train_bundle(informative).manifest.feature_report
    assert report is not None

    assert all(f.important for f in report.features)
    assert report.without_unimportant is None
    assert built == [5]  # the served model alone was fitted


def test_a_threshold_above_every_importance_holds_every_feature_constant() -> None:
    trained = train_bundle(_classification_recipe("tmp_importance_all", IMPORTANCE_THRESHOLD=10))
    report = trained.manifest.feature_report
    assert report is not None and report.without_unimportant is not None

    assert not any(f.important for f in report.features)
    assert report.without_unimportant.features == ("signal", "weak", "noise")
    assert report.without_unimportant.metric == pytest.approx(0.5)  # a constant score ranks nothing


@pytest.mark.parametrize("declared", ["0.01", True, float("nan"), [0.01]], ids=["text", "bool", "nan", "list"])
def test_an_importance_threshold_that_is_not_a_number_refuses_training_before_fitting(declared: object) -> None:
    def never(seed: int) -> Pipeline:
        raise AssertionError("training fitted a model for a recipe it should have refused")

    recipe = _classification_recipe("tmp_importance_bad", IMPORTANCE_THRESHOLD=declared, build=never)

    with pytest.raises(ValueError, match=r"recipe IMPORTANCE_THRESHOLD must be a finite number .* got"):
        train_bundle(recipe)


def test_an_absolute_threshold_refuses_a_negative_value() -> None:
    with pytest.raises(ValueError, match=r"recipe IMPORTANCE_THRESHOLD must be 0 or more; got -0\.1"):
        importance_rule(threshold=-0.1)


# A refit that fails, and the row cap


def test_a_refit_that_fails_is_recorded_and_training_goes_on() -> None:
    pipelines: list[Pipeline] = []

    def build(seed: int) -> Pipeline:
        if pipelines:  # the refit: a step that cannot take the columns
            return Pipeline([("columns", ColumnTransformer([("x", StandardScaler(), ["absent"])])),
                             ("classify", LogisticRegression())])  # fmt: skip
        pipelines.append(_by_name(seed))
        return pipelines[0]

    trained = train_bundle(_classification_recipe("tmp_importance_broken", build=build))
    report = trained.manifest.feature_report
    assert report is not None and report.without_unimportant is not None

    assert report.without_unimportant.features == ("noise",)
    assert report.without_unimportant.metric is None
    assert report.without_unimportant.error is not None and "fitting build()'s estimator failed" in (
        report.without_unimportant.error
    )


def test_a_holdout_over_the_cap_is_sampled_with_the_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importance, "MAX_ROWS", 50)

    first = train_bundle(_classification_recipe("tmp_importance_cap"))
    second = train_bundle(_classification_recipe("tmp_importance_cap"))

    assert first.manifest.feature_report is not None and first.manifest.feature_report.rows == 50
    assert first.manifest.feature_report == second.manifest.feature_report


# Holding a column constant


def test_held_columns_take_their_imputation_value_in_the_type_the_pipeline_reads() -> None:
    spec = FeatureSpec(
        features=(
            Feature(name="colour", type=FeatureType.CATEGORY, categories=("blue", "red"), impute="red"),
            Feature(name="flag", type=FeatureType.BOOLEAN, impute=True),
            Feature(name="size", precision=1, impute=2.5),
        )
    )
    frame = pd.DataFrame(  # as functions.training.frame.model_frame builds it
        {"colour": pd.Series(["blue", "red"], dtype=object), "flag": [False, True], "size": [1.0, 4.0]}
    )

    held = held_constant(frame, spec, ["colour", "flag", "size"])

    assert held.to_dict("list") == {"colour": ["red", "red"], "flag": [True, True], "size": [2.5, 2.5]}
    assert [str(t) for t in held.dtypes] == ["object", "bool", "float64"]
    assert frame["colour"].tolist() == ["blue", "red"]  # the training rows themselves are untouched


def test_a_category_held_constant_still_fits_a_pipeline_that_encodes_it_by_name() -> None:
    rng = np.random.default_rng(3)
    colour = rng.choice(["red", "green", "blue"], ROWS)
    size = np.round(rng.normal(10, 2, ROWS), 2)
    target = np.where(size > 10, "big", "small")
    recipe = recipe_module(
        "tmp_importance_category", SEED=1, TASK="classification", METRIC="accuracy",
        load_data=lambda: ({"colour": colour, "size": size}, target),
        build=lambda seed: Pipeline([
            ("columns", ColumnTransformer([("colour", OneHotEncoder(handle_unknown="ignore"), ["colour"]),
                                           ("size", StandardScaler(), ["size"])])),
            ("classify", LogisticRegression(random_state=seed)),
        ]),
    )  # fmt: skip

    report = train_bundle(recipe).manifest.feature_report
    assert report is not None and report.without_unimportant is not None

    assert report.without_unimportant.features == ("colour",)
    assert report.without_unimportant.error is None
    assert report.without_unimportant.metric == pytest.approx(report.holdout_metric, abs=0.02)


def test_a_build_that_shares_its_steps_keeps_the_served_model_intact() -> None:
    shared = ColumnTransformer(
        [("colour", OneHotEncoder(handle_unknown="ignore"), ["colour"]), ("size", StandardScaler(), ["size"])]
    )
    rng = np.random.default_rng(4)
    colour, size = rng.choice(["red", "green", "blue"], ROWS), np.round(rng.normal(10, 2, ROWS), 2)
    recipe = recipe_module(
        "tmp_importance_shared", SEED=1, TASK="classification", METRIC="accuracy",
        load_data=lambda: ({"colour": colour, "size": size}, np.where(size > 10, "big", "small")),
        build=lambda seed: Pipeline([("columns", shared), ("classify", LogisticRegression(random_state=seed))]),
    )  # fmt: skip

    trained = train_bundle(recipe)  # the refit holds colour constant: one category instead of three

    report = trained.manifest.feature_report
    assert report is not None and report.without_unimportant is not None
    assert report.without_unimportant.features == ("colour",) and report.without_unimportant.error is None
    assert len(shared.transformers_[0][1].categories_[0]) == 3  # the served pipeline's encoder, untouched
