"""A recipe written the usual way: load_data() returns a DataFrame with string categories and missing values,
build() selects columns by name and dtype. It trains, exports with one typed input per column, serves from JSON
rows and retrains from the stored table to the same version."""

from __future__ import annotations

import types
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from functions.core.data_source import DataSource
from functions.core.errors import RecipeError
from functions.core.features import FeatureType
from functions.core.predictor import Predictor
from functions.lake.ingest import Snapshot, ingest, land_recipe_table, load_snapshot
from functions.training.export import graph_precision
from functions.training.train import load_table, train_bundle
from tests.functions.lake.memory import MemoryBucket, MemorySource

pytestmark = pytest.mark.unit

ROWS = 400


def load_data() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(11)
    age = rng.integers(18, 90, ROWS).astype(float)
    age[rng.random(ROWS) < 0.08] = np.nan
    income = np.round(rng.lognormal(10, 0.5, ROWS), 2)
    city = rng.choice(["Lisbon", "Porto", "Faro", "Braga"], ROWS).astype(object)
    city[rng.random(ROWS) < 0.05] = None
    plan = rng.choice(["basic", "plus"], ROWS)
    member = rng.random(ROWS) < 0.4
    score = sum(
        part.astype(int) for part in (np.nan_to_num(age, nan=50) > 45, city == "Porto", member, income > 25_000)
    )
    frame = pd.DataFrame({"age": age, "income": income, "city": city, "plan": plan, "member": member})
    return frame, pd.Series(np.where(score >= 2, "churn", "stay"), name="outcome")


def build(seed: int) -> Pipeline:
    numbers = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    prep = ColumnTransformer(
        [
            ("numbers", numbers, make_column_selector(dtype_include="number")),
            ("city", OneHotEncoder(handle_unknown="ignore"), ["city"]),
            ("plan", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), ["plan"]),
            ("member", "passthrough", ["member"]),
        ]
    )
    return Pipeline([("prep", prep), ("forest", RandomForestClassifier(60, random_state=seed))])


RECIPE: Any = types.SimpleNamespace(
    __name__="tests.dataframe_recipe", SEED=3, TASK="classification", METRIC="roc_auc", load_data=load_data, build=build
)


@pytest.fixture(scope="module")
def bundle() -> Any:
    return train_bundle(RECIPE)


def test_the_columns_keep_their_names_and_types(bundle: Any) -> None:
    features = {f.name: f for f in bundle.manifest.feature_spec.features}
    assert list(features) == ["age", "income", "city", "plan", "member"]
    assert features["city"].type is FeatureType.CATEGORY and features["city"].categories == (
        "Braga", "Faro", "Lisbon", "Porto",
    )  # fmt: skip
    assert features["member"].type is FeatureType.BOOLEAN
    assert features["age"].type is FeatureType.NUMBER  # NaN made the integers floats, as pandas does


def test_it_matches_scikit_learn_with_one_typed_input_per_column(bundle: Any) -> None:
    assert bundle.manifest.parity.labels_equal is True and bundle.manifest.parity.max_abs_diff < 1e-6
    assert graph_precision(bundle.onnx_bytes) == "float64"


def test_it_serves_json_rows_with_strings_missing_values_and_unseen_categories(bundle: Any) -> None:
    predictor = Predictor(bundle.manifest, bundle.onnx_bytes)
    rows = [
        {"age": 61, "income": 31000.5, "city": "Porto", "plan": "plus", "member": True},
        {"age": None, "income": 18000, "city": None, "plan": "basic", "member": False},
        {"income": 22000, "city": "Madrid", "plan": "basic", "member": True},
    ]
    answers = predictor.score(predictor.encode(rows))

    assert all(a["fallback"] is None and a["label"] in ("churn", "stay") for a in answers)
    assert answers[1]["imputed"] == ["age", "city"] and answers[2]["imputed"] == ["age"]
    assert answers[2]["out_of_range"] == ["city"]  # unseen: flagged, and one-hot encoded as none of the known
    assert [predictor.score(predictor.encode([row]))[0] for row in rows] == answers


def test_it_answers_as_the_pipeline_on_the_training_rows(bundle: Any) -> None:
    columns, _ = load_table(RECIPE)
    frame, _ = load_data()
    rows = [{name: _json(values[i]) for name, values in columns.items()} for i in range(60)]
    predictor = Predictor(bundle.manifest, bundle.onnx_bytes)
    served = [a["probabilities"]["churn"] for a in predictor.score(predictor.encode(rows))]
    # The recipe's own pipeline, fitted as Slipway fits it, on the same rows with missing values as pandas holds them.
    pipeline = train_pipeline(bundle)
    expected = pipeline.predict_proba(_imputed(frame.iloc[:60], bundle))[:, list(pipeline.classes_).index("churn")]
    np.testing.assert_allclose(served, expected, atol=1e-6)


def test_retraining_from_the_landed_table_gives_the_same_version(bundle: Any) -> None:
    """Missing values, text and booleans survive the recipe's table landed as Parquet and read back."""
    bucket = MemoryBucket()
    source = DataSource()
    assert land_recipe_table(bucket, RECIPE)
    report = ingest(source, MemorySource(bucket), bucket, artifacts_bucket="artifacts", now=datetime.now(UTC))
    stored = load_snapshot(bucket, Snapshot(ledger=report.ledger, target=source.target_column))
    assert train_bundle(RECIPE, stored.columns, stored.target).version == bundle.version
    assert not land_recipe_table(bucket, RECIPE), "unchanged data is not landed again"


def test_load_data_that_returns_one_thing_says_what_it_must_return() -> None:
    recipe = types.SimpleNamespace(**{**vars(RECIPE), "load_data": lambda: load_data()[0]})
    with pytest.raises(RecipeError, match=r"load_data\(\) must return \(features, target\); got DataFrame"):
        train_bundle(recipe)


def test_a_frame_with_repeated_column_names_is_refused() -> None:
    frame, target = load_data()
    frame.columns = ["age", "age", "city", "plan", "member"]
    recipe = types.SimpleNamespace(**{**vars(RECIPE), "load_data": lambda: (frame, target)})
    with pytest.raises(RecipeError, match="repeated column names"):
        train_bundle(recipe)


def train_pipeline(bundle: Any) -> Pipeline:
    """The recipe's pipeline fitted the way train_bundle fits it (same split, same frame, same cast)."""
    from sklearn.model_selection import train_test_split

    from functions.core.features import category_texts, encode_columns
    from functions.training.export import cast_before_trees
    from functions.training.frame import model_frame
    from functions.training.train import HOLDOUT_SHARE

    columns, target = load_table(RECIPE)
    spec = bundle.manifest.feature_spec
    frame = model_frame(spec, encode_columns(spec, columns), category_texts(spec, columns))
    rows, _ = train_test_split(
        np.arange(len(target)), test_size=HOLDOUT_SHARE, random_state=RECIPE.SEED, stratify=target.astype(str)
    )
    return cast_before_trees(build(RECIPE.SEED)).fit(frame.iloc[rows], target.astype(str)[rows])


def _imputed(frame: pd.DataFrame, bundle: Any) -> pd.DataFrame:
    """The frame with missing values as Slipway imputes them (the spec's impute values), numbers in float32."""
    out = frame.copy()
    for feature in bundle.manifest.feature_spec.features:
        if feature.type is FeatureType.CATEGORY:
            out[feature.name] = out[feature.name].astype(object).where(out[feature.name].notna(), feature.impute)
        elif feature.type is FeatureType.NUMBER:
            filled = out[feature.name].fillna(feature.impute).to_numpy(np.float64)
            out[feature.name] = np.round(filled, feature.precision or 0).astype(np.float32).astype(np.float64)
    return out


def _json(value: Any) -> Any:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value
