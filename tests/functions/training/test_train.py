"""Training a recipe into a bundle: determinism, parity refusal, recipe checks, other tasks and feature types."""

from __future__ import annotations

import sys
import types
from typing import Any

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_diabetes, make_classification
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from functions.core.errors import BundleError
from functions.core.features import FeatureType, encode_columns
from functions.core.predictor import Predictor
from functions.training.recipe_contract import DEFAULT_PARITY_TOLERANCE
from functions.training.train import Bundle, data_hash, load_recipe, load_table, train_bundle


def recipe_module(name: str, **attributes: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    for key, value in attributes.items():
        setattr(module, key, value)
    return module


class Capture:
    """A build(seed) that remembers the pipeline it handed out (fitted in place by training)."""

    def __init__(self, make: Any) -> None:
        self.make = make
        self.pipelines: list[Pipeline] = []

    def __call__(self, seed: int) -> Pipeline:
        pipeline = self.make(seed)
        self.pipelines.append(pipeline)
        return pipeline


# Determinism


def test_training_twice_gives_the_same_bundle(bundle: Bundle) -> None:
    again = train_bundle(load_recipe())

    assert again.version == bundle.version
    assert again.onnx_bytes == bundle.onnx_bytes
    assert again.manifest.to_json() == bundle.manifest.to_json()


def test_one_changed_row_gives_a_new_version(bundle: Bundle) -> None:
    recipe = load_recipe()
    columns, target = load_table(recipe)
    same = train_bundle(recipe, columns, target)
    changed_columns = {name: values.copy() for name, values in columns.items()}
    changed_columns["mean_radius"][0] += 1.0

    changed = train_bundle(recipe, changed_columns, target)

    assert same.version == bundle.version
    assert changed.version != bundle.version
    assert changed.manifest.lineage.data_hash != bundle.manifest.lineage.data_hash
    assert changed.manifest.lineage.data_hash == data_hash(changed_columns, target)


def test_lineage_records_the_recipe_and_revision_without_changing_the_version(bundle: Bundle) -> None:
    lineage = bundle.manifest.lineage

    assert (lineage.recipe, lineage.seed, lineage.rows, lineage.code_revision) == ("model.recipe", 42, 569, None)
    assert set(lineage.libraries) == {"scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy", "pandas", "pyarrow"}
    assert bundle.manifest.parity.tolerance == DEFAULT_PARITY_TOLERANCE
    assert bundle.manifest.parity.labels_equal is True
    assert bundle.manifest.parity.max_abs_diff <= DEFAULT_PARITY_TOLERANCE


# Parity refusal


def test_a_parity_miss_refuses_the_export() -> None:
    x, y = make_classification(n_samples=200, n_features=5, random_state=0)
    recipe = types.SimpleNamespace(
        SEED=0,
        TASK="classification",
        METRIC="accuracy",
        PARITY_TOLERANCE=0.0,
        load_data=lambda: ({f"f{i}": x[:, i] for i in range(x.shape[1])}, y),
        build=lambda seed: Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(random_state=seed))]),
    )

    with pytest.raises(BundleError, match=r"ONNX export refused: on 40 holdout rows .* over tolerance 0"):
        train_bundle(recipe)  # type: ignore[arg-type]


# load_recipe


def test_load_recipe_refuses_a_recipe_lacking_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        sys.modules, "tmp_recipe_lacking", recipe_module("tmp_recipe_lacking", SEED=1, TASK="regression")
    )

    with pytest.raises(ValueError, match="recipe tmp_recipe_lacking does not meet the recipe contract") as refused:
        load_recipe("tmp_recipe_lacking")
    assert [line.split(":")[0] for line in str(refused.value).splitlines()[1:]] == [
        "  - METRIC",
        "  - load_data",
        "  - build",
    ]


def test_load_recipe_refuses_a_metric_that_does_not_fit_the_task(monkeypatch: pytest.MonkeyPatch) -> None:
    module = recipe_module(
        "tmp_recipe_metric", SEED=1, TASK="regression", METRIC="accuracy", load_data=lambda: None, build=lambda s: None
    )
    monkeypatch.setitem(sys.modules, "tmp_recipe_metric", module)

    with pytest.raises(
        ValueError, match=r"METRIC: 'accuracy' does not fit a regression task: choose one of \['mae', 'r2', 'rmse'\]"
    ):
        load_recipe("tmp_recipe_metric")


def test_load_recipe_refuses_an_unknown_task_and_metric(monkeypatch: pytest.MonkeyPatch) -> None:
    common = {"SEED": 1, "load_data": lambda: None, "build": lambda s: None}
    monkeypatch.setitem(
        sys.modules, "tmp_recipe_task", recipe_module("tmp_recipe_task", TASK="ranking", METRIC="r2", **common)
    )
    monkeypatch.setitem(
        sys.modules,
        "tmp_recipe_unknown",
        recipe_module("tmp_recipe_unknown", TASK="regression", METRIC="mape", **common),
    )

    with pytest.raises(ValueError, match='TASK: expected one of "classification", "regression"; found \'ranking\''):
        load_recipe("tmp_recipe_task")
    with pytest.raises(ValueError, match=r"METRIC: expected one of accuracy, .*; found 'mape'"):
        load_recipe("tmp_recipe_unknown")


def test_load_recipe_accepts_the_example_recipe() -> None:
    recipe = load_recipe()

    assert (recipe.TASK, recipe.METRIC, recipe.SEED) == ("classification", "roc_auc", 42)


# A regression recipe


def test_a_regression_recipe_serves_values_matching_scikit_learn() -> None:
    data = load_diabetes()
    columns = {name: data.data[:, i] for i, name in enumerate(data.feature_names)}
    build = Capture(lambda seed: Pipeline([("scale", StandardScaler()), ("ridge", Ridge(alpha=1.0))]))
    recipe = recipe_module(
        "tmp_regression", SEED=3, TASK="regression", METRIC="r2", load_data=lambda: (columns, data.target), build=build
    )

    trained = train_bundle(recipe)

    manifest = trained.manifest
    assert (manifest.task, manifest.classes, manifest.metric) == ("regression", None, "r2")
    assert set(manifest.metrics) == {"r2", "rmse", "mae"}
    assert manifest.fallback.value == pytest.approx(float(np.median(data.target)), rel=0.2)
    assert manifest.baseline.prediction.edges  # numeric prediction bins
    predictor = Predictor(manifest, trained.onnx_bytes)
    rows = [{name: float(values[i]) for name, values in columns.items()} for i in range(60)]
    predictions = predictor.score(predictor.encode(rows))
    pipeline = build.pipelines[0]  # the served one; the feature report may refit another
    expected = pipeline.predict(encode_columns(manifest.feature_spec, columns)[:60])
    actual = np.array([p["value"] for p in predictions])
    assert all(p["label"] is None and p["probabilities"] is None and p["fallback"] is None for p in predictions)
    assert np.max(np.abs(actual - expected) / np.maximum(np.abs(expected), 1.0)) <= DEFAULT_PARITY_TOLERANCE


# Categories and booleans end to end


@pytest.fixture(scope="module")
def mixed_bundle() -> Bundle:
    rng = np.random.default_rng(0)
    n = 300
    colour = rng.choice(["red", "green", "blue"], n)
    flag = rng.random(n) < 0.4
    size = np.round(rng.normal(10, 2, n), 2)
    count = rng.integers(0, 20, n)
    target = np.where((colour == "red") ^ flag ^ (size > 10), "yes", "no")
    recipe = recipe_module(
        "tmp_mixed",
        SEED=1,
        TASK="classification",
        METRIC="accuracy",
        load_data=lambda: ({"colour": colour, "flag": flag, "size": size, "count": count}, target),
        build=lambda seed: Pipeline(
            [
                (
                    "columns",
                    ColumnTransformer(
                        [("colour", OneHotEncoder(handle_unknown="ignore"), [0])], remainder=StandardScaler()
                    ),
                ),
                ("clf", LogisticRegression(random_state=seed)),
            ]
        ),
    )
    return train_bundle(recipe)


def test_a_recipe_with_categories_and_booleans_trains(mixed_bundle: Bundle) -> None:
    features = {f.name: f for f in mixed_bundle.manifest.feature_spec.features}

    assert [f.type for f in features.values()] == [
        FeatureType.CATEGORY,
        FeatureType.BOOLEAN,
        FeatureType.NUMBER,
        FeatureType.INTEGER,
    ]
    assert features["colour"].categories == ("blue", "green", "red")
    assert features["size"].precision == 2
    baseline = {b.name: b for b in mixed_bundle.manifest.baseline.features}
    assert baseline["colour"].categories == ("blue", "green", "red")
    assert baseline["flag"].categories == ("false", "true")
    assert baseline["colour"].proportions[-1] == 0.0  # no unseen category in training


def test_serving_an_unseen_category_is_flagged_not_refused(mixed_bundle: Bundle) -> None:
    predictor = Predictor(mixed_bundle.manifest, mixed_bundle.onnx_bytes)
    rows: list[dict[str, Any]] = [
        {"colour": "purple", "flag": True, "size": 10.5, "count": 3},
        {"colour": "red", "flag": False, "size": 10.5, "count": 3},
        {"size": 10.5},
    ]

    predictions = predictor.score(predictor.encode(rows))

    assert [p["out_of_range"] for p in predictions] == [["colour"], [], []]
    assert predictions[2]["imputed"] == ["colour", "flag", "count"]
    for prediction in predictions:
        assert prediction["label"] in ("no", "yes")
        assert sum(prediction["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)


# CAPTURE_EXCLUDE


def _diabetes_recipe(name: str, **attributes: Any) -> types.ModuleType:
    data = load_diabetes()
    columns = {feature: data.data[:, i] for i, feature in enumerate(data.feature_names)}
    build = attributes.pop("build", lambda seed: Pipeline([("scale", StandardScaler()), ("ridge", Ridge())]))
    return recipe_module(
        name, SEED=3, TASK="regression", METRIC="r2", load_data=lambda: (columns, data.target), build=build,
        **attributes,
    )  # fmt: skip


def test_capture_exclude_names_features_in_spec_order_and_makes_a_new_version() -> None:
    plain = train_bundle(_diabetes_recipe("tmp_plain"))
    private = train_bundle(_diabetes_recipe("tmp_private", CAPTURE_EXCLUDE=["sex", "age", "sex"]))

    assert plain.manifest.capture_exclude == ()
    assert private.manifest.capture_exclude == ("age", "sex")
    assert private.onnx_bytes == plain.onnx_bytes and private.manifest.metrics == plain.manifest.metrics
    assert private.version != plain.version  # a bundle that records less is a different bundle


def test_a_recipe_without_capture_exclude_captures_every_feature(bundle: Bundle) -> None:
    assert bundle.manifest.capture_exclude == ()
    assert b"capture_exclude" not in bundle.manifest.to_json()  # the manifest a recipe made before the field


def test_capture_exclude_naming_unknown_features_refuses_training_before_fitting() -> None:
    def never(seed: int) -> Pipeline:
        raise AssertionError("training fitted a model for a recipe it should have refused")

    recipe = _diabetes_recipe("tmp_unknown_exclude", CAPTURE_EXCLUDE=["bmi", "postcode", "Age"], build=never)

    with pytest.raises(
        ValueError,
        match=r"recipe CAPTURE_EXCLUDE names features the data does not have: \['Age', 'postcode'\]; "
        r"the features are the columns of load_data\(\): age, sex, bmi",
    ):
        train_bundle(recipe)


@pytest.mark.parametrize(
    ("declared", "message"),
    [("bmi", r"must be a list of feature names, e\.g\. \[\"postcode\"\]; got 'bmi'"),
     (["bmi", 3], r"must hold feature names \(strings\); got \[3\]"),
     (7, r"must be a list of feature names")],
    ids=["a bare string", "a number among the names", "not a list"],
)  # fmt: skip
def test_capture_exclude_must_be_a_list_of_names(declared: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        train_bundle(_diabetes_recipe("tmp_bad_exclude", CAPTURE_EXCLUDE=declared))


# SEGMENTS


def test_segments_by_edges_and_by_training_quartiles_enter_the_manifest() -> None:
    plain = train_bundle(_diabetes_recipe("tmp_unsegmented"))
    segmented = train_bundle(_diabetes_recipe("tmp_segmented", SEGMENTS=[("age", [-0.02, 0.02]), "bmi"]))

    age, bmi = segmented.manifest.segments
    assert (age.feature, age.kind, age.edges) == ("age", "numeric", (-0.02, 0.02))
    columns = {name: load_diabetes().data[:, i] for i, name in enumerate(load_diabetes().feature_names)}
    assert bmi.edges == tuple(np.unique(np.quantile(columns["bmi"], [0.25, 0.5, 0.75], method="nearest")))
    assert plain.manifest.segments == () and b"segments" not in plain.manifest.to_json()
    assert segmented.onnx_bytes == plain.onnx_bytes and segmented.version != plain.version


@pytest.mark.parametrize(
    ("declared", "message"),
    [(["postcode"], r"SEGMENTS names 'postcode', which is not a feature; the features are the columns"),
     ([("age", [0.02, -0.02])], r"edges of 'age' must be finite numbers in increasing order"),
     ([("age", [])], r"edges of 'age' must be finite numbers"),
     ([("age", [float("inf")])], r"edges of 'age' must be finite numbers"),
     ([("age", 3)], r"edges of 'age' must be"),
     ("age", r"SEGMENTS must be a list of feature names or \(name, \[edges\]\) pairs"),
     ([3], r"entries are feature names or \(name, \[edges\]\) pairs"),
     (["age", "age"], r"names 'age' twice")],
    ids=["unknown", "decreasing", "no edges", "infinite", "edges not a list", "bare string", "number", "twice"],
)  # fmt: skip
def test_bad_segments_refuse_training(declared: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        train_bundle(_diabetes_recipe("tmp_bad_segments", SEGMENTS=declared))


def test_a_segment_feature_kept_out_of_capture_refuses_training() -> None:
    recipe = _diabetes_recipe("tmp_excluded_segment", SEGMENTS=["sex"], CAPTURE_EXCLUDE=["sex"])
    with pytest.raises(ValueError, match=r"CAPTURE_EXCLUDE keeps out of capture: the monitor splits served rows by"):
        train_bundle(recipe)


def test_a_constant_feature_has_no_quartiles() -> None:
    data = load_diabetes()
    columns = {"constant": np.ones(len(data.target)), "bmi": data.data[:, 2]}
    recipe = recipe_module(
        "tmp_constant_segment", SEED=3, TASK="regression", METRIC="r2", load_data=lambda: (columns, data.target),
        build=lambda seed: Pipeline([("ridge", Ridge())]), SEGMENTS=["constant"],
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"'constant', whose training values are all the same"):
        train_bundle(recipe)
